"""QEMU VMs and LXC containers: create, restore, configure, power, clone, template, destroy.

Checks PVE makes before forking a worker answer synchronously (HTTP 500 with PVE's message);
the work itself runs as a task whose effect lands when its duration is over, holding the
guest's config lock meanwhile, as qemu-server and pve-container do.
"""

from collections.abc import Callable
from typing import Any

from labsmith.sim.config import (
    CLOUDINIT_VOLUME,
    DISK_KEY,
    ConfigError,
    ConfigWriter,
    allocate_volume,
    check_storage,
    config_digest,
    generated_mac,
    print_property_string,
)
from labsmith.sim.formats import parse_size, split_list
from labsmith.sim.handlers.base import ApiError, Call, fail, handles
from labsmith.sim.privileges import check_lxc_option, check_qemu_option
from labsmith.sim.state import ClusterState, Guest, Snapshot, Volume
from labsmith.sim.tasks import TaskFailedError

KINDS = ("qemu", "lxc")
TASK_PREFIX = {"qemu": "qm", "lxc": "vz"}
# Request parameters that steer the operation and are not written to the config.
NOT_STORED = {
    "qemu": {
        "node",
        "vmid",
        "archive",
        "force",
        "start",
        "storage",
        "unique",
        "pool",
        "bwlimit",
        "live-restore",
        "digest",
        "delete",
        "revert",
        "skiplock",
        "background_delay",
        "import-working-storage",
    },
    "lxc": {
        "node",
        "vmid",
        "ostemplate",
        "password",
        "ssh-public-keys",
        "force",
        "start",
        "storage",
        "unique",
        "pool",
        "bwlimit",
        "restore",
        "ignore-unpack-errors",
        "digest",
        "delete",
        "revert",
        "skiplock",
    },
}
# Options a running guest takes at once; everything else waits in [PENDING] until a restart.
# qemu-server QemuServer.pm $fast_plug_option and vmconfig_hotplug_pending with the default
# hotplug "network,disk,usb"; pve-container LXC/Config.pm $LXC_FASTPLUG_OPTIONS and the
# hot-applied resource limits, NICs and new mount points of vmconfig_hotplug_pending.
QEMU_FAST_PLUG = {
    "description",
    "hookscript",
    "lock",
    "migrate_downtime",
    "migrate_speed",
    "name",
    "onboot",
    "protection",
    "shares",
    "startup",
    "tags",
    "vmstatestorage",
    "cicustom",
    "cipassword",
    "citype",
    "ciuser",
    "ciupgrade",
    "nameserver",
    "searchdomain",
    "sshkeys",
    "cpuunits",
    "cpulimit",
    "balloon",
    "agent",
}
LXC_HOT = {
    "description",
    "onboot",
    "startup",
    "protection",
    "hostname",
    "hookscript",
    "cores",
    "tags",
    "lock",
    "cpulimit",
    "cpuunits",
    "memory",
    "swap",
}
QEMU_HOTPLUG_PREFIXES = ("net", "scsi", "virtio", "usb", "ipconfig")
LXC_HOTPLUG_PREFIXES = ("net", "mp", "dev")
HIDDEN_PASSWORD = "**********"  # noqa: S105 - the mask PVE shows, not a secret
# The two packages word a stale digest differently (qemu-server Qemu.pm, pve-guest-common).
DIGEST_MISMATCH = {
    "qemu": "checksum mismatch (file change by other user?)",
    "lxc": "detected modified configuration - file changed by other user? Try again.",
}
CREATION_QEMU = "9.2.0"


def _label(kind: str, vmid: int) -> str:
    return f"{'VM' if kind == 'qemu' else 'CT'} {vmid}"


def _lock_message(guest: Guest) -> str | None:
    """pve-guest-common AbstractConfig check_lock: "VM is locked (create)"."""
    lock = guest.config.get("lock")
    return f"{guest.label.split()[0]} is locked ({lock})" if lock else None


def _check_lock(guest: Guest, call: Call) -> None:
    message = _lock_message(guest)
    if message and not call.params.get("skiplock"):
        raise fail(message)


def _unused_message(state: ClusterState, vmid: int) -> str | None:
    """pve-cluster check_vmid_unused: names the type of the guest holding the id."""
    existing = state.guests.get(vmid)
    if existing is None:
        return None
    return f"{existing.label} already exists on node '{existing.node}'"


def _stored(value: Any) -> Any:
    """Booleans are written to the config (and returned) as 1/0."""
    return int(value) if isinstance(value, bool) else value


# Listing and reading -----------------------------------------------------------------------


def list_guests(call: Call, kind: str) -> list[dict[str, Any]]:
    node = call.node()
    rows = []
    for vmid in sorted(call.state.guests):
        guest = call.state.guests[vmid]
        if guest.kind != kind or guest.node != node.name:
            continue
        if not call.sim.access.check(call.principal, f"/vms/{vmid}", ("VM.Audit",), any_of=True):
            continue
        rows.append(_status_row(call, guest))
    return rows


def _status_row(call: Call, guest: Guest) -> dict[str, Any]:
    config = guest.config
    row: dict[str, Any] = {
        "vmid": guest.vmid,
        "status": guest.status,
        "name": str(config.get("name") or config.get("hostname") or f"{guest.label}"),
        "cpus": int(config.get("cores", 1)),
        "maxmem": _memory_bytes(config.get("memory", 512)),
        "uptime": _uptime(call, guest),
    }
    if guest.kind == "qemu":
        row["qmpstatus"] = guest.status
    else:
        row["type"] = "lxc"
    for key in ("lock", "tags"):
        if key in config:
            row[key] = config[key]
    if config.get("template"):
        row["template"] = 1
    return row


def _memory_bytes(value: Any) -> int:
    text = str(value).split(",")[0]
    return int(text.split("=")[-1]) * 1024**2


def _uptime(call: Call, guest: Guest) -> int:
    if guest.status != "running" or guest.uptime_since is None:
        return 0
    return max(0, call.sim.tasks.wall_time() - guest.uptime_since)


def read_config(call: Call, kind: str) -> dict[str, Any]:
    guest = call.guest(kind)
    snapname = call.params.get("snapshot")
    if snapname is not None:
        snapshot = guest.snapshots.get(snapname)
        if snapshot is None:
            raise fail(f"snapshot '{snapname}' does not exist")
        config = dict(snapshot.config)
    elif call.params.get("current"):
        config = dict(guest.config)
    else:
        config = _with_pending(guest)
    if "cipassword" in config:
        config["cipassword"] = HIDDEN_PASSWORD
    config["digest"] = config_digest(guest.config, _pending_section(guest))
    return {key: _stored(value) for key, value in config.items()}


def _with_pending(guest: Guest) -> dict[str, Any]:
    config = {k: v for k, v in guest.config.items() if k not in guest.pending_delete}
    config.update(guest.pending)
    return config


def _pending_section(guest: Guest) -> dict[str, Any]:
    section = dict(guest.pending)
    if guest.pending_delete:
        section["delete"] = ",".join(guest.pending_delete)
    return section


def read_pending(call: Call, kind: str) -> list[dict[str, Any]]:
    """pve-guest-common config_with_pending_array: every key with its value, pending value
    and deletion flag; ``digest`` is among the keys, as load_config adds it."""
    guest = call.guest(kind)
    rows: list[dict[str, Any]] = [
        {"key": "digest", "value": config_digest(guest.config, _pending_section(guest))}
    ]
    for key in sorted(guest.config.keys() | guest.pending.keys() | set(guest.pending_delete)):
        row: dict[str, Any] = {"key": key}
        if key in guest.config:
            row["value"] = _stored(guest.config[key])
        if key in guest.pending:
            pending = _stored(guest.pending[key])
            row["pending"] = HIDDEN_PASSWORD if key == "cipassword" else pending
        if key in guest.pending_delete:
            row["delete"] = 1
        rows.append(row)
    return rows


# Create and restore ------------------------------------------------------------------------


def create_guest(call: Call, kind: str) -> str:
    node = call.node()
    vmid = int(call.params["vmid"])
    restoring = "archive" in call.params if kind == "qemu" else bool(call.params.get("restore"))
    if restoring:
        return _restore(call, kind, vmid)
    taken = _unused_message(call.state, vmid)
    if taken:
        raise fail(f"unable to create VM {vmid} - {taken}" if kind == "qemu" else taken)
    call.require(f"/vms/{vmid}", "VM.Allocate")
    writer = ConfigWriter(call.sim.schema, call.state, kind)
    options = {k: v for k, v in call.params.items() if k not in NOT_STORED[kind]}
    _check_options(call, kind, vmid, options, create=True)
    disks = _disk_requests(call, writer, options, node.name, kind)
    template = _container_template(call, node.name) if kind == "lxc" else None
    guest = Guest(vmid=vmid, kind=kind, node=node.name, config={"lock": "create"})
    call.state.guests[vmid] = guest
    now = call.sim.tasks.wall_time()

    def build() -> list[str]:
        config = _initial_config(call, kind, vmid, options, template, now)
        for key, (storage_id, size) in disks.items():
            config[key] = _allocate_disk(
                call, writer, guest, key, str(options[key]), storage_id, size
            )
        for key, value in options.items():
            if key not in disks and key not in config:
                config[key] = writer.canonical(key, value, vmid=vmid)
        guest.config = config
        log = [f"created {_label(kind, vmid)} with {len(disks)} new volume(s)"]
        if call.params.get("start"):
            _power_on(call, guest)
            log.append(f"started {_label(kind, vmid)}")
        return log

    return call.sim.start_task(
        call, f"{TASK_PREFIX[kind]}create", str(vmid), build, cleanup=_forget(call, guest)
    )


def _initial_config(
    call: Call, kind: str, vmid: int, options: dict[str, Any], template: str | None, now: int
) -> dict[str, Any]:
    if kind == "qemu":
        config: dict[str, Any] = {
            "meta": f"creation-qemu={CREATION_QEMU},ctime={now}",
            "smbios1": f"uuid={_uuid(f'smbios/{vmid}/{now}')}",
        }
        if options.get("vmgenid", "1") == "1":
            config["vmgenid"] = _uuid(f"vmgenid/{vmid}/{now}")
        if "cipassword" in options:
            config["cipassword"] = "$5$labsmith$" + generated_mac(str(options["cipassword"]))
        return config
    config = {"arch": options.get("arch", "amd64")}
    config["ostype"] = options.get("ostype") or _ostype(template or "")
    config["hostname"] = options.get("hostname", f"CT{vmid}")
    return config


def _ostype(template: str) -> str:
    name = template.rsplit("/", 1)[-1]
    for ostype in ("debian", "ubuntu", "alpine", "centos", "fedora", "archlinux", "opensuse"):
        if name.startswith(ostype):
            return ostype
    return "unmanaged"


def _uuid(seed: str) -> str:
    hexdigits = "".join(generated_mac(f"{seed}/{n}")[9:].replace(":", "") for n in range(6))
    text = (hexdigits * 2)[:32].lower()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:32]}"


def _container_template(call: Call, node: str) -> str:
    ostemplate = call.params.get("ostemplate")
    if ostemplate is None:
        raise ApiError(
            400,
            "Parameter verification failed.",
            {"ostemplate": "property is missing and it is not optional"},
        )
    _find_volume(call.state, node, str(ostemplate))
    return str(ostemplate)


def _find_volume(state: ClusterState, node: str, volid: str) -> Volume:
    storage_id = volid.split(":", 1)[0]
    storage = state.storages.get(storage_id)
    if storage is None:
        raise fail(f"storage '{storage_id}' does not exist")
    volume = storage.on(node).get(volid)
    if volume is None:
        raise fail(f"volume '{volid}' does not exist")
    return volume


def _disk_requests(
    call: Call, writer: ConfigWriter, options: dict[str, Any], node: str, kind: str
) -> dict[str, tuple[str, int]]:
    """New volumes the request asks for, checked against the storages before any task starts."""
    requests = {}
    content = "rootdir" if kind == "lxc" else "images"
    for key, value in options.items():
        if (
            kind == "qemu"
            and isinstance(value, str)
            and CLOUDINIT_VOLUME.match(value.split(",")[0])
        ):
            storage_id = value.split(":", 1)[0]
            requests[key] = (storage_id, 4 * 1024**2)
        else:
            request = writer.disk_request(key, str(value))
            if request is None:
                continue
            requests[key] = request
        try:
            check_storage(call.state, requests[key][0], node, content)
        except ConfigError as error:
            raise fail(str(error)) from error
        call.require(f"/storage/{requests[key][0]}", "Datastore.AllocateSpace")
    return requests


def _allocate_disk(
    call: Call, writer: ConfigWriter, guest: Guest, key: str, value: str, storage_id: str, size: int
) -> str:
    storage = call.state.storages[storage_id]
    name = ""
    if CLOUDINIT_VOLUME.match(value.split(",")[0]):
        name = f"vm-{guest.vmid}-cloudinit"
    try:
        volume = allocate_volume(
            storage,
            node=guest.node,
            vmid=guest.vmid,
            kind=guest.kind,
            size=size,
            ctime=call.sim.tasks.wall_time(),
            name=name,
        )
    except ConfigError as error:
        raise TaskFailedError(str(error)) from error
    if name:
        return f"{volume.volid},media=cdrom"
    return writer.disk_value(key, value, volume)


def _forget(call: Call, guest: Guest) -> Callable[[], None]:
    """A failed create leaves nothing behind: PVE removes the config and new volumes."""

    def cleanup() -> None:
        _release_volumes(call.state, guest)
        call.state.guests.pop(guest.vmid, None)

    return cleanup


def _release_volumes(state: ClusterState, guest: Guest) -> None:
    for storage in state.storages.values():
        volumes = storage.on(guest.node)
        for volid in [v for v, volume in volumes.items() if volume.vmid == guest.vmid]:
            if volumes[volid].content in ("images", "rootdir"):
                del volumes[volid]


def _check_options(
    call: Call,
    kind: str,
    vmid: int,
    options: dict[str, Any],
    *,
    create: bool = False,
    deletions: tuple[str, ...] = (),
    current: dict[str, Any] | None = None,
) -> None:
    """The per-option permission checks qemu-server and pve-container make in code."""
    current = current or {}
    access, principal = call.sim.access, call.principal
    for key, value in options.items():
        given = _stored(value)
        if kind == "qemu":
            check_qemu_option(
                access, principal, vmid, key, given, create=create, old_value=current.get(key)
            )
        else:
            check_lxc_option(
                access,
                principal,
                vmid,
                key,
                given,
                old_value=current.get(key),
                unprivileged=bool(current.get("unprivileged", options.get("unprivileged"))),
            )
    for key in deletions:
        if kind == "qemu":
            check_qemu_option(access, principal, vmid, key, current.get(key), delete=True)
        else:
            check_lxc_option(access, principal, vmid, key, current.get(key), delete=True)


def _restore(call: Call, kind: str, vmid: int) -> str:
    node = call.node()
    archive = str(call.params["archive"] if kind == "qemu" else call.params["ostemplate"])
    backup = _find_volume(call.state, node.name, archive)
    if backup.content != "backup" or backup.guest_config is None:
        raise fail(f"volume '{archive}' is not a backup archive")
    existing = call.state.guests.get(vmid)
    if existing is not None:
        taken = f"{existing.label} already exists on node '{existing.node}'"
        if not call.params.get("force") or existing.node != node.name or existing.kind != kind:
            raise fail(f"unable to create VM {vmid} - {taken}" if kind == "qemu" else taken)
        _check_lock(existing, call)
        if existing.status == "running" and kind == "lxc":
            raise fail("can't overwrite running container")
        call.require(f"/vms/{vmid}", "VM.Backup")
    else:
        call.require(f"/vms/{vmid}", "VM.Allocate")
    target_storage = call.params.get("storage")
    saved = dict(backup.guest_config)
    writer = ConfigWriter(call.sim.schema, call.state, kind)
    disks = {}
    for key, value in saved.items():
        parsed = writer.parse(key, str(value)) if _is_volume_key(key) else {}
        volume = str(parsed.get("file") or parsed.get("volume") or "")
        if ":" in volume and "size" in parsed and "cloudinit" not in volume:
            storage_id = str(target_storage or volume.split(":", 1)[0])
            try:
                check_storage(
                    call.state, storage_id, node.name, "rootdir" if kind == "lxc" else "images"
                )
            except ConfigError as error:
                raise fail(str(error)) from error
            disks[key] = (storage_id, parse_size(str(parsed["size"])) or 0)
    if existing is not None:
        existing.config["lock"] = "create"
        guest = existing
    else:
        guest = Guest(vmid=vmid, kind=kind, node=node.name, config={"lock": "create"})
        call.state.guests[vmid] = guest

    running = existing is not None and existing.status == "running"

    def restore() -> list[str]:
        if running:
            raise TaskFailedError(f"unable to restore VM {vmid} - vm is running")
        _release_volumes(call.state, guest)
        config: dict[str, Any] = {}
        for key, value in saved.items():
            if key in ("lock", "parent"):
                continue
            if key in disks:
                storage_id, size = disks[key]
                new_value = _replace_volume_value(writer, key, str(value), storage_id)
                config[key] = _allocate_disk(call, writer, guest, key, new_value, storage_id, size)
            elif call.params.get("unique") and key.startswith("net"):
                config[key] = _fresh_mac(writer, key, str(value), vmid)
            else:
                config[key] = value
        guest.config = config
        guest.pending, guest.pending_delete, guest.snapshots = {}, [], {}
        return [f"restore {archive} to {_label(kind, vmid)}"]

    cleanup = _forget(call, guest) if existing is None else _unlock(guest)
    return call.sim.start_task(
        call, "qmrestore" if kind == "qemu" else "vzrestore", str(vmid), restore, cleanup=cleanup
    )


def _is_volume_key(key: str) -> bool:
    return bool(DISK_KEY.match(key))


def _fresh_mac(writer: ConfigWriter, key: str, value: str, vmid: int) -> str:
    """The NIC with its MAC dropped and a new one generated (clones, ``unique`` restores)."""
    parsed = writer.parse(key, value)
    parsed.pop("macaddr" if writer.kind == "qemu" else "hwaddr", None)
    fmt = writer.format_of(key)
    assert isinstance(fmt, dict)
    return str(writer.canonical(key, print_property_string(parsed, fmt), vmid=vmid))


def _replace_volume_value(writer: ConfigWriter, key: str, value: str, storage_id: str) -> str:
    """A disk value re-pointed at a new volume request ``storage:size`` for reallocation."""
    parsed = writer.parse(key, value)
    size_gib = (parse_size(str(parsed.get("size", "0"))) or 0) / 1024**3
    volume_key = "file" if "file" in parsed else "volume"
    parsed[volume_key] = f"{storage_id}:{size_gib:g}"
    parsed.pop("size", None)
    fmt = writer.format_of(key)
    assert isinstance(fmt, dict)
    return print_property_string(parsed, fmt)


def _unlock(guest: Guest) -> Callable[[], None]:
    def cleanup() -> None:
        guest.config.pop("lock", None)

    return cleanup


# Configuration updates ---------------------------------------------------------------------


def update_config(call: Call, kind: str, asynchronous: bool) -> str | None:
    guest = call.guest(kind)
    _check_lock(guest, call)
    digest = call.params.get("digest")
    if digest is not None and digest != config_digest(guest.config, _pending_section(guest)):
        raise fail(DIGEST_MISMATCH[kind])
    writer = ConfigWriter(call.sim.schema, call.state, kind)
    options = {k: v for k, v in call.params.items() if k not in NOT_STORED[kind]}
    deletions = split_list(call.params.get("delete"))
    reverts = split_list(call.params.get("revert"))
    _check_exclusive(options, deletions, reverts)
    _check_options(
        call, kind, guest.vmid, options, deletions=tuple(deletions), current=_with_pending(guest)
    )
    disks = _disk_requests(call, writer, options, guest.node, kind)

    def apply() -> list[str]:
        for key in reverts:
            guest.pending.pop(key, None)
            if key in guest.pending_delete:
                guest.pending_delete.remove(key)
        for key, value in options.items():
            if key in disks:
                storage_id, size = disks[key]
                value = _allocate_disk(call, writer, guest, key, str(value), storage_id, size)
            else:
                value = _keep_mac(writer, guest, key, value)
            _stage(guest, key, value, kind)
        for key in deletions:
            _stage_delete(guest, key, kind)
        if guest.status != "running":
            _apply_pending(guest)
        return [f"update {_label(kind, guest.vmid)}: {', '.join(sorted(options) or deletions)}"]

    if asynchronous:
        return call.sim.start_task(call, "qmconfig", str(guest.vmid), apply)
    try:
        apply()
    except TaskFailedError as error:
        raise fail(str(error)) from error
    return None


def _check_exclusive(options: dict[str, Any], deletions: list[str], reverts: list[str]) -> None:
    """qemu-server's $update_vm_api: an option is set, deleted or reverted, never two at once."""
    errors = {}
    for key in deletions:
        if key in options:
            errors["delete"] = f"you can't use '-{key}' and -delete {key}' at the same time"
        if key in reverts:
            errors["revert"] = f"you can't use '-delete {key}' and '-revert {key}' at the same time"
    for key in reverts:
        if key in options:
            errors["revert"] = f"you can't use '-{key}' and '-revert {key}' at the same time"
    if errors:
        raise ApiError(400, "Parameter verification failed.", errors)


def _keep_mac(writer: ConfigWriter, guest: Guest, key: str, value: Any) -> Any:
    """An update of ``netN`` without a MAC keeps the NIC's current one, as PVE does."""
    if not key.startswith("net") or key not in guest.config:
        return writer.canonical(key, value, vmid=guest.vmid)
    mac_key = "macaddr" if guest.kind == "qemu" else "hwaddr"
    parsed = writer.parse(key, str(value))
    if mac_key not in parsed:
        current = writer.parse(key, str(guest.config[key])).get(mac_key)
        if current:
            parsed[mac_key] = current
            fmt = writer.format_of(key)
            assert isinstance(fmt, dict)
            value = print_property_string(parsed, fmt)
    return writer.canonical(key, value, vmid=guest.vmid)


def _hot(kind: str, key: str) -> bool:
    if kind == "qemu":
        return key in QEMU_FAST_PLUG or key.startswith(QEMU_HOTPLUG_PREFIXES)
    return key in LXC_HOT or key.startswith(LXC_HOTPLUG_PREFIXES)


def _stage(guest: Guest, key: str, value: Any, kind: str) -> None:
    if guest.status == "running" and _hot(kind, key):
        _replace_disk(guest, key, value)
        guest.config[key] = value
        guest.pending.pop(key, None)
        return
    if guest.config.get(key) == value:
        guest.pending.pop(key, None)
        return
    guest.pending[key] = value
    if key in guest.pending_delete:
        guest.pending_delete.remove(key)


def _stage_delete(guest: Guest, key: str, kind: str) -> None:
    if guest.status == "running" and _hot(kind, key):
        guest.config.pop(key, None)
        guest.pending.pop(key, None)
        return
    guest.pending.pop(key, None)
    if key in guest.config and key not in guest.pending_delete:
        guest.pending_delete.append(key)


def _apply_pending(guest: Guest) -> None:
    for key in guest.pending_delete:
        _replace_disk(guest, key, None)
        guest.config.pop(key, None)
    for key, value in guest.pending.items():
        _replace_disk(guest, key, value)
        guest.config[key] = value
    guest.pending, guest.pending_delete = {}, []


def _replace_disk(guest: Guest, key: str, value: Any) -> None:
    """A replaced or removed disk's volume is kept as ``unusedN``, never deleted."""
    old = guest.config.get(key)
    if old is None or not _is_volume_key(key) or key.startswith("rootfs"):
        return
    old_volume = str(old).split(",")[0]
    if value is not None and str(value).split(",")[0] == old_volume:
        return
    if "cloudinit" in old_volume or ":" not in old_volume or old_volume == "none":
        return
    index = 0
    while f"unused{index}" in guest.config:
        index += 1
    guest.config[f"unused{index}"] = old_volume


# Power -------------------------------------------------------------------------------------


def _power_on(call: Call, guest: Guest) -> None:
    """What a start checks at run time: the passthrough devices and bridges must exist."""
    node = call.state.nodes[guest.node]
    writer = ConfigWriter(call.sim.schema, call.state, guest.kind)
    for key, value in sorted(guest.config.items()):
        if key.startswith("hostpci") and guest.kind == "qemu":
            _check_hostpci(call, guest, writer.parse(key, str(value)))
        if key.startswith("net"):
            bridge = writer.parse(key, str(value)).get("bridge")
            if bridge and bridge not in node.interfaces:
                raise TaskFailedError(f"bridge '{bridge}' does not exist")
    _apply_pending(guest)
    guest.status = "running"
    guest.uptime_since = call.sim.tasks.wall_time()


def _check_hostpci(call: Call, guest: Guest, hostpci: dict[str, Any]) -> None:
    node = call.state.nodes[guest.node]
    mapping_id = hostpci.get("mapping")
    if mapping_id is not None:
        mapping = call.state.mappings.get(str(mapping_id))
        if mapping is None:
            raise TaskFailedError(f"PCI device mapping '{mapping_id}' not found")
        entries = [entry for entry in mapping.map if f"node={guest.node}" in entry.split(",")]
        if not entries:
            raise TaskFailedError(
                f"PCI device mapping '{mapping_id}' has no entry for node '{guest.node}'"
            )
        paths = [
            part.split("=", 1)[1] for part in entries[0].split(",") if part.startswith("path=")
        ]
        addresses = [address for path in paths for address in path.split(";")]
    else:
        addresses = str(hostpci.get("host", "")).split(";")
    if not node.pci_devices:
        return
    known = {device.address for device in node.pci_devices}
    for address in addresses:
        full = address if address.count(":") == 2 else f"0000:{address}"
        if not any(device.startswith(full) for device in known):
            raise TaskFailedError(f"no PCI device found for '{full}'")


def current_status(call: Call, kind: str) -> dict[str, Any]:
    guest = call.guest(kind)
    row = _status_row(call, guest)
    row["ha"] = {"managed": 0}
    return row


def power(call: Call, kind: str, action: str) -> str:
    """Start, stop, shutdown, reboot. qemu-server checks state and lock in the worker (a task
    error); pve-container refuses a pointless start or stop before forking (HTTP 500)."""
    guest = call.guest(kind)
    label = guest.label
    running = guest.status == "running"
    if kind == "lxc" and action == "start" and running:
        raise fail(f"{label} already running")
    if action != "start" and not running and (kind == "lxc" or action == "reboot"):
        raise fail(f"{label} not running")
    skiplock = bool(call.params.get("skiplock"))

    def run() -> list[str]:
        lock = _lock_message(guest)
        if lock and not skiplock:
            raise TaskFailedError(lock)
        if action == "start":
            if guest.config.get("template"):
                what = "vm" if kind == "qemu" else "CT"
                raise TaskFailedError(f"you can't start a {what} if it's a template")
            if guest.status == "running":
                raise TaskFailedError(f"{label} already running")
            _power_on(call, guest)
        elif action == "reboot":
            _apply_pending(guest)
            guest.uptime_since = call.sim.tasks.wall_time()
        elif guest.status == "running":
            guest.status = "stopped"
            guest.uptime_since = None
            _apply_pending(guest)
        return [f"{action} {label}"]

    return call.sim.start_task(call, f"{TASK_PREFIX[kind]}{action}", str(guest.vmid), run)


# Destroy, template, clone ------------------------------------------------------------------


def destroy(call: Call, kind: str) -> str:
    guest = call.guest(kind)
    if kind == "lxc":
        _check_lock(guest, call)
    if guest.config.get("protection"):
        raise fail(f"can't remove {guest.label} - protection mode enabled")
    if guest.status == "running":
        if kind == "qemu":
            raise fail(f"{guest.label} is running - destroy failed")
        raise fail(f"unable to destroy {guest.label} - container is running")
    lock = None if call.params.get("skiplock") else _lock_message(guest)

    def remove() -> list[str]:
        if lock:
            raise TaskFailedError(lock)
        _release_volumes(call.state, guest)
        call.state.guests.pop(guest.vmid, None)
        return [f"destroyed {guest.label}"]

    return call.sim.start_task(call, f"{TASK_PREFIX[kind]}destroy", str(guest.vmid), remove)


def make_template(call: Call, kind: str) -> str | None:
    guest = call.guest(kind)
    _check_lock(guest, call)
    if guest.status == "running":
        raise fail(f"you can't convert a running {guest.label} to a template")
    if guest.config.get("template"):
        raise fail(f"{guest.label} is already a template")

    def convert() -> list[str]:
        for key, value in list(guest.config.items()):
            if _is_volume_key(key):
                guest.config[key] = _rename_volume(call.state, guest, str(value))
        guest.config["template"] = 1
        return [f"converted {guest.label} to a template"]

    if kind == "lxc":
        # pve-container converts in the request itself (its schema returns null).
        convert()
        return None
    return call.sim.start_task(call, "qmtemplate", str(guest.vmid), convert)


def _rename_volume(state: ClusterState, guest: Guest, value: str) -> str:
    volid, _, rest = value.partition(",")
    storage_id, _, name = volid.partition(":")
    storage = state.storages.get(storage_id)
    if storage is None or volid not in storage.on(guest.node):
        return value
    new_name = name.replace("vm-", "base-", 1).replace("subvol-", "basevol-", 1)
    volume = storage.on(guest.node).pop(volid)
    volume.volid = f"{storage_id}:{new_name}"
    storage.on(guest.node)[volume.volid] = volume
    return volume.volid + ("," + rest if rest else "")


def clone(call: Call, kind: str) -> str:
    source = call.guest(kind)
    newid = int(call.params["newid"])
    if newid in call.state.guests:
        taken = _unused_message(call.state, newid)
        raise fail(
            f"unable to create VM {newid}: config file already exists"
            if kind == "qemu"
            else str(taken)
        )
    _check_lock(source, call)
    call.require(f"/vms/{newid}", "VM.Allocate")
    call.require(f"/vms/{source.vmid}", "VM.Clone")
    is_template = bool(source.config.get("template"))
    full = bool(call.params.get("full", not is_template))
    if not full and not is_template:
        raise fail("Linked clone feature for non-template VMs is not supported")
    target = str(call.params.get("target") or source.node)
    if target not in call.state.nodes:
        raise ApiError(595, f"no such cluster node '{target}'")
    writer = ConfigWriter(call.sim.schema, call.state, kind)
    storage_override = call.params.get("storage")
    disks: dict[str, tuple[str, int]] = {}
    for key, value in source.config.items():
        if _is_volume_key(key) and not key.startswith("unused"):
            parsed = writer.parse(key, str(value))
            volume = str(parsed.get("file") or parsed.get("volume") or "")
            if ":" in volume and "size" in parsed and "cloudinit" not in volume:
                storage_id = str(storage_override or volume.split(":", 1)[0])
                try:
                    check_storage(
                        call.state, storage_id, target, "rootdir" if kind == "lxc" else "images"
                    )
                except ConfigError as error:
                    raise fail(str(error)) from error
                disks[key] = (storage_id, parse_size(str(parsed["size"])) or 0)
    # qemu-server locks only the new VM ("clone"); pve-container the source ("disk") too.
    target_lock = "clone" if kind == "qemu" else "create"
    clone_guest = Guest(vmid=newid, kind=kind, node=target, config={"lock": target_lock})
    call.state.guests[newid] = clone_guest
    if kind == "lxc":
        source.config["lock"] = "disk"
    name_key = "name" if kind == "qemu" else "hostname"
    new_name = call.params.get(name_key) or f"Copy-of-{source.config.get(name_key, source.vmid)}"

    def copy() -> list[str]:
        if kind == "lxc":
            source.config.pop("lock", None)
        config: dict[str, Any] = {}
        for key, value in source.config.items():
            if key in ("template", "lock", "parent") or key.startswith("unused"):
                continue
            if key in disks:
                storage_id, size = disks[key]
                request = _replace_volume_value(writer, key, str(value), storage_id)
                config[key] = _allocate_disk(
                    call, writer, clone_guest, key, request, storage_id, size
                )
            elif key.startswith("net"):
                config[key] = _fresh_mac(writer, key, str(value), newid)
            elif key in ("vmgenid", "smbios1"):
                config[key] = (
                    _uuid(f"{key}/{newid}")
                    if key == "vmgenid"
                    else f"uuid={_uuid(f'smbios/{newid}')}"
                )
            else:
                config[key] = value
        config[name_key] = new_name
        if "description" in call.params:
            config["description"] = call.params["description"]
        clone_guest.config = config
        return [f"clone {source.label} to {_label(kind, newid)} ({'full' if full else 'linked'})"]

    def cleanup() -> None:
        if kind == "lxc":
            source.config.pop("lock", None)
        _forget(call, clone_guest)()

    return call.sim.start_task(
        call, f"{TASK_PREFIX[kind]}clone", str(source.vmid), copy, cleanup=cleanup
    )


# Snapshots ---------------------------------------------------------------------------------


def list_snapshots(call: Call, kind: str) -> list[dict[str, Any]]:
    guest = call.guest(kind)
    rows: list[dict[str, Any]] = []
    for snapshot in guest.snapshots.values():
        row: dict[str, Any] = {
            "name": snapshot.name,
            "snaptime": snapshot.snaptime,
            "description": snapshot.description,
        }
        if snapshot.parent:
            row["parent"] = snapshot.parent
        rows.append(row)
    current: dict[str, Any] = {"name": "current", "description": "You are here!"}
    if guest.config.get("parent"):
        current["parent"] = guest.config["parent"]
    if guest.status == "running":
        current["running"] = 1
    rows.append(current)
    return rows


def create_snapshot(call: Call, kind: str) -> str:
    guest = call.guest(kind)
    _check_lock(guest, call)
    name = str(call.params["snapname"])
    if name in guest.snapshots or name == "current":
        raise fail(f"snapshot name '{name}' already used")
    guest.config["lock"] = "snapshot"

    def take() -> list[str]:
        guest.config.pop("lock", None)
        saved = {k: v for k, v in guest.config.items() if k != "parent"}
        guest.snapshots[name] = Snapshot(
            name=name,
            config=saved,
            snaptime=call.sim.tasks.wall_time(),
            description=str(call.params.get("description", "")),
            parent=guest.config.get("parent"),
        )
        guest.config["parent"] = name
        return [f"snapshot '{name}' of {guest.label}"]

    return call.sim.start_task(
        call, f"{TASK_PREFIX[kind]}snapshot", str(guest.vmid), take, cleanup=_unlock(guest)
    )


def _snapshot(call: Call, guest: Guest) -> Any:
    name = call.path_params["snapname"]
    snapshot = guest.snapshots.get(name)
    if snapshot is None:
        raise fail(f"snapshot '{name}' does not exist")
    return snapshot


def delete_snapshot(call: Call, kind: str) -> str:
    guest = call.guest(kind)
    _check_lock(guest, call)
    snapshot = _snapshot(call, guest)
    guest.config["lock"] = "snapshot-delete"

    def remove() -> list[str]:
        guest.config.pop("lock", None)
        del guest.snapshots[snapshot.name]
        for other in guest.snapshots.values():
            if other.parent == snapshot.name:
                other.parent = snapshot.parent
        if guest.config.get("parent") == snapshot.name:
            if snapshot.parent:
                guest.config["parent"] = snapshot.parent
            else:
                guest.config.pop("parent")
        return [f"deleted snapshot '{snapshot.name}'"]

    return call.sim.start_task(
        call, f"{TASK_PREFIX[kind]}delsnapshot", str(guest.vmid), remove, cleanup=_unlock(guest)
    )


def rollback(call: Call, kind: str) -> str:
    guest = call.guest(kind)
    _check_lock(guest, call)
    snapshot = _snapshot(call, guest)
    guest.config["lock"] = "rollback"

    def restore() -> list[str]:
        guest.config = {**snapshot.config, "parent": snapshot.name}
        guest.pending, guest.pending_delete = {}, []
        guest.status = "stopped"
        guest.uptime_since = None
        return [f"rollback {guest.label} to '{snapshot.name}'"]

    return call.sim.start_task(
        call, f"{TASK_PREFIX[kind]}rollback", str(guest.vmid), restore, cleanup=_unlock(guest)
    )


def snapshot_config(call: Call, kind: str) -> dict[str, Any]:
    guest = call.guest(kind)
    return dict(_snapshot(call, guest).config)


# Registration ------------------------------------------------------------------------------


def _register() -> None:
    for kind in KINDS:
        base = f"/nodes/{{node}}/{kind}"
        guest = f"{base}/{{vmid}}"

        def bind(function: Callable[..., Any], *args: Any) -> Callable[[Call], Any]:
            return lambda call: function(call, *args)

        handles(base, "GET")(bind(list_guests, kind))
        handles(base, "POST")(bind(create_guest, kind))
        handles(guest, "GET")(
            lambda call: [{"subdir": name} for name in ("config", "status", "snapshot")]
        )
        handles(guest, "DELETE")(bind(destroy, kind))
        handles(f"{guest}/config", "GET")(bind(read_config, kind))
        handles(f"{guest}/config", "PUT")(bind(update_config, kind, False))
        if kind == "qemu":
            handles(f"{guest}/config", "POST")(bind(update_config, kind, True))
        handles(f"{guest}/pending", "GET")(bind(read_pending, kind))
        handles(f"{guest}/status/current", "GET")(bind(current_status, kind))
        for action in ("start", "stop", "shutdown", "reboot"):
            handles(f"{guest}/status/{action}", "POST")(bind(power, kind, action))
        handles(f"{guest}/clone", "POST")(bind(clone, kind))
        handles(f"{guest}/template", "POST")(bind(make_template, kind))
        handles(f"{guest}/snapshot", "GET")(bind(list_snapshots, kind))
        handles(f"{guest}/snapshot", "POST")(bind(create_snapshot, kind))
        handles(f"{guest}/snapshot/{{snapname}}", "DELETE")(bind(delete_snapshot, kind))
        handles(f"{guest}/snapshot/{{snapname}}/rollback", "POST")(bind(rollback, kind))
        handles(f"{guest}/snapshot/{{snapname}}/config", "GET")(bind(snapshot_config, kind))


_register()
