"""Guest configuration as Proxmox VE writes it: canonical property strings, disks, digests.

PVE never stores what the client sent verbatim: ``net0: virtio,bridge=vmbr0`` is written back
with a generated MAC, ``scsi0: local-zfs:32`` becomes an allocated volume with its size. A
client diffing desired against actual state must cope with exactly this, so the simulator
reproduces it.
"""

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from labsmith.sim.formats import parse_property_string
from labsmith.sim.schema import ApiSchema
from labsmith.sim.state import ClusterState, Storage, Volume
from labsmith.units import GIB

# Keys whose values are property strings with a volume as their default key.
DISK_KEY = re.compile(r"^(?:(?:scsi|virtio|sata|ide)\d+|efidisk0|tpmstate0|rootfs|mp\d+)$")
INDEXED_KEY = re.compile(r"^([a-z_-]+?)(\d+)$")
NEW_VOLUME = re.compile(r"^(?P<storage>[a-z][a-z0-9\-_.]*[a-z0-9]):(?P<size>\d+(?:\.\d+)?)$", re.I)
CLOUDINIT_VOLUME = re.compile(r"^(?P<storage>[a-z][a-z0-9\-_.]*[a-z0-9]):cloudinit$", re.I)
# PVE's own OUI for generated MACs since 8.1 (qemu-server and pve-container's default).
MAC_PREFIX = "BC:24:11"
# Config keys the API returns but a client does not send (PVE adds them on create).
CONFIG_METHOD = {
    "qemu": "/nodes/{node}/qemu/{vmid}/config",
    "lxc": "/nodes/{node}/lxc/{vmid}/config",
}
# Sizes PVE gives volumes whose size argument it ignores (qemu-server Drive.pm).
FIXED_SIZES = {"efidisk0": 528 * 1024, "tpmstate0": 4 * 1024**2}


class ConfigError(Exception):
    """A request PVE refuses before starting a task (HTTP 500 with the message)."""


def schema_key(key: str) -> str:
    """``net0`` -> ``net[n]``: how the schema names an indexed option."""
    match = INDEXED_KEY.match(key)
    if match is None or key in ("efidisk0", "tpmstate0", "rng0", "audio0"):
        return key
    return f"{match.group(1)}[n]"


def option_schema(schema: ApiSchema, kind: str, key: str) -> Mapping[str, Any] | None:
    method = schema.method(CONFIG_METHOD[kind], "PUT")
    return method.properties.get(schema_key(key)) or method.properties.get(key)


def print_property_string(values: Mapping[str, Any], fmt: Mapping[str, Any]) -> str:
    """Print as pve-common's print_property_string: default key, required keys, then the rest.

    A ``keyAlias`` pair (qemu's ``virtio=<mac>``) leads, as qemu-server prints NICs.
    """
    remaining = {key: value for key, value in values.items() if value is not None}
    parts: list[str] = []
    for name, spec in fmt.items():
        if "keyAlias" in spec and remaining.get(spec["keyAlias"]) == name:
            model = remaining.pop(spec["keyAlias"])
            mac = remaining.pop(spec["alias"], None)
            parts.append(f"{model}={mac}" if mac else str(model))
            break
    default_key = next((k for k, spec in fmt.items() if spec.get("default_key")), None)
    if default_key is not None and default_key in remaining:
        parts.append(_print_value(remaining.pop(default_key)))
    required = sorted(k for k, spec in fmt.items() if k in remaining and not spec.get("optional"))
    for key in [*required, *sorted(set(remaining) - set(required))]:
        parts.append(f"{key}={_print_value(remaining[key])}")
    return ",".join(parts)


def _print_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def format_size(size: int) -> str:
    """PVE's size notation: the largest unit that divides the size exactly."""
    for unit, factor in (("T", 1024**4), ("G", GIB), ("M", 1024**2), ("K", 1024)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def config_digest(config: Mapping[str, Any], pending: Mapping[str, Any]) -> str:
    """SHA-1 of the config file text, as PVE computes ``digest`` over the file it read."""
    lines = [f"{key}: {config[key]}" for key in sorted(config)]
    if pending:
        lines.append("[PENDING]")
        lines.extend(f"{key}: {pending[key]}" for key in sorted(pending))
    return hashlib.sha1("\n".join(lines).encode(), usedforsecurity=False).hexdigest()


def generated_mac(seed: str) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    return MAC_PREFIX + "".join(f":{byte:02X}" for byte in digest[:3])


def check_storage(state: ClusterState, storage_id: str, node: str, content: str) -> Storage:
    """The checks PVE runs before forking a create task (qemu-server check_storage_access)."""
    storage = state.storages.get(storage_id)
    if storage is None:
        raise ConfigError(f"storage '{storage_id}' does not exist")
    if not storage.available_on(node):
        raise ConfigError(f"storage '{storage_id}' is not available on node '{node}'")
    if content not in storage.content:
        what = "vm images" if content == "images" else "container directories"
        raise ConfigError(f"storage '{storage_id}' does not support {what}")
    return storage


def used_bytes(storage: Storage, node: str) -> int:
    return sum(volume.size for volume in storage.on(node).values())


def allocate_volume(
    storage: Storage, *, node: str, vmid: int, kind: str, size: int, ctime: int, name: str = ""
) -> Volume:
    """Allocate ``vm-<vmid>-disk-<n>`` (or the storage type's variant) and return it."""
    if used_bytes(storage, node) + size > storage.total:
        raise ConfigError(
            f"storage '{storage.storage}' on node '{node}' has not enough free space "
            f"for {format_size(size)}"
        )
    volumes = storage.on(node)
    content = "rootdir" if kind == "lxc" else "images"
    if not name:
        prefix = "subvol" if kind == "lxc" and storage.type == "zfspool" else "vm"
        index = 0
        while _volume_name(storage, prefix, vmid, index, kind) in volumes:
            index += 1
        volid = _volume_name(storage, prefix, vmid, index, kind)
    else:
        volid = f"{storage.storage}:{name}"
    volume = Volume(
        volid=volid,
        content=content,
        size=size,
        vmid=vmid,
        format="subvol" if volid.split(":", 1)[1].startswith("subvol") else "raw",
        ctime=ctime,
    )
    volumes[volid] = volume
    return volume


def _volume_name(storage: Storage, prefix: str, vmid: int, index: int, kind: str) -> str:
    if storage.type == "dir":
        suffix = "raw" if kind == "lxc" else "qcow2"
        return f"{storage.storage}:{vmid}/vm-{vmid}-disk-{index}.{suffix}"
    return f"{storage.storage}:{prefix}-{vmid}-disk-{index}"


class ConfigWriter:
    """Turns a create/update request's options into the values PVE stores."""

    def __init__(self, schema: ApiSchema, state: ClusterState, kind: str) -> None:
        self.schema = schema
        self.state = state
        self.kind = kind

    def format_of(self, key: str) -> Mapping[str, Any] | str | None:
        spec = option_schema(self.schema, self.kind, key)
        if spec is None:
            return None
        fmt = spec.get("format")
        return fmt if isinstance(fmt, (dict, str)) else None

    def parse(self, key: str, value: str) -> dict[str, Any]:
        fmt = self.format_of(key)
        if fmt is None:
            return {}
        return parse_property_string(fmt, value)

    def canonical(self, key: str, value: Any, *, vmid: int) -> Any:
        """The stored value of a non-disk option (NIC MACs filled in, keys in PVE's order)."""
        if key.startswith("net") and INDEXED_KEY.match(key):
            parsed = self.parse(key, str(value))
            fmt = self.format_of(key)
            assert isinstance(fmt, dict)
            if self.kind == "qemu":
                parsed.setdefault("macaddr", generated_mac(f"{vmid}/{key}/{value}"))
            else:
                parsed.setdefault("hwaddr", generated_mac(f"{vmid}/{key}/{value}"))
                parsed.setdefault("type", "veth")
            return print_property_string(parsed, fmt)
        return value

    def disk_request(self, key: str, value: str) -> tuple[str, int] | None:
        """``storage:size`` asks for a new volume: return (storage, bytes)."""
        if not DISK_KEY.match(key):
            return None
        parsed = self.parse(key, value)
        volume = str(parsed.get("file") or parsed.get("volume") or "")
        match = NEW_VOLUME.match(volume)
        if match is None:
            return None
        size = FIXED_SIZES.get(key) or int(float(match.group("size")) * GIB)
        return match.group("storage"), size

    def disk_value(self, key: str, value: str, volume: Volume) -> str:
        """The stored property string of a disk once its volume exists."""
        parsed = self.parse(key, value)
        fmt = self.format_of(key)
        assert isinstance(fmt, dict)
        volume_key = "file" if "file" in fmt else "volume"
        parsed[volume_key] = volume.volid
        parsed["size"] = format_size(volume.size)
        parsed.pop("import-from", None)
        return print_property_string(parsed, fmt)
