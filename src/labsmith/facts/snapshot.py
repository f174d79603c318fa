"""The host snapshot: one directory per host, one file per read-only command.

``labsmith probe HOST`` writes it over SSH; every offline check reads it. Any file may be
missing: the checks that need it say ``unknown``. ``manifest.json`` (written by the
collector) records each command's exit status, so that "not collected" and "the command
failed" (no /sys/firmware/efi: legacy boot) can be told apart.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
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
}


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
    for name, (attribute, parser) in _PARSERS.items():
        path = directory / name
        # A command that failed leaves no usable output, except nvidia-smi's error text.
        failed = statuses.get(name, 0) != 0 and name != "nvidia-smi.err"
        if not path.is_file() or failed:
            continue
        text = strip_source_line(path.read_text(errors="replace"))
        try:
            found[attribute] = parser(text)
        except ValueError as error:
            raise SnapshotError(f"{path}: cannot parse it: {error}") from None
    found["uefi"] = _uefi(directory, statuses)
    return HostFacts(source=directory, **found)


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
    if (directory / "efi").is_file() and statuses.get("efi", 0) == 0:
        return True
    if statuses.get("efi", 0) != 0:
        return False  # the collector ran `ls /sys/firmware/efi` and it failed: legacy boot
    return None
