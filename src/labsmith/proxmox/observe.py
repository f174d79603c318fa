"""What a cluster holds now: its guests (config with pending changes), PCI mappings and GPUs.

Reads only, each retried by the client on transient failures. A guest's full configuration
is read only where the planner needs it: the VMIDs the inventory declares.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from labsmith.inventory.model import GuestType
from labsmith.proxmox.client import ProxmoxClient
from labsmith.proxmox.errors import PermissionDeniedError


@dataclass(frozen=True)
class ObservedGuest:
    node: str
    vmid: int
    kind: GuestType
    name: str
    status: str
    lock: str = ""
    template: bool = False
    # The configuration as it will be after the next restart (pending values applied), as
    # ``GET config`` returns it; ``pending`` names the keys still waiting for that restart.
    config: dict[str, Any] = field(default_factory=dict)
    pending: frozenset[str] = frozenset()
    digest: str | None = None


@dataclass
class ObservedCluster:
    guests: dict[int, ObservedGuest] = field(default_factory=dict)
    mappings: dict[str, list[str]] = field(default_factory=dict)
    # (node, PCI address as lspci -D prints it) -> IOMMU group; empty when not readable.
    iommu_groups: dict[tuple[str, str], int] = field(default_factory=dict)
    offline_nodes: set[str] = field(default_factory=set)


def observe_cluster(
    client: ProxmoxClient, vmids: Iterable[int], gpu_nodes: Iterable[str] = ()
) -> ObservedCluster:
    observed = ObservedCluster()
    for row in client.cluster_resources("node"):
        if row.get("status") != "online":
            observed.offline_nodes.add(str(row.get("node")))
    wanted = set(vmids)
    for row in client.cluster_resources("vm"):
        vmid = int(row["vmid"])
        guest = _guest_from_row(row)
        if vmid in wanted and guest.node not in observed.offline_nodes:
            guest = observe_guest(client, guest)
        observed.guests[vmid] = guest
    observed.mappings = {
        str(m["id"]): [str(e) for e in m.get("map", [])] for m in _mappings(client)
    }
    for node in sorted(set(gpu_nodes) - observed.offline_nodes):
        observed.iommu_groups.update(_iommu_groups(client, node))
    return observed


def observe_guest(client: ProxmoxClient, guest: ObservedGuest) -> ObservedGuest:
    """Read the guest's configuration with its pending section (one call)."""
    rows = client.guest_pending(guest.node, guest.kind, guest.vmid)
    config: dict[str, Any] = {}
    pending: set[str] = set()
    digest = None
    for row in rows:
        key = str(row["key"])
        if key == "digest":
            digest = str(row.get("value"))
            continue
        if "pending" in row:
            config[key] = row["pending"]
            pending.add(key)
        elif "value" in row and not row.get("delete"):
            config[key] = row["value"]
        if row.get("delete"):
            pending.add(key)
    return ObservedGuest(
        node=guest.node,
        vmid=guest.vmid,
        kind=guest.kind,
        name=str(config.get("name") or config.get("hostname") or guest.name),
        status=guest.status,
        lock=str(config.get("lock", guest.lock) or ""),
        template=bool(int(config.get("template", 0) or 0)) or guest.template,
        config=config,
        pending=frozenset(pending),
        digest=digest,
    )


def _guest_from_row(row: dict[str, Any]) -> ObservedGuest:
    return ObservedGuest(
        node=str(row.get("node", "")),
        vmid=int(row["vmid"]),
        # /cluster/resources?type=vm lists guests only: "qemu" or "lxc".
        kind="lxc" if row.get("type") == "lxc" else "qemu",
        name=str(row.get("name", "")),
        status=str(row.get("status", "unknown")),
        lock=str(row.get("lock", "") or ""),
        template=bool(int(row.get("template", 0) or 0)),
    )


def _mappings(client: ProxmoxClient) -> list[dict[str, Any]]:
    try:
        return client.pci_mappings()
    except PermissionDeniedError:
        return []  # Mapping.Audit missing: the planner then proposes creates, which PVE refuses


def _iommu_groups(client: ProxmoxClient, node: str) -> dict[tuple[str, str], int]:
    try:
        devices = client.get(f"nodes/{node}/hardware/pci")
    except PermissionDeniedError:
        return {}
    groups: dict[tuple[str, str], int] = {}
    for device in devices:
        group = device.get("iommugroup")
        if group is not None and int(group) >= 0:
            groups[(node, str(device["id"]).lower())] = int(group)
    return groups
