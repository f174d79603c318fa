"""Verdicts over real captures: every fixture judged as tests/fixtures/host/README.md says."""

import shutil
from pathlib import Path

import pytest

from labsmith.checks.probe_report import ProbeReport, judge
from labsmith.checks.verdict import Check, GpuVerdict
from labsmith.facts.snapshot import load_snapshot
from tests.conftest import FIXTURES

HOST_FIXTURES = FIXTURES / "host"


def judged(
    tmp_path: Path, files: dict[str, str], extra: dict[str, str] | None = None
) -> ProbeReport:
    """A snapshot made of fixture files (snapshot name -> fixture name) and literal files."""
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    for name, fixture in files.items():
        shutil.copy(HOST_FIXTURES / fixture, snapshot / name)
    for name, text in (extra or {}).items():
        (snapshot / name).write_text(text)
    return judge(load_snapshot(snapshot), "host")


def check(report: ProbeReport, check_id: str) -> Check:
    [found] = [c for c in report.checks if c.id == check_id]
    return found


def gpu(report: ProbeReport, address: str) -> GpuVerdict:
    [found] = [g for g in report.gpus if g.address == address]
    return found


def reason(verdict: GpuVerdict, reason_id: str) -> Check:
    [found] = [r for r in verdict.reasons if r.id == reason_id]
    return found


def test_intel_z170_gtx960_is_isolated_with_its_root_port(tmp_path: Path) -> None:
    report = judged(tmp_path, {"iommu_groups": "iommu_groups_intel_z170_gtx960_isolated.txt"})
    assert check(report, "iommu.active").status == "pass"
    gtx960 = gpu(report, "0000:01:00.0")
    assert gtx960.iommu_group == 1
    assert reason(gtx960, "gpu.isolation").status == "pass"
    assert reason(gtx960, "gpu.driver").status == "unknown"  # a listing shows no driver


def test_b450m_hd7450_shares_the_chipset_group_gtx960_is_isolated(tmp_path: Path) -> None:
    report = judged(
        tmp_path, {"iommu_groups": "iommu_groups_amd_b450m_max_dualgpu_hd7450_shared_chipset.txt"}
    )
    gtx960 = gpu(report, "0000:26:00.0")
    assert (gtx960.iommu_group, reason(gtx960, "gpu.isolation").status) == (12, "pass")
    hd7450 = gpu(report, "0000:25:00.0")
    isolation = reason(hd7450, "gpu.isolation")
    assert (hd7450.iommu_group, isolation.status, hd7450.passthrough) == (11, "fail", "fail")
    # the chipset's USB and SATA controllers are named, its PCI bridges are not
    assert "0000:03:00.0 (USB controller), 0000:03:00.1 (SATA controller)" in isolation.message
    assert "0000:03:00.2" not in isolation.message


def test_b550_acs_override_makes_isolation_synthetic(tmp_path: Path) -> None:
    report = judged(
        tmp_path,
        {"iommu_groups": "iommu_groups_amd_b550_5700g_with_acs_override_multifunction.txt"},
    )
    igpu = gpu(report, "0000:05:00.0")
    assert reason(igpu, "gpu.isolation").status == "warn"
    assert "synthetic" in reason(igpu, "gpu.isolation").message


def test_990fx_without_groups_means_iommu_off(tmp_path: Path) -> None:
    report = judged(tmp_path, {"iommu_groups": "iommu_groups_amd_990fx_no_groups_iommu_off.txt"})
    active = check(report, "iommu.active")
    assert active.status == "fail"
    assert "enable VT-d (Intel) or IOMMU/AMD-Vi (AMD) in the firmware" in active.message


def test_dmesg_iommu_enabled_on_z170(tmp_path: Path) -> None:
    report = judged(tmp_path, {"dmesg": "dmesg_intel_z170_iommu_enabled_pt.txt"})
    assert check(report, "iommu.active").status == "pass"


def test_dmesg_amd_vi_with_interrupt_remapping(tmp_path: Path) -> None:
    report = judged(
        tmp_path, {"dmesg": "dmesg_amd_epyc_aws_m6a_metal_amdvi_interrupt_remapping.txt"}
    )
    assert check(report, "iommu.active").status == "pass"
    assert check(report, "iommu.interrupt_remapping").status == "pass"


def test_dmesg_acs_override_line_warns(tmp_path: Path) -> None:
    report = judged(tmp_path, {"dmesg": "dmesg_acs_override_warning_line.txt"})
    assert check(report, "iommu.acs_override").status == "warn"


def test_systemd_boot_cmdline_with_valid_iommu_parameters(tmp_path: Path) -> None:
    report = judged(tmp_path, {"cmdline": "proc_cmdline_proxmox_systemd_boot_zfs.txt"})
    assert check(report, "iommu.acs_override").status == "pass"
    assert [c for c in report.checks if c.id == "cmdline.iommu"] == []


def test_amd_iommu_on_is_not_a_kernel_value(tmp_path: Path) -> None:
    report = judged(
        tmp_path, {}, {"cmdline": "BOOT_IMAGE=/vmlinuz root=/dev/sda1 amd_iommu=on iommu=pt\n"}
    )
    [warning] = [c for c in report.checks if c.id == "cmdline.iommu"]
    assert warning.status == "warn" and "remove amd_iommu=on" in warning.message


def test_gtx1650m_on_nvidia_is_not_ready_for_passthrough(tmp_path: Path) -> None:
    report = judged(tmp_path, {"lspci": "lspci_nnk_gtx1650m_nvidia_bound_hp_laptop.txt"})
    laptop = gpu(report, "0000:01:00.0")
    assert (laptop.vendor_device, laptop.driver) == ("10de:1f91", "nvidia")
    assert reason(laptop, "gpu.driver").status == "warn"
    assert laptop.passthrough == "warn"


def test_rx580_on_vfio_is_ready_but_needs_vendor_reset(tmp_path: Path) -> None:
    report = judged(tmp_path, {"lspci": "lspci_nkk_amd_rx580_vfio_bound_intel_host.txt"})
    rx580 = gpu(report, "0000:01:00.0")
    assert (rx580.vendor_device, rx580.driver) == ("1002:67df", "vfio-pci")
    assert reason(rx580, "gpu.driver").status == "pass"
    assert reason(rx580, "gpu.reset").status == "warn"


def test_rtx6000ada_has_rebar_64g(tmp_path: Path) -> None:
    report = judged(tmp_path, {"lspci": "lspci_vvv_rtx6000ada_rebar_64G_nvidia_bound.txt"})
    ada = gpu(report, "0000:01:00.0")
    rebar = reason(ada, "gpu.rebar")
    assert rebar.status == "pass" and "64G" in rebar.message


def test_a100_with_mig_enabled(tmp_path: Path) -> None:
    report = judged(tmp_path, {"nvidia-smi.xml": "nvsmi_a100_sxm4_mig_enabled.xml"})
    [a100] = report.gpus
    assert reason(a100, "gpu.mig").status == "warn"
    assert a100.driver == "nvidia"


def test_dual_a5000_with_256m_bar1_has_rebar_off(tmp_path: Path) -> None:
    report = judged(tmp_path, {"nvidia-smi.xml": "nvsmi_dual_rtx_a5000_v13.xml"})
    assert len(report.gpus) == 2
    for a5000 in report.gpus:
        rebar = reason(a5000, "gpu.rebar")
        assert rebar.status == "warn" and "256M" in rebar.message
    assert check(report, "driver.nvidia").status == "pass"


def test_mi100_rocm_lists_four_gpus(tmp_path: Path) -> None:
    report = judged(tmp_path, {"rocm-smi.json": "rocmsmi_mi100_rocm602.json"})
    assert len(report.gpus) == 4
    assert {g.driver for g in report.gpus} == {"amdgpu"}


def test_nouveau_holding_the_gpu_fails_with_the_blacklist_fix(tmp_path: Path) -> None:
    report = judged(tmp_path, {"dmesg": "dmesg_nvrm_nouveau_conflict.txt"})
    nouveau = check(report, "driver.nouveau")
    assert nouveau.status == "fail" and "blacklist nouveau" in nouveau.message
    assert report.failed


def test_nvidia_smi_failure_after_kernel_upgrade(tmp_path: Path) -> None:
    report = judged(tmp_path, {"nvidia-smi.err": "nvidia_smi_failed_after_kernel_upgrade.txt"})
    driver = check(report, "driver.nvidia")
    assert driver.status == "fail" and "dkms autoinstall" in driver.message


def test_proxmox_headers_missing_for_dkms(tmp_path: Path) -> None:
    report = judged(tmp_path, {"dkms-status": "dkms_proxmox_headers_missing.txt"})
    headers = check(report, "driver.dkms_headers")
    assert headers.status == "fail" and "proxmox-default-headers" in headers.message
    assert "6.8.12-4-pve" in headers.message


def test_empty_snapshot_is_all_unknown_never_a_guess(tmp_path: Path) -> None:
    report = judged(tmp_path, {})
    assert {c.status for c in report.checks} == {"unknown"}
    assert report.gpus == ()
    assert not report.failed


@pytest.mark.parametrize(
    ("flags", "status"),
    [("fpu vmx sse", "pass"), ("fpu svm", "pass"), ("fpu sse hypervisor", "fail")],
)
def test_cpu_virtualization_from_flags(tmp_path: Path, flags: str, status: str) -> None:
    cpuinfo = (
        f"processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU\nflags\t\t: {flags}\n"
    )
    report = judged(tmp_path, {}, {"cpuinfo": cpuinfo})
    assert check(report, "cpu.virtualization").status == status


def test_nvidia_version_mismatch_after_a_driver_upgrade_says_reboot(tmp_path: Path) -> None:
    text = "Failed to initialize NVML: Driver/library version mismatch\nNVML library version: 550.127\n"
    report = judged(tmp_path, {}, {"nvidia-smi.err": text})
    driver = check(report, "driver.nvidia")
    assert driver.status == "fail" and "reboot" in driver.message


def test_acs_override_spelled_with_a_dash_or_underscore(tmp_path: Path) -> None:
    report = judged(
        tmp_path, {}, {"cmdline": "root=/dev/sda1 pcie-acs-override=downstream,multifunction\n"}
    )
    assert check(report, "iommu.acs_override").status == "warn"


def test_secure_boot_on_warns_about_unsigned_dkms_modules(tmp_path: Path) -> None:
    report = judged(tmp_path, {}, {"sb-state": "SecureBoot enabled\n", "efi": "efivars\n"})
    assert check(report, "boot.uefi").status == "pass"
    secure_boot = check(report, "boot.secure_boot")
    assert secure_boot.status == "warn" and "mokutil --import" in secure_boot.message


def test_legacy_boot_from_the_manifest_makes_secure_boot_moot(tmp_path: Path) -> None:
    manifest = '{"commands": {"efi": {"command": "ls /sys/firmware/efi", "exit_status": 2}}}'
    report = judged(
        tmp_path,
        {},
        {"manifest.json": manifest, "sb-state": "EFI variables are not supported on this system\n"},
    )
    assert check(report, "boot.uefi").status == "warn"
    assert check(report, "boot.secure_boot").status == "pass"


def test_secure_boot_off_passes(tmp_path: Path) -> None:
    report = judged(tmp_path, {}, {"sb-state": "SecureBoot disabled\n"})
    assert check(report, "boot.secure_boot").status == "pass"


def test_interrupt_remapping_off_warns(tmp_path: Path) -> None:
    log = "[    0.100000] DMAR: IOMMU enabled\n[    0.200000] DMAR-IR: IRQ remapping was disabled\n"
    report = judged(tmp_path, {}, {"dmesg": log})
    assert check(report, "iommu.active").status == "pass"
    remapping = check(report, "iommu.interrupt_remapping")
    assert remapping.status == "warn" and "allow_unsafe_interrupts" in remapping.message


def test_gpu_driving_a_display_warns(tmp_path: Path) -> None:
    xml = (HOST_FIXTURES / "nvsmi_dual_rtx_a5000_v13.xml").read_text()
    xml = xml.replace(
        "<display_active>Disabled</display_active>", "<display_active>Enabled</display_active>", 1
    )
    report = judged(tmp_path, {}, {"nvidia-smi.xml": xml})
    first, second = report.gpus
    assert reason(first, "gpu.display").status == "warn"
    assert [r for r in second.reasons if r.id == "gpu.display"] == []


def test_two_gpus_in_one_group_must_go_to_one_vm(tmp_path: Path) -> None:
    listing = (
        "IOMMU Group 1 00:01.0 PCI bridge [0604]: Intel Corporation Device [8086:1901]\n"
        "IOMMU Group 1 01:00.0 VGA compatible controller [0300]: NVIDIA Corporation GA102 [10de:2204]\n"
        "IOMMU Group 1 02:00.0 VGA compatible controller [0300]: NVIDIA Corporation GA106 [10de:2504]\n"
    )
    report = judged(tmp_path, {}, {"iommu_groups": listing})
    first, second = report.gpus
    shared = reason(first, "gpu.shared_group")
    assert shared.status == "warn" and "0000:02:00.0" in shared.message
    assert reason(first, "gpu.isolation").status == "pass"  # only GPUs and a bridge share it
    assert reason(second, "gpu.shared_group").status == "warn"
