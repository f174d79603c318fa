"""Formats checked in code: addresses, names, IDs, volumes, disks and the other values that
pve-common, pve-storage, pve-access-control, qemu-server, pve-container, pve-network,
pve-ha-manager and pve-manager register (pve-common src/PVE/ParseUtils.pm, JSONSchema.pm)."""

import functools
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from labsmith.sim.formats.base import (
    Errors,
    FormatError,
    Schema,
    Verifier,
    die,
    parse_size,
    perl_split,
    perl_truthy,
    split_list,
    words,
)
from labsmith.sim.formats.jsonschema import check_format, check_prop
from labsmith.sim.formats.registry import register_code_formats

_IPV4_OCTET = r"(?:25[0-5]|(?:2[0-4]|1[0-9]|[1-9])?[0-9])"
IPV4_RE = rf"(?:(?:{_IPV4_OCTET}\.){{3}}{_IPV4_OCTET})"
_H16 = r"(?:[0-9a-fA-F]{1,4})"
_LS32 = rf"(?:(?:{IPV4_RE}|{_H16}:{_H16}))"


def _ipv6_pattern() -> str:
    """RFC 3986's IPv6address: up to eight groups, with at most one ``::``."""
    forms = [rf"(?:{_H16}:){{6}}{_LS32}", rf"::(?:{_H16}:){{5}}{_LS32}"]
    tails = [(4, _LS32), (3, _LS32), (2, _LS32), (1, _LS32), (0, _LS32), (0, _H16), (0, "")]
    for lead, (groups, tail) in enumerate(tails):
        head = f"(?:(?:{_H16}:){{0,{lead}}}{_H16})?"
        middle = f"(?:{_H16}:){{{groups}}}" if groups else ""
        forms.append(f"{head}::{middle}{tail}")
    return "(?:" + "|".join(f"(?:{form})" for form in forms) + ")"


IPV6_RE = _ipv6_pattern()
_EMAIL_USER = r"[\w\+\-\~]+(\.[\w\+\-\~]+)*"
_EMAIL = _EMAIL_USER + r"@[a-zA-Z0-9\-]+(\.[a-zA-Z0-9\-]+)*"
_DNS_LABEL = r"([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)"
_REALM = r"[A-Za-z][A-Za-z0-9\.\-_]+"
_USER = r"[^\s:/]+"


@functools.cache
def regex(source: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(source, flags)


def matches(source: str, text: str, flags: int = 0) -> bool:
    """Perl ``$text =~ m/source/`` (``$`` also before a final newline, as in Perl)."""
    return regex(source, flags).search(text) is not None


def _regex_verifier(source: str, message: str, flags: int = 0) -> Verifier:
    """A verifier that dies with ``message`` (``{}`` is the value) unless the regex matches."""

    def verify(text: str) -> str:
        if not matches(source, text, flags):
            raise die(message.format(text))
        return text

    return verify


_IP = re.compile(rf"^(?:(?:{IPV4_RE})|(?:{IPV6_RE}))$")
_CIDR_V4 = re.compile(rf"^(?:{IPV4_RE})(?:/(\d+))$")
_CIDR_V6 = re.compile(rf"^(?:{IPV6_RE})(?:/(\d+))$")
_DNS_NAME = re.compile(rf"^({_DNS_LABEL}\.)*{_DNS_LABEL}$")


def is_ip(text: str) -> bool:
    return _IP.search(text) is not None


def _is_cidr(text: str, address: re.Pattern[str], longest: int) -> bool:
    """pve-common ``pve_verify_cidrv4``/``v6``: the address, then a prefix of 8 or more."""
    match = address.search(text)
    return match is not None and 7 < int(match.group(1)) <= longest


def _is_cidr_v4(text: str) -> bool:
    return _is_cidr(text, _CIDR_V4, 32)


def _is_cidr_v6(text: str) -> bool:
    return _is_cidr(text, _CIDR_V6, 128)


def _is_dns_name(text: str) -> bool:
    return _DNS_NAME.search(text) is not None


def _verify_ip(text: str) -> str:
    if not is_ip(text):
        raise die("value does not look like a valid IP address")
    return text


def _verify_cidr(text: str) -> str:
    if not (_is_cidr_v4(text) or _is_cidr_v6(text)):
        raise die("value does not look like a valid CIDR network")
    return text


def _condition_verifier(condition: Callable[[str], bool], message: str) -> Verifier:
    def verify(text: str) -> str:
        if not condition(text):
            raise die(message.format(text))
        return text

    return verify


def _verify_id(kind: str) -> Verifier:
    """pve-common ``JSONSchema::parse_id`` (storage and ACME plugin IDs)."""

    def verify(text: str) -> str:
        if len(text) < 2:
            raise die(f"{kind} ID '{text}' cannot be shorter than 2 characters")
        if not matches(r"^[a-z][a-z0-9\-\_\.]*[a-z0-9]$", text, re.IGNORECASE):
            raise die(f"{kind} ID '{text}' contains illegal characters")
        return text

    return verify


def _verify_vlan_id_or_range(text: str) -> str:
    """pve-common ``pve_verify_vlan_id_or_range``."""
    match = regex(r"^(\d+)(?:-(\d+))?$").search(text)
    if match is None:
        raise die(f"invalid VLAN configuration '{text}'")
    start, end = match.group(1), match.group(2)
    for tag in (start, end) if perl_truthy(end) else (start,):
        if not 2 <= int(tag) <= 4094:
            raise die(f"invalid VLAN tag '{tag}'")
    if perl_truthy(end) and int(start) >= int(end):
        raise die(f"VLAN range must go from lower to higher tag '{text}'")
    return text


def _verify_disk_size(text: str) -> str:
    if parse_size(text) is None:
        raise die(f"value does not look like a valid disk size: {text}")
    return text


def _verify_startup_order(text: str) -> str:
    """pve-common ``pve_parse_startup_order`` as the ``pve-startup-order`` format uses it."""
    valid = perl_truthy(text) and all(
        matches(r"^\s*$", part)
        or matches(r"^(order=)?(\d+)$", part)
        or matches(r"^(up|down)=(\d+)$", part)
        for part in text.split(",")
    )
    if not valid:
        raise die("unable to parse startup options")
    return text


def _verify_tfa_secret(text: str) -> str:
    if not (
        matches(r"^v2-0x[0-9a-fA-F]{16,128}$", text)
        or matches(r"^v2-[A-Z2-7=]{16,128}$", text)
        or matches(r"^(?:[A-Z2-7=]{16}|[A-Fa-f0-9]{40})$", text)
    ):
        raise die("unable to decode TFA secret")
    return text


def _verify_id_pair(id_format: str) -> Verifier:
    """pve-common ``verify_storagepair``/``verify_bridgepair``: one ``parse_idmap`` entry."""

    def verify(text: str) -> str:
        try:
            _parse_idmap(text, id_format)
        except FormatError as error:
            raise FormatError(error.text + "\n") from error
        return text

    return verify


def _parse_idmap(text: str, id_format: str) -> None:
    """pve-common ``JSONSchema::parse_idmap``: ``1``, ``source:target`` pairs, one default."""
    sources: set[str] = set()
    identity = default = False
    for entry in split_list(text):
        if entry == "1":
            identity = True
        elif (pair := regex(r"^([^:]+):([^:]+)$").search(entry)) is not None:
            _check_id_entry(entry, id_format, pair.group(1), pair.group(2))
            if pair.group(1) in sources:
                raise die(f"duplicate mapping for source '{pair.group(1)}'")
            sources.add(pair.group(1))
        else:
            _check_id_entry(entry, id_format, entry)
            if default:
                raise die("default target ID can only be provided once")
            default = True
    if identity and (default or sources):
        raise die("identity mapping cannot be combined with other mappings")


def _check_id_entry(entry: str, id_format: str, *ids: str) -> None:
    try:
        for value in ids:
            check_format(id_format, value)
    except FormatError as error:
        raise die(f"entry '{entry}' contains invalid ID - {error.text}") from error


@functools.cache
def _zone_names() -> frozenset[str]:
    """The zones of ``/usr/share/zoneinfo/zone.tab`` (what PVE's check reads), else tzdata."""
    zone_tab = Path("/usr/share/zoneinfo/zone.tab")
    if zone_tab.is_file():
        rows = zone_tab.read_text(encoding="utf-8", errors="replace").splitlines()
        return frozenset(
            row.split("\t")[2]
            for row in rows
            if not row.lstrip().startswith("#") and row.count("\t") >= 2
        )
    import zoneinfo

    return frozenset(zoneinfo.available_timezones())


def _verify_timezone(text: str) -> str:
    """pve-common ``pve_verify_timezone``."""
    if text != "UTC" and text not in _zone_names():
        raise die(f"invalid time zone '{text}'")
    return text


def _verify_ct_timezone(text: str) -> str | None:
    """pve-container ``PVE/LXC/Config.pm`` ``verify_ct_timezone``: ``host`` or a zone."""
    return None if text == "host" else _verify_timezone(text)


def _verify_ldap_attr(text: str) -> str:
    if not matches(r"^[a-zA-Z0-9]+$", text):
        raise die(f"value '{text}' does not look like a simple ldap attribute name")
    return text


_IPV4_MASKS = frozenset(
    ".".join(str((bits >> shift) & 0xFF) for shift in (24, 16, 8, 0))
    for bits in ((0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF for length in range(33))
)


def _pem_pattern(label: str, *, multiple: bool) -> str:
    """pve-common ``PVE/Certificate.pm`` ``$pem_re``: header, base64 lines, footer."""
    b64 = r"[0-9A-Za-z\+/]"
    header = rf"-----BEGIN\ {label}-----(?:\s|\n)*"
    footer = rf"-----END\ {label}-----(?:\s|\n)*"
    one = rf"(?:{header}(?:(?:{b64})+\s*\n)*(?:{b64})*(?:=\s*\n=|={{0,2}})?\s*\n{footer})"
    return rf"^(?:({one}\n+)*{one})$" if multiple else rf"^{one}$"


def _pem_verifier(label: str, *, multiple: bool = False) -> Verifier:
    def verify(text: str) -> str:
        content = re.sub(r"^.*?(?=-----BEGIN\ .*?-----)", "", text, count=1, flags=re.DOTALL)
        if not matches(_pem_pattern(label, multiple=multiple), content):
            raise die("not a valid PEM-formatted string.")
        return text

    return verify


def _verify_userid(text: str) -> str:
    """pve-access-control ``PVE/Auth/Plugin.pm`` ``verify_username``."""
    name = text if perl_truthy(text) else ""
    if len(name) < 3:
        raise die(f"user name '{name}' is too short")
    if len(name) > 64:
        raise die(f"user name '{name}' is too long ({len(name)} > 64)")
    if not matches(rf"^({_USER})\@({_REALM})$", name):
        raise die(f"value '{name}' does not look like a valid user name")
    return text


def _verify_poolid(text: str) -> str:
    """pve-access-control ``PVE/AccessControl.pm`` ``verify_poolname``."""
    if len(perl_split(text, "/")) > 3:
        raise die(f"pool name '{text}' nested too deeply (max levels = 3)")
    if not matches(r"^[A-Za-z0-9\.\-_]+(?:/[A-Za-z0-9\.\-_]+){0,2}$", text):
        raise die(f"pool name '{text}' contains invalid characters")
    return text


# pve-access-control PVE/AccessControl.pm ($privgroups plus Permissions.Modify); VM.Monitor
# is the privilege Proxmox VE 8 still had (dropped for 9 in commit "privileges: drop
# VM.Monitor"), kept so both bundled API versions accept their own values.
_PRIVILEGES = words(
    """
    VM.Config.Disk VM.Config.CPU VM.Config.Memory VM.Config.Network VM.Config.HWType
    VM.Config.Options VM.Allocate VM.Clone VM.GuestAgent.Unrestricted VM.Migrate
    VM.Replicate VM.Snapshot VM.Snapshot.Rollback VM.Config.CDROM VM.Config.Cloudinit
    VM.Console VM.Backup VM.GuestAgent.FileRead VM.GuestAgent.FileSystemMgmt
    VM.GuestAgent.FileWrite VM.PowerMgmt VM.Audit VM.GuestAgent.Audit VM.Monitor
    Sys.PowerMgmt Sys.Modify Sys.Incoming Sys.AccessNetwork Sys.Console Sys.Syslog Sys.Audit
    Datastore.Allocate Datastore.AllocateTemplate Datastore.AllocateSpace Datastore.Audit
    SDN.Allocate SDN.Audit SDN.Use Realm.Allocate User.Modify Group.Allocate
    Realm.AllocateUser Pool.Allocate Pool.Audit Mapping.Modify Mapping.Use Mapping.Audit
    Permissions.Modify
    """
)

# pve-storage PVE/Storage/DirPlugin.pm plugindata (the directory plugin has every type).
_CONTENT_TYPES = frozenset(
    ["images", "rootdir", "vztmpl", "iso", "backup", "snippets", "none", "import"]
)


def _verify_content(text: str) -> str:
    """pve-storage ``PVE/Storage/Plugin.pm`` ``verify_content``."""
    if text not in _CONTENT_TYPES:
        raise die(f"invalid content type '{text}'")
    return text


def _verify_dir_override(text: str) -> str:
    """pve-storage ``PVE/Storage/Plugin.pm`` ``verify_dir_override``."""
    # PVE's ``([^.]*(?:\.?[^.]+)+)`` is: not empty, no "..", not ending in "."; checked
    # directly, since Python's engine backtracks exponentially on that nested quantifier.
    match = regex(r"^([a-z]+)=(.*)\Z", re.DOTALL).search(text)
    relative = match.group(2) if match is not None else ""
    if match is None or not relative or ".." in relative or relative.endswith("."):
        raise die(f"invalid override '{text}'")
    if match.group(1) not in _CONTENT_TYPES:
        raise die(f"invalid content type '{match.group(1)}'")
    if len(relative) < 1023 and all(len(part) < 255 for part in perl_split(relative, "/")):
        return text
    raise die(f"invalid override '{text}'")


def _is_host_and_port(text: str) -> bool:
    """pve-common ``PVE/Tools.pm`` ``parse_host_and_port``."""
    host = r"[a-zA-Z0-9\-.]+"
    return (
        matches(rf"^({IPV4_RE}|{host})(?::(\d+))?$", text)
        or matches(rf"^\[({IPV6_RE}|{IPV4_RE}|{host})\](?::(\d+))?$", text)
        or matches(rf"^({IPV6_RE})(?:\.(\d+))?$", text)
    )


def _verify_volume_id(text: str) -> str:
    """pve-storage ``PVE/Storage/Plugin.pm`` ``parse_volume_id``: ``storage:volname``."""
    if not matches(r"^([a-z][a-z0-9\-\_\.]*[a-z0-9]):(.+)$", text, re.IGNORECASE):
        raise die(f"unable to parse volume ID '{text}'")
    return text


def _verify_volume_id_or_absolute_path(text: str) -> str:
    """qemu-server ``PVE/QemuServer.pm`` ``verify_volume_id_or_absolute_path``."""
    return text if text.startswith("/") else _verify_volume_id(text)


def _verify_volume_id_or_qm_path(text: str) -> str:
    """qemu-server ``verify_volume_id_or_qm_path``: also ``none`` and ``cdrom``."""
    return text if text in ("none", "cdrom") else _verify_volume_id_or_absolute_path(text)


def _verify_lxc_mp_string(text: str) -> str:
    """pve-container ``PVE/LXC/Config.pm`` ``verify_lxc_mp_string``: no ``.``/``..`` parts."""
    if matches(r"/\.\.?/", text) or matches(r"/\.\.?$", text) or matches(r"^\.\./", text):
        raise die(f"{text} contains illegal character sequences")
    return text


def _verify_lxc_dev_string(text: str) -> str:
    """pve-container ``PVE/LXC/Config.pm`` ``verify_lxc_dev_string``: under ``/dev/``."""
    if matches(r"/\.\.?(?:/|$)", text) or not matches(r"^/dev/", text):
        raise die(f"{text} is not a valid device path")
    return text


def _verify_ip_with_ll_iface(text: str) -> str:
    """pve-container ``verify_ip_with_ll_iface``: an IP, or ``fe80::...%iface``."""
    match = regex(r"^(fe80:[^%]+)%(.*)$").search(text)
    if match is not None and is_ip(match.group(1)) and _is_iface(match.group(2)):
        return match.group(1)
    return _verify_ip(text)


def _is_iface(text: str) -> bool:
    return matches(r"^[a-z][a-z0-9_]{1,20}([:\.]\d+)?$", text, re.IGNORECASE)


def _verify_cpuset(text: str) -> str:
    """qemu-server ``pve_verify_cpuset`` via pve-common ``PVE/CpuSet.pm`` ``parse_cpuset``."""
    for part in perl_split(text, ","):
        match = regex(r"^\s*(\d+)(?:-(\d+))?\s*$").search(part)
        if match is None or int(match.group(2) or match.group(1)) < int(match.group(1)):
            raise die("unable to parse cpuset option")
    return text


def _verify_hotplug(text: str) -> str:
    """qemu-server ``parse_hotplug_features`` (its die text reaches the client as is)."""
    if text in ("0", "1"):
        return text
    for feature in split_list(text):
        if not matches(r"^(network|disk|cpu|memory|usb|cloudinit)$", feature):
            raise die(f"invalid hotplug feature '{feature}'")
    return text


# qemu-server PVE/QemuServer/Drive.pm ($MAX_IDE_DISKS 4, $MAX_SCSI_DISKS 31,
# $MAX_VIRTIO_DISKS 16, $MAX_SATA_DISKS 6) and PVE/QemuServer.pm ($MAX_NETS 32), USB.pm
# ($MAX_USB_DEVICES 14), PCI.pm ($MAX_HOSTPCI_DEVICES 16).
_DRIVE_LIMITS = {"ide": 4, "scsi": 31, "virtio": 16, "sata": 6}
_BOOT_DEVICE_LIMITS = {**_DRIVE_LIMITS, "net": 32, "usb": 14, "hostpci": 16}


def _indexed_name(text: str, limits: Mapping[str, int]) -> bool:
    match = regex(r"^([a-z]+)(0|[1-9]\d*)$").fullmatch(text)
    return match is not None and int(match.group(2)) < limits.get(match.group(1), 0)


def _verify_bootdisk(text: str) -> str:
    """qemu-server ``Drive.pm`` ``verify_bootdisk`` (``is_valid_drivename``)."""
    if not (_indexed_name(text, _DRIVE_LIMITS) or text in ("efidisk0", "tpmstate0")):
        raise die(f"invalid boot disk '{text}'")
    return text


def _verify_bootdev(text: str) -> str:
    """qemu-server ``PVE/QemuServer.pm`` ``verify_bootdev``: drives, NICs, USB, PCI."""
    if not _indexed_name(text, _BOOT_DEVICE_LIMITS):
        raise die(f"invalid boot device '{text}'")
    return text


def _verify_phys_bits(text: str) -> str:
    """qemu-server ``CPUConfig.pm`` ``parse_phys_bits``."""
    if not matches(r"^(host|\d{1,2})$", text) or (text.isdigit() and not 8 <= int(text) <= 64):
        raise die("value must be an integer between 8 and 64 or 'host'")
    return text


def _verify_replication_job_id(text: str) -> str:
    """pve-guest-common ``PVE/ReplicationConfig.pm`` ``parse_replication_job_id``."""
    match = regex(r"^(\d+)-(\d+)$").search(text)
    if match is None:
        raise die(f"invalid replication job id '{text}'")
    if int(match.group(1)) < 100:
        raise die(f"invalid replication job id '{text}' (guest IDs < 100 are reserved)")
    return text


def _verify_day_of_week(text: str) -> str:
    """pve-manager ``PVE/API2/Backup.pm`` ``verify_day_of_week``."""
    if not matches(r"^(mon|tue|wed|thu|fri|sat|sun)$", text):
        raise die(f"invalid day '{text}'")
    return text


def _verify_subnet_id(text: str) -> str:
    """pve-network ``SDN/SubnetPlugin.pm`` ``parse_sdn_subnet_id``: CIDR or zone-ip-mask."""
    if "/" in text:
        cidr = text
    else:
        parts = [*text.split("-"), "", ""]
        cidr = f"{parts[1]}/{parts[2]}"
    if not (_is_cidr_v4(cidr) or _is_cidr_v6(cidr)):
        raise die("value does not look like a valid CIDR network")
    return text


def _verify_bgp_rt(text: str) -> str:
    """pve-network ``SDN/Zones/EvpnPlugin.pm`` ``pve_verify_sdn_bgp_rt``."""
    match = regex(r"^(\d+):(\d+)$").search(text)
    if match is None or max(int(match.group(1)), int(match.group(2))) > 4294967295:
        raise die("value does not look like a valid bgp route-target")
    return text


# pve-network SDN ID formats as registered before commit "sdn: Remove unneeded registered
# formats" (2026), i.e. in the releases the bundled schemas describe.
_SDN_ID = r"^[a-z][a-z0-9]*[a-z0-9]$"


def _sdn_id_verifier(kind: str, longest: int | None = None, pattern: str = _SDN_ID) -> Verifier:
    def verify(text: str) -> str:
        if not matches(pattern, text, re.IGNORECASE):
            raise die(f"{kind} ID '{text}' contains illegal characters")
        if longest is not None and len(text) > longest:
            raise die(f"{kind} ID '{text}' can't be more length than {longest} characters")
        return text

    return verify


def _verify_command_batch(text: str) -> Any:
    """pve-manager ``PVE/API2/Nodes.pm`` ``verify_command_batch``: a JSON list of calls."""
    try:
        commands = json.loads(text)
    except ValueError as error:
        raise FormatError(f"commands param did not contain valid JSON: {error}\n") from error
    errors: Errors = {}
    check_prop(commands, _COMMAND_BATCH_SCHEMA, "", errors)
    if errors:
        prefix = "commands is not a valid array of commands: 400 Parameter verification failed.\n"
        raise FormatError(prefix + "".join(f"{key}: {text}\n" for key, text in errors.items()))
    return commands


_COMMAND_BATCH_SCHEMA: Schema = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "path": {"type": "string", "optional": 0},
            "method": {"type": "string", "pattern": "(GET|POST|PUT|DELETE)", "optional": 0},
            "args": {"type": "object", "optional": 1},
        },
    },
}


def _verify_ha_resource_or_vm_id(text: str) -> str:
    if not matches(r"^([a-z]+:\S+|\d+)$", text):
        raise die("value does not look like a valid ha resource id")
    return text


_NODE_NAME = r"^([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)$"
_HA_NODE = r"^([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)(:\d+)?$"
_ACME_DOMAIN = r"^[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9][a-z0-9_-]*)+$"
_ACME_ALIAS = r"^[a-z0-9_][a-z0-9_-]*(?:\.[a-z0-9_][a-z0-9_-]*)+$"


register_code_formats(
    {
        # pve-common src/PVE/JSONSchema.pm
        "string": lambda text: None,
        "urlencoded": _regex_verifier(r"^[-%a-zA-Z0-9_.!~*'()]*$", "invalid urlencoded string: {}"),
        "pve-configid": _regex_verifier(
            r"^[a-z][a-z0-9_-]+$", "invalid configuration ID '{}'", re.IGNORECASE
        ),
        "pve-storage-id": _verify_id("storage"),
        "acme-plugin-id": _verify_id("ACME plugin"),
        "pve-bridge-id": _regex_verifier(r"^[-_.\w\d]+$", "invalid bridge ID '{}'"),
        "pve-vmid": _regex_verifier(r"^[1-9][0-9]{2,8}$", "value does not look like a valid VM ID"),
        "pve-node": _regex_verifier(_NODE_NAME, "value does not look like a valid node name"),
        "storage-pair": _verify_id_pair("pve-storage-id"),
        "bridge-pair": _verify_id_pair("pve-bridge-id"),
        "mac-addr": _regex_verifier(
            r"^[a-f0-9][02468ace](?::[a-f0-9]{2}){5}$",
            "value does not look like a valid unicast MAC address",
            re.IGNORECASE,
        ),
        "ipv4": _regex_verifier(
            rf"^(?:{IPV4_RE})$", "value does not look like a valid IPv4 address"
        ),
        "ipv6": _regex_verifier(
            rf"^(?:{IPV6_RE})$", "value does not look like a valid IPv6 address"
        ),
        "ip": _verify_ip,
        "ldap-simple-attr": _verify_ldap_attr,
        "ipv4mask": _condition_verifier(
            lambda text: text in _IPV4_MASKS, "value does not look like a valid IP netmask"
        ),
        "CIDRv6": _condition_verifier(
            _is_cidr_v6, "value does not look like a valid IPv6 CIDR network"
        ),
        "CIDRv4": _condition_verifier(
            _is_cidr_v4, "value does not look like a valid IPv4 CIDR network"
        ),
        "CIDR": _verify_cidr,
        "pve-ipv4-config": _condition_verifier(
            lambda text: matches(r"^(?:dhcp|manual)$", text) or _is_cidr_v4(text),
            "value does not look like a valid ipv4 network configuration",
        ),
        "pve-ipv6-config": _condition_verifier(
            lambda text: matches(r"^(?:auto|dhcp|manual)$", text) or _is_cidr_v6(text),
            "value does not look like a valid ipv6 network configuration",
        ),
        "email": _regex_verifier(f"^{_EMAIL}$", "value does not look like a valid email address"),
        "email-or-username": _condition_verifier(
            lambda text: matches(f"^{_EMAIL}$", text) or matches(f"^{_EMAIL_USER}$", text),
            "value does not look like a valid email address or user name",
        ),
        "dns-name": _condition_verifier(_is_dns_name, "value does not look like a valid DNS name"),
        "timezone": _verify_timezone,
        "pve-iface": _condition_verifier(_is_iface, "invalid network interface name '{}'"),
        "pve-vlan-id-or-range": _verify_vlan_id_or_range,
        "address": _condition_verifier(
            lambda text: is_ip(text) or _is_dns_name(text),
            "value does not look like a valid address: {}",
        ),
        "disk-size": _verify_disk_size,
        "pve-startup-order": _verify_startup_order,
        "pve-tag": _regex_verifier(
            r"^[a-z0-9_][a-z0-9_\-\+\.]*$", "invalid characters in tag", re.IGNORECASE
        ),
        "pve-tfa-secret": _verify_tfa_secret,
        "pve-task-status-type": _regex_verifier(
            r"^(ok|error|warning|unknown)$", "invalid status '{}'", re.IGNORECASE
        ),
        # pve-common src/PVE/Certificate.pm
        "pem-certificate": _pem_verifier("CERTIFICATE"),
        "pem-certificate-chain": _pem_verifier("CERTIFICATE", multiple=True),
        "pem-string": _pem_verifier(".*?"),
        # pve-ha-manager src/PVE/HA/Tools.pm (pve-ha-group-node: releases before HA rules)
        "pve-ha-resource-id": _regex_verifier(
            r"^[a-z]+:\S+$", "value does not look like a valid ha resource id"
        ),
        "pve-ha-resource-or-vm-id": _verify_ha_resource_or_vm_id,
        "pve-ha-node": _regex_verifier(_HA_NODE, "value does not look like a valid ha node"),
        "pve-ha-group-node": _regex_verifier(
            _HA_NODE, "value does not look like a valid ha group node"
        ),
        # pve-guest-common src/PVE/Mapping/Dir.pm, src/PVE/ReplicationConfig.pm
        "pve-storage-path-in-property-string": _regex_verifier(
            r"^/[^;,=\(\)]+",
            "Value does not look like a valid absolute path."
            " These symbols are currently not allowed in path: ;,=()",
        ),
        "pve-replication-job-id": _verify_replication_job_id,
        # pve-manager PVE/Status/Graphite.pm, PVE/API2/Nodes.pm, PVE/API2/Backup.pm,
        # PVE/NodeConfig.pm; pve-cluster src/PVE/DataCenterConfig.pm
        "graphite-path": _condition_verifier(
            _is_dns_name, "value does not look like a valid graphite path"
        ),
        "pve-command-batch": _verify_command_batch,
        "pve-day-of-week": _verify_day_of_week,
        "pve-acme-domain": _regex_verifier(
            _ACME_DOMAIN, "value '{}' does not look like a valid domain name!", re.IGNORECASE
        ),
        "pve-acme-alias": _regex_verifier(
            _ACME_ALIAS, "value '{}' does not look like a valid alias name!", re.IGNORECASE
        ),
        "mac-prefix": _regex_verifier(
            r"^[a-f0-9][02468ace](?::[a-f0-9]{2}){0,2}(?::[a-f0-9]?)?$",
            "value is not a valid unicast MAC address prefix",
            re.IGNORECASE,
        ),
        # pve-storage src/PVE/Storage/Plugin.pm
        "pve-storage-path": _regex_verifier(
            r"^/[^;\(\)]+", "value does not look like a valid absolute path"
        ),
        "pve-storage-server": _condition_verifier(
            lambda text: is_ip(text) or _is_dns_name(text),
            "value does not look like a valid server name or IP address",
        ),
        "pve-storage-vgname": _regex_verifier(
            r"^[a-z0-9][a-z0-9\-\_\.]*[a-z0-9]$",
            "lvm name '{}' contains illegal characters",
            re.IGNORECASE,
        ),
        "pve-storage-portal-dns": _condition_verifier(
            _is_host_and_port, "value does not look like a valid portal address"
        ),
        "pve-storage-content": _verify_content,
        "pve-storage-format": _regex_verifier(r"^(raw|qcow2|vmdk|subvol)$", "invalid format '{}'"),
        "pve-storage-options": _regex_verifier(r"^\S+$", "invalid options '{}'"),
        "pve-volume-id": _verify_volume_id,
        "pve-dir-override": _verify_dir_override,
        # pve-access-control src/PVE/AccessControl.pm, src/PVE/Auth/Plugin.pm
        "pve-tokenid": _regex_verifier(
            rf"^(({_USER})\@({_REALM}))!({_REALM})$",
            "value '{}' does not look like a valid token ID",
        ),
        "pve-groupid": _regex_verifier(
            r"^[A-Za-z0-9\.\-_]+$", "group name '{}' contains invalid characters"
        ),
        "pve-roleid": _regex_verifier(
            r"^[A-Za-z0-9\.\-_]+$", "role name '{}' contains invalid characters"
        ),
        "pve-poolid": _verify_poolid,
        "pve-priv": _condition_verifier(lambda text: text in _PRIVILEGES, "invalid privilege '{}'"),
        "pve-realm": _regex_verifier(f"^{_REALM}$", "value does not look like a valid realm"),
        "pve-userid": _verify_userid,
        # pve-container src/PVE/LXC/Config.pm
        "lxc-ip-with-ll-iface": _verify_ip_with_ll_iface,
        "pve-ct-timezone": _verify_ct_timezone,
        "pve-lxc-mp-string": _verify_lxc_mp_string,
        "pve-lxc-dev-string": _verify_lxc_dev_string,
        # qemu-server src/PVE/QemuServer.pm, QemuServer/Drive.pm, QemuServer/CPUConfig.pm
        "pve-cpuset": _verify_cpuset,
        "pve-volume-id-or-qm-path": _verify_volume_id_or_qm_path,
        "pve-volume-id-or-absolute-path": _verify_volume_id_or_absolute_path,
        "pve-qm-bootdev": _verify_bootdev,
        "pve-qm-bootdisk": _verify_bootdisk,
        "pve-hotplug-features": _verify_hotplug,
        "pve-phys-bits": _verify_phys_bits,
        # pve-network src/PVE/Network/SDN/ (Controllers/IsisPlugin.pm, Zones/EvpnPlugin.pm,
        # SubnetPlugin.pm, Fabrics.pm; the *-id formats of Zones/, VnetPlugin.pm, Controllers/,
        # Dns/, Ipams/ as the bundled releases registered them)
        "pve-sdn-isis-net": _regex_verifier(
            r"^[a-fA-F0-9]{2}(\.[a-fA-F0-9]{4}){3,9}\.[a-fA-F0-9]{2}$",
            "value does not look like a valid isis net",
        ),
        "pve-sdn-bgp-rt": _verify_bgp_rt,
        "pve-sdn-subnet-id": _verify_subnet_id,
        "pve-sdn-fabric-id": _regex_verifier(
            r"^[a-zA-Z0-9][a-zA-Z0-9-]{0,6}[a-zA-Z0-9]?$",
            "Fabric ID '{}' contains illegal characters",
            re.IGNORECASE,
        ),
        "pve-sdn-zone-id": _sdn_id_verifier("zone", 8),
        "pve-sdn-vnet-id": _sdn_id_verifier("vnet", 8),
        "pve-sdn-controller-id": _sdn_id_verifier("controller", 64, r"^[a-z][a-z0-9_-]*[a-z0-9]$"),
        "pve-sdn-dns-id": _sdn_id_verifier("dns"),
        "pve-sdn-ipam-id": _sdn_id_verifier("ipam"),
    }
)
