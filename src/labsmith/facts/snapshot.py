"""The host snapshot: one directory per host, one file per read-only command.

``labsmith probe HOST`` writes it over SSH; every offline check reads it. Any file may be
missing: the checks that need it say ``unknown``. ``manifest.json`` (written by the
collector) records each command's exit status, so that "not collected" and "the command
failed" (no /sys/firmware/efi: legacy boot) can be told apart.
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labsmith.errors import LabsmithError
from labsmith.facts import parse_gpu_tools, parse_kernel, parse_pci, parse_system
from labsmith.facts.model import (
    BlockDevice,
    Cmdline,
    CpuInfo,
    DkmsStatus,
    IommuListing,
    KernelLog,
    NetLink,
    NvidiaSmiFailure,
    NvidiaSmiReport,
    OsRelease,
    PciDevice,
    RocmGpu,
    SecureBoot,
    Uname,
)
from labsmith.facts.parse_topology import GpuTopology, parse_nvidia_topo


class SnapshotError(LabsmithError):
    """A snapshot directory or one of its files cannot be read (exit code 2)."""

    exit_code = 2


@dataclass(frozen=True)
class SnapshotFile:
    name: str
    command: str  # run by /bin/sh on the host; read-only
    needs_root: bool = False  # retried with `sudo -n` when it fails as a normal user


# All read-only; a needs_root command goes through sudo -n when the probe's user is not root.
SNAPSHOT_FILES: tuple[SnapshotFile, ...] = (
    SnapshotFile("cmdline", "cat /proc/cmdline"),
    SnapshotFile("dmesg", "dmesg || journalctl -k -b --no-pager -q", needs_root=True),
    SnapshotFile("lspci", "lspci -nnkvvv -D", needs_root=True),
    SnapshotFile("iommu_groups", "find /sys/kernel/iommu_groups/ -mindepth 3 -type l | sort -V"),
    SnapshotFile("nvidia-smi.xml", "nvidia-smi -q -x"),
    SnapshotFile("rocm-smi.json", "rocm-smi --showallinfo --json"),
    SnapshotFile("cpuinfo", "cat /proc/cpuinfo"),
    SnapshotFile("sb-state", "mokutil --sb-state"),
    SnapshotFile("efi", "ls /sys/firmware/efi"),
    SnapshotFile("lsblk.json", "lsblk -J -O -b"),
    SnapshotFile("ip-link.json", "ip -j -d link"),
    SnapshotFile("os-release", "cat /etc/os-release"),
    SnapshotFile("uname", "uname -a"),
    SnapshotFile("dkms-status", "dkms status 2>&1"),
    SnapshotFile("nvidia-smi-topo", "nvidia-smi topo -m"),
)
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class HostFacts:
    """Everything a snapshot showed; ``None`` where its file was absent."""

    source: Path
    cmdline: Cmdline | None = None
    kernel_log: KernelLog | None = None
    pci_devices: tuple[PciDevice, ...] | None = None
    iommu: IommuListing | None = None
    nvidia_smi: NvidiaSmiReport | None = None
    nvidia_smi_failure: NvidiaSmiFailure | None = None
    rocm_gpus: tuple[RocmGpu, ...] | None = None
    cpu: CpuInfo | None = None
    secure_boot: SecureBoot | None = None
    uefi: bool | None = None
    block_devices: tuple[BlockDevice, ...] | None = None
    links: tuple[NetLink, ...] | None = None
    os_release: OsRelease | None = None
    uname: Uname | None = None
    dkms: DkmsStatus | None = None
    # file name -> why its command gave no output: the error it printed instead
    # ("bash: lspci: command not found"), or the exit status the manifest records
    failures: dict[str, str] = field(default_factory=dict)
    gpu_topology: tuple[GpuTopology, ...] | None = None

    @property
    def vm_guest(self) -> str | None:
        """What shows this snapshot was taken inside a VM, or None: the CPU's hypervisor
        flag (set by every hypervisor for its guests) or the kernel's "Hypervisor detected"."""
        if self.cpu is not None and "hypervisor" in self.cpu.flags:
            return "/proc/cpuinfo has the hypervisor flag"
        if self.kernel_log is not None:
            line = parse_kernel.iommu_log_evidence(self.kernel_log).hypervisor
            if line is not None:
                return f"the kernel log says {line!r}"
        return None


_PARSERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "cmdline": ("cmdline", parse_kernel.parse_cmdline),
    "dmesg": ("kernel_log", parse_kernel.parse_kernel_log),
    "lspci": ("pci_devices", parse_pci.parse_lspci),
    "iommu_groups": ("iommu", parse_pci.parse_iommu_groups),
    "nvidia-smi.xml": ("nvidia_smi", parse_gpu_tools.parse_nvidia_smi_xml),
    "nvidia-smi.err": ("nvidia_smi_failure", parse_kernel.parse_nvidia_smi_failure),
    "rocm-smi.json": ("rocm_gpus", parse_gpu_tools.parse_rocm_smi_json),
    "cpuinfo": ("cpu", parse_system.parse_cpuinfo),
    "sb-state": ("secure_boot", parse_system.parse_sb_state),
    "lsblk.json": ("block_devices", parse_system.parse_lsblk_json),
    "ip-link.json": ("links", parse_system.parse_ip_link_json),
    "os-release": ("os_release", parse_system.parse_os_release),
    "uname": ("uname", parse_system.parse_uname),
    "dkms-status": ("dkms", parse_kernel.parse_dkms_status),
    "nvidia-smi-topo": ("gpu_topology", parse_nvidia_topo),
}


# A line a shell or a command prints instead of output. Each shell words "not found" its own
# way: bash "bash: lspci: command not found" / "-bash: line 1: lspci: command not found",
# dash "sh: 1: lspci: not found", busybox ash "sh: lspci: not found", zsh
# "zsh: command not found: lspci"; coreutils and util-linux name the path and the errno
# ("ls: cannot access '/sys/firmware/efi': No such file or directory", busybox
# "ls: /sys/firmware/efi: No such file or directory"); sudo -n "sudo: a password is required".
_SHELL_ERROR = re.compile(
    r"^(?:-?\w*sh|zsh|ash)(?:: line \d+|: \d+)?: (?:\S+: )?(?:command )?not found\b"
    r"|^zsh: command not found: "
    r"|^sudo: "
    r"|^[\w.-]+: .*(?:No such file or directory|Permission denied|Operation not permitted"
    r"|command not found|Cannot find any working access method)"
)
# What `ls /sys/firmware/efi` prints when the directory is missing: the kernel creates it
# only when booted by UEFI firmware (drivers/firmware/efi/efi.c, efisubsys_init()).
_NO_SUCH_FILE = "No such file or directory"
# Files whose whole content is an error by design.
_ERROR_FILES = {"nvidia-smi.err"}
# Pasted captures keep the command line that made them: "$ lspci -nnk", "# dmesg".
_SHELL_PROMPT_PREFIXES = ("$ ", "# ")
# The first character of each structured file's format. A tool that printed prose instead
# ("ERROR:root:Driver not initialized", "Option \"-j\" is unknown") failed; text that opens
# like the format but breaks it is refused by the parser (exit 2), as crafted input.
_FORMAT_OPENERS = {
    "nvidia-smi.xml": "<",
    "rocm-smi.json": "{[",
    "lsblk.json": "{[",
    "ip-link.json": "[{",
}


def command_failure(text: str) -> str | None:
    """The error a command printed instead of its output, or None when the text is output.

    A file counts as a failure only when every line is such an error: a listing script's
    warning ("lsiommu: 3: lsiommu: shopt: not found") above real output leaves the output."""
    lines = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.startswith(_SHELL_PROMPT_PREFIXES)
    ]
    if lines and all(_SHELL_ERROR.search(line) for line in lines):
        return lines[0]
    return None


def _failure(name: str, text: str) -> str | None:
    error = command_failure(text)
    openers = _FORMAT_OPENERS.get(name)
    output = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.startswith(_SHELL_PROMPT_PREFIXES)
    ]
    if error is None and openers is not None and output and output[0][0] not in openers:
        return output[0]
    return error


def strip_source_line(text: str) -> str:
    """Captures kept as test fixtures start with a ``# SOURCE: <url>`` provenance line."""
    if text.startswith("# SOURCE:"):
        return text.split("\n", 1)[1] if "\n" in text else ""
    return text


def load_snapshot(directory: Path) -> HostFacts:
    if not directory.is_dir():
        raise SnapshotError(
            f"{directory}: no such snapshot directory; run labsmith probe HOST first"
        )
    statuses = _manifest_statuses(directory)
    found: dict[str, Any] = {}
    failures: dict[str, str] = {}
    for name, (attribute, parser) in _PARSERS.items():
        path = directory / name
        if not path.is_file():
            continue
        # A command that failed leaves no usable output, except nvidia-smi's error text.
        if statuses.get(name, 0) != 0 and name not in _ERROR_FILES:
            failures[name] = f"exit status {statuses[name]}"
            continue
        text = strip_source_line(path.read_text(errors="replace"))
        if name not in _ERROR_FILES and (error := _failure(name, text)) is not None:
            failures[name] = error
            continue
        try:
            found[attribute] = parser(text)
        except ValueError as error:
            raise SnapshotError(f"{path}: cannot parse it: {error}") from None
    found["uefi"] = _uefi(directory, statuses)
    return HostFacts(source=directory, failures=failures, **found)


def _manifest_statuses(directory: Path) -> dict[str, int]:
    path = directory / MANIFEST
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text(errors="replace"))
        return {name: int(entry["exit_status"]) for name, entry in manifest["commands"].items()}
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError) as error:
        raise SnapshotError(f"{path}: not a labsmith snapshot manifest ({error})") from None
    except RecursionError:
        raise SnapshotError(
            f"{path}: not a labsmith snapshot manifest (JSON nested too deep to read)"
        ) from None


def _uefi(directory: Path, statuses: dict[str, int]) -> bool | None:
    path = directory / "efi"
    if statuses.get("efi", 0) != 0:
        return False  # the collector ran `ls /sys/firmware/efi` and it failed: legacy boot
    if not path.is_file():
        return None
    error = command_failure(strip_source_line(path.read_text(errors="replace")))
    if error is None:
        return True
    # ls's "No such file or directory" proves the directory missing: a BIOS (CSM) boot. Any
    # other error ("ls: command not found", "Permission denied") proves nothing.
    return False if _NO_SUCH_FILE in error else None
