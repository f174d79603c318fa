"""The memory terms against llama.cpp's own load logs (tests/fixtures/sizing/measured.yml).

Each measurement quotes the log lines and cites where they were published; llama.cpp prints
its KV cache and compute buffers per device in MiB, with n_ctx covering all sequences.
"""

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from labsmith.sizing.catalog import ModelSpec, find_model
from labsmith.sizing.memory import compute_bytes, kv_cache_bytes

MIB = 1024**2
MEASURED: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parents[1] / "fixtures" / "sizing" / "measured.yml").read_text()
)["measurements"]
WITH_KV = [m for m in MEASURED if m["kv_heads"] and m["head_dim"]]


def kv_mib(measurement: dict[str, Any]) -> float:
    on_devices = sum(device.get("kv_mib") or 0 for device in measurement["devices"])
    return float(on_devices + (measurement.get("kv_cpu_mib") or 0))


def spec_of(measurement: dict[str, Any]) -> ModelSpec:
    """The logged architecture; builds that predate llama.cpp's sliding-window cache gave
    every layer the whole context, so no window is applied."""
    return ModelSpec(
        name=measurement["model"],
        family="",
        parameters=0,
        layers=measurement["layers"],
        attention_heads=1,
        kv_heads=measurement["kv_heads"],
        head_dim=measurement["head_dim"],
        embedding=0,
        vocab=0,
        context=measurement["context"],
    )


@pytest.mark.parametrize("measurement", WITH_KV, ids=lambda m: m["id"])
def test_kv_cache_matches_the_logged_kv_buffers(measurement: dict[str, Any]) -> None:
    predicted = kv_cache_bytes(
        spec_of(measurement), measurement["context"], 1, measurement["kv_cache"]
    )
    assert predicted / MIB == pytest.approx(kv_mib(measurement), abs=0.01)


def test_compute_buffer_of_llama31_8b_without_flash_attention() -> None:
    # Source: MagicWand18/Securetag-AI-Agent runpod-deploy/logcompleto.md (Ollama 0.5.4,
    # RTX 4090): "CUDA0 compute buffer size = 560.00 MiB" at n_ctx 8192, n_ubatch 512.
    [measurement] = [m for m in MEASURED if m["id"].startswith("llama31-8b-q4km-ctx8192")]
    spec = replace(find_model("llama3.1:8b"))
    [device] = measurement["devices"]
    predicted = compute_bytes(spec, measurement["context"], 1, flash_attention=False)
    assert predicted / MIB == pytest.approx(device["compute_mib"], abs=0.5)


def test_weights_of_llama31_8b_q4_k_m_match_the_loaded_buffers() -> None:
    [measurement] = [m for m in MEASURED if m["id"].startswith("llama31-8b-q4km-ctx8192")]
    [device] = measurement["devices"]
    loaded = device["model_mib"] + measurement["cpu_mib"]["model_mib"]
    file_size = find_model("llama3.1:8b").files["Q4_K_M"] / MIB
    assert file_size == pytest.approx(loaded, rel=0.01)  # the file also holds metadata
