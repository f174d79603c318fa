"""``labsmith fit``: ad hoc and for the inventory's plan, tables and JSON."""

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from labsmith.cli import main
from tests.conftest import FIXTURES, INVENTORIES
from tests.unit.test_sizing_gguf import write_model

GIB = 1024**3


def fit(*args: str) -> Result:
    return CliRunner().invoke(main, ["fit", *args])


def placements(result: Result) -> list[dict[str, Any]]:
    document: dict[str, list[dict[str, Any]]] = json.loads(result.stdout)
    return document["placements"]


def test_ad_hoc_mistral_32k_f16_kv_is_4_gib_and_fits_24g() -> None:
    result = fit(
        "--model", "mistral:7b", "--ctx", "32768", "--kv-cache", "f16", "--gpu", "24", "--json"
    )
    assert result.exit_code == 0, result.output
    [placement] = placements(result)
    assert placement["kv_bytes"] == 4 * GIB
    assert placement["fits"] is True and placement["verdict"] == "fits"
    assert (
        placement["total_bytes"]
        == placement["weights_bytes"] + placement["kv_bytes"] + placement["overhead_bytes"]
    )
    [device] = placement["devices"]
    assert device["layers"] == 32 and device["vram_bytes"] == 24 * GIB


def test_ad_hoc_70b_on_one_24g_card_does_not_fit_on_it() -> None:
    result = fit(
        "--model", "llama3.1:70b", "--quant", "Q4_K_M", "--ctx", "8192", "--gpu", "24G", "--json"
    )
    assert result.exit_code == 0  # Ollama runs it, spilling to the CPU: a warning, not a failure
    [placement] = placements(result)
    assert placement["fits"] is False and placement["verdict"] == "spills"
    assert placement["cpu_layers"] > 0


def test_ad_hoc_vllm_tensor_parallel_3_exits_1() -> None:
    result = fit(
        "--model", "llama3.1:8b", "--runtime", "vllm", "--gpu", "12", "--gpu", "12", "--gpu", "12"
    )
    assert result.exit_code == 1
    assert "does not divide the 32 attention heads" in result.stdout


def test_unknown_model_exits_2_and_points_at_gguf() -> None:
    result = fit("--model", "my-finetune:13b", "--gpu", "24")
    assert result.exit_code == 2
    assert "--gguf" in result.stderr


def test_gguf_file_is_sized_from_its_header(tmp_path: Path) -> None:
    path = write_model(tmp_path / "tiny.gguf")
    result = fit("--gguf", str(path), "--ctx", "1024", "--gpu", "1", "--json")
    assert result.exit_code == 0, result.output
    [placement] = placements(result)
    assert placement["weights_bytes"] == path.stat().st_size
    assert (
        placement["kv_bytes"] == 2 * 4 * 1024 * 2 * 32 * 2
    )  # 2 x layers x ctx x kv heads x dim x f16


def test_example_lab_fit_table() -> None:
    result = fit("-i", str(INVENTORIES / "example"), "--json")
    assert result.exit_code == 0, result.output
    by_model = {(p["owner"], p["model"]): p for p in placements(result)}
    mistral = by_model[("ai-public", "mistral:7b")]
    assert mistral["fits"] is True and [d["gpu"] for d in mistral["devices"]] == ["rtx3060"]
    qwen = by_model[("ai-private", "qwen2.5:32b")]
    assert qwen["fits"] is True and [d["gpu"] for d in qwen["devices"]] == ["rtx5090"]


def test_table_output_names_devices_and_verdicts() -> None:
    result = fit("-i", str(INVENTORIES / "example"), "--host", "ai-public")
    assert result.exit_code == 0, result.output
    assert "rtx3060" in result.stdout and "fits" in result.stdout
    assert "ai-private" not in result.stdout


def test_a_display_gpus_desktop_vram_from_a_probe_snapshot_is_not_for_models(
    write_tree: Any, tmp_path: Path
) -> None:
    host = (
        "---\nlabsmith_kind: metal\nlabsmith_cpu: {vendor: amd, cores: 16}\nlabsmith_memory: 64G\n"
        "labsmith_gpus:\n  - {name: a5000, pci: '0000:81:00.0', vendor_device: '10de:2231', vram: 24G,"
        " mode: host, display: true}\n"
        "labsmith_services:\n  - name: ollama\n    kind: ollama\n"
        "    models: [{name: 'mistral:7b', context: 8192}]\n"
    )
    lab = write_tree(
        {"lab/hosts.yml": "---\nall:\n  hosts:\n    ws:\n", "lab/host_vars/ws.yml": host}
    )
    xml = (FIXTURES / "host" / "nvsmi_dual_rtx_a5000_v13.xml").read_text()
    snapshot = tmp_path / "snaps" / "ws" / "nvidia-smi.xml"
    snapshot.parent.mkdir(parents=True)
    snapshot.write_text(xml)
    plain = placements(fit("-i", str(lab / "lab"), "--json"))
    probed = placements(
        fit("-i", str(lab / "lab"), "--snapshots", str(tmp_path / "snaps"), "--json")
    )
    [before], [after] = plain[0]["devices"], probed[0]["devices"]
    # The fixture's first A5000 has no display active (a monitor cable alone holds nothing):
    # only the 450 MiB the driver reserves is taken away.
    assert before["free_before_bytes"] - after["free_before_bytes"] == 450 * 1024**2
    assert (plain[0]["verdict"], probed[0]["verdict"]) == ("fits", "fits")
    # With its display active, the 22437 MiB in use is the desktop's too: the model spills.
    snapshot.write_text(
        xml.replace(
            "<display_active>Disabled</display_active>",
            "<display_active>Enabled</display_active>",
            1,
        )
    )
    active = placements(
        fit("-i", str(lab / "lab"), "--snapshots", str(tmp_path / "snaps"), "--json")
    )
    # 1.6 GiB left: no layer of the 7B fits beside the compute graph, all run on the CPU.
    assert (active[0]["verdict"], active[0]["devices"]) == ("spills", [])


def test_a_vllm_split_across_numa_nodes_is_named_from_the_probed_topology(
    write_tree: Any, tmp_path: Path
) -> None:
    # Two A5000s (the nvidia-smi capture's addresses) joined only through the SMP interconnect
    # (the two-socket topology capture): tensor parallelism across them pays for it.
    host = (
        "---\nlabsmith_kind: metal\nlabsmith_cpu: {vendor: amd, cores: 64}\nlabsmith_memory: 256G\n"
        "labsmith_gpus:\n"
        "  - {name: a, pci: '0000:81:00.0', vendor_device: '10de:2231', vram: 24G, mode: host}\n"
        "  - {name: b, pci: '0000:c1:00.0', vendor_device: '10de:2231', vram: 24G, mode: host}\n"
        "labsmith_services:\n  - name: vllm\n    kind: vllm\n    gpus: [a, b]\n"
        "    models: [{name: 'qwen2.5:32b', quant: Q4_K_M, context: 8192}]\n"
    )
    lab = write_tree(
        {"lab/hosts.yml": "---\nall:\n  hosts:\n    rig:\n", "lab/host_vars/rig.yml": host}
    )
    snapshot = tmp_path / "snaps" / "rig"
    snapshot.mkdir(parents=True)
    for name, fixture in (
        ("nvidia-smi.xml", "nvsmi_dual_rtx_a5000_v13.xml"),
        ("nvidia-smi-topo", "nvidia_topo_2x_a100_sys_one_per_socket.txt"),
    ):
        (snapshot / name).write_text((FIXTURES / "host" / fixture).read_text())
    result = fit("-i", str(lab / "lab"), "--snapshots", str(tmp_path / "snaps"), "--json")
    [placement] = placements(result)
    assert [d["gpu"] for d in placement["devices"]] == ["a", "b"]
    assert "GPUs 0,1 for tensor parallelism: they span NUMA nodes 0 and 1" in placement["topology"]
    assert "no 2 GPUs of this host do better" in placement["topology"]
    text = fit("-i", str(lab / "lab"), "--snapshots", str(tmp_path / "snaps"))
    assert "GPU topology: GPUs 0,1 for tensor parallelism" in " ".join(text.stdout.split())
    # Without the probe there is nothing to say.
    assert placements(fit("-i", str(lab / "lab"), "--json"))[0]["topology"] is None
