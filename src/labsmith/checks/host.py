"""Host-wide verdicts: CPU virtualization, boot mode, Secure Boot, IOMMU, drivers.

Each check judges only what the snapshot shows; a missing file, or one that holds its
command's error instead of output, gives ``unknown``. The IOMMU is judged from sysfs groups
first: kernels that enable it by default never print "IOMMU enabled", so the absence of that
line proves nothing. Inside a VM the IOMMU and VT-x are the host's: a guest sees only what
its hypervisor emulates, so their checks never fail there.
"""

import re
from collections.abc import Iterator

from labsmith.checks.verdict import Check
from labsmith.facts.parse_kernel import iommu_log_evidence
from labsmith.facts.snapshot import HostFacts

IRQ_REMAP_ON = re.compile(r"DMAR-IR: Enabled IRQ remapping|AMD-Vi: Interrupt remapping enabled")
IRQ_REMAP_OFF = re.compile(
    r"IRQ remapping was disabled|Not enabling interrupt remapping|No interrupt remapping support"
)
ACS_OVERRIDE = re.compile(r"PCIe ACS overrides enabled")
NVRM_NOT_PROBED = re.compile(r"NVRM: No NVIDIA (graphics adapter|GPU) (probed|found)")
NOUVEAU = re.compile(r"\bnouveau\b")
# Values the kernel accepts for amd_iommu= (Documentation/admin-guide/kernel-parameters.txt);
# "on" is not one of them: the AMD IOMMU is on whenever the firmware exposes it.
AMD_IOMMU_VALUES = {
    "off",
    "force_isolation",
    "fullflush",
    "pgtbl_v1",
    "pgtbl_v2",
    "irtcachedis",
    "nohugepages",
    "v2_pgsizes_only",
    "force_enable",
}


def host_checks(facts: HostFacts) -> Iterator[Check]:
    yield _cpu_virtualization(facts)
    yield _boot_mode(facts)
    yield _secure_boot(facts)
    yield _iommu_active(facts)
    yield _interrupt_remapping(facts)
    yield from _cmdline_iommu_parameters(facts)
    yield _acs_override(facts)
    yield _nvidia_driver(facts)
    yield _dkms_headers(facts)
    yield _nouveau(facts)


def _log(facts: HostFacts, pattern: re.Pattern[str]) -> str | None:
    """The first kernel log message that matches, or None."""
    if facts.kernel_log is None:
        return None
    return next((line for line in facts.kernel_log.messages if pattern.search(line)), None)


def _missing(facts: HostFacts, name: str, what: str) -> str:
    """Why a file's facts are absent: the error its command printed, or that it is not there."""
    error = facts.failures.get(name)
    return f"{what} failed ({error})" if error else f"no {what} output in the snapshot"


def _cpu_virtualization(facts: HostFacts) -> Check:
    if facts.cpu is None:
        return Check(
            "cpu.virtualization", "unknown", _missing(facts, "cpuinfo", "cat /proc/cpuinfo")
        )
    flags = facts.cpu.flags
    if "vmx" in flags or "svm" in flags:
        kind = "VT-x (vmx)" if "vmx" in flags else "AMD-V (svm)"
        return Check("cpu.virtualization", "pass", f"{kind} is on")
    if (guest := facts.vm_guest) is not None:
        return Check(
            "cpu.virtualization",
            "unknown",
            f"VM guest ({guest}): VT-x/AMD-V belong to the host; this guest is not offered "
            "them, which matters only if it must run VMs itself (then enable nested "
            "virtualization on the host and give the guest the host CPU type)",
        )
    vendor = facts.cpu.vendor or "the CPU"
    setting = "SVM Mode" if vendor == "AuthenticAMD" else "Intel Virtualization Technology (VT-x)"
    return Check(
        "cpu.virtualization",
        "fail",
        f"{vendor} shows neither vmx nor svm in /proc/cpuinfo; enable "
        f"{setting} in the firmware setup",
    )


def _boot_mode(facts: HostFacts) -> Check:
    if facts.uefi is None:
        error = facts.failures.get("efi")
        seen = f" (ls /sys/firmware/efi failed: {error})" if error else ""
        return Check(
            "boot.uefi",
            "unknown",
            f"the snapshot does not show whether /sys/firmware/efi exists{seen}",
        )
    if facts.uefi:
        return Check("boot.uefi", "pass", "booted in UEFI mode")
    return Check(
        "boot.uefi",
        "warn",
        "booted in legacy (CSM) mode: Resizable BAR needs UEFI, and some GPUs will not "
        "initialise in an OVMF VM; switch the firmware to UEFI-only boot when you reinstall",
    )


def _secure_boot(facts: HostFacts) -> Check:
    state = facts.secure_boot
    if state is None or state.enabled is None:
        if facts.uefi is False:
            return Check("boot.secure_boot", "pass", "legacy boot: Secure Boot does not apply")
        return Check("boot.secure_boot", "unknown", "mokutil --sb-state gave no answer")
    if state.enabled:
        return Check(
            "boot.secure_boot",
            "warn",
            "Secure Boot is on: DKMS-built modules (nvidia, vendor-reset) load only when "
            "signed with a key enrolled with mokutil --import; disable Secure Boot or "
            "enrol the DKMS signing key",
        )
    return Check("boot.secure_boot", "pass", "Secure Boot is off: unsigned DKMS modules load")


def _iommu_active(facts: HostFacts) -> Check:
    listing = facts.iommu
    if listing is not None and listing.groups:
        return Check(
            "iommu.active",
            "pass",
            f"{len(listing.groups)} IOMMU groups in /sys/kernel/iommu_groups",
        )
    if (guest := facts.vm_guest) is not None:
        return Check(
            "iommu.active",
            "unknown",
            f"VM guest ({guest}): the IOMMU belongs to the host; this guest has no IOMMU "
            "groups of its own, which it needs only to pass devices on to VMs of its own "
            "(a vIOMMU, e.g. Proxmox machine: q35,viommu=intel)",
        )
    if listing is not None:
        return Check(
            "iommu.active",
            "fail",
            "/sys/kernel/iommu_groups is empty: the IOMMU is off; enable VT-d (Intel) or "
            "IOMMU/AMD-Vi (AMD) in the firmware setup, and on Intel add intel_iommu=on "
            "to the kernel command line",
        )
    return _iommu_from_log(facts)


def _iommu_from_log(facts: HostFacts) -> Check:
    """The kernel log's word when there is no group listing: a message printed only with the
    IOMMU translating wins over one that says it is off (it cannot be both in one boot)."""
    if facts.kernel_log is None:
        seen = _missing(facts, "dmesg", "dmesg")
        return Check("iommu.active", "unknown", f"no IOMMU group listing, and {seen}")
    evidence = iommu_log_evidence(facts.kernel_log)
    if evidence.active:
        return Check(
            "iommu.active", "pass", f"the kernel log shows the IOMMU up: {evidence.active[0]!r}"
        )
    if evidence.disabled:
        return Check(
            "iommu.active",
            "fail",
            f"the kernel says {evidence.disabled[0]!r}: the IOMMU is off; enable VT-d "
            "(Intel) or IOMMU/AMD-Vi (AMD) in the firmware setup and remove intel_iommu=off "
            "or amd_iommu=off from the kernel command line",
        )
    if evidence.hardware_only:
        return Check(
            "iommu.active",
            "unknown",
            f"the firmware describes VT-d ({evidence.hardware_only[0]!r}) but the kernel log "
            "shows no IOMMU group; kernels that leave VT-d off by default need "
            "intel_iommu=on on the command line",
        )
    return Check(
        "iommu.active",
        "unknown",
        "no IOMMU group listing in the snapshot, and the kernel log neither shows nor "
        "denies an IOMMU (kernels that enable it by default print no 'IOMMU enabled')",
    )


def _interrupt_remapping(facts: HostFacts) -> Check:
    if line := _log(facts, IRQ_REMAP_ON):
        return Check("iommu.interrupt_remapping", "pass", f"the kernel log says {line!r}")
    if (line := _log(facts, IRQ_REMAP_OFF)) and (guest := facts.vm_guest):
        return Check(
            "iommu.interrupt_remapping",
            "unknown",
            f"VM guest ({guest}): interrupt remapping belongs to the host's IOMMU; the "
            f"guest kernel says {line!r}",
        )
    if line:
        return Check(
            "iommu.interrupt_remapping",
            "warn",
            f"the kernel log says {line!r}: VFIO refuses devices unless "
            "vfio_iommu_type1.allow_unsafe_interrupts=1 (less isolation); enable "
            "x2APIC/interrupt remapping in the firmware if it offers it",
        )
    if facts.kernel_log is None:
        return Check("iommu.interrupt_remapping", "unknown", _missing(facts, "dmesg", "dmesg"))
    return Check(
        "iommu.interrupt_remapping",
        "unknown",
        "the kernel log does not mention interrupt remapping",
    )


def _cmdline_iommu_parameters(facts: HostFacts) -> Iterator[Check]:
    cmdline = facts.cmdline
    if cmdline is None:
        return
    amd = cmdline.last("amd_iommu")
    if amd is not None and amd not in AMD_IOMMU_VALUES:
        yield Check(
            "cmdline.iommu",
            "warn",
            f"amd_iommu={amd} is not a value the kernel knows (it is ignored); the AMD "
            "IOMMU is on whenever the firmware enables it: remove amd_iommu=" + amd,
        )
    for key in ("intel_iommu", "amd_iommu"):
        if cmdline.last(key) != "off":
            continue
        if (guest := facts.vm_guest) is not None:
            yield Check(
                "cmdline.iommu",
                "warn",
                f"VM guest ({guest}): {key}=off turns off only a vIOMMU the host may give "
                "this guest; passthrough into the guest is set up on the host",
            )
        else:
            yield Check(
                "cmdline.iommu",
                "fail",
                f"{key}=off on the kernel command line turns the IOMMU off; remove it",
            )


def acs_override_evidence(facts: HostFacts) -> str | None:
    """What shows the ACS override patch splitting IOMMU groups: its kernel parameter or the
    line it logs; None when neither is there."""
    setting = facts.cmdline.last("pcie_acs_override") if facts.cmdline else None
    if setting is not None:
        return f"pcie_acs_override={setting}"
    line = _log(facts, ACS_OVERRIDE)
    return repr(line) if line is not None else None


def _acs_override(facts: HostFacts) -> Check:
    seen = acs_override_evidence(facts)
    if seen is not None:
        return Check(
            "iommu.acs_override",
            "warn",
            f"ACS override is in use ({seen}): the IOMMU groups are split by a kernel "
            "patch, not by the hardware, so devices in 'separate' groups may still reach "
            "each other's memory; prefer a slot wired to the CPU",
        )
    if facts.cmdline is None and facts.kernel_log is None:
        return Check(
            "iommu.acs_override", "unknown", "no kernel command line or log in the snapshot"
        )
    return Check("iommu.acs_override", "pass", "no ACS override: IOMMU groups are the hardware's")


def _nvidia_driver(facts: HostFacts) -> Check:
    failure = facts.nvidia_smi_failure
    if failure is not None and failure.kind == "driver_unreachable":
        kernel = (
            facts.uname.kernel_release
            if facts.uname and facts.uname.kernel_release
            else "the running kernel"
        )
        return Check(
            "driver.nvidia",
            "fail",
            "nvidia-smi cannot talk to the NVIDIA driver: its module is not loaded for "
            f"{kernel} (usually a kernel update without a rebuilt module); run "
            "`dkms autoinstall` (or reinstall the driver package) and reboot",
        )
    if failure is not None and failure.kind == "version_mismatch":
        return Check(
            "driver.nvidia",
            "fail",
            "nvidia-smi reports a driver/library version mismatch: the driver package was "
            "upgraded but the old kernel module is still loaded; reboot (or unload and "
            "reload the nvidia modules)",
        )
    if failure is not None and failure.kind == "no_devices":
        return Check(
            "driver.nvidia",
            "warn",
            "nvidia-smi runs but finds no GPU: every NVIDIA GPU may be bound to vfio-pci "
            "(expected on a passthrough host)",
        )
    if facts.nvidia_smi is not None:
        report = facts.nvidia_smi
        return Check(
            "driver.nvidia",
            "pass",
            f"NVIDIA driver {report.driver_version or '?'} sees {len(report.gpus)} GPU(s)",
        )
    return Check("driver.nvidia", "unknown", "no nvidia-smi output in the snapshot")


def _dkms_headers(facts: HostFacts) -> Check:
    dkms = facts.dkms
    if dkms is None:
        return Check(
            "driver.dkms_headers", "unknown", _missing(facts, "dkms-status", "dkms status")
        )
    if dkms.missing_headers_for:
        kernels = ", ".join(dkms.missing_headers_for)
        proxmox = any(kernel.endswith("-pve") for kernel in dkms.missing_headers_for)
        package = (
            "proxmox-default-headers (and proxmox-headers-$(uname -r))"
            if proxmox
            else "linux-headers-$(uname -r)"
        )
        return Check(
            "driver.dkms_headers",
            "fail",
            f"DKMS cannot build modules for {kernels}: the kernel headers are missing; "
            f"install {package}, then run `dkms autoinstall`",
        )
    return Check(
        "driver.dkms_headers", "pass", f"{len(dkms.modules)} DKMS module(s), headers present"
    )


def _nouveau(facts: HostFacts) -> Check:
    bound = [d.address for d in facts.pci_devices or () if d.driver == "nouveau"]
    not_probed = _log(facts, NVRM_NOT_PROBED)
    if bound or not_probed:
        seen = (
            f"nouveau drives {', '.join(bound)}" if bound else f"the kernel log says {not_probed!r}"
        )
        return Check(
            "driver.nouveau",
            "fail",
            f"{seen}: nouveau (or nvidiafb) holds the GPU so neither nvidia nor vfio-pci "
            "can; blacklist it (`blacklist nouveau` and `options nouveau modeset=0` in "
            "/etc/modprobe.d/blacklist-nouveau.conf), run `update-initramfs -u` and reboot",
        )
    if facts.pci_devices is None:
        # A quiet kernel log is no proof: only lspci -k shows which driver holds each GPU.
        return Check("driver.nouveau", "unknown", _missing(facts, "lspci", "lspci -k"))
    return Check("driver.nouveau", "pass", "nouveau holds no GPU")
