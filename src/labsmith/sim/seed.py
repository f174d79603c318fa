"""A simulated cluster shaped like an inventory: its Proxmox hosts, storages, bridges and GPUs.

Guests are not seeded: creating them is the client's job (``labsmith apply``).
"""

from pathlib import Path

from labsmith.checks.lab import require_valid_lab
from labsmith.errors import LabsmithError
from labsmith.inventory.lab import PhysicalHost
from labsmith.inventory.model import Storage as StorageSpec
from labsmith.sim.state import ClusterState, Interface, Node, PciDevice, Storage, add_node
from labsmith.units import GIB

BACKENDS = {"zfs": "zfspool", "lvm-thin": "lvmthin", "mdadm": "dir", "dir": "dir"}
DEFAULT_STORAGE_BYTES = 1024 * GIB
# IOMMU groups are not in the inventory; numbered from here in PCI address order.
FIRST_IOMMU_GROUP = 12


class SeedError(LabsmithError):
    exit_code = 2


def state_from_inventory(source: Path, vault_password_file: Path | None = None) -> ClusterState:
    report = require_valid_lab(source, vault_password_file)
    hosts = [host for host in report.lab.hosts.values() if host.spec.kind == "proxmox"]
    if not hosts:
        raise SeedError(
            f"{source}: no host has labsmith_kind: proxmox, so there is no node to simulate"
        )
    state = ClusterState()
    for host in sorted(hosts, key=lambda h: h.name):
        add_node(state, _node(host))
        for spec in host.spec.storage:
            _add_storage(state, host, spec)
    return state


def _node(host: PhysicalHost) -> Node:
    spec = host.spec
    node = Node(name=host.name, cores=spec.cpu.threads or spec.cpu.cores, memory=spec.memory)
    for nic in spec.nics:
        node.interfaces[nic.name] = Interface(iface=nic.name, type="eth")
    for bridge in spec.bridges:
        node.interfaces[bridge.name] = Interface(
            iface=bridge.name,
            type="bridge",
            bridge_ports=" ".join(bridge.ports),
            bridge_vlan_aware=bridge.vlan_aware,
            cidr=str(bridge.ip) if bridge.ip is not None else "",
            gateway=str(bridge.gateway) if bridge.gateway is not None else "",
        )
    ordered = sorted(spec.gpus, key=lambda gpu: gpu.pci)
    for group, gpu in enumerate(ordered, start=FIRST_IOMMU_GROUP):
        node.pci_devices.append(
            PciDevice(
                address=gpu.pci,
                vendor_device=gpu.vendor_device,
                iommu_group=group,
                name=gpu.model or gpu.name,
            )
        )
    return node


def _add_storage(state: ClusterState, host: PhysicalHost, spec: StorageSpec) -> None:
    existing = state.storages.get(spec.id)
    if existing is not None:
        if existing.nodes is not None and host.name not in existing.nodes:
            existing.nodes.append(host.name)
        existing.content = sorted(set(existing.content) | set(spec.content))
        return
    storage_type = BACKENDS[spec.backend]
    state.storages[spec.id] = Storage(
        storage=spec.id,
        type=storage_type,
        content=sorted(spec.content),
        total=_capacity(host, spec),
        nodes=[host.name],
        path=spec.mount if storage_type == "dir" else None,
        pool=(spec.pool or spec.id) if storage_type == "zfspool" else None,
        vgname=spec.pool or spec.id if storage_type == "lvmthin" else None,
        thinpool="data" if storage_type == "lvmthin" else None,
    )


def _capacity(host: PhysicalHost, spec: StorageSpec) -> int:
    sizes = [disk.size for disk in host.spec.disks if disk.id in spec.disks and disk.size]
    if not sizes:
        return DEFAULT_STORAGE_BYTES
    return min(sizes) if spec.layout == "mirror" else sum(sizes)
