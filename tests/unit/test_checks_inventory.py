"""A snapshot judged against the host's inventory entry: GPUs, disks and NICs where declared."""

import json
from pathlib import Path

from labsmith.checks.lab import check_lab
from labsmith.checks.probe_report import ProbeReport, judge
from labsmith.facts.snapshot import load_snapshot
from tests.conftest import INVENTORIES

# pve1 of the example lab, as its own lspci -nnk, lsblk and ip link would show it.
LSPCI = """\
0000:01:00.0 VGA compatible controller [0300]: NVIDIA Corporation GB202 [GeForce RTX 5090] [10de:2b85] (rev a1)
\tSubsystem: ASUSTeK Computer Inc. Device [1043:89e5]
\tKernel driver in use: vfio-pci
\tKernel modules: nvidiafb, nouveau, nvidia_drm, nvidia
0000:02:00.0 VGA compatible controller [0300]: NVIDIA Corporation GA106 [GeForce RTX 3060 Lite Hash Rate] [10de:2504] (rev a1)
\tKernel driver in use: nvidia
\tKernel modules: nvidiafb, nouveau, nvidia_drm, nvidia
"""
IOMMU = """\
/sys/kernel/iommu_groups/13/devices/0000:01:00.0
/sys/kernel/iommu_groups/13/devices/0000:01:00.1
/sys/kernel/iommu_groups/14/devices/0000:02:00.0
/sys/kernel/iommu_groups/14/devices/0000:02:00.1
"""


def lsblk(*disks: tuple[str, str, str]) -> str:
    devices: list[dict[str, object]] = [
        {
            "name": name,
            "path": f"/dev/{name}",
            "type": "disk",
            "model": model,
            "serial": serial,
            "tran": "nvme",
            "size": 2000398934016,
            "wwn": None,
            "children": [],
        }
        for name, model, serial in disks
    ]
    return json.dumps({"blockdevices": devices})


def ip_link(*links: tuple[str, str]) -> str:
    return json.dumps([{"ifname": name, "address": mac, "operstate": "UP"} for name, mac in links])


EXAMPLE_DISKS = (
    ("sda", "Samsung SSD 870 EVO 500GB", "S6PXNM0T412873K"),
    ("nvme0n1", "Samsung SSD 990 PRO 2TB", "S7DNNJ0X118204M"),
    ("nvme1n1", "Samsung SSD 990 PRO 2TB", "S7DNNJ0X118391T"),
    ("nvme2n1", "WD_BLACK SN850X 4000GB", "24103D800417"),
    ("nvme3n1", "WD_BLACK SN850X 4000GB", "24103D800582"),
)


def judge_pve1(tmp_path: Path, files: dict[str, str]) -> ProbeReport:
    snapshot = tmp_path / "pve1"
    snapshot.mkdir()
    for name, text in files.items():
        (snapshot / name).write_text(text)
    host = check_lab(INVENTORIES / "example").lab.hosts["pve1"]
    return judge(load_snapshot(snapshot), "pve1", host)


def statuses(report: ProbeReport, check_id: str) -> list[str]:
    return [c.status for c in report.checks if c.id == check_id]


def test_matching_hardware_passes_every_inventory_check(tmp_path: Path) -> None:
    report = judge_pve1(
        tmp_path,
        {
            "lspci": LSPCI,
            "iommu_groups": IOMMU,
            "lsblk.json": lsblk(*EXAMPLE_DISKS),
            "ip-link.json": ip_link(("lo", "00:00:00:00:00:00"), ("enp7s0", "bc:24:11:aa:bb:cc")),
        },
    )
    assert statuses(report, "inventory.gpu") == ["pass", "pass"]
    assert statuses(report, "inventory.disk") == ["pass"] * 5
    assert statuses(report, "inventory.nic") == ["pass"]
    rtx5090, rtx3060 = report.gpus
    assert (rtx5090.passthrough, rtx5090.iommu_group) == ("pass", 13)
    assert rtx3060.passthrough == "pass"  # host mode on nvidia: ready, isolation not needed


def test_gpu_at_another_address_or_of_another_model_fails_with_both_values(tmp_path: Path) -> None:
    swapped = LSPCI.replace("[10de:2504]", "[10de:2204]").replace("0000:01:00.0", "0000:03:00.0")
    report = judge_pve1(tmp_path, {"lspci": swapped})
    messages = [c.message for c in report.checks if c.id == "inventory.gpu"]
    assert statuses(report, "inventory.gpu") == ["fail", "fail"]
    assert (
        "rtx5090 at 0000:01:00.0 (10de:2b85), but lspci shows no device at 0000:01:00.0"
        in messages[0]
    )
    assert "rtx3060 at 0000:02:00.0 (10de:2504), but 0000:02:00.0 is 10de:2204" in messages[1]


def test_host_mode_gpu_on_vfio_fails(tmp_path: Path) -> None:
    report = judge_pve1(
        tmp_path,
        {
            "lspci": LSPCI.replace(
                "Kernel driver in use: nvidia\n", "Kernel driver in use: vfio-pci\n"
            )
        },
    )
    rtx3060 = report.gpus[1]
    assert rtx3060.passthrough == "fail"
    assert "keeps it on the host" in next(
        r.message for r in rtx3060.reasons if r.id == "gpu.driver"
    )


def test_missing_disk_and_wrong_serial_fail(tmp_path: Path) -> None:
    disks = list(EXAMPLE_DISKS)
    disks[1] = ("nvme0n1", "Samsung SSD 990 PRO 2TB", "S7DNNJ0X999999Z")
    del disks[4]
    report = judge_pve1(tmp_path, {"lsblk.json": lsblk(*disks)})
    failed = [c.message for c in report.checks if c.id == "inventory.disk" and c.status == "fail"]
    assert len(failed) == 2
    assert any(
        "nvme-Samsung_SSD_990_PRO_2TB_S7DNNJ0X118204M, but no disk has that id" in m for m in failed
    )
    assert any(
        "nvme-WD_BLACK_SN850X_4000GB_24103D800582, but no disk has that id" in m for m in failed
    )


def test_missing_nic_names_the_ones_present(tmp_path: Path) -> None:
    report = judge_pve1(
        tmp_path,
        {"ip-link.json": ip_link(("lo", "00:00:00:00:00:00"), ("eno1", "bc:24:11:aa:bb:cc"))},
    )
    [nic] = [c for c in report.checks if c.id == "inventory.nic"]
    assert nic.status == "fail" and "declared NIC enp7s0" in nic.message and "eno1" in nic.message


def test_without_the_files_inventory_checks_are_unknown(tmp_path: Path) -> None:
    report = judge_pve1(tmp_path, {})
    for check_id in ("inventory.gpu", "inventory.disk", "inventory.nic"):
        assert statuses(report, check_id) == ["unknown"]
