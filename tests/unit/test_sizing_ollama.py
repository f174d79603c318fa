"""Ollama's scheduler estimate against its own logs, and its allocation against llama.cpp's.

Sources: tests/fixtures/sizing/ollama_multi_gpu.yml (Ollama's "offload to cuda" estimates)
and measured.yml (llama.cpp's per-device buffers). Tolerances: GraphSize's graph within
0.05 GiB (it is Ollama's own formula), the whole estimate within 5% of what Ollama printed,
the allocated KV cache plus compute buffers within 10% of the logged buffers.
"""

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from labsmith.sizing.catalog import ModelSpec, find_model
from labsmith.sizing.memory import KvCacheType, compute_bytes, model_memory
from labsmith.sizing.ollama import (
    FIT_TARGET_BYTES,
    MINIMUM_MEMORY_BYTES,
    parse_version,
    partial_graph_bytes,
    reserve_bytes,
    scheduler,
)
from labsmith.sizing.placement import GpuSlot, place_ollama
from labsmith.units import MIB

GIB = 1024**3
FIXTURES = Path(__file__).parents[1] / "fixtures" / "sizing"
ESTIMATES: dict[str, dict[str, Any]] = {
    m["id"]: m
    for m in yaml.safe_load((FIXTURES / "ollama_multi_gpu.yml").read_text())["measurements"]
}
MEASURED: dict[str, dict[str, Any]] = {
    m["id"]: m for m in yaml.safe_load((FIXTURES / "measured.yml").read_text())["measurements"]
}


def derived_spec(entry: dict[str, Any]) -> ModelSpec:
    shape = entry["derived"]
    return ModelSpec(
        name=entry["id"],
        family="llama",
        parameters=0,
        layers=shape["layers"],
        attention_heads=shape["attention_heads"],
        kv_heads=shape["kv_heads"],
        head_dim=shape["head_dim"],
        embedding=shape["embedding"],
        vocab=shape["vocab"],
        context=131072,
    )


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.5.4", "memory_estimate"),
        ("v0.12.10", "memory_estimate"),
        ("0.12.11", "backend_layout"),
        ("0.29.9", "backend_layout"),
        ("0.30.0", "llama_server_fit"),
        ("0.32.15", "llama_server_fit"),
    ],
)
def test_each_release_has_its_scheduler(version: str, expected: str) -> None:
    assert scheduler(version) == expected


def test_a_version_that_is_no_release_number_is_refused() -> None:
    with pytest.raises(ValueError, match="not a release number"):
        parse_version("latest")


def test_multi_gpu_graph_is_graphsizes_partial_graph_charged_on_every_gpu() -> None:
    # ollama/ollama#9181: memory.graph.partial="8.2 GiB" on each of 4 GPUs, flash attention on.
    entry = ESTIMATES["llama-70b-class-ctx64000-fa-4x22gib-ollama05"]
    spec = derived_spec(entry)
    logged = entry["logged"]
    graph = partial_graph_bytes(spec, entry["context"], entry["parallel"])
    assert graph / GIB == pytest.approx(logged["graph_partial_gib"], abs=0.05)
    memory = model_memory(spec, "Q8_0", entry["context"], 1, "q8_0")
    reserve = reserve_bytes("0.5.4", spec, memory, entry["context"], 1, gpus=logged["gpus"])
    assert reserve >= graph + MINIMUM_MEMORY_BYTES
    # What llama.cpp allocates with flash attention is the output logits only: the estimate
    # charges each GPU more than 30 times the compute buffer it gets.
    allocated = compute_bytes(spec, entry["context"], 1, flash_attention=True)
    assert allocated < 300 * MIB and graph > 30 * allocated


def test_estimate_of_a_70b_on_two_gpus_matches_ollama_ps() -> None:
    # ollama/ollama#10553, Ollama 0.7.1: `ollama ps` SIZE 39 GB (decimal) for the whole load.
    entry = ESTIMATES["llama33-70b-q3km-ctx4096-2gpu-ollama071"]
    spec = replace(find_model(entry["model"]), files={"Q3_K_M": int(entry["file_gib"] * GIB)})
    memory = model_memory(spec, "Q3_K_M", entry["context"], 1, "f16")
    gpus = [GpuSlot("cuda0", 24 * GIB), GpuSlot("cuda1", 24 * GIB)]
    placement = place_ollama(
        spec, memory, gpus, cpu_bytes_free=None, context=4096, parallel=1, version="0.7.1"
    )
    assert len(placement.devices) == entry["logged"]["gpus"] and placement.cpu_layers == 0
    assert placement.estimate_bytes is not None
    logged = entry["logged"]["ollama_ps_size_gb"] * 10**9
    assert placement.estimate_bytes == pytest.approx(logged, rel=0.05)


def test_allocation_of_the_same_70b_matches_llama_cpps_buffers() -> None:
    # measured.yml: KV 784 + 496 MiB, compute 260.01 + 346.52 MiB on the two GPUs.
    entry = ESTIMATES["llama33-70b-q3km-ctx4096-2gpu-ollama071"]
    measured = MEASURED[entry["allocated_in"]]
    spec = replace(find_model(entry["model"]), files={"Q3_K_M": int(entry["file_gib"] * GIB)})
    # A quantised KV cache is how labsmith says "flash attention on".
    kv_type: KvCacheType = "q8_0" if entry["derived"]["flash_attention"] else "f16"
    flash = model_memory(spec, "Q3_K_M", 4096, 1, kv_type)
    memory = replace(
        model_memory(spec, "Q3_K_M", 4096, 1, "f16"), compute_bytes=flash.compute_bytes
    )
    gpus = [GpuSlot("cuda0", 24 * GIB), GpuSlot("cuda1", 24 * GIB)]
    placement = place_ollama(spec, memory, gpus, cpu_bytes_free=None, context=4096, parallel=1)
    predicted = sum(d.kv_bytes + d.overhead_bytes for d in placement.devices)
    logged = sum(d["kv_mib"] + d["compute_mib"] for d in measured["devices"]) * MIB
    assert predicted == pytest.approx(logged, rel=0.10)
    # The old charge of compute + 457 MiB on every GPU overshot the same buffers by a third.
    old_charge = sum(
        d.kv_bytes + d.overhead_bytes + MINIMUM_MEMORY_BYTES for d in placement.devices
    )
    assert old_charge > 1.3 * logged


def test_allocation_on_four_rocm_gpus_is_one_full_compute_buffer_each() -> None:
    # measured.yml: llama-cpp-python, Mistral 7B v0.2 over 4 ROCm devices, 316.80 MiB each.
    measured = MEASURED["mistral-7b-v02-q5km-ctx4096-4x-rocm"]
    spec = replace(find_model("mistral:7b"), vocab=32000)  # v0.2's vocabulary
    memory = model_memory(spec, "Q5_K_M", 4096, 1, "f16")
    per_device = memory.compute_bytes
    for device in measured["devices"]:
        assert per_device / MIB == pytest.approx(device["compute_mib"], rel=0.10)
    predicted = memory.kv_bytes + 4 * per_device
    logged = sum(d["kv_mib"] + d["compute_mib"] for d in measured["devices"]) * MIB
    assert predicted == pytest.approx(logged, rel=0.10)


def test_single_gpu_estimate_and_allocation_of_llama31_8b() -> None:
    # measured.yml, Ollama 0.5.4 on an RTX 4090: memory.required.full="6.5 GiB"; buffers
    # 4403.49 + 281.81 MiB weights, 1024 MiB KV, 560 MiB compute (the LoRA's 160 MiB aside).
    measured = MEASURED["llama31-8b-q4km-ctx8192-np4-ollama054-rtx4090"]
    spec = find_model("llama3.1:8b")
    memory = model_memory(spec, "Q4_K_M", 2048, 4, "f16")
    placement = place_ollama(
        spec,
        memory,
        [GpuSlot("rtx4090", 24 * GIB)],
        cpu_bytes_free=None,
        context=2048,
        parallel=4,
        version="0.5.4",
    )
    [device] = placement.devices
    assert device.estimate_bytes == pytest.approx(6.5 * GIB, rel=0.05)
    [logged_device] = measured["devices"]
    allocated_mib = (
        logged_device["model_mib"]
        + measured["cpu_mib"]["model_mib"]
        + logged_device["kv_mib"]
        + logged_device["compute_mib"]
    )
    assert device.total_bytes / MIB == pytest.approx(allocated_mib, rel=0.03)


def test_old_ollama_deals_layers_round_robin_and_new_in_proportion() -> None:
    spec = find_model("qwen2.5:32b")
    memory = model_memory(spec, "Q4_K_M", 8192, 1, "q8_0")
    gpus = [GpuSlot("big", 16 * GIB), GpuSlot("small", 12 * GIB)]

    def split(version: str) -> list[int]:
        placement = place_ollama(
            spec, memory, gpus, cpu_bytes_free=None, context=8192, parallel=1, version=version
        )
        return [d.layers for d in placement.devices]

    old, new = split("0.12.10"), split("0.32.15")
    assert sum(old) == sum(new) == spec.layers
    assert abs(old[0] - old[1]) <= 1  # gpusWithSpace[i % j]: even while both have room
    assert new[0] > new[1]  # in proportion to what each holds


def test_every_scheduler_charges_more_than_the_runner_allocates() -> None:
    spec = find_model("llama3.1:8b")
    memory = model_memory(spec, "Q4_K_M", 8192, 1, "f16")
    for version, least in (("0.12.10", MINIMUM_MEMORY_BYTES), ("0.20.0", MINIMUM_MEMORY_BYTES)):
        assert reserve_bytes(version, spec, memory, 8192, 1, 1) >= memory.compute_bytes + least
    assert reserve_bytes("0.32.15", spec, memory, 8192, 1, 2) == (
        memory.compute_bytes + FIT_TARGET_BYTES
    )
