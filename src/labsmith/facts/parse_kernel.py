"""Parse what the kernel and its module tooling say: /proc/cmdline, the kernel log, DKMS
status and a failed ``nvidia-smi``.

All four are free text, so nothing here raises: a line that matches no known shape is kept
as a message (kernel log) or skipped (DKMS, cmdline prompts).
"""

import re

from labsmith.facts.model import (
    Cmdline,
    DkmsModule,
    DkmsStatus,
    IommuLogEvidence,
    KernelLog,
    NvidiaSmiFailure,
)

# Captures pasted from a terminal keep the command that made them: "$ cat /proc/cmdline".
_SHELL_PROMPT = "$ "

# ---- /proc/cmdline -------------------------------------------------------------------------

# One kernel argument: "quiet", "root=ZFS=rpool/ROOT/pve-1", 'foo="a b"' (quotes may hold
# spaces), "initrd=\EFI\proxmox\5.4.73-1-pve\initrd.img-5.4.73-1-pve".
_CMDLINE_TOKEN = re.compile(r'(?:[^\s"]+|"[^"]*"?)+')


def parse_cmdline(text: str) -> Cmdline:
    """Every argument in order; ``values`` keeps each key's values in the order given."""
    arguments = " ".join(line for line in text.splitlines() if not line.startswith(_SHELL_PROMPT))
    tokens = tuple(_CMDLINE_TOKEN.findall(arguments))
    values: dict[str, list[str]] = {}
    for token in tokens:
        key, value = _split_argument(token)
        values.setdefault(key, []).append(value)
    return Cmdline(tokens=tokens, values={key: tuple(found) for key, found in values.items()})


def _split_argument(token: str) -> tuple[str, str]:
    """Key and value the way the kernel's next_arg() reads them: the value loses one pair
    of surrounding quotes, and a bare flag has the value ""."""
    key, _, value = token.removeprefix('"').partition("=")
    if value.startswith('"'):
        value = value[1:]
    if value.endswith('"'):
        value = value[:-1]
    return key, value


# ---- dmesg / journalctl -k -----------------------------------------------------------------

# Each prefix below is removed from a log line; what remains is the kernel's message.
_LOG_PREFIXES = (
    # "[    0.076879] DMAR: IOMMU enabled" (dmesg), "[  +0.000010] ..." (dmesg -H deltas),
    # "kern  :info  : [    0.076879] ..." (dmesg -x)
    re.compile(r"^(?:\w+\s*:\s*\w+\s*: )?\[\s*<?\+?\s*\d+\.\d+>?\] ?"),
    # "[Mon Nov 23 10:00:00 2026] DMAR: IOMMU enabled" (dmesg -T)
    re.compile(r"^\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]?\d \d{2}:\d{2}:\d{2} \d{4}\] ?"),
    # "[Nov23 10:00] DMAR: IOMMU enabled" (dmesg -H, first line of a minute)
    re.compile(r"^\[[A-Z][a-z]{2}\d{1,2} \d{2}:\d{2}\] ?"),
    # "Nov 23 10:00:00 pve1 kernel: DMAR: IOMMU enabled" (journalctl -k, short)
    re.compile(r"^[A-Z][a-z]{2} [ \d]?\d \d{2}:\d{2}:\d{2}(?:\.\d+)? \S+ [^\s:]+: ?"),
    # "2026-11-23T10:00:00+0000 pve1 kernel: DMAR: IOMMU enabled" (journalctl -o short-iso)
    re.compile(
        r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})? \S+ [^\s:]+: ?"
    ),
)
# "-- Boot 0c7a... --", "-- No entries --": journalctl's own markers, not kernel messages
_JOURNAL_MARKER = re.compile(r"^-- .* --$")


def parse_kernel_log(text: str) -> KernelLog:
    """The messages of ``dmesg`` (plain, ``-T``, ``-H``, ``-x``), ``journalctl -k`` or an
    already stripped log, in order."""
    messages: list[str] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith(_SHELL_PROMPT) or _JOURNAL_MARKER.match(line):
            continue
        messages.append(_strip_log_prefix(line).rstrip())
    return KernelLog(messages=tuple(messages))


def _strip_log_prefix(line: str) -> str:
    for prefix in _LOG_PREFIXES:
        found = prefix.match(line)
        if found is not None:
            return line[found.end() :]
    return line


# ---- what the kernel log says about the IOMMU -----------------------------------------------

# Messages the kernel prints only once an IOMMU translates DMA for devices.
_IOMMU_ACTIVE = re.compile(
    # drivers/iommu/iommu.c, iommu_group_add_device(): "pci 0000:00:00.0: Adding to iommu
    # group 0"; before 5.x "iommu: Adding device 0000:00:00.0 to group 0"
    r"Adding to iommu group \d+|iommu: Adding device \S+ to group \d+"
    # drivers/iommu/intel/iommu.c, platform_optin_force_iommu(): firmware asked for DMA
    # protection (Thunderbolt), so the IOMMU is on whatever the command line says
    r"|Intel-IOMMU force enabled due to platform opt in"
    # drivers/iommu/intel/iommu.c, intel_iommu_init(): the last line of a successful init
    r"|Intel\(R\) Virtualization Technology for Directed I/O"
    # drivers/iommu/intel/iommu.c, intel_iommu_setup(): intel_iommu=on was read
    r"|DMAR: IOMMU enabled"
    # drivers/iommu/amd/init.c: iommu_init_pci() "Found IOMMU cap 0x40" (older kernels
    # "Found IOMMU at 0000:00:00.2 cap 0x40"), print_iommu_info() "Extended features (...)",
    # and "Interrupt remapping enabled" once the IOMMUs are up
    r"|AMD-Vi: Found IOMMU|AMD-Vi: Extended features|AMD-Vi: Interrupt remapping enabled"
    # drivers/iommu/amd/iommu_v2.c (until 6.7), amd_iommu_v2_init(): only with an IOMMU up
    r"|AMD IOMMUv2 loaded and initialized"
)
# Messages that say the kernel turned the IOMMU off or has none to use.
_IOMMU_DISABLED = re.compile(
    # drivers/iommu/intel/iommu.c, intel_iommu_setup(): intel_iommu=off
    r"DMAR: IOMMU disabled"
    # drivers/iommu/amd/init.c, state_next(): amd_iommu=off ("... on kernel command-line"
    # before 5.1)
    r"|AMD IOMMU disabled"
    # drivers/iommu/amd/iommu_v2.c, amd_iommu_v2_init(): no IOMMU with v2 features, which
    # on the AMD desktop boards that print it means AMD-Vi is off in the firmware
    r"|AMD IOMMUv2 functionality not available"
)
# VT-d described by the firmware: drivers/iommu/intel/dmar.c, parse_dmar_table() "Host
# address width", dmar_parse_one_drhd() "DRHD base"; drivers/iommu/intel/irq_remapping.c,
# intel_enable_irq_remapping() "Enabled IRQ remapping in x2apic mode". Interrupt remapping
# runs without DMA remapping (intel_iommu=off leaves it on), so none of these proves groups.
_IOMMU_HARDWARE = re.compile(
    r"DMAR: Host address width|DMAR: DRHD base|DMAR-IR: Enabled IRQ remapping"
)
# arch/x86/kernel/cpu/hypervisor.c, init_hypervisor_platform(): "Hypervisor detected: KVM"
_HYPERVISOR = re.compile(r"Hypervisor detected: \S+")


def iommu_log_evidence(log: KernelLog) -> IommuLogEvidence:
    def matching(pattern: re.Pattern[str]) -> tuple[str, ...]:
        return tuple(message for message in log.messages if pattern.search(message))

    hypervisor = next((m for m in log.messages if _HYPERVISOR.search(m)), None)
    return IommuLogEvidence(
        active=matching(_IOMMU_ACTIVE),
        disabled=matching(_IOMMU_DISABLED),
        hardware_only=matching(_IOMMU_HARDWARE),
        hypervisor=hypervisor,
    )


# ---- dkms status ---------------------------------------------------------------------------

# "nvidia/550.54.14, 6.8.12-4-pve, x86_64: installed" (dkms 3), "nvidia/550.54.14: added",
# "nvidia, 550.54.14, 6.8.12-4-pve, x86_64: installed" (dkms 2, comma after the name)
_DKMS_MODULE = re.compile(
    r"^(?P<name>[^\s,/:]+)(?:/|, )(?P<version>[^\s,:]+)"
    r"(?:, (?P<kernel>[^\s,:]+), (?P<arch>[^\s,:]+))?: (?P<status>[A-Za-z][\w-]*)"
)
# "Error! Your kernel headers for kernel 6.8.12-4-pve cannot be found at ..." (dkms 2
# printed the sentence on a line of its own, after "Error! echo")
_MISSING_HEADERS = re.compile(r"Your kernel headers for kernel (?P<kernel>\S+) cannot be found")
_DKMS_ERROR = "Error!"


def parse_dkms_status(text: str) -> DkmsStatus:
    modules: list[DkmsModule] = []
    errors: list[str] = []
    missing_headers: list[str] = []
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if line.startswith(_DKMS_ERROR):
            errors.append(line)
        if (headers := _MISSING_HEADERS.search(line)) is not None:
            if headers["kernel"] not in missing_headers:
                missing_headers.append(headers["kernel"])
        elif (module := _DKMS_MODULE.match(line)) is not None:
            modules.append(
                DkmsModule(
                    name=module["name"],
                    version=module["version"],
                    kernel=module["kernel"],
                    arch=module["arch"],
                    status=module["status"],
                )
            )
    return DkmsStatus(
        modules=tuple(modules),
        errors=tuple(errors),
        missing_headers_for=tuple(missing_headers),
    )


# ---- a failed nvidia-smi -------------------------------------------------------------------

# Checked in order; the first that matches names the failure.
_NVIDIA_SMI_FAILURES = (
    # "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. ..."
    ("driver_unreachable", re.compile(r"couldn't communicate with the NVIDIA driver", re.I)),
    # "Failed to initialize NVML: Driver/library version mismatch"
    ("version_mismatch", re.compile(r"Driver/library version mismatch", re.I)),
    # "No devices were found"
    ("no_devices", re.compile(r"No devices were found", re.I)),
    # "bash: nvidia-smi: command not found", "sh: 1: nvidia-smi: not found",
    # "nvidia-smi: No such file or directory"
    ("not_found", re.compile(r"command not found|: not found|No such file or directory", re.I)),
)


def parse_nvidia_smi_failure(text: str) -> NvidiaSmiFailure:
    output = "\n".join(
        line for line in text.splitlines() if not line.startswith(_SHELL_PROMPT)
    ).strip()
    kind = next((kind for kind, pattern in _NVIDIA_SMI_FAILURES if pattern.search(output)), "other")
    return NvidiaSmiFailure(text=output, kind=kind)
