"""vLLM's memory budget against vLLM's own logs (tests/fixtures/sizing/vllm_measured.yml).

vLLM logs what it measured while profiling (weights, PyTorch activation peak, non-torch
memory) and what that left for the KV cache. labsmith estimates each term without running the
model; the tolerances say how close the estimates are: the weights within 1%, the activation
peak within 25%, and the KV cache capacity, which decides whether vLLM starts, within 10%.
"""

from pathlib import Path
from typing import Any

import pytest
import yaml

from labsmith.sizing.catalog import find_model
from labsmith.sizing.memory import model_memory, weights_bytes
from labsmith.sizing.placement import GpuSlot, place_vllm
from labsmith.sizing.vllm import (
    BLOCK_SIZE,
    VllmSettings,
    activation_bytes,
    batch_defaults,
    budget,
    ffn_width,
)

GIB = 1024**3
MEASURED: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parents[1] / "fixtures" / "sizing" / "vllm_measured.yml").read_text()
)["measurements"]
WITH_KV = [m for m in MEASURED if "kv_cache_gib" in m["logged"]]


def settings_of(measurement: dict[str, Any]) -> VllmSettings:
    engine = measurement["engine"]
    return VllmSettings(
        gpu_memory_utilization=measurement["logged"]["gpu_memory_utilization"],
        max_num_batched_tokens=engine["max_num_batched_tokens"],
        max_num_seqs=engine["max_num_seqs"],
        cuda_graph_bytes=VllmSettings().cuda_graph_bytes if engine["cuda_graphs_profiled"] else 0,
    )


def vram_of(measurement: dict[str, Any]) -> int:
    return int(measurement["logged"]["total_gpu_memory_gib"] * GIB)


def logged_activation_gib(logged: dict[str, float]) -> float:
    if "activation_gib" in logged:
        return logged["activation_gib"]
    return logged["peak_torch_gib"] - logged["weights_gib"]


@pytest.mark.parametrize("measurement", MEASURED, ids=lambda m: m["id"])
def test_weights_per_rank_match_the_logged_weights(measurement: dict[str, Any]) -> None:
    spec = find_model(measurement["model"])
    per_rank = weights_bytes(spec, measurement["quant"]) / measurement["tensor_parallel"]
    assert per_rank / GIB == pytest.approx(measurement["logged"]["weights_gib"], rel=0.01)


@pytest.mark.parametrize("measurement", MEASURED, ids=lambda m: m["id"])
def test_activation_peak_is_within_a_quarter_of_the_profiled_one(
    measurement: dict[str, Any],
) -> None:
    spec = find_model(measurement["model"])
    engine = measurement["engine"]
    predicted = activation_bytes(spec, engine["max_num_batched_tokens"], engine["max_num_seqs"])
    assert predicted / GIB == pytest.approx(logged_activation_gib(measurement["logged"]), rel=0.25)


@pytest.mark.parametrize("measurement", WITH_KV, ids=lambda m: m["id"])
def test_kv_cache_left_over_is_within_a_tenth_of_vllms(measurement: dict[str, Any]) -> None:
    spec = find_model(measurement["model"])
    share = budget(
        spec,
        weights_bytes(spec, measurement["quant"]),
        vram_of(measurement),
        "f16",
        measurement["tensor_parallel"],
        settings_of(measurement),
    )
    logged = measurement["logged"]
    assert share.kv_cache_bytes / GIB == pytest.approx(logged["kv_cache_gib"], rel=0.10)
    if "gpu_blocks" in logged:
        assert share.max_tokens == pytest.approx(logged["gpu_blocks"] * BLOCK_SIZE, rel=0.10)


@pytest.mark.parametrize("measurement", WITH_KV, ids=lambda m: m["id"])
def test_verdict_matches_whether_vllm_started(measurement: dict[str, Any]) -> None:
    spec = find_model(measurement["model"])
    context = measurement["max_model_len"]
    memory = model_memory(spec, measurement["quant"], context, 1, "f16")
    placement = place_vllm(
        spec,
        memory,
        [GpuSlot("gpu0", vram_of(measurement))],
        context=context,
        parallel=1,
        kv_type="f16",
        settings=settings_of(measurement),
    )
    assert placement.fits is measurement["logged"]["starts"], placement.reason
    if "max_tokens" in measurement["logged"]:
        # vLLM: "larger than the maximum number of tokens that can be stored in KV cache
        # (23648)"; labsmith reports its own estimate of that number the same way.
        assert "maximum number of tokens that can be stored in KV cache" in placement.reason
        assert placement.max_context == pytest.approx(measurement["logged"]["max_tokens"], rel=0.1)


def test_ffn_width_follows_from_the_parameter_count() -> None:
    # config.json intermediate_size: Llama 3.1 8B 14336, Qwen2.5 0.5B (tied embeddings) 4864.
    assert ffn_width(find_model("llama3.1:8b")) == pytest.approx(14336, rel=0.02)
    assert ffn_width(find_model("qwen2.5:0.5b")) == pytest.approx(4864, rel=0.02)


def test_vllm_serve_batches_more_tokens_on_gpus_of_70_gib_or_more() -> None:
    assert batch_defaults(24 * GIB) == (2048, 256)
    assert batch_defaults(80 * GIB) == (8192, 1024)


def test_a_longer_context_fits_where_the_activation_budget_is_smaller() -> None:
    # The profiled batch, not the context, sets the activation peak: batching fewer tokens
    # leaves more for the KV cache and so a longer context.
    spec = find_model("llama3.1:8b")
    weights = weights_bytes(spec, "F16")
    small = budget(spec, weights, 24 * GIB, "f16", 1, VllmSettings(max_num_batched_tokens=2048))
    large = budget(spec, weights, 24 * GIB, "f16", 1, VllmSettings(max_num_batched_tokens=16384))
    assert small.max_tokens > large.max_tokens
    assert large.activation_bytes > small.activation_bytes


def test_an_fp8_kv_cache_holds_twice_the_tokens_and_q4_0_is_refused() -> None:
    spec = find_model("llama3.1:8b")
    weights = weights_bytes(spec, "F16")
    f16 = budget(spec, weights, 24 * GIB, "f16", 1)
    fp8 = budget(spec, weights, 24 * GIB, "q8_0", 1)
    assert fp8.max_tokens == pytest.approx(2 * f16.max_tokens, abs=BLOCK_SIZE)
    with pytest.raises(ValueError, match="no q4_0 KV cache"):
        budget(spec, weights, 24 * GIB, "q4_0", 1)


def test_vllm_refuses_a_gpu_another_model_already_uses() -> None:
    spec = find_model("qwen2.5:0.5b")
    memory = model_memory(spec, "F16", 4096, 1, "f16")
    busy = GpuSlot("rtx3060", 12 * GIB, taken_bytes=4 * GIB)
    placement = place_vllm(spec, memory, [busy], context=4096, parallel=1, kv_type="f16")
    assert placement.verdict == "does_not_fit"
    assert "free at start" in placement.reason


def test_a_context_beyond_the_models_own_is_refused() -> None:
    spec = find_model("qwen2.5:0.5b")
    memory = model_memory(spec, "F16", 65536, 1, "f16")
    placement = place_vllm(
        spec, memory, [GpuSlot("g", 24 * GIB)], context=65536, parallel=1, kv_type="f16"
    )
    assert placement.verdict == "does_not_fit" and "max_position_embeddings" in placement.reason


def test_fewer_requests_at_once_than_parallel_is_tight() -> None:
    spec = find_model("llama3.1:8b")
    memory = model_memory(spec, "F16", 16384, 4, "f16")
    placement = place_vllm(
        spec, memory, [GpuSlot("rtx3090", 24 * GIB)], context=16384, parallel=4, kv_type="f16"
    )
    assert placement.verdict == "tight"
    assert placement.max_context is not None and 16384 <= placement.max_context < 4 * 16384
