"""/proc/cmdline, kernel logs, dkms status and nvidia-smi failures: captures and shapes."""

from labsmith.facts.model import DkmsModule, IommuLogEvidence
from labsmith.facts.parse_kernel import (
    iommu_log_evidence,
    parse_cmdline,
    parse_dkms_status,
    parse_kernel_log,
    parse_nvidia_smi_failure,
)
from labsmith.facts.snapshot import strip_source_line
from tests.conftest import FIXTURES


def fixture(name: str) -> str:
    return strip_source_line((FIXTURES / "host" / name).read_text())


# ---- /proc/cmdline -------------------------------------------------------------------------


def test_proxmox_systemd_boot_cmdline() -> None:
    cmdline = parse_cmdline(fixture("proc_cmdline_proxmox_systemd_boot_zfs.txt"))
    assert cmdline.tokens[0] == r"initrd=\EFI\proxmox\5.4.73-1-pve\initrd.img-5.4.73-1-pve"
    assert cmdline.last("initrd") == r"\EFI\proxmox\5.4.73-1-pve\initrd.img-5.4.73-1-pve"
    assert cmdline.last("root") == "ZFS=rpool/ROOT/pve-1"  # split at the first "=" only
    assert cmdline.last("intel_iommu") == "on"
    assert cmdline.last("iommu") == "pt"
    assert cmdline.last("BOOT_IMAGE") is None
    assert len(cmdline.tokens) == 5  # the pasted "$ cat /proc/cmdline" is not an argument


def test_grub_cmdline_with_flags_and_module_parameters() -> None:
    text = (
        "BOOT_IMAGE=/boot/vmlinuz-6.8.12-4-pve root=/dev/mapper/pve-root ro quiet "
        "amd_iommu=on iommu=pt vfio-pci.ids=10de:2204,10de:1aef pcie_acs_override=downstream,multifunction\n"
    )
    cmdline = parse_cmdline(text)
    assert cmdline.last("BOOT_IMAGE") == "/boot/vmlinuz-6.8.12-4-pve"
    assert cmdline.values["quiet"] == ("",)
    assert cmdline.values["ro"] == ("",)
    assert cmdline.last("vfio-pci.ids") == "10de:2204,10de:1aef"
    assert cmdline.last("pcie_acs_override") == "downstream,multifunction"


def test_repeated_keys_keep_every_value_in_order() -> None:
    cmdline = parse_cmdline("console=tty0 console=ttyS0,115200 iommu=pt iommu=off\n")
    assert cmdline.values["console"] == ("tty0", "ttyS0,115200")
    assert cmdline.values["iommu"] == ("pt", "off")
    assert cmdline.last("iommu") == "off"
    assert cmdline.tokens == ("console=tty0", "console=ttyS0,115200", "iommu=pt", "iommu=off")


def test_quoted_values_keep_their_spaces() -> None:
    cmdline = parse_cmdline('quiet dyndbg="file vfio_pci.c +p" "acpi_osi=Windows 2020" splash')
    assert cmdline.tokens == (
        "quiet",
        'dyndbg="file vfio_pci.c +p"',
        '"acpi_osi=Windows 2020"',
        "splash",
    )
    assert cmdline.last("dyndbg") == "file vfio_pci.c +p"
    assert cmdline.last("acpi_osi") == "Windows 2020"


def test_empty_cmdline() -> None:
    cmdline = parse_cmdline("")
    assert (cmdline.tokens, cmdline.values, cmdline.last("iommu")) == ((), {}, None)


# ---- kernel log ----------------------------------------------------------------------------


def test_z170_dmesg_drops_timestamps_and_the_pasted_commands() -> None:
    log = parse_kernel_log(fixture("dmesg_intel_z170_iommu_enabled_pt.txt"))
    assert log.messages[0] == "DMAR: IOMMU enabled"
    assert "iommu: Default domain type: Passthrough (set via kernel command line)" in log.messages
    assert "vfio_pci: add [1002:67df[ffffffff:ffffffff]] class 0x000000/00000000" in log.messages
    assert not any(message.startswith(("$", "[")) for message in log.messages)
    assert len(log.messages) == 11


def test_epyc_dmesg_shows_amd_vi_interrupt_remapping() -> None:
    log = parse_kernel_log(fixture("dmesg_amd_epyc_aws_m6a_metal_amdvi_interrupt_remapping.txt"))
    assert "AMD-Vi: Interrupt remapping enabled" in log.messages
    assert log.messages[0] == "pci 0000:d4:00.2: AMD-Vi: Found IOMMU cap 0x40"
    assert len(log.messages) == 18


def test_acs_override_warning_line() -> None:
    log = parse_kernel_log(fixture("dmesg_acs_override_warning_line.txt"))
    assert log.messages[1] == (
        "Warning: PCIe ACS overrides enabled; This may allow non-IOMMU protected peer-to-peer DMA"
    )
    # A message that starts with a bracket keeps it: only timestamps are removed.
    assert log.messages[0].startswith("BIOS-e820: [mem 0x0000000100000000")


def test_nvrm_continuation_lines_without_timestamps_are_kept() -> None:
    log = parse_kernel_log(fixture("dmesg_nvrm_nouveau_conflict.txt"))
    assert log.messages[0] == "NVRM: No NVIDIA graphics adapter probed!"
    assert "NVRM: nouveau, rivafb, nvidiafb or rivatv" in log.messages
    assert "NVRM: This can occur when a driver such as:" in log.messages  # trailing space gone
    assert len(log.messages) == 11


def test_dmesg_human_timestamps() -> None:
    text = (
        "[Mon Nov 23 10:00:00 2026] DMAR: IOMMU enabled\n"
        "[Tue Dec  1 09:05:07 2026] AMD-Vi: Interrupt remapping enabled\n"
        "[Nov23 10:17] pci 0000:01:00.0: vgaarb: setting as boot VGA device\n"
        "[  +0.000010] [drm] Initialized amdgpu 3.57.0 20150101 for 0000:03:00.0 on minor 1\n"
        "kern  :info  : [    0.076879] DMAR: IOMMU enabled\n"
    )
    assert parse_kernel_log(text).messages == (
        "DMAR: IOMMU enabled",
        "AMD-Vi: Interrupt remapping enabled",
        "pci 0000:01:00.0: vgaarb: setting as boot VGA device",
        "[drm] Initialized amdgpu 3.57.0 20150101 for 0000:03:00.0 on minor 1",
        "DMAR: IOMMU enabled",
    )


def test_journalctl_k_short_drops_markers_dates_and_the_host() -> None:
    log = parse_kernel_log(fixture("synthetic_journalctl_k_short.txt"))
    assert log.messages == (
        "Linux version 6.8.12-4-pve (build@proxmox) #1 SMP PREEMPT_DYNAMIC PMX 6.8.12-4",
        "Command line: BOOT_IMAGE=/boot/vmlinuz-6.8.12-4-pve root=/dev/mapper/pve-root ro quiet "
        "intel_iommu=on iommu=pt",
        "DMAR: IOMMU enabled",
        "[drm] Initialized simpledrm 1.0.0 20200625 for simple-framebuffer.0 on minor 0",
        "vfio-pci 0000:01:00.0: vgaarb: VGA decodes changed: olddecodes=io+mem,decodes=io+mem:owns=none",
    )


def test_journalctl_iso_timestamps() -> None:
    text = (
        "2026-11-23T10:00:00+0000 pve1 kernel: DMAR: IOMMU enabled\n"
        "2026-11-23T10:00:00.123456+01:00 pve1 kernel: AMD-Vi: Interrupt remapping enabled\n"
        "2026-11-23T10:00:01Z gpu-box kernel: NVRM: loading NVIDIA UNIX x86_64 Kernel Module\n"
    )
    assert parse_kernel_log(text).messages == (
        "DMAR: IOMMU enabled",
        "AMD-Vi: Interrupt remapping enabled",
        "NVRM: loading NVIDIA UNIX x86_64 Kernel Module",
    )


def test_plain_messages_and_blank_lines() -> None:
    text = "DMAR: IOMMU enabled\n\n   \n$ dmesg -t | grep DMAR\nDMAR-IR: Enabled IRQ remapping in x2apic mode\n"
    assert parse_kernel_log(text).messages == (
        "DMAR: IOMMU enabled",
        "DMAR-IR: Enabled IRQ remapping in x2apic mode",
    )
    assert parse_kernel_log("").messages == ()


# ---- dkms status ---------------------------------------------------------------------------


def test_proxmox_dkms_headers_missing() -> None:
    status = parse_dkms_status(fixture("dkms_proxmox_headers_missing.txt"))
    assert status.missing_headers_for == ("6.8.12-4-pve",)
    [error] = status.errors
    assert error.startswith("Error! Your kernel headers for kernel 6.8.12-4-pve cannot be found")
    assert status.modules == ()


def test_dkms_status_in_both_formats() -> None:
    status = parse_dkms_status(fixture("synthetic_dkms_status_both_formats.txt"))
    assert status.modules == (
        DkmsModule("nvidia", "550.54.14", "6.8.12-4-pve", "x86_64", "installed"),
        DkmsModule("nvidia", "550.54.14", "6.5.13-6-pve", "x86_64", "installed"),
        DkmsModule("vendor-reset", "0.1.1", "5.15.0-91-generic", "x86_64", "built"),
        DkmsModule("zfs", "2.2.6", None, None, "added"),
    )
    assert status.missing_headers_for == ("6.8.12-5-pve",)  # reported twice, kept once
    assert len(status.errors) == 2


def test_old_dkms_added_module_and_headers_sentence_on_its_own_line() -> None:
    text = (
        "nvidia, 470.256.02: added\n"
        "Error! echo\n"
        "Your kernel headers for kernel 5.15.0-91-generic cannot be found at /lib/modules/5.15.0-91-generic/build\n"
    )
    status = parse_dkms_status(text)
    assert status.modules == (DkmsModule("nvidia", "470.256.02", None, None, "added"),)
    assert status.errors == ("Error! echo",)
    assert status.missing_headers_for == ("5.15.0-91-generic",)


def test_empty_dkms_status() -> None:
    status = parse_dkms_status("")
    assert (status.modules, status.errors, status.missing_headers_for) == ((), (), ())


# ---- a failed nvidia-smi -------------------------------------------------------------------


def test_nvidia_smi_failed_after_a_kernel_upgrade() -> None:
    failure = parse_nvidia_smi_failure(fixture("nvidia_smi_failed_after_kernel_upgrade.txt"))
    assert failure.kind == "driver_unreachable"
    assert failure.text.startswith("NVIDIA-SMI has failed because it couldn't communicate")


def test_nvidia_smi_failure_kinds() -> None:
    assert parse_nvidia_smi_failure("No devices were found\n").kind == "no_devices"
    assert parse_nvidia_smi_failure("bash: nvidia-smi: command not found\n").kind == "not_found"
    assert parse_nvidia_smi_failure("sh: 1: nvidia-smi: not found\n").kind == "not_found"
    failure = parse_nvidia_smi_failure(
        "Failed to initialize NVML: Driver/library version mismatch\n"
    )
    assert (failure.kind, failure.text) == (
        "version_mismatch",
        "Failed to initialize NVML: Driver/library version mismatch",
    )
    assert parse_nvidia_smi_failure("NVIDIA-SMI failed: unexpected error 42\n").kind == "other"
    assert parse_nvidia_smi_failure("").kind == "other"


def _evidence(*lines: str) -> IommuLogEvidence:
    return iommu_log_evidence(parse_kernel_log("\n".join(lines)))


def test_iommu_log_evidence_sorts_what_the_kernel_prints() -> None:
    on = _evidence(
        "[    0.044000] DMAR: Intel-IOMMU force enabled due to platform opt in",
        "[    0.810000] pci 0000:00:02.0: Adding to iommu group 0",
        "[    1.10] AMD-Vi: AMD IOMMUv2 driver by Joerg Roedel <jroedel@suse.de>",
    )
    assert len(on.active) == 2 and not on.disabled
    amd = _evidence(
        "[    0.6] pci 0000:00:00.2: AMD-Vi: Found IOMMU cap 0x40",
        "[    0.6] AMD-Vi: Extended features (0x206d73ef22254ade): PPR X2APIC NX GT IA",
        "[    0.6] AMD-Vi: Interrupt remapping enabled",
    )
    assert len(amd.active) == 3
    off = _evidence(
        "[    1.1] AMD-Vi: AMD IOMMUv2 driver by Joerg Roedel <jroedel@suse.de>",
        "[    1.1] AMD-Vi: AMD IOMMUv2 functionality not available on this system",
    )
    assert not off.active and len(off.disabled) == 1
    assert _evidence("[    0.0] DMAR: IOMMU disabled").disabled
    assert _evidence("[    0.0] AMD-Vi: AMD IOMMU disabled").disabled
    firmware = _evidence(
        "[    0.2] DMAR: Host address width 39",
        "[    0.2] DMAR-IR: Enabled IRQ remapping in x2apic mode",
        "[    0.6] iommu: Default domain type: Translated",
    )
    assert not firmware.active and len(firmware.hardware_only) == 2
    assert _evidence("[    0.0] Hypervisor detected: KVM").hypervisor == "Hypervisor detected: KVM"
