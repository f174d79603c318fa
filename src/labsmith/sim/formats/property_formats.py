"""Property-string formats registered by name (``pve-qm-hostpci``, ``pve-qm-ipconfig``, ...)."""

import functools
import re
from collections.abc import Mapping
from typing import Any

from labsmith.sim.formats.base import Schema, die, is_number, perl_truthy, to_number, words
from labsmith.sim.formats.patterns import matches
from labsmith.sim.formats.registry import register_hash_formats

#
# The API dump shows these formats only by name (and typetext); their keys are transcribed
# from the Perl source each comment names. Newer releases add keys, so the tables are the
# union over the bundled versions (a test checks each version's typetext keys against them).

_OPTIONAL_BOOLEAN: Schema = {"type": "boolean", "optional": 1}
_HEX_ID = {"type": "string", "pattern": "(?^:^0x[0-9a-fA-F]{4}$)", "optional": 1}
_PCI_ID = "(?^:(?:[a-f0-9]{4,}:)?[a-f0-9]{2}:[a-f0-9]{2}(?:\\.[a-f0-9])?)"
_BASE64 = {"type": "string", "pattern": "[A-Za-z0-9+\\/]+={0,2}", "optional": 1}
_VOLUME = {"type": "string", "format": "pve-volume-id", "optional": 1}
_KEEP = {"type": "integer", "minimum": 0, "optional": 1}

# qemu-server src/PVE/QemuServer/PCI.pm ($hostpci_fmt)
_HOSTPCI: Schema = {
    "host": {
        "type": "string",
        "default_key": 1,
        "optional": 1,
        "pattern": f"(?^:{_PCI_ID}(;{_PCI_ID})*)",
    },
    "mapping": {"type": "string", "format": "pve-configid", "optional": 1},
    "rombar": _OPTIONAL_BOOLEAN,
    "romfile": {"type": "string", "pattern": "[^,;]+", "optional": 1},
    "pcie": _OPTIONAL_BOOLEAN,
    "x-vga": _OPTIONAL_BOOLEAN,
    "legacy-igd": _OPTIONAL_BOOLEAN,
    "mdev": {"type": "string", "pattern": "[^/\\.:]+", "optional": 1},
    "vendor-id": _HEX_ID,
    "device-id": _HEX_ID,
    "sub-vendor-id": _HEX_ID,
    "sub-device-id": _HEX_ID,
    "driver": {"type": "string", "enum": ["vfio", "keep"], "optional": 1},
}


def _validate_hostpci(device: dict[str, Any]) -> dict[str, Any]:
    """Exactly one of ``host`` and ``mapping``, as qemu-server ``PCI.pm`` ``parse_hostpci``
    requires. PVE applies this when the VM starts; the simulator refuses such a value up front.
    """
    if device.get("host") is not None and device.get("mapping") is not None:
        raise die("Cannot set both 'host' and 'mapping'.")
    if not (perl_truthy(device.get("host")) or perl_truthy(device.get("mapping"))):
        raise die("Either 'host' or 'mapping' must be set.")
    return device


# qemu-server src/PVE/QemuServer/Network.pm ($ipconfig_fmt)
_IPCONFIG: Schema = {
    "ip": {"type": "string", "format": "pve-ipv4-config", "optional": 1},
    "gw": {"type": "string", "format": "ipv4", "optional": 1, "requires": "ip"},
    "ip6": {"type": "string", "format": "pve-ipv6-config", "optional": 1},
    "gw6": {"type": "string", "format": "ipv6", "optional": 1, "requires": "ip6"},
}

# qemu-server src/PVE/QemuServer/RNG.pm ($rng_fmt)
_RNG: Schema = {
    "source": {
        "type": "string",
        "enum": ["/dev/urandom", "/dev/random", "/dev/hwrng"],
        "default_key": 1,
    },
    "max_bytes": {"type": "integer", "optional": 1},
    "period": {"type": "integer", "optional": 1},
}

# qemu-server src/PVE/QemuServer.pm ($watchdog_fmt, $cicustom_fmt, $boot_fmt, $smbios1_fmt)
_WATCHDOG: Schema = {
    "model": {"type": "string", "enum": ["i6300esb", "ib700"], "default_key": 1, "optional": 1},
    "action": {
        "type": "string",
        "enum": ["reset", "shutdown", "poweroff", "pause", "debug", "none"],
        "optional": 1,
    },
}
_CICUSTOM: Schema = {"meta": _VOLUME, "network": _VOLUME, "user": _VOLUME, "vendor": _VOLUME}
_BOOT: Schema = {
    "legacy": {"type": "string", "pattern": "[acdn]{1,4}", "default_key": 1, "optional": 1},
    "order": {"type": "string", "format": "pve-qm-bootdev-list", "optional": 1},
}
_SMBIOS1: Schema = {
    "uuid": {
        "type": "string",
        "pattern": "[a-fA-F0-9]{8}(?:-[a-fA-F0-9]{4}){3}-[a-fA-F0-9]{12}",
        "optional": 1,
    },
    **dict.fromkeys(("version", "serial", "manufacturer", "product", "sku", "family"), _BASE64),
    "base64": _OPTIONAL_BOOLEAN,
}

# qemu-server src/PVE/QemuServer/CPUConfig.pm ($sev_fmt, $tdx_fmt, $cpu_fmt)
_SEV: Schema = {
    "type": {"type": "string", "default_key": 1, "enum": ["std", "es", "snp"], "maxLength": 3},
    "no-debug": _OPTIONAL_BOOLEAN,
    "no-key-sharing": _OPTIONAL_BOOLEAN,
    "allow-smt": _OPTIONAL_BOOLEAN,
    "kernel-hashes": _OPTIONAL_BOOLEAN,
}
_TDX: Schema = {
    "type": {"type": "string", "default_key": 1, "enum": ["tdx"]},
    "attestation": {"type": "boolean"},
    "vsock-cid": {"type": "integer", "minimum": 2, "optional": 1},
    "vsock-port": {"type": "integer", "minimum": 0, "optional": 1},
}
_CPU_FLAG = "([+-])([a-zA-Z0-9\\-_\\.]+)"
_CPU: Schema = {
    "cputype": {"type": "string", "default_key": 1, "optional": 1},
    # An enum of the QEMU binary's models on a real node; refused below for VM configs anyway.
    "reported-model": {"type": "string", "optional": 1},
    "hidden": _OPTIONAL_BOOLEAN,
    "hv-vendor-id": {"type": "string", "pattern": "(?^:[a-zA-Z0-9]{1,12})", "optional": 1},
    "flags": {"type": "string", "pattern": f"(?^:{_CPU_FLAG}(;{_CPU_FLAG})*)", "optional": 1},
    "guest-phys-bits": {"type": "integer", "minimum": 32, "maximum": 64, "optional": 1},
    "phys-bits": {"type": "string", "format": "pve-phys-bits", "optional": 1},
    "level": {"type": "integer", "minimum": 0, "maximum": 4294967295, "optional": 1},
}
# qemu-server CPUConfig.pm: the static $cpu_vendor_list of the 8.x/9.x releases and
# $builtin_models_by_arch. Newer releases read the list from QEMU; their "-vN" variants of
# these models are accepted as well.
_CPU_MODELS = words(
    """
    486 pentium pentium2 pentium3 coreduo core2duo Conroe Penryn Nehalem Nehalem-IBRS
    Westmere Westmere-IBRS SandyBridge SandyBridge-IBRS IvyBridge IvyBridge-IBRS Haswell
    Haswell-IBRS Haswell-noTSX Haswell-noTSX-IBRS Broadwell Broadwell-IBRS Broadwell-noTSX
    Broadwell-noTSX-IBRS Skylake-Client Skylake-Client-IBRS Skylake-Client-noTSX-IBRS
    Skylake-Server Skylake-Server-IBRS Skylake-Server-noTSX-IBRS Cascadelake-Server
    Cascadelake-Server-noTSX Cooperlake KnightsMill Icelake-Client Icelake-Client-noTSX
    Icelake-Server Icelake-Server-noTSX SapphireRapids GraniteRapids SierraForest
    ClearwaterForest athlon phenom Opteron_G1 Opteron_G2 Opteron_G3 Opteron_G4 Opteron_G5
    EPYC EPYC-IBPB EPYC-Rome EPYC-Milan EPYC-Genoa EPYC-Turin host kvm32 kvm64 qemu32 qemu64
    max x86-64-v2 x86-64-v2-AES x86-64-v3 x86-64-v4
    """
)
# qemu-server src/PVE/QemuServer/CPUFlags.pm (VM-specific flags, x86_64)
_VM_CPU_FLAGS = sorted(
    words(
        """
        aes amd-no-ssb amd-ssbd hv-evmcs hv-tlbflush ibpb md-clear nested-virt pcid pdpe1gb
        spec-ctrl ssbd virt-ssbd
        """
    )
)


def _validate_vm_cpu(cpu: dict[str, Any]) -> dict[str, Any]:
    """qemu-server ``CPUConfig.pm`` ``validate_vm_cpu_conf`` (custom models are not known
    here, so any ``custom-`` name passes)."""
    cputype = cpu.get("cputype")
    if not perl_truthy(cputype):
        raise die("CPU is missing cputype")
    base = re.sub(r"-v\d+$", "", str(cputype))
    if not str(cputype).startswith("custom-") and base not in _CPU_MODELS:
        raise die(f"Built-in cputype '{cputype}' is not defined (missing 'custom-' prefix?)")
    flag = f"([+-])({'|'.join(map(re.escape, _VM_CPU_FLAGS))})"
    if cpu.get("flags") and not matches(f"^{flag}(;{flag})*$", str(cpu["flags"])):
        raise die(f"VM-specific CPU flags must be a subset of: {', '.join(_VM_CPU_FLAGS)}")
    if cpu.get("reported-model") is not None:
        raise die("Property 'reported-model' not allowed in VM-specific CPU config.")
    return cpu


# pve-guest-common src/PVE/VZDump/Common.pm
_FLEECING: Schema = {
    "enabled": {"type": "boolean", "default_key": 1, "optional": 1},
    "storage": {"type": "string", "format": "pve-storage-id", "optional": 1},
}
_PERFORMANCE: Schema = {
    "max-workers": {"type": "integer", "minimum": 1, "maximum": 256, "optional": 1},
    "pbs-entries-max": {"type": "integer", "minimum": 1, "optional": 1},
}


def _validate_fleecing(fleecing: dict[str, Any]) -> dict[str, Any]:
    """pve-guest-common ``verify_backup_fleecing``."""
    if not perl_truthy(fleecing.get("storage")) and perl_truthy(fleecing.get("enabled")):
        raise die("'storage' parameter is required when 'enabled' is set")
    return fleecing


# pve-storage src/PVE/Storage/Plugin.pm ($prune_backups_format, validate_prune_backups)
_PRUNE: Schema = {
    "keep-all": _OPTIONAL_BOOLEAN,
    **{
        f"keep-{period}": _KEEP
        for period in ("last", "hourly", "daily", "weekly", "monthly", "yearly")
    },
}


def _validate_prune(options: dict[str, Any]) -> dict[str, Any]:
    keep = {key: value for key, value in options.items() if key != "keep-all"}
    if not any(to_number(str(value)) > 0 for value in keep.values() if is_number(str(value))):
        return {"keep-all": 1}
    if perl_truthy(options.get("keep-all")):
        raise die("keep-all cannot be set together with other options.")
    return keep


# pve-access-control src/PVE/Auth/Plugin.pm ($realm_sync_options_desc, $tfa_format)
_REALM_SYNC: Schema = {
    "scope": {"type": "string", "enum": ["users", "groups", "both"], "optional": 1},
    "remove-vanished": {
        "type": "string",
        "pattern": "(?:(?:(?:acl|properties|entry);)*(?:acl|properties|entry))|none",
        "optional": 1,
    },
    "full": _OPTIONAL_BOOLEAN,
    "enable-new": _OPTIONAL_BOOLEAN,
    "purge": _OPTIONAL_BOOLEAN,
}
_TFA: Schema = {
    "type": {"type": "string", "enum": ["yubico", "oath"]},
    "id": {"type": "string", "optional": 1},
    "key": {"type": "string", "optional": 1},
    "url": {"type": "string", "optional": 1},
    "digits": {"type": "integer", "minimum": 6, "maximum": 8, "optional": 1},
    "step": {"type": "integer", "minimum": 10, "optional": 1},
}

# pve-common src/PVE/JSONSchema.pm ($remote_format, $bwlimit_format, pve-node-location)
_REMOTE: Schema = {
    "host": {"type": "string"},
    "port": {"type": "integer", "optional": 1},
    "apitoken": {"type": "string"},
    "fingerprint": {
        "type": "string",
        "pattern": "([A-Fa-f0-9]{2}:){31}[A-Fa-f0-9]{2}",
        "optional": 1,
    },
}
_BWLIMIT: Schema = {
    key: {"type": "number", "minimum": 0, "optional": 1}
    for key in ("default", "restore", "migration", "clone", "move")
}
_NODE_LOCATION: Schema = {
    "name": {"type": "string", "optional": 1, "maxLength": 128},
    "latitude": {"type": "number", "minimum": -90, "maximum": 90},
    "longitude": {"type": "number", "minimum": -180, "maximum": 180},
}

# pve-network src/PVE/Network/SDN/SubnetPlugin.pm ($dhcp_range_fmt: its 'ip' type is not a
# JSON schema type, so check_type lets any value through, as on a real node)
_DHCP_RANGE: Schema = {"start-address": {"type": "ip"}, "end-address": {"type": "ip"}}


@functools.cache
def _qemu_ide_format() -> Schema:
    """qemu-server registers ``pve-qm-ide`` from the very hash that is ``ide[n]``'s inline
    format (``Drive.pm``), so the bundled schema's ``ide[n]`` is its definition."""
    from labsmith.sim.schema import ApiSchema

    method = ApiSchema.bundled().method("/nodes/{node}/qemu", "POST")
    fmt = method.properties["ide[n]"]["format"]
    assert isinstance(fmt, Mapping)
    return fmt


register_hash_formats(
    {
        "pve-qm-hostpci": (_HOSTPCI, _validate_hostpci),
        "pve-qm-ipconfig": (_IPCONFIG, None),
        "pve-qm-rng": (_RNG, None),
        "pve-qm-watchdog": (_WATCHDOG, None),
        "pve-qm-cicustom": (_CICUSTOM, None),
        "pve-qm-boot": (_BOOT, None),
        "pve-qm-smbios1": (_SMBIOS1, None),
        "pve-qm-ide": (_qemu_ide_format, None),
        "pve-qemu-sev-fmt": (_SEV, None),
        "pve-qemu-tdx-fmt": (_TDX, None),
        "pve-vm-cpu-conf": (_CPU, _validate_vm_cpu),
        "backup-fleecing": (_FLEECING, _validate_fleecing),
        "backup-performance": (_PERFORMANCE, None),
        "prune-backups": (_PRUNE, _validate_prune),
        "realm-sync-options": (_REALM_SYNC, None),
        "pve-tfa-config": (_TFA, None),
        "proxmox-remote": (_REMOTE, None),
        "bwlimit": (_BWLIMIT, None),
        "pve-node-location": (_NODE_LOCATION, None),
        "pve-sdn-dhcp-range": (_DHCP_RANGE, None),
    }
)
