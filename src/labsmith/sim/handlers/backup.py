"""``vzdump``: backups of guests onto a backup storage, as files or PBS snapshots."""

import datetime
from typing import Any

from labsmith.sim.formats import parse_size, property_values, split_list
from labsmith.sim.handlers.base import Call, fail, handles
from labsmith.sim.state import Guest, Storage, Volume
from labsmith.sim.tasks import TaskFailedError

# File extensions of vzdump archives per guest type and ``compress`` value (PVE::VZDump).
ARCHIVE = {"qemu": "vma", "lxc": "tar"}
COMPRESSION = {"0": "", "1": ".lzo", "gzip": ".gz", "lzo": ".lzo", "zstd": ".zst"}


@handles("/nodes/{node}/vzdump", "POST")
def vzdump(call: Call) -> str:
    node = call.node()
    storage = _backup_storage(call, node.name)
    guests = _selected_guests(call, node.name)
    for guest in guests:
        call.require(f"/vms/{guest.vmid}", "VM.Backup")
    call.require(f"/storage/{storage.storage}", "Datastore.AllocateSpace")
    compress = str(call.params.get("compress", "0"))
    notes = str(call.params.get("notes-template", ""))
    locked = []
    for guest in guests:
        if not guest.config.get("lock"):
            guest.config["lock"] = "backup"
            locked.append(guest.vmid)

    def back_up() -> list[str]:
        log: list[str] = []
        errors = []
        for guest in guests:
            if guest.vmid not in locked:
                errors.append(guest.vmid)
                log.append(
                    f"ERROR: Backup of {guest.label} failed - "
                    f"{guest.label} is locked ({guest.config.get('lock')})"
                )
                continue
            guest.config.pop("lock", None)
            volume = _archive(call, storage, node.name, guest, compress, notes)
            storage.on(node.name)[volume.volid] = volume
            log.append(f"INFO: Finished Backup of {guest.label}: {volume.volid}")
        if errors:
            log_failure = "job errors"
            raise TaskFailedError(log_failure)
        return log

    def unlock() -> None:
        for guest in guests:
            if guest.vmid in locked and guest.config.get("lock") == "backup":
                guest.config.pop("lock")

    task_id = str(guests[0].vmid) if len(guests) == 1 else ""
    return call.sim.start_task(call, "vzdump", task_id, back_up, cleanup=unlock)


def _backup_storage(call: Call, node: str) -> Storage:
    storage_id = str(call.params.get("storage", "local"))
    storage = call.state.storages.get(storage_id)
    if storage is None:
        raise fail(f"storage '{storage_id}' does not exist")
    if not storage.available_on(node):
        raise fail(f"storage '{storage_id}' is not available on node '{node}'")
    if "backup" not in storage.content:
        raise fail(f"storage '{storage_id}' does not support backups")
    return storage


def _selected_guests(call: Call, node: str) -> list[Guest]:
    if call.params.get("all"):
        excluded = {int(v) for v in str(call.params.get("exclude", "")).split(",") if v}
        vmids = [
            vmid
            for vmid, guest in sorted(call.state.guests.items())
            if guest.node == node and vmid not in excluded
        ]
    else:
        text = str(call.params.get("vmid", ""))
        vmids = [int(part) for part in split_list(text)]
        if not vmids:
            raise fail("no guests selected: give 'vmid' or 'all'")
    guests = []
    for vmid in vmids:
        guest = call.state.guests.get(vmid)
        if guest is None or guest.node != node:
            raise fail(f"guest {vmid} is not on node '{node}'")
        guests.append(guest)
    return guests


def _archive(
    call: Call, storage: Storage, node: str, guest: Guest, compress: str, notes: str
) -> Volume:
    now = call.sim.tasks.wall_time()
    moment = datetime.datetime.fromtimestamp(now, datetime.UTC)
    if storage.type == "pbs":
        kind = "vm" if guest.kind == "qemu" else "ct"
        volid = f"{storage.storage}:backup/{kind}/{guest.vmid}/{moment:%Y-%m-%dT%H:%M:%SZ}"
        file_format = "pbs-vm" if guest.kind == "qemu" else "pbs-ct"
    else:
        extension = ARCHIVE[guest.kind] + COMPRESSION.get(compress, "")
        volid = (
            f"{storage.storage}:backup/vzdump-{guest.kind}-{guest.vmid}-"
            f"{moment:%Y_%m_%d-%H_%M_%S}.{extension}"
        )
        file_format = extension
    return Volume(
        volid=volid,
        content="backup",
        size=max(1, _disk_bytes(guest) // 3),
        vmid=guest.vmid,
        format=file_format,
        ctime=now,
        subtype=guest.kind,
        guest_config={k: v for k, v in guest.config.items() if k not in ("lock",)},
        notes=notes.replace("{{guestname}}", _name(guest)).replace("{{vmid}}", str(guest.vmid)),
    )


def _disk_bytes(guest: Guest) -> int:
    total = 0
    for value in guest.config.values():
        size = property_values(str(value), "").get("size")
        if size is not None:
            total += parse_size(size) or 0
    return total


def _name(guest: Guest) -> str:
    value: Any = guest.config.get("name") or guest.config.get("hostname") or guest.vmid
    return str(value)
