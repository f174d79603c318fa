"""Disks and storage layouts: stable device names, one layout per disk, declared storage ids."""

from collections.abc import Iterator

from labsmith.inventory.findings import Finding
from labsmith.inventory.lab import Guest, Lab, PhysicalHost
from labsmith.inventory.model import Storage
from labsmith.inventory.rules.report import finding

RULES = {
    "storage.device_name": "a disk named by kernel name instead of /dev/disk/by-id/",
    "storage.disk_in_two_layouts": "one disk in two storage layouts",
    "storage.disk_undeclared": "a layout uses a disk that labsmith_disks does not declare",
    "storage.layout_shape": "a layout with the wrong number of disks or filesystem",
    "storage.duplicate_id": "two storage layouts share an id",
    "storage.unknown_id": "a guest uses a storage id its node does not declare",
    "storage.content": "a guest disk on a storage that does not hold that content",
}

BY_ID = "/dev/disk/by-id/"
# What each layout holds: (fewest disks, most disks).
DISK_COUNTS = {"mirror": (2, None), "single": (1, 1), "existing": (0, 0)}


def check_storage(lab: Lab) -> Iterator[Finding]:
    for host in lab.hosts.values():
        yield from _disks(host)
        yield from _layouts(host)
    for guest in lab.guests.values():
        node = lab.hosts.get(guest.spec.guest.node)
        if node is not None and node.spec.kind == "proxmox":
            yield from _guest_storage(guest, node)


def _bad_name(host: PhysicalHost, path: tuple[str | int, ...], device: str) -> Finding:
    return finding(
        host,
        "storage.device_name",
        path,
        f"{device} is a kernel name, which can point at another disk after a reboot "
        "or a new disk (NVMe and SATA enumeration order is not stable)",
        f"use the disk's /dev/disk/by-id/ path: ls -l {BY_ID} | grep {device.rsplit('/', 1)[-1]}",
    )


def _disks(host: PhysicalHost) -> Iterator[Finding]:
    for index, disk in enumerate(host.spec.disks):
        if not disk.id.startswith(BY_ID):
            yield _bad_name(host, ("labsmith_disks", index, "id"), disk.id)


def _layouts(host: PhysicalHost) -> Iterator[Finding]:
    declared = {disk.id for disk in host.spec.disks}
    users: dict[str, str] = {}
    ids: dict[str, int] = {}
    for index, layout in enumerate(host.spec.storage):
        path = ("labsmith_storage", index)
        if layout.id in ids:
            yield finding(
                host,
                "storage.duplicate_id",
                (*path, "id"),
                f"storage id {layout.id!r} is already used by labsmith_storage[{ids[layout.id]}]",
                "give every storage layout its own id",
            )
        ids.setdefault(layout.id, index)
        yield from _shape(host, index, layout)
        for disk_index, device in enumerate(layout.disks):
            disk_path = (*path, "disks", disk_index)
            if not device.startswith(BY_ID):
                yield _bad_name(host, disk_path, device)
            elif device not in declared:
                yield finding(
                    host,
                    "storage.disk_undeclared",
                    disk_path,
                    f"layout {layout.id} uses {device}, which labsmith_disks does not declare",
                    "declare the disk (id, model, serial) in labsmith_disks so "
                    "the probe can check it is the disk you mean",
                )
            if device in users:
                yield finding(
                    host,
                    "storage.disk_in_two_layouts",
                    disk_path,
                    f"{device} is already part of layout {users[device]}; "
                    f"layout {layout.id} would wipe it",
                    "use each disk in one layout only",
                )
            users.setdefault(device, layout.id)


def _shape(host: PhysicalHost, index: int, layout: Storage) -> Iterator[Finding]:
    path = ("labsmith_storage", index)
    fewest, most = DISK_COUNTS[layout.layout]
    count = len(layout.disks)
    if count < fewest or (most is not None and count > most):
        wanted = {
            "mirror": "at least 2 disks",
            "single": "exactly 1 disk",
            "existing": "no disks (it names storage the installer made)",
        }[layout.layout]
        yield finding(
            host,
            "storage.layout_shape",
            (*path, "disks"),
            f"layout {layout.id} is a {layout.layout} with {count} disk(s); "
            f"a {layout.layout} takes {wanted}",
            f"list {wanted} or change layout",
        )
    if layout.backend == "mdadm" and layout.filesystem is None:
        yield finding(
            host,
            "storage.layout_shape",
            (*path, "filesystem"),
            f"layout {layout.id} is an mdadm array without a filesystem",
            "add filesystem: ext4 or xfs",
        )
    if layout.backend in ("zfs", "lvm-thin") and layout.filesystem is not None:
        yield finding(
            host,
            "storage.layout_shape",
            (*path, "filesystem"),
            f"layout {layout.id} uses {layout.backend}, which brings its own storage "
            f"format; filesystem {layout.filesystem} does not apply",
            "remove filesystem",
        )


def _guest_storage(guest: Guest, node: PhysicalHost) -> Iterator[Finding]:
    spec = guest.spec.guest
    storages = {layout.id: layout for layout in node.spec.storage}
    wanted = "images" if spec.type == "qemu" else "rootdir"
    places: list[tuple[tuple[str | int, ...], str]] = [
        (("labsmith_guest", "disks", index, "storage"), disk.storage)
        for index, disk in enumerate(spec.disks)
    ]
    if spec.rootfs is not None:
        places.append((("labsmith_guest", "rootfs", "storage"), spec.rootfs.storage))
    for path, storage_id in places:
        layout = storages.get(storage_id)
        if layout is None:
            known = ", ".join(sorted(storages)) or "none"
            yield finding(
                guest,
                "storage.unknown_id",
                path,
                f"{guest.name} puts a disk on storage {storage_id!r}, which node "
                f"{node.name} does not declare (its storages: {known})",
                f"use one of them or add {storage_id} to labsmith_storage of {node.name}",
            )
        elif wanted not in layout.content:
            yield finding(
                guest,
                "storage.content",
                path,
                f"storage {storage_id} of {node.name} holds {', '.join(layout.content)}, "
                f"not {wanted}, which {spec.type} disks need",
                f"add {wanted} to its content or use another storage",
            )
