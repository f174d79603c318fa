"""``labsmith fit`` with the runtime's own settings: vLLM's budget, Ollama's version."""

import json
from typing import Any

from click.testing import CliRunner, Result

from labsmith.cli import main
from labsmith.sizing.ollama import FIT_TARGET_BYTES

GIB = 1024**3


def fit(*args: str) -> Result:
    return CliRunner().invoke(main, ["fit", *args])


def only_placement(result: Result) -> dict[str, Any]:
    document: dict[str, list[dict[str, Any]]] = json.loads(result.stdout)
    [placement] = document["placements"]
    return placement


def test_vllm_refuses_a_context_its_kv_cache_cannot_hold_and_names_the_largest() -> None:
    # An 8B in bf16 on a 24 GB card leaves about 5 GiB for the KV cache: ~44k tokens.
    result = fit(
        "--model",
        "llama3.1:8b",
        "--quant",
        "F16",
        "--runtime",
        "vllm",
        "--gpu",
        "23.58",
        "--ctx",
        "65536",
    )
    assert result.exit_code == 1, result.output
    assert "maximum number of tokens that can be stored in KV cache" in result.stdout
    assert "the largest context vLLM can serve here" in result.stdout


def test_vllm_json_reports_the_largest_context_and_a_lower_utilisation_shrinks_it() -> None:
    args = ("--model", "llama3.1:8b", "--quant", "F16", "--runtime", "vllm", "--gpu", "24")
    default = only_placement(fit(*args, "--json"))
    lower = only_placement(fit(*args, "--gpu-memory-utilization", "0.8", "--json"))
    assert default["verdict"] == "fits" and default["max_context"] > 4096
    assert lower["max_context"] < default["max_context"]


def test_ollama_estimate_is_reported_beside_the_allocation() -> None:
    args = ("--model", "qwen2.5:32b", "--ctx", "16384", "--gpu", "16", "--gpu", "12", "--json")
    old = only_placement(fit(*args, "--ollama-version", "0.12.10"))
    new = only_placement(fit(*args))
    assert old["total_bytes"] == new["total_bytes"]  # what llama.cpp allocates is the same
    for placement in (old, new):
        assert placement["estimate_bytes"] > placement["total_bytes"]
    # llama-server --fit keeps 1 GiB free per GPU; memory.go charged the partial graph,
    # 457 MiB and a spare layer instead of the compute buffer.
    for device in new["devices"]:
        assert device["estimate_bytes"] - device["total_bytes"] == FIT_TARGET_BYTES
    margins = {d["estimate_bytes"] - d["total_bytes"] for d in old["devices"]}
    assert len(margins) == 1 and margins != {FIT_TARGET_BYTES}


def test_an_ollama_version_that_is_no_release_exits_2() -> None:
    result = fit("--model", "mistral:7b", "--gpu", "12", "--ollama-version", "latest")
    assert result.exit_code == 2
    assert "--ollama-version" in result.output
