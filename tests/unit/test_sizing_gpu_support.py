"""Which runtimes can use which GPUs, from the cited table in labsmith.sizing.gpu_support,
and the finding validate raises for a service whose runtime cannot use its GPU."""

import shutil
from pathlib import Path

import pytest

from labsmith.checks.lab import check_lab
from labsmith.inventory.model import ModelRef
from labsmith.sizing.fit import fit_model
from labsmith.sizing.gpu_support import DEVICES, gpu_support, hsa_override
from labsmith.sizing.placement import GpuSlot
from tests.conftest import INVENTORIES

RX_580 = "1002:67df"


@pytest.mark.parametrize("gfx", ["gfx1031", "gfx1032", "gfx1034", "gfx1035", "gfx1036"])
def test_consumer_rdna2_runs_as_gfx1030(gfx: str) -> None:
    assert hsa_override(gfx) == "10.3.0"


@pytest.mark.parametrize("gfx", ["gfx1101", "gfx1102", "gfx1103"])
def test_rdna3_below_navi31_runs_as_gfx1100(gfx: str) -> None:
    assert hsa_override(gfx) == "11.0.0"


@pytest.mark.parametrize("gfx", ["gfx1030", "gfx1100", "gfx1201", "gfx803", "gfx900", "GFX9999"])
def test_supported_or_unreachable_targets_have_no_override(gfx: str) -> None:
    assert hsa_override(gfx) is None


def test_vllm_cannot_use_a_polaris_card_and_says_what_would() -> None:
    support = gpu_support("vllm", "rx580", RX_580)
    assert support.known and not support.usable
    assert "gfx803" in support.note
    assert "Vulkan" in support.fix


def test_ollama_runs_a_polaris_card_through_vulkan() -> None:
    support = gpu_support("ollama", "rx580", RX_580)
    assert support.usable and support.backend == "vulkan"


def test_vllm_needs_compute_capability_7_5() -> None:
    assert not gpu_support("vllm", "p40", "10de:1b38").usable  # Pascal, 6.1
    assert gpu_support("ollama", "p40", "10de:1b38").backend == "cuda"  # Ollama: 5.0+
    assert gpu_support("vllm", "t4", "10de:1eb8").backend == "cuda"  # Turing, 7.5


def test_vllm_runs_an_rx_7600_through_the_rdna3_override_but_not_an_rx_6700() -> None:
    navi33 = gpu_support("vllm", "rx7600", "1002:7480")
    assert navi33.backend == "rocm" and "HSA_OVERRIDE_GFX_VERSION=11.0.0" in navi33.note
    # gfx1031 would run as gfx1030, which vLLM's ROCm build does not list either.
    assert not gpu_support("vllm", "rx6700", "1002:73df").usable


def test_an_unknown_device_id_is_unknown_and_never_refused() -> None:
    support = gpu_support("vllm", "mystery", "1234:5678")
    assert not support.known and support.usable


def test_every_card_the_example_labs_name_is_in_the_table() -> None:
    named = {
        line.split('"')[1]
        for path in INVENTORIES.glob("*/host_vars/*.yml")
        if "broken" not in path.parts
        for line in path.read_text().splitlines()
        if line.strip().startswith("vendor_device:")
    }
    named |= {"1002:7551"}  # the workstation's planned R9700, a commented variant
    assert named <= set(DEVICES)


def test_validate_refuses_vllm_on_the_rx_580(tmp_path: Path) -> None:
    lab = tmp_path / "workstation"
    shutil.copytree(INVENTORIES / "workstation", lab)
    host_vars = lab / "host_vars" / "ws1.yml"
    text = host_vars.read_text()
    assert "kind: llama_cpp" in text
    host_vars.write_text(text.replace("kind: llama_cpp", "kind: vllm", 1))
    report = check_lab(lab)
    [finding] = report.findings
    assert finding.rule == "fit.runtime_gpu" and finding.severity == "error"
    assert finding.key == "labsmith_services[1].models[0]"
    assert "gfx803" in finding.message and "Vulkan" in finding.fix
    assert not report.valid


def test_fit_says_how_vllm_reaches_an_rx_7600() -> None:
    gpu = GpuSlot("rx7600", 8 * 1024**3, vendor_device="1002:7480")
    placement = fit_model(ModelRef(name="qwen2.5:0.5b", quant="F16"), [gpu], "vllm", None)
    assert not isinstance(placement, str) and placement.fits
    assert "HSA_OVERRIDE_GFX_VERSION=11.0.0" in placement.reason
