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
    [
        ("fpu vmx sse", "pass"),
        ("fpu svm", "pass"),
        ("fpu sse hypervisor", "unknown"),
        ("fpu sse", "fail"),
    ],
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


# ---- GPU identity, AMD BAR, display, VM guests, PCIe link ------------------------------------

GUEST_CPUINFO = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme sse2 hypervisor\n"


def test_nvidia_smi_alone_gives_vendor_device_and_uuid_in_the_json(tmp_path: Path) -> None:
    report = judged(tmp_path, {"nvidia-smi.xml": "nvsmi_a100_sxm4_mig_enabled.xml"})
    [a100] = report.as_dict()["gpus"]
    assert a100["vendor_device"] == "10de:20b2"
    assert a100["uuid"] == "GPU-513536b6-7d19-9063-b049-1e69664bb298"


def test_rocm_smi_alone_gives_vendor_device_and_256m_vis_vram_means_rebar_off(
    tmp_path: Path,
) -> None:
    report = judged(tmp_path, {"rocm-smi.json": "rocmsmi_rx6700xt_rocm612_vis_vram_256M.json"})
    [rx6700xt] = report.gpus
    assert (rx6700xt.vendor_device, rx6700xt.uuid) == ("1002:73df", None)
    rebar = reason(rx6700xt, "gpu.rebar")
    assert rebar.status == "warn"
    assert "256M of its 12.0G VRAM" in rebar.message
    assert "enable Above 4G Decoding and Resizable BAR in the firmware" in rebar.message


def test_an_rdna2_consumer_card_needs_the_hsa_override_with_its_value(tmp_path: Path) -> None:
    report = judged(tmp_path, {"rocm-smi.json": "rocmsmi_rx6700xt_rocm612_vis_vram_256M.json"})
    [rx6700xt] = report.gpus
    target = reason(rx6700xt, "gpu.rocm_target")
    assert target.status == "warn"
    assert "is gfx1031, not a target ROCm builds for" in target.message
    assert "HSA_OVERRIDE_GFX_VERSION=10.3.0" in target.message


def test_an_empty_lspci_does_not_hide_the_gpus_nvidia_smi_sees(tmp_path: Path) -> None:
    report = judged(tmp_path, {"nvidia-smi.xml": "nvsmi_dual_rtx_a5000_v13.xml"}, {"lspci": ""})
    assert [g.address for g in report.gpus] == ["0000:81:00.0", "0000:c1:00.0"]


def test_mi100_with_all_vram_visible_has_rebar_on(tmp_path: Path) -> None:
    report = judged(tmp_path, {"rocm-smi.json": "rocmsmi_mi100_rocm602.json"})
    assert {reason(g, "gpu.rebar").status for g in report.gpus} == {"pass"}
    assert {g.vendor_device for g in report.gpus} == {"1002:738c"}


def test_a_connected_monitor_without_an_active_display_is_no_display_use(tmp_path: Path) -> None:
    # The A100 capture: display_mode Enabled (a monitor connected), display_active Disabled.
    report = judged(tmp_path, {"nvidia-smi.xml": "nvsmi_a100_sxm4_mig_enabled.xml"})
    [a100] = report.gpus
    display = reason(a100, "gpu.display")
    assert display.status == "pass" and "monitor connected" in display.message


def test_vm_guest_with_the_gpu_on_nvidia_passes_without_host_advice(tmp_path: Path) -> None:
    report = judged(
        tmp_path,
        {"nvidia-smi.xml": "nvsmi_dual_rtx_a5000_v13.xml"},
        {"cpuinfo": GUEST_CPUINFO},
    )
    for a5000 in report.gpus:
        driver = reason(a5000, "gpu.driver")
        assert driver.status == "pass"
        assert driver.message == (
            f"VM guest: GPU {a5000.address} passed in, driven by nvidia 590.44.01"
        )
        assert a5000.passthrough == "pass"
        assert {r.id for r in a5000.reasons}.isdisjoint({"gpu.isolation", "gpu.reset"})
        advice = " ".join(r.message for r in a5000.reasons)
        for host_advice in ("vfio", "IOMMU", "firmware", "Above 4G"):
            assert host_advice not in advice


def test_vm_guest_gpu_left_on_vfio_needs_the_vendor_driver_not_a_vfio_bind(
    tmp_path: Path,
) -> None:
    # Synthetic lspci -nnk line: a passed-in RX 6700 XT that the guest left on vfio-pci.
    lspci = (
        "06:10.0 VGA compatible controller [0300]: Advanced Micro Devices, Inc. [AMD/ATI] "
        "Navi 22 [1002:73df] (rev c1)\n\tKernel driver in use: vfio-pci\n"
    )
    report = judged(tmp_path, {}, {"lspci": lspci, "cpuinfo": GUEST_CPUINFO})
    [gpu_verdict] = report.gpus
    driver = reason(gpu_verdict, "gpu.driver")
    assert driver.status == "warn"
    assert "install the vendor driver" in driver.message and "vfio-pci.ids" not in driver.message


def test_rx470_in_a_chipset_x4_slot_warns_about_load_time_not_readiness(tmp_path: Path) -> None:
    report = judged(tmp_path, {"lspci": "lspci_vv_rx470_x4_downgraded_chipset_slot_no_pciids.txt"})
    [rx470] = report.gpus  # the HDMI audio function is no GPU
    link = reason(rx470, "gpu.link")
    assert link.status == "warn"
    # PCIe 3.0 lane: 8 GT/s x 128/130 / 8 = 0.985 GB/s; 40 GB over x4 vs x16
    assert "x4 of the x16 it supports" in link.message
    assert "≈10.2 s instead of ≈2.5 s" in link.message
    assert "every token" in link.message
    # A narrow link is about speed: the verdict is what the driver binding says.
    assert rx470.passthrough == reason(rx470, "gpu.driver").status == "warn"


def test_oculink_x4_gen4_costs_seconds_of_load_time(tmp_path: Path) -> None:
    # Synthetic: the shape of an OcuLink mini-PC's GPU (PCIe 4.0 x16 card on four lanes).
    lspci = (
        "01:00.0 VGA compatible controller [0300]: NVIDIA Corporation AD102 [10de:2684]\n"
        "\t\tLnkCap:\tPort #0, Speed 16GT/s, Width x16, ASPM L1, Exit Latency L1 <4us\n"
        "\t\tLnkSta:\tSpeed 16GT/s (ok), Width x4 (downgraded)\n"
        "\tKernel driver in use: nvidia\n"
    )
    report = judged(tmp_path, {}, {"lspci": lspci})
    link = reason(gpu(report, "0000:01:00.0"), "gpu.link")
    assert link.status == "warn"
    assert "≈7.9 GB/s against ≈31.5 GB/s" in link.message
    assert "loading 40 GB of weights takes ≈5.1 s instead of ≈1.3 s" in link.message


def test_x16_link_passes(tmp_path: Path) -> None:
    report = judged(tmp_path, {"lspci": "lspci_vvv_rtx6000ada_rebar_64G_nvidia_bound.txt"})
    assert reason(gpu(report, "0000:01:00.0"), "gpu.link").status == "pass"


def test_a_card_built_for_x8_at_x8_passes(tmp_path: Path) -> None:
    # Synthetic: an RTX 4060 (an x8 card) in an x16 slot trains to all eight of its lanes.
    lspci = (
        "01:00.0 VGA compatible controller [0300]: NVIDIA Corporation AD107 [10de:2882]\n"
        "\t\tLnkCap:\tPort #0, Speed 16GT/s, Width x8, ASPM L1, Exit Latency L1 <4us\n"
        "\t\tLnkSta:\tSpeed 16GT/s (ok), Width x8 (ok)\n"
        "\tKernel driver in use: nvidia\n"
    )
    report = judged(tmp_path, {}, {"lspci": lspci})
    link = reason(gpu(report, "0000:01:00.0"), "gpu.link")
    assert (link.status, link.message) == ("pass", "0000:01:00.0 runs at PCIe x8, all it supports")


def test_force_enabled_by_platform_opt_in_passes_iommu_active(tmp_path: Path) -> None:
    (tmp_path / "dmesg").write_text(
        "[    0.000000] DMAR: Host address width 39\n"
        "[    0.044000] DMAR: Intel-IOMMU force enabled due to platform opt in\n"
    )
    check = {c.id: c for c in judge(load_snapshot(tmp_path), "host").checks}["iommu.active"]
    assert check.status == "pass"


def test_amd_iommuv2_not_available_without_amd_vi_fails_iommu_active(tmp_path: Path) -> None:
    (tmp_path / "dmesg").write_text(
        "[    1.129270] AMD-Vi: AMD IOMMUv2 driver by Joerg Roedel <jroedel@suse.de>\n"
        "[    1.129291] AMD-Vi: AMD IOMMUv2 functionality not available on this system\n"
    )
    check = {c.id: c for c in judge(load_snapshot(tmp_path), "host").checks}["iommu.active"]
    assert check.status == "fail"


def test_a_gpu_the_listing_does_not_mark_resettable_warns(tmp_path: Path) -> None:
    listing = (FIXTURES / "host" / "iommu_sh_intel_b560_rx7600_usb_lines.txt").read_text()
    (tmp_path / "iommu_groups").write_text(listing)
    [marked] = judge(load_snapshot(tmp_path), "host").gpus
    assert [r.id for r in marked.reasons if r.id == "gpu.reset"] == []
    # The same card without iommu.sh's [R]: its sysfs has no reset file.
    (tmp_path / "iommu_groups").write_text(
        listing.replace("[1002:7480] [R] 03:00.0", "[1002:7480]     03:00.0")
    )
    [unmarked] = judge(load_snapshot(tmp_path), "host").gpus
    check = reason(unmarked, "gpu.reset")
    assert check.status == "warn" and "has no reset method" in check.message


def test_iommu_sh_listing_alone_reports_its_gpu(tmp_path: Path) -> None:
    (tmp_path / "iommu_groups").write_text(
        (FIXTURES / "host" / "iommu_sh_intel_b560_rx7600_usb_lines.txt").read_text()
    )
    report = judge(load_snapshot(tmp_path), "host")
    [gpu] = report.gpus
    assert (gpu.address, gpu.vendor_device, gpu.iommu_group) == ("0000:03:00.0", "1002:7480", 12)
