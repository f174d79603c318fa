"""From an inventory to a plan: validate, compute what is wanted, connect, observe, plan."""

from dataclasses import dataclass, field, replace
from pathlib import Path

from labsmith.checks.lab import require_valid_lab
from labsmith.errors import UnknownHostError
from labsmith.proxmox.client import ProxmoxClient, RetryPolicy
from labsmith.proxmox.desired import DesiredLab, desired_lab
from labsmith.proxmox.endpoints import Overrides, cluster_endpoints
from labsmith.proxmox.observe import ObservedCluster, observe_cluster
from labsmith.proxmox.plan import Plan, plan_lab


@dataclass
class GuestLab:
    desired: DesiredLab
    clients: dict[str, ProxmoxClient]
    # Clusters whose root@pam password is known: their bind mounts and devices are set.
    root_clients: dict[str, ProxmoxClient] = field(default_factory=dict)
    # With --limit only the named guests are planned, and guests outside the inventory
    # are not listed.
    limited: bool = False

    def observe(self) -> dict[str, ObservedCluster]:
        observed = {}
        for cluster, client in self.clients.items():
            guests = [g for g in self.desired.guests if g.cluster == cluster]
            gpu_nodes = {m.node for m in self.desired.mappings.get(cluster, [])}
            observed[cluster] = observe_cluster(client, [g.vmid for g in guests], gpu_nodes)
        return observed

    def plan(self, destroy: frozenset[str] = frozenset()) -> Plan:
        plan = plan_lab(self.desired, self.observe(), destroy, frozenset(self.root_clients))
        if self.limited:
            plan = replace(plan, actions=[a for a in plan.actions if a.in_inventory])
        return plan


def load_guest_lab(
    source: Path,
    overrides: Overrides,
    vault_password_file: Path | None = None,
    limit: tuple[str, ...] = (),
    retry: RetryPolicy | None = None,
) -> GuestLab:
    report = require_valid_lab(source, vault_password_file)
    desired = desired_lab(report.lab)
    if limit:
        desired = _limited(desired, limit)
    clusters = {guest.cluster for guest in desired.guests}
    endpoints = cluster_endpoints(report.lab, overrides, vault_password_file)
    clients = {
        cluster: ProxmoxClient(endpoint, retry=retry)
        for cluster, endpoint in endpoints.items()
        if cluster in clusters or not limit
    }
    root_clients = {
        cluster: ProxmoxClient(endpoints[cluster], retry=retry, as_root=True)
        for cluster in clients
        if endpoints[cluster].root_password
    }
    return GuestLab(
        desired=desired, clients=clients, root_clients=root_clients, limited=bool(limit)
    )


def _limited(desired: DesiredLab, limit: tuple[str, ...]) -> DesiredLab:
    known = {g.inventory_name for g in desired.guests} | {g.name for g in desired.guests}
    unknown = sorted(set(limit) - known)
    if unknown:
        raise UnknownHostError(
            f"--limit {', '.join(unknown)}: no such guest in the inventory; guests: "
            f"{', '.join(sorted(g.inventory_name for g in desired.guests))}"
        )
    guests = [g for g in desired.guests if g.inventory_name in limit or g.name in limit]
    used = {(g.cluster, m) for g in guests for m in g.mappings}
    mappings = {
        cluster: [m for m in found if (cluster, m.id) in used]
        for cluster, found in desired.mappings.items()
    }
    return DesiredLab(guests=guests, mappings={c: m for c, m in mappings.items() if m})
