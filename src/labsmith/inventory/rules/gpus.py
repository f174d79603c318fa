"""GPUs: unique per host, the right mode for the guest type, never passed through twice."""

from collections.abc import Iterator

from labsmith.inventory.findings import Finding
from labsmith.inventory.lab import Guest, Lab, PhysicalHost
from labsmith.inventory.rules.report import finding

RULES = {
    "gpu.unknown": "a guest names a GPU its node does not have",
    "gpu.assigned_twice": "a passthrough GPU is given to two guests",
    "gpu.host_mode_to_vm": "a host-mode GPU is given to a VM",
    "gpu.passthrough_to_lxc": "a passthrough GPU is given to an LXC container",
    "gpu.passthrough_on_metal": "passthrough mode on a bare-metal host",
    "gpu.duplicate": "two GPUs of one host share a name or PCI address",
    "gpu.vm_machine": "a VM with a passed-through GPU is not q35 + OVMF",
}


def check_gpus(lab: Lab) -> Iterator[Finding]:
    for host in lab.hosts.values():
        yield from _host_gpus(host)
    owners: dict[tuple[str, str], Guest] = {}
    for guest in sorted(lab.guests.values(), key=lambda g: g.name):
        node = lab.hosts.get(guest.spec.guest.node)
        if node is not None and node.spec.kind == "proxmox":
            yield from _guest_gpus(guest, node, owners)


def _host_gpus(host: PhysicalHost) -> Iterator[Finding]:
    names: dict[str, int] = {}
    addresses: dict[str, int] = {}
    for index, gpu in enumerate(host.spec.gpus):
        for seen, value, key in ((names, gpu.name, "name"), (addresses, gpu.pci, "pci")):
            if value in seen:
                yield finding(
                    host,
                    "gpu.duplicate",
                    ("labsmith_gpus", index, key),
                    f"{key} {value!r} is already used by labsmith_gpus[{seen[value]}]",
                    f"give every GPU of {host.name} its own name and its own PCI address",
                )
            seen.setdefault(value, index)
        if host.spec.kind == "metal" and gpu.mode == "passthrough":
            yield finding(
                host,
                "gpu.passthrough_on_metal",
                ("labsmith_gpus", index, "mode"),
                f"GPU {gpu.name} is set to passthrough, but {host.name} is a bare-metal host "
                "with no VMs to pass it to",
                "set mode: host (the host's own driver runs it), "
                "or make the host labsmith_kind: proxmox",
            )


def _guest_gpus(
    guest: Guest, node: PhysicalHost, owners: dict[tuple[str, str], Guest]
) -> Iterator[Finding]:
    spec = guest.spec.guest
    gpus = {gpu.name: gpu for gpu in node.spec.gpus}
    path = ("labsmith_guest", "gpus")
    has_passthrough = False
    for index, name in enumerate(spec.gpus):
        gpu = gpus.get(name)
        if gpu is None:
            yield finding(
                guest,
                "gpu.unknown",
                (*path, index),
                f"{guest.name} asks for GPU {name!r}, but node {node.name} has "
                + (", ".join(sorted(gpus)) or "no GPUs"),
                f"use a name from labsmith_gpus of {node.name} ({node.origin('labsmith_gpus')})",
            )
        elif gpu.mode == "host" and spec.type == "qemu":
            yield finding(
                guest,
                "gpu.host_mode_to_vm",
                (*path, index),
                f"GPU {name} stays on {node.name}'s own driver (mode host) and cannot be handed to "
                f"VM {guest.name}",
                f"set the GPU's mode to passthrough on {node.name}, or run {guest.name} as an LXC "
                "container that shares the host's driver",
            )
        elif gpu.mode == "passthrough" and spec.type == "lxc":
            yield finding(
                guest,
                "gpu.passthrough_to_lxc",
                (*path, index),
                f"GPU {name} is bound to vfio-pci for a VM (mode passthrough); container "
                f"{guest.name} can only use GPUs that the host's driver runs",
                f"set the GPU's mode to host on {node.name}, or make {guest.name} a qemu VM",
            )
        elif gpu.mode == "passthrough":
            has_passthrough = True
            first = owners.setdefault((node.name, name), guest)
            if first is not guest:
                yield finding(
                    guest,
                    "gpu.assigned_twice",
                    (*path, index),
                    f"GPU {name} of {node.name} is already passed through to {first.name}; "
                    "a passed-through GPU belongs to one VM",
                    f"remove {name} from one of the two guests",
                )
    if has_passthrough:
        yield from _machine(guest)


def _machine(guest: Guest) -> Iterator[Finding]:
    spec = guest.spec.guest
    for key, value, wanted in (("machine", spec.machine, "q35"), ("bios", spec.bios, "ovmf")):
        if value is not None and value != wanted:
            yield finding(
                guest,
                "gpu.vm_machine",
                ("labsmith_guest", key),
                f"{guest.name} gets a passed-through GPU but has {key} {value}; modern GPUs "
                "need PCIe (q35) and UEFI (OVMF) to initialise in a VM",
                f"set {key}: {wanted}",
                severity="warning",
            )
