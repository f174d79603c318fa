"""``labsmith build --hosts`` on a real (virtual) Debian host: IOMMU and vfio end to end,
then a second run with no change; and the refusals a user meets first."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from labsmith.cli import main
from tests.testbed.inventory import write_inventory
from tests.testbed.vm import HostInfo, down, ssh, up

pytestmark = pytest.mark.e2e


def build(inventory: Path, run_dir: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["build", "-i", str(inventory), "--hosts", "--yes", "--run-dir", str(run_dir), *extra]
    )
    return result.exit_code, result.output


def test_build_makes_the_host_ready_and_a_second_run_changes_nothing(
    test_host: HostInfo, tmp_path: Path
) -> None:
    # Direct kernel boot keeps qemu's -append line across reboots, so iommu=pt could never
    # show up in /proc/cmdline: ask only for intel_iommu=on, which the line has.
    inventory = write_inventory(
        tmp_path / "lab", test_host, extra={"iommu_passthrough_mode": False}
    )
    runs = tmp_path / "runs"

    dry_code, dry = build(inventory, runs, "--dry-run")
    assert dry_code == 0, dry
    assert "would change testhost: Write the IOMMU parameters as a GRUB drop-in" in dry
    assert "+ options vfio-pci ids=1002:5046" in dry
    assert ssh(test_host, "test -e /etc/modprobe.d/labsmith-vfio.conf").returncode == 1

    code, output = build(inventory, runs)
    assert code == 0, output
    assert "role iommu" in output and "role vfio" in output
    assert "changed testhost: vfio: Rebuild the initramfs" in output
    drivers = ssh(
        test_host,
        "for d in 0000:00:07.0 0000:00:08.0 0000:01:01.0; do "
        "basename $(readlink /sys/bus/pci/devices/$d/driver) 2>/dev/null || echo none; done",
    ).stdout.split()
    assert drivers == ["vfio-pci", "vfio-pci", "none"]

    again_code, again = build(inventory, runs)
    assert again_code == 0, again
    assert "No changes: the hosts match the inventory." in again
    run_dirs = sorted(runs.iterdir())
    assert len(run_dirs) == 3
    assert (run_dirs[-1] / "snapshots" / "testhost" / "lspci").is_file()  # the probe's
    events = list((run_dirs[-1] / "ansible" / "artifacts").glob("*/job_events/*.json"))
    assert events, "the run directory keeps every event"
    stats = [json.loads(e.read_text()) for e in events]
    assert any(s.get("event") == "playbook_on_stats" for s in stats)


def test_a_shared_iommu_group_is_refused_before_anything_changes(
    test_host: HostInfo, tmp_path: Path
) -> None:
    shared = [{"name": "shared", "pci": "0000:01:01.0", "vendor_device": "1234:11e8",
               "vram": "1G", "mode": "passthrough"}]  # fmt: skip
    inventory = write_inventory(
        tmp_path / "lab", test_host, gpus=shared, extra={"iommu_passthrough_mode": False}
    )
    code, output = build(inventory, tmp_path / "runs")
    assert code == 1
    assert "0000:01:01.0 shares IOMMU group" in output
    assert "0000:01:02.0 [1234:11e8]" in output
    assert ssh(test_host, "test -e /etc/modprobe.d/labsmith-vfio.conf").returncode == 1


def test_a_firmware_with_the_iommu_off_is_refused_with_the_fix(
    testbed_image: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "no-iommu"
    try:
        host = up(testbed_image, directory, iommu=False)
        inventory = write_inventory(tmp_path / "lab", host, extra={"iommu_passthrough_mode": False})
        code, output = build(inventory, tmp_path / "runs")
    finally:
        down(directory)
    assert code == 1
    assert "the firmware has the IOMMU off" in output
    assert "Enable VT-d in the firmware setup" in output


def test_an_unreachable_host_exits_3(tmp_path: Path) -> None:
    unreachable = HostInfo("127.0.0.1", 9, "root", str(tmp_path / "key"),
                           str(tmp_path / "known_hosts"), "direct")  # fmt: skip
    (tmp_path / "key").write_text("")
    (tmp_path / "known_hosts").write_text("")
    inventory = write_inventory(tmp_path / "lab", unreachable)
    code, output = build(inventory, tmp_path / "runs")
    assert code == 3, output
    assert "unreachable testhost" in output


def test_an_unknown_limit_and_an_invalid_inventory_change_nothing(tmp_path: Path) -> None:
    host = HostInfo("127.0.0.1", 9, "root", "key", "known_hosts", "direct")
    inventory = write_inventory(tmp_path / "lab", host)
    code, output = build(inventory, tmp_path / "runs", "--limit", "nope")
    assert code == 2 and "--limit nope: not a physical host" in output
    broken = write_inventory(tmp_path / "broken", host, extra={"labsmith_memory": "lots"})
    code, output = build(broken, tmp_path / "runs")
    assert code == 1 and "nothing was changed" in output
    assert not (tmp_path / "runs").exists()
