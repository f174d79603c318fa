"""Valid (and deliberately invalid) values for any parameter of the Proxmox VE API schema.

The conformance tests build a request for every method from these: the path variables,
every required parameter, and each optional one, so that a validator that refuses a valid
request, or accepts an invalid one, shows up for the method and parameter concerned.
Values are strings, as a form-encoded request carries them; arrays are lists of strings.
"""

import re
from collections.abc import Iterator, Mapping
from typing import Any

from labsmith.sim.formats import (
    FormatError,
    check_format,
    is_checked_format,
    named_property_format,
    parse_property_string,
    perl_truthy,
)
from labsmith.sim.perl_regex import compile_anchored
from labsmith.sim.schema import INDEXED_LIMITS, Method

Schema = Mapping[str, Any]

# Parameters whose meaning calls for a particular value (a node that the seeded simulator
# state has, a VM ID in range).
NAME_SAMPLES: Mapping[str, str] = {
    "node": "pve1",
    "target": "pve2",
    "vmid": "100",
    "newid": "101",
}

_PEM_BODY = "MIIBszCCAVmgAwIBAgIUQ2FmZQ==\n"
_CERTIFICATE = f"-----BEGIN CERTIFICATE-----\n{_PEM_BODY}-----END CERTIFICATE-----\n"

# A valid value of every named format with a checker (suffix-less names; "-list" and "-opt"
# take the same single value).
FORMAT_SAMPLES: Mapping[str, str] = {
    "string": "sample",
    "urlencoded": "sample%20text",
    "pve-configid": "sample",
    "pve-storage-id": "local-zfs",
    "acme-plugin-id": "standalone",
    "pve-bridge-id": "vmbr0",
    "pve-vmid": "100",
    "pve-node": "pve1",
    "storage-pair": "local:local-zfs",
    "bridge-pair": "vmbr0:vmbr1",
    "mac-addr": "BC:24:11:00:00:01",
    "ipv4": "10.0.0.1",
    "ipv6": "fd00::1",
    "ip": "10.0.0.1",
    "ldap-simple-attr": "uid",
    "ipv4mask": "255.255.255.0",
    "CIDRv6": "fd00::/64",
    "CIDRv4": "10.0.0.0/24",
    "CIDR": "10.0.0.0/24",
    "pve-ipv4-config": "10.0.30.20/24",
    "pve-ipv6-config": "auto",
    "email": "root@example.com",
    "email-or-username": "root@example.com",
    "dns-name": "pve1.example.com",
    "timezone": "Europe/Vienna",
    "pve-iface": "eth0",
    "pve-vlan-id-or-range": "10",
    "address": "10.0.0.1",
    "disk-size": "32G",
    "pve-startup-order": "order=1",
    "pve-tag": "lab",
    "pve-tfa-secret": "v2-0x0123456789abcdef",
    "pve-task-status-type": "ok",
    "pve-calendar-event": "mon..fri 02:00",
    "pem-certificate": _CERTIFICATE,
    "pem-certificate-chain": _CERTIFICATE,
    "pem-string": f"-----BEGIN PRIVATE KEY-----\n{_PEM_BODY}-----END PRIVATE KEY-----\n",
    "pve-ha-resource-id": "vm:100",
    "pve-ha-resource-or-vm-id": "vm:100",
    "pve-ha-node": "pve1:1",
    "pve-ha-group-node": "pve1",
    "pve-storage-path-in-property-string": "/srv/share",
    "pve-replication-job-id": "100-0",
    "graphite-path": "proxmox",
    "pve-command-batch": '[{"path": "/version", "method": "GET"}]',
    "pve-day-of-week": "mon",
    "pve-acme-domain": "pve1.example.com",
    "pve-acme-alias": "alias.example.com",
    "mac-prefix": "BC:24:11",
    "pve-storage-path": "/srv/storage",
    "pve-storage-server": "10.0.0.5",
    "pve-storage-vgname": "pve",
    "pve-storage-portal-dns": "10.0.0.5:3260",
    "pve-storage-content": "images",
    "pve-storage-format": "raw",
    "pve-storage-options": "noatime",
    "pve-volume-id": "local:iso/debian.iso",
    "pve-dir-override": "images=vm-images",
    "pve-tokenid": "root@pam!labsmith",
    "pve-groupid": "admins",
    "pve-roleid": "PVEAdmin",
    "pve-poolid": "lab",
    "pve-priv": "VM.Audit",
    "pve-realm": "pam",
    "pve-userid": "root@pam",
    "IPorCIDR": "10.0.0.0/24",
    "IPorCIDRorAlias": "10.0.0.0/24",
    "pve-fw-conntrack-helper": "ftp",
    "pve-fw-sport-spec": "1024:65535",
    "pve-fw-dport-spec": "22",
    "pve-fw-addr-spec": "10.0.0.0/24",
    "pve-fw-protocol-spec": "tcp",
    "pve-fw-icmp-type-spec": "echo-request",
    "lxc-ip-with-ll-iface": "10.0.0.1",
    "pve-ct-timezone": "host",
    "pve-lxc-mp-string": "/srv/data",
    "pve-lxc-dev-string": "/dev/dri/renderD128",
    "pve-cpuset": "0-3",
    "pve-volume-id-or-qm-path": "local-zfs:32",
    "pve-volume-id-or-absolute-path": "local:iso/debian.iso",
    "pve-qm-bootdev": "scsi0",
    "pve-qm-bootdisk": "scsi0",
    "pve-hotplug-features": "network,disk,usb",
    "pve-phys-bits": "host",
    "pve-sdn-isis-net": "49.0001.1921.6800.1002.00",
    "pve-sdn-bgp-rt": "65000:100",
    "pve-sdn-subnet-id": "zone1-10.0.0.0-24",
    "pve-sdn-fabric-id": "fabric1",
    "pve-sdn-zone-id": "zone1",
    "pve-sdn-vnet-id": "vnet1",
    "pve-sdn-controller-id": "evpn1",
    "pve-sdn-dns-id": "dns1",
    "pve-sdn-ipam-id": "ipam1",
    "pve-qm-hostpci": "mapping=rtx5090,pcie=1",
    "pve-qm-ipconfig": "ip=10.0.30.20/24,gw=10.0.30.1",
    "pve-qm-rng": "/dev/urandom",
    "pve-qm-watchdog": "i6300esb",
    "pve-qm-cicustom": "user=local:snippets/user.yaml",
    "pve-qm-boot": "order=scsi0;net0",
    "pve-qm-smbios1": "uuid=5b0a8a3e-7f4c-4d42-9b6e-0a1b2c3d4e5f",
    "pve-qm-ide": "local:iso/debian.iso,media=cdrom",
    "pve-qemu-sev-fmt": "std",
    "pve-qemu-tdx-fmt": "tdx,attestation=1",
    "pve-vm-cpu-conf": "host",
    "backup-fleecing": "enabled=1,storage=local-zfs",
    "backup-performance": "max-workers=16",
    "prune-backups": "keep-last=3",
    "realm-sync-options": "scope=users",
    "pve-tfa-config": "type=oath",
    "proxmox-remote": "host=10.0.0.9,apitoken=PVEAPIToken=root@pam!sim=secret",
    "bwlimit": "default=1000",
    "pve-node-location": "latitude=48.2,longitude=16.4",
    "pve-sdn-dhcp-range": "start-address=10.0.0.100,end-address=10.0.0.200",
}

# Values that a format refuses where the generic bad value would pass.
BAD_FORMAT_SAMPLES: Mapping[str, str] = {
    "pve-lxc-mp-string": "/srv/../etc",
}
_BAD_VALUE = "!bad value!"
_BAD_PROPERTY_STRING = "no-such-key=1"

# Schema patterns that none of the generic candidates below satisfies.
PATTERN_SAMPLES: Mapping[str, str] = {
    "(?:[a-fA-F0-9]{8}(?:-[a-fA-F0-9]{4}){3}-[a-fA-F0-9]{12}|[01])": "1",
    "([A-Fa-f0-9]{2}:){31}[A-Fa-f0-9]{2}": ":".join(["AB"] * 32),
    "[a-fA-F0-9]{8}(?:-[a-fA-F0-9]{4}){3}-[a-fA-F0-9]{12}": "5b0a8a3e-7f4c-4d42-9b6e-0a1b2c3d4e5f",
}
_CANDIDATES = (
    "sample",
    "ide0",
    "a1",
    "100",
    "1",
    "0",
    "/dev/ttyS0",
    "/dev/parport0",
    "ceph.mon",
    "mon",
    "0644",
    "10:30",
    "10/second",
    "2026-01-01",
    "now",
    "01:00.0",
    "0000:01:00",
    "0000:01:00.0",
    "10de:2b85",
    "1-1.2",
    "0x0123456789abcdef",
    "net0=1500",
    "key=value",
    "docker.io/library/debian:12",
    "https://example.com/x",
    "http://example.com/x",
    "/var/tmp/pveupload-0123abcd",  # noqa: S108 - a sample of the schema pattern, not a file
    "100-0",
    "pve1c-0123456789",
    "acl;entry",
    "discard;noatime",
    "lab;prod",
    "lab:ff0000",
    "auto",
    "q35",
    "root@pam",
    "1M",
    "10",
)


def sample_value(
    name: str, schema: Schema, *, instance_type: Any = None, every_key: bool = False
) -> Any:
    """A value of parameter ``name`` that PVE's schema check accepts.

    ``every_key``: a property string sets every key of its format, not only the required.
    """
    variant = _variant(schema, instance_type)
    if variant is not None:
        return sample_value(name, variant, every_key=every_key)
    fmt = schema.get("format")
    if isinstance(fmt, Mapping) and schema.get("type") == "string":
        return _property_string_sample(fmt, every_key=every_key)
    type_ = schema.get("type")
    if type_ == "array":
        items = schema.get("items")
        return [
            sample_value(name, items if isinstance(items, Mapping) else {}, every_key=every_key)
        ]
    if type_ == "boolean":
        return "1"
    if name in NAME_SAMPLES and _accepts(schema, NAME_SAMPLES[name]):
        return NAME_SAMPLES[name]
    if schema.get("enum"):
        return str(schema["enum"][0])
    if type_ in ("integer", "number"):
        return _number_sample(schema)
    return _string_sample(schema)


def invalid_value(name: str, schema: Schema) -> Any:
    """A value refused for ``name`` (with its name in the errors), or None if nothing in the
    schema refuses values: no enum, limit, pattern, length or checked format."""
    if schema.get("type") == "array":
        items = schema.get("items")
        bad = invalid_value(name, items) if isinstance(items, Mapping) else None
        return None if bad is None else [bad]
    candidates = list(_invalid_candidates(schema))
    return candidates[0] if candidates else None


def invalid_property_strings(name: str, schema: Schema) -> Iterator[tuple[str, str]]:
    """For a property-string parameter: (sub-key, value) pairs, each a valid sample string
    with that one sub-key set to a value its own schema refuses."""
    fmt = schema.get("format")
    if isinstance(fmt, str):
        fmt = named_property_format(fmt)
    if not isinstance(fmt, Mapping):
        return
    valid = parse_property_string(fmt, str(sample_value(name, schema)))
    for key, sub in fmt.items():
        bad = None if sub.get("alias") else invalid_value(key, sub)
        if isinstance(bad, str) and bad:
            parts = {**valid, key: bad}
            yield key, ",".join(f"{part}={value}" for part, value in parts.items())


def path_values(method: Method) -> dict[str, str]:
    """Sample values of the path template's variables."""
    return {
        name: str(sample_value(name, method.properties.get(name, {"type": "string"})))
        for name in method.path_parameters
    }


def concrete_path(method: Method) -> str:
    """The method's path template with sample values for its variables."""
    values = path_values(method)
    return re.sub(r"\{([\w-]+)\}", lambda match: values[match.group(1)], method.path)


def concrete_names(method: Method, name: str) -> tuple[str, ...]:
    """``net[n]`` -> the first and the last name PVE accepts; other names as they are."""
    if not name.endswith("[n]"):
        return (name,)
    family = name[:-3]
    last = INDEXED_LIMITS.get(family, 1) - 1
    return (f"{family}0",) if last == 0 else (f"{family}0", f"{family}{last}")


def required_request(method: Method) -> dict[str, Any]:
    """The required non-path parameters (and what they require), with sample values."""
    request: dict[str, Any] = {}
    for name in _body_names(method):
        if not perl_truthy(method.properties[name].get("optional")):
            _add(method, request, name)
    return request


def full_request(method: Method) -> dict[str, Any]:
    """Every non-path parameter: the required ones and each optional one (``[n]`` ones at
    their first and last index), property strings with every key of their format."""
    request = required_request(method)
    for name in _body_names(method):
        for concrete in concrete_names(method, name):
            _add(method, request, concrete, every_key=True)
    return request


def checkable_parameters(method: Method) -> list[str]:
    """Parameters (path variables included) for which :func:`invalid_value` has a value."""
    return [
        name
        for name, schema in method.properties.items()
        if invalid_value(name, schema) is not None
    ]


def _body_names(method: Method) -> Iterator[str]:
    path_names = set(method.path_parameters)
    return (name for name in method.properties if name not in path_names)


def _add(method: Method, request: dict[str, Any], name: str, *, every_key: bool = False) -> None:
    if name in request:
        return
    schema = method.parameter(name) or {}
    request[name] = None  # a placeholder: two parameters may require each other
    requires = schema.get("requires")
    if isinstance(requires, str) and requires not in method.path_parameters:
        _add(method, request, requires)
    instance = request.get(str(schema.get("type-property")))
    request[name] = sample_value(name, schema, instance_type=instance, every_key=every_key)


def _variant(schema: Schema, instance_type: Any) -> Schema | None:
    """The ``oneOf`` alternative for this instance type (the first without one)."""
    alternatives = schema.get("oneOf") or []
    for alternative in alternatives:
        if instance_type is None or instance_type in alternative.get("instance-types", []):
            return {**alternative, "optional": 1}
    return alternatives[0] if alternatives else None


def _number_sample(schema: Schema) -> str:
    lowest, highest = schema.get("minimum"), schema.get("maximum")
    fmt = str(schema.get("format") or "")
    if fmt in FORMAT_SAMPLES and _accepts(schema, FORMAT_SAMPLES[fmt]):
        return FORMAT_SAMPLES[fmt]
    if lowest is not None:
        return _number_text(lowest)
    if highest is not None and highest < 1:
        return _number_text(highest)
    return "1"


def _number_text(number: Any) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def _string_sample(schema: Schema) -> str:
    fmt = schema.get("format")
    if fmt:
        base = re.sub(r"-(list|opt)$", "", str(fmt))
        if base in FORMAT_SAMPLES:
            return FORMAT_SAMPLES[base]
    pattern = schema.get("pattern")
    if pattern:
        return _pattern_sample(str(pattern))
    return _fit_length("sample", schema)


def _fit_length(text: str, schema: Schema) -> str:
    longest = schema.get("maxLength")
    shortest = schema.get("minLength")
    if longest is not None:
        text = text[: int(longest)]
    if shortest is not None and len(text) < int(shortest):
        text = text + "a" * (int(shortest) - len(text))
    return text


def _pattern_sample(pattern: str) -> str:
    if pattern in PATTERN_SAMPLES:
        return PATTERN_SAMPLES[pattern]
    compiled = compile_anchored(pattern)
    for candidate in _CANDIDATES:
        if compiled.search(candidate):
            return candidate
    raise AssertionError(f"no sample value matches the schema pattern {pattern!r}")


def _property_string_sample(fmt: Mapping[str, Schema], *, every_key: bool = False) -> str:
    """Every required key (or every key), else the default or first key, as ``key=value``."""
    keys = [
        key
        for key, sub in fmt.items()
        if not sub.get("alias") and (every_key or not perl_truthy(sub.get("optional")))
    ]
    if not keys:
        fallback = [key for key, sub in fmt.items() if sub.get("default_key")]
        keys = fallback or [next(key for key, sub in fmt.items() if not sub.get("alias"))]
    parts = {key: str(sample_value(key, fmt[key])) for key in keys}
    for key in list(parts):
        requires = fmt[key].get("requires")
        if isinstance(requires, str) and requires not in parts:
            parts[requires] = str(sample_value(requires, fmt[requires]))
    return ",".join(f"{key}={value}" for key, value in parts.items())


def _accepts(schema: Schema, text: str) -> bool:
    """Whether ``text`` passes the schema's limits, pattern and format."""
    pattern = schema.get("pattern")
    if pattern and not compile_anchored(str(pattern)).search(text):
        return False
    if schema.get("format"):
        try:
            check_format(schema["format"], text)
        except FormatError:
            return False
    return _within_limits(schema, text)


def _within_limits(schema: Schema, text: str) -> bool:
    if schema.get("maxLength") is not None and len(text) > int(schema["maxLength"]):
        return False
    if not re.fullmatch(r"[+-]?\d+(\.\d+)?", text):
        return True
    number = float(text)
    lowest, highest = schema.get("minimum"), schema.get("maximum")
    return (lowest is None or number >= float(lowest)) and (
        highest is None or number <= float(highest)
    )


def _invalid_candidates(schema: Schema) -> Iterator[str]:
    """Values that one of the schema's own checks refuses, most specific first."""
    if schema.get("enum"):
        yield "not-in-the-enum"
    if schema.get("minimum") is not None:
        yield _number_text(float(schema["minimum"]) - 1)
    if schema.get("maximum") is not None:
        yield _number_text(float(schema["maximum"]) + 1)
    fmt = schema.get("format")
    if fmt and is_checked_format(fmt):
        yield _bad_format_value(fmt)
    pattern = schema.get("pattern")
    if pattern:
        yield from (text for text in ("!!", " ", "") if not compile_anchored(pattern).search(text))
    if schema.get("maxLength") is not None:
        yield "a" * (int(schema["maxLength"]) + 1)


def _bad_format_value(fmt: Any) -> str:
    if isinstance(fmt, Mapping):
        return _BAD_PROPERTY_STRING
    base = re.sub(r"-(list|opt)$", "", str(fmt))
    return BAD_FORMAT_SAMPLES.get(base, _BAD_VALUE)
