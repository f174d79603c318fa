"""Parse the host's general facts: CPU, Secure Boot, disks, network links, OS and kernel.

``lsblk`` and ``ip`` are read in their JSON forms and raise ValueError when the text is not
JSON of the shape they write; the rest is free text and never raises.
"""

import json
import math
import re
import shlex
from collections.abc import Mapping

from labsmith.facts.model import BlockDevice, CpuInfo, NetLink, OsRelease, SecureBoot, Uname

# Captures pasted from a terminal keep the command that made them: "$ uname -a".
_SHELL_PROMPT = "$ "

# ---- /proc/cpuinfo -------------------------------------------------------------------------

# "model name\t: AMD Ryzen 7 5700G with Radeon Graphics"
_CPUINFO_LINE = re.compile(r"^(?P<key>[^:\t]+?)\s*:\s?(?P<value>.*)$")
# x86 lists CPU features under "flags"; arm64 under "Features".
_FLAG_KEYS = {"flags", "Features"}


def parse_cpuinfo(text: str) -> CpuInfo:
    vendor: str | None = None
    model_name: str | None = None
    flags: set[str] = set()
    logical_cpus = 0
    for line in text.splitlines():
        entry = _CPUINFO_LINE.match(line)
        if entry is None:
            continue
        key, value = entry["key"], entry["value"].strip()
        if key == "processor":
            logical_cpus += 1
        elif key == "vendor_id" and vendor is None:
            vendor = value
        elif key == "model name" and model_name is None:
            model_name = value
        elif key in _FLAG_KEYS:
            flags.update(value.split())
    return CpuInfo(
        vendor=vendor, model_name=model_name, flags=frozenset(flags), logical_cpus=logical_cpus
    )


# ---- mokutil --sb-state --------------------------------------------------------------------

# "SecureBoot enabled" / "SecureBoot disabled"; anything else (no EFI variables) is unknown
_SB_STATE = re.compile(r"\bSecureBoot (?P<state>enabled|disabled)\b", re.IGNORECASE)


def parse_sb_state(text: str) -> SecureBoot:
    state = _SB_STATE.search(text)
    enabled = state["state"].lower() == "enabled" if state is not None else None
    return SecureBoot(enabled=enabled, text=text.strip())


# ---- lsblk -J -O [-b] ----------------------------------------------------------------------

# "1.8T", "512M", "0B", "931.5G": lsblk's human sizes (without -b), powers of 1024
_HUMAN_SIZE = re.compile(r"^(?P<number>\d+(?:\.\d+)?)(?P<unit>[BKMGTPE]?)$")
_SIZE_UNITS: dict[str, int] = {
    unit: 1024**power for power, unit in enumerate("KMGTPE", start=1)
} | {"": 1, "B": 1}


# A disk's partitions hold RAID, crypt and LVM layers a few levels deep at most.
MAX_BLOCK_DEVICE_NESTING = 32


def parse_lsblk_json(text: str) -> tuple[BlockDevice, ...]:
    document = load_json(text, "lsblk -J")
    devices = document.get("blockdevices") if isinstance(document, dict) else None
    if not isinstance(devices, list):
        raise ValueError('not lsblk -J output: no "blockdevices" list')
    return tuple(_parse_block_device(device) for device in devices if isinstance(device, dict))


def _parse_block_device(device: Mapping[str, object], depth: int = 0) -> BlockDevice:
    if depth >= MAX_BLOCK_DEVICE_NESTING:
        raise ValueError(
            f"not lsblk -J output: devices nested more than {MAX_BLOCK_DEVICE_NESTING} deep"
        )
    children = device.get("children")
    return BlockDevice(
        name=_json_text(device, "name") or "",
        path=_json_text(device, "path"),
        type=_json_text(device, "type") or "",
        model=_json_text(device, "model"),
        serial=_json_text(device, "serial"),
        wwn=_json_text(device, "wwn"),
        size_bytes=_size_bytes(device.get("size")),
        transport=_json_text(device, "tran"),
        id_links=_id_links(device.get("id-link")),
        children=tuple(
            _parse_block_device(child, depth + 1)
            for child in (children if isinstance(children, list) else ())
            if isinstance(child, dict)
        ),
    )


def _size_bytes(size: object) -> int | None:
    # -b gives a number (a numeric string in util-linux before 2.33); without it "1.8T"
    if isinstance(size, int | float) and not isinstance(size, bool):
        return int(size) if math.isfinite(size) else None
    human = _HUMAN_SIZE.match(size.strip()) if isinstance(size, str) else None
    if human is None:
        return None
    bytes_ = float(human["number"]) * _SIZE_UNITS[human["unit"]]
    return round(bytes_) if math.isfinite(bytes_) else None


def _id_links(value: object) -> tuple[str, ...]:
    # util-linux 2.39+ reports one /dev/disk/by-id name under "id-link"
    if isinstance(value, str) and value:
        return (value,)
    if isinstance(value, list):
        return tuple(link for link in value if isinstance(link, str) and link)
    return ()


# ---- ip -j -d link -------------------------------------------------------------------------


def parse_ip_link_json(text: str) -> tuple[NetLink, ...]:
    links = load_json(text, "ip -j link")
    if not isinstance(links, list):
        raise ValueError("not ip -j link output: not a JSON list")
    return tuple(_parse_link(link) for link in links if isinstance(link, dict))


def _parse_link(link: Mapping[str, object]) -> NetLink:
    info = _json_object(link.get("linkinfo"))
    data = _json_object(info.get("info_data"))
    vlan_id = data.get("id")
    filtering = data.get("vlan_filtering")
    return NetLink(
        name=_json_text(link, "ifname") or "",
        mac=_json_text(link, "address"),
        kind=_json_text(info, "info_kind"),
        master=_json_text(link, "master"),
        state=_json_text(link, "operstate"),
        vlan_id=vlan_id if isinstance(vlan_id, int) and not isinstance(vlan_id, bool) else None,
        vlan_filtering=bool(filtering) if isinstance(filtering, int) else None,
    )


# ---- /etc/os-release -----------------------------------------------------------------------

# 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"', "ID=debian", "NAME='Proxmox VE'"
_OS_RELEASE_LINE = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$")


def parse_os_release(text: str) -> OsRelease:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        assignment = _OS_RELEASE_LINE.match(line.strip())
        if assignment is not None:
            fields[assignment["key"]] = _shell_value(assignment["value"])
    return OsRelease(
        id=fields.get("ID") or None,
        version_id=fields.get("VERSION_ID") or None,
        pretty_name=fields.get("PRETTY_NAME") or None,
        fields=fields,
    )


def _shell_value(value: str) -> str:
    """The value a shell would assign (os-release is sourced by shell scripts)."""
    try:
        return " ".join(shlex.split(value))
    except ValueError:  # an unbalanced quote: keep what is there, without the quote
        return value.strip().strip("\"'")


# ---- uname -a ------------------------------------------------------------------------------

# The last field of GNU uname -a; the machine comes right before it.
_OPERATING_SYSTEM = "GNU/Linux"


def parse_uname(text: str) -> Uname:
    """``Linux pve1 6.8.12-4-pve #1 SMP PREEMPT_DYNAMIC PMX ... x86_64 GNU/Linux``."""
    lines = [line for line in text.splitlines() if line.strip()]
    output = [line for line in lines if not line.startswith(_SHELL_PROMPT)]
    fields = output[0].split() if output else []
    if _OPERATING_SYSTEM in fields:
        machine_at = fields.index(_OPERATING_SYSTEM) - 1
    else:
        machine_at = len(fields) - 1
    return Uname(
        kernel_release=fields[2] if len(fields) > 2 else None,
        hostname=fields[1] if len(fields) > 1 else None,
        machine=fields[machine_at] if len(fields) > 3 and machine_at > 2 else None,
    )


# ---- JSON helpers --------------------------------------------------------------------------


def load_json(text: str, command: str) -> object:
    """The JSON document ``command`` printed, or ValueError saying why it is not one."""
    try:
        document: object = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not {command} output: not JSON ({error})") from None
    except RecursionError:
        raise ValueError(f"not {command} output: JSON nested too deep to read") from None
    return document


def _json_object(value: object) -> Mapping[str, object]:
    return value if isinstance(value, dict) else {}


def _json_text(values: Mapping[str, object], key: str) -> str | None:
    """A string field, stripped (lsblk pads models); None when null, absent or empty."""
    value = values.get(key)
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None
