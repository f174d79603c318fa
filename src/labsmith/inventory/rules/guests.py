"""Guests against their node and each other: node, VMID and name clashes, size, type keys."""

from collections.abc import Iterator

from labsmith.inventory.findings import Finding
from labsmith.inventory.lab import Guest, Lab
from labsmith.inventory.rules.report import finding
from labsmith.units import format_size

G = "labsmith_guest"
QEMU_ONLY = ("machine", "bios", "disks", "image", "cloud_init")
LXC_ONLY = ("rootfs", "ostemplate", "unprivileged", "bind_mounts")

RULES = {
    "guest.node_unknown": "a guest's node is not a Proxmox host of the inventory",
    "guest.vmid_duplicate": "two guests of one cluster share a VMID",
    "guest.name_duplicate": "two guests of one cluster share a name",
    "guest.type_fields": (
        "a qemu-only key on an LXC, an LXC-only key on a VM, an LXC without rootfs"
    ),
    "guest.exceeds_host": "a guest has more cores or memory than its node",
    "guest.memory_overcommit": "a node's guests together ask for more memory than it has",
}


def check_guests(lab: Lab) -> Iterator[Finding]:
    yield from _nodes(lab)
    yield from _clashes(lab)
    for guest in lab.guests.values():
        yield from _type_fields(guest)
    yield from _sizes(lab)


def _nodes(lab: Lab) -> Iterator[Finding]:
    proxmox = sorted(name for name, host in lab.hosts.items() if host.spec.kind == "proxmox")
    for guest in lab.guests.values():
        node = guest.spec.guest.node
        host = lab.hosts.get(node)
        if (host is not None and host.spec.kind == "proxmox") or node in lab.unjudged:
            continue
        if host is not None:
            seen = f"{node} is a {host.spec.kind} host; guests run on Proxmox VE hosts only"
        elif node in lab.guests:
            seen = f"{node} is a guest, not a physical host"
        else:
            seen = f"{node} is not a physical host of this inventory"
        choices = ", ".join(proxmox) or "none yet: declare one with labsmith_kind: proxmox"
        yield finding(
            guest,
            "guest.node_unknown",
            (G, "node"),
            f"guest {guest.name} is placed on node {node!r}, but {seen}",
            f"set node to one of the inventory's Proxmox hosts ({choices})",
        )


def _cluster_of(lab: Lab, guest: Guest) -> str:
    host = lab.hosts.get(guest.spec.guest.node)
    return host.cluster if host else guest.spec.guest.node


def _clashes(lab: Lab) -> Iterator[Finding]:
    vmids: dict[tuple[str, int], Guest] = {}
    names: dict[tuple[str, str], Guest] = {}
    for guest in sorted(lab.guests.values(), key=lambda g: g.name):
        cluster = _cluster_of(lab, guest)
        vmid = guest.spec.guest.vmid
        first = vmids.setdefault((cluster, vmid), guest)
        if first is not guest:
            yield finding(
                guest,
                "guest.vmid_duplicate",
                (G, "vmid"),
                f"VMID {vmid} of {guest.name} is already used by {first.name} "
                f"({first.origin(G)}) in cluster {cluster}",
                "give every guest of a cluster its own vmid",
            )
        name = guest.display_name
        first = names.setdefault((cluster, name.lower()), guest)
        if first is not guest:
            yield finding(
                guest,
                "guest.name_duplicate",
                (G, "name"),
                f"guest name {name!r} of {guest.name} is already used by {first.name} "
                f"in cluster {cluster}",
                "set a distinct labsmith_guest.name (it defaults to the inventory hostname)",
            )


def _type_fields(guest: Guest) -> Iterator[Finding]:
    spec = guest.spec.guest
    wrong = QEMU_ONLY if spec.type == "lxc" else LXC_ONLY
    other = "qemu VMs" if spec.type == "lxc" else "LXC containers"
    for key in wrong:
        if key in spec.model_fields_set:
            yield finding(
                guest,
                "guest.type_fields",
                (G, key),
                f"{key!r} applies to {other} only, but {guest.name} is type {spec.type}",
                f"remove {key}, or change type if {guest.name} is meant to be one of the {other}",
            )
    if spec.type == "lxc" and spec.rootfs is None:
        yield finding(
            guest,
            "guest.type_fields",
            (G, "rootfs"),
            f"LXC container {guest.name} has no rootfs",
            "add rootfs: {storage: <storage id>, size: 8G}",
        )


def _sizes(lab: Lab) -> Iterator[Finding]:
    for host in lab.hosts.values():
        guests = lab.guests_on(host.name)
        vcpus, memory = host.spec.cpu.vcpus, host.spec.memory
        for guest in guests:
            spec = guest.spec.guest
            if spec.cores > vcpus:
                yield finding(
                    guest,
                    "guest.exceeds_host",
                    (G, "cores"),
                    f"{guest.name} asks for {spec.cores} cores; "
                    f"node {host.name} has {vcpus} threads",
                    f"lower cores to at most {vcpus}",
                )
            if spec.memory > memory:
                yield finding(
                    guest,
                    "guest.exceeds_host",
                    (G, "memory"),
                    f"{guest.name} asks for {format_size(spec.memory)} of memory; "
                    f"node {host.name} has {format_size(memory)}",
                    f"lower memory below {format_size(memory)}, leaving room for the host",
                )
        total = sum(guest.spec.guest.memory for guest in guests)
        if total > memory:
            yield finding(
                host,
                "guest.memory_overcommit",
                ("labsmith_memory",),
                f"the guests of {host.name} ask for {format_size(total)} of memory together; "
                f"it has {format_size(memory)} "
                "(a VM with a passed-through GPU pins all its memory)",
                "lower the guests' memory or move guests to another node",
                severity="warning",
            )
