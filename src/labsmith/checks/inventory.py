"""The inventory against the hardware: each declared GPU, disk and NIC where it says it is."""

from collections.abc import Iterator
from pathlib import PurePosixPath

from labsmith.checks.verdict import Check
from labsmith.facts.model import BlockDevice
from labsmith.facts.snapshot import HostFacts
from labsmith.inventory.lab import PhysicalHost
from labsmith.inventory.model import Disk


def inventory_checks(facts: HostFacts, host: PhysicalHost) -> Iterator[Check]:
    yield from _gpus(facts, host)
    yield from _disks(facts, host)
    yield from _nics(facts, host)


def _gpus(facts: HostFacts, host: PhysicalHost) -> Iterator[Check]:
    if not host.spec.gpus:
        return
    if facts.pci_devices is None:
        yield Check(
            "inventory.gpu", "unknown", "no lspci in the snapshot to find the declared GPUs"
        )
        return
    devices = {device.address: device for device in facts.pci_devices}
    for gpu in host.spec.gpus:
        declared = f"{gpu.name} at {gpu.pci} ({gpu.vendor_device})"
        device = devices.get(gpu.pci)
        if device is None:
            yield Check(
                "inventory.gpu",
                "fail",
                f"declared {declared}, but lspci shows no device at {gpu.pci}; fix pci "
                "in labsmith_gpus (lspci -D lists the addresses)",
            )
        elif device.vendor_device is not None and device.vendor_device != gpu.vendor_device:
            yield Check(
                "inventory.gpu",
                "fail",
                f"declared {declared}, but {gpu.pci} is {device.vendor_device} "
                f"({device.description}); fix vendor_device or pci in labsmith_gpus",
            )
        else:
            yield Check("inventory.gpu", "pass", f"{declared} is there: {device.description}")


def _flatten(devices: tuple[BlockDevice, ...]) -> Iterator[BlockDevice]:
    for device in devices:
        yield device
        yield from _flatten(device.children)


def _by_id_names(device: BlockDevice) -> set[str]:
    """The /dev/disk/by-id names udev gives the device: reported by lsblk, or built the way
    udev's rules build them (nvme-<model>_<serial>, ata-<model>_<serial>)."""
    names = {PurePosixPath(link).name for link in device.id_links}
    if device.model and device.serial:
        model = "_".join(device.model.split())
        prefix = "nvme" if device.transport == "nvme" or device.name.startswith("nvme") else "ata"
        names.add(f"{prefix}-{model}_{device.serial}")
    if device.wwn:
        names.add(f"wwn-{device.wwn}")
    return names


def _disks(facts: HostFacts, host: PhysicalHost) -> Iterator[Check]:
    if not host.spec.disks:
        return
    if facts.block_devices is None:
        yield Check(
            "inventory.disk", "unknown", "no lsblk in the snapshot to find the declared disks"
        )
        return
    disks = {d: _by_id_names(d) for d in _flatten(facts.block_devices) if d.type == "disk"}
    for declared in host.spec.disks:
        yield _disk(declared, disks)


def _disk(declared: Disk, disks: dict[BlockDevice, set[str]]) -> Check:
    name = PurePosixPath(declared.id).name
    match = next((d for d, names in disks.items() if name in names), None)
    if match is None and declared.serial:
        match = next((d for d in disks if d.serial == declared.serial), None)
    if match is None:
        present = ", ".join(sorted(n for names in disks.values() for n in names)) or "none"
        return Check(
            "inventory.disk",
            "fail",
            f"declared {declared.id}, but no disk has that id (the host's disks: {present}); "
            "copy the id from ls -l /dev/disk/by-id/",
        )
    mismatches = [
        f"{field} {want!r} declared, {have!r} found"
        for field, want, have in (
            ("model", declared.model, match.model),
            ("serial", declared.serial, match.serial),
        )
        if want and have and want.strip() != have.strip()
    ]
    if mismatches:
        return Check(
            "inventory.disk",
            "fail",
            f"{declared.id} is /dev/{match.name} but {'; '.join(mismatches)}: "
            "it may be another disk; fix labsmith_disks before any layout is built on it",
        )
    return Check("inventory.disk", "pass", f"{declared.id} is /dev/{match.name}")


def _nics(facts: HostFacts, host: PhysicalHost) -> Iterator[Check]:
    if not host.spec.nics:
        return
    if facts.links is None:
        yield Check(
            "inventory.nic", "unknown", "no ip link in the snapshot to find the declared NICs"
        )
        return
    links = {link.name: link for link in facts.links}
    for nic in host.spec.nics:
        link = links.get(nic.name)
        if link is None:
            present = ", ".join(
                name for name, other in links.items() if other.kind is None and name != "lo"
            )
            yield Check(
                "inventory.nic",
                "fail",
                f"declared NIC {nic.name}, but the host has no such link (its NICs: {present}); "
                "fix the name in labsmith_nics",
            )
        elif nic.mac and link.mac and nic.mac.lower() != link.mac.lower():
            yield Check(
                "inventory.nic",
                "fail",
                f"{nic.name} has MAC {link.mac}, the inventory declares {nic.mac}",
            )
        else:
            yield Check(
                "inventory.nic",
                "pass",
                f"{nic.name} is there" + (f" ({link.mac})" if link.mac else ""),
            )
