"""The one registry of named formats, filled as Proxmox's Perl packages fill theirs: each
family module registers its formats when imported (``labsmith.sim.formats`` imports them all)."""

import re
from collections.abc import Callable, Mapping
from typing import Any

from labsmith.sim.formats.base import Schema, Validator, Verifier

CODE_FORMATS: dict[str, Verifier] = {}
HASH_FORMATS: dict[str, tuple[Schema | Callable[[], Schema], Validator | None]] = {}


def register_code_formats(formats: Mapping[str, Verifier]) -> None:
    """``register_format`` with a code ref: a checker of the whole value."""
    _register(CODE_FORMATS, formats)


def register_hash_formats(
    formats: Mapping[str, tuple[Schema | Callable[[], Schema], Validator | None]],
) -> None:
    """``register_format`` with a hash: a property-string format's keys (a callable builds
    them on first use), and a check of the parsed whole."""
    _register(HASH_FORMATS, formats)


def _register(registry: dict[str, Any], formats: Mapping[str, Any]) -> None:
    taken = (set(CODE_FORMATS) | set(HASH_FORMATS)) & set(formats)
    if taken:
        raise ValueError(f"format registered twice: {', '.join(sorted(taken))}")
    registry.update(formats)


FORMAT_SUFFIX = re.compile(r"^(.*?)(?:-(list|opt))?$")

# Formats Proxmox registers that are not checked here. None of them is named by a bundled
# schema: there each appears inline (as the parameter's own format dict), which is checked.
# A schema loaded from another release that names one of them gets it unchecked.
UNCHECKED_FORMATS: frozenset[str] = frozenset(
    {
        "pve-qm-usb",  # qemu-server QemuServer/USB.pm (inline as usb[n])
        "pve-qm-numanode",  # qemu-server QemuServer/Memory.pm (inline as numa[n])
        "pve-qm-virtiofs",  # qemu-server QemuServer/Virtiofs.pm (inline as virtiofs[n])
        "pve-qemu-machine-fmt",  # qemu-server QemuServer/Machine.pm (inline as machine)
        "pve-cpu-conf",  # qemu-server QemuServer/CPUConfig.pm (custom CPU model sections)
        "pve-ct-mountpoint",  # pve-container LXC/Config.pm (inline as mp[n])
        "pve-lxc-network",  # pve-container LXC/Config.pm (inline as net[n])
        "pve-sdn-vlanrange",  # pve-network SDN/Zones/VlanPlugin.pm
        "pve-sdn-vxlanrange",  # pve-network SDN/Zones/VxlanPlugin.pm
        "pve-storage-zfs-blocksize",  # pve-storage Storage/ZFSPoolPlugin.pm
    }
)


def named_property_format(name: str) -> Schema | None:
    """The keys of a property-string format registered by name (``pve-qm-hostpci``)."""
    entry = HASH_FORMATS.get(name)
    if entry is None:
        return None
    schema = entry[0]
    return schema() if callable(schema) else schema


def format_names() -> frozenset[str]:
    """Every named format with a checker here (list suffixes not included)."""
    return frozenset(CODE_FORMATS) | frozenset(HASH_FORMATS)


def is_checked_format(fmt: Any) -> bool:
    """Whether :func:`check_format` really checks ``fmt`` (an inline format always is)."""
    if isinstance(fmt, Mapping):
        return True
    match = FORMAT_SUFFIX.match(str(fmt))
    assert match is not None
    return match.group(1) in format_names() and match.group(1) != "string"
