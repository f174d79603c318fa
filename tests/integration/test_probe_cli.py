"""``labsmith probe`` end to end: real SSH to a loopback sshd, a real snapshot of this machine,
judged like any host. Whatever this machine lacks (a GPU, an IOMMU) must come out as clear
``unknown``/``fail`` verdicts, never a crash."""

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from labsmith.cli import main
from tests.integration.sshd import LoopbackSshd

pytestmark = pytest.mark.integration
STATUSES = {"pass", "warn", "fail", "unknown"}


def inventory_for(sshd: LoopbackSshd, root: Path) -> Path:
    """A one-host lab whose connection variables point at the loopback sshd."""
    host = {
        "ansible_host": sshd.address,
        "ansible_port": sshd.port,
        "ansible_user": sshd.user,
        "ansible_ssh_private_key_file": str(sshd.client_key),
        "labsmith_kind": "metal",
        "labsmith_cpu": {"vendor": "intel", "cores": 2},
        "labsmith_memory": "8G",
        "labsmith_nics": [{"name": "lo"}],
    }
    (root / "host_vars").mkdir(parents=True)
    (root / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"testbox": None}}}))
    (root / "host_vars" / "testbox.yml").write_text(yaml.safe_dump(host))
    return root


def probe(*args: str) -> Result:
    return CliRunner().invoke(main, ["probe", *args])


def test_probe_over_ssh_judges_this_machine(
    sshd: LoopbackSshd, known_hosts: Path, tmp_path: Path
) -> None:
    lab = inventory_for(sshd, tmp_path / "lab")
    out = tmp_path / "snapshots"
    result = probe(
        "-i", str(lab), "testbox", "--known-hosts", str(known_hosts), "--out", str(out), "--json"
    )
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.stdout)
    assert report["host"] == "testbox" and report["snapshot"] == str(out / "testbox")
    checks = {check["id"]: check for check in report["checks"]}
    assert {"iommu.active", "cpu.virtualization", "inventory.nic"} <= set(checks)
    assert all(check["status"] in STATUSES and check["message"] for check in report["checks"])
    assert checks["inventory.nic"]["status"] == "pass"  # the loopback interface is there
    # This machine's cpuinfo and os-release were really read over SSH.
    assert (out / "testbox" / "cpuinfo").read_text().startswith("processor")
    assert result.exit_code == (1 if report["status"] == "fail" else 0)
    # No nvidia-smi here: the topology command failed, so there is no GPU to place.
    assert report["gpu_topology"] == []


def test_saved_snapshot_is_judged_offline_the_same_way(
    sshd: LoopbackSshd, known_hosts: Path, tmp_path: Path
) -> None:
    lab = inventory_for(sshd, tmp_path / "lab")
    out = tmp_path / "snapshots"
    online = probe(
        "-i", str(lab), "testbox", "--known-hosts", str(known_hosts), "--out", str(out), "--json"
    )
    offline = probe(
        "--snapshot", str(out / "testbox"), "-i", str(lab), "--host", "testbox", "--json"
    )
    assert offline.exit_code == online.exit_code
    assert json.loads(offline.stdout) == json.loads(online.stdout)


def test_unknown_host_key_exits_3_with_the_fix(sshd: LoopbackSshd, tmp_path: Path) -> None:
    lab = inventory_for(sshd, tmp_path / "lab")
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    result = probe(
        "-i", str(lab), "testbox", "--known-hosts", str(empty), "--out", str(tmp_path / "s")
    )
    assert result.exit_code == 3
    assert "--accept-new-host-key" in result.stdout
    assert not (tmp_path / "s" / "testbox" / "cpuinfo").exists()


def test_unknown_inventory_host_exits_2(sshd: LoopbackSshd, tmp_path: Path) -> None:
    lab = inventory_for(sshd, tmp_path / "lab")
    result = probe("-i", str(lab), "nosuchhost")
    assert result.exit_code == 2
    assert "nosuchhost" in result.stderr


def test_a_saved_gpu_topology_is_in_the_json(tmp_path: Path) -> None:
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "host"
    snapshot = tmp_path / "a100"
    snapshot.mkdir()
    capture = fixture / "nvidia_topo_4x_a100_nv3_pairs_numa_0_8.txt"
    (snapshot / "nvidia-smi-topo").write_text(capture.read_text())

    result = probe("--snapshot", str(snapshot), "--json")

    assert result.exit_code in (0, 1), result.output
    topology = json.loads(result.stdout)["gpu_topology"]
    assert [gpu["numa_node"] for gpu in topology] == [0, 0, 8, 8]
    assert topology[2] == {
        "index": 2,
        "numa_node": 8,
        "cpu_affinity": "64-127",
        "links": {"0": "SYS", "1": "SYS", "2": "X", "3": "NV3"},
    }

    table = probe("--snapshot", str(snapshot))
    assert "GPU topology" in table.stdout
    row = next(line for line in table.stdout.splitlines() if line.startswith("│ GPU2 "))
    assert [cell.strip() for cell in row.split("│")[1:-1]] == [
        "GPU2", "SYS", "SYS", "X", "NV3", "8", "64-127",
    ]  # fmt: skip
