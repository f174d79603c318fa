"""The plan: desired guests and mappings against what the cluster holds, as plain data.

Pure: no API call, so every case is a data file (tests/fixtures/planner). Values are
compared the way PVE stores them, not as text: PVE writes ``fast:32`` back as
``fast:vm-110-disk-0,size=32G``, adds a MAC to every NIC and may order tags, so the planner
compares meanings. A change that would destroy data or needs a recreate is *blocked*, with
the reason and the fix; nothing on the cluster is ever deleted unless the user names the
guest with ``--destroy``.
"""

import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

from labsmith.inventory.model import GuestType
from labsmith.proxmox import propstring
from labsmith.proxmox.desired import (
    CREATE_ONLY,
    MANAGED_MARKER,
    DesiredGuest,
    DesiredLab,
    DesiredMapping,
)
from labsmith.proxmox.observe import ObservedCluster, ObservedGuest
from labsmith.units import format_size

ActionKind = Literal["create", "update", "start", "noop", "blocked", "destroy"]
MappingActionKind = Literal["create", "update", "noop", "blocked"]
Value = str | int | None

# Option families labsmith owns entirely: an index the inventory no longer declares is
# removed (a NIC, its IP settings, a passed-through device: no data lives in them).
OWNED_FAMILIES = re.compile(r"^(net|ipconfig|hostpci)\d+$")
# Disks hold data: one the inventory no longer declares is left in place and reported.
DATA_DISK = re.compile(r"^(scsi|virtio|sata)\d+$")
INT_OPTIONS = frozenset({"cores", "onboot", "balloon", "unprivileged"})


@dataclass(frozen=True)
class Change:
    old: Value
    new: Value
    blocked: str = ""  # why this change cannot be made; empty when it can

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {"old": self.old, "new": self.new}
        if self.blocked:
            result["blocked"] = self.blocked
        return result


@dataclass(frozen=True)
class Action:
    guest: str
    cluster: str
    node: str
    vmid: int
    kind: GuestType
    action: ActionKind
    changes: dict[str, Change] = field(default_factory=dict)
    reason: str = ""
    start: bool = False  # start the guest once created/updated
    in_inventory: bool = True
    # What apply sends: every option for a create, the changed ones for an update.
    send: dict[str, str | int] = field(default_factory=dict)
    # Settings sent afterwards in a root@pam session (bind mounts, devices).
    root_send: dict[str, str] = field(default_factory=dict)
    delete: tuple[str, ...] = ()
    digest: str | None = None
    notes: tuple[str, ...] = ()
    mappings: tuple[str, ...] = ()

    @property
    def writes(self) -> bool:
        return self.action in ("create", "update", "start", "destroy")

    def to_json(self) -> dict[str, Any]:
        return {
            "guest": self.guest,
            "node": self.node,
            "vmid": self.vmid,
            "type": self.kind,
            "action": self.action,
            "changes": {key: change.to_json() for key, change in self.changes.items()},
            "reason": self.reason,
            "start": self.start,
            "in_inventory": self.in_inventory,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class MappingAction:
    id: str
    cluster: str
    node: str
    action: MappingActionKind
    entries: tuple[str, ...] = ()  # the complete map list to write
    old: str | None = None
    new: str | None = None
    reason: str = ""
    description: str = ""

    @property
    def writes(self) -> bool:
        return self.action in ("create", "update")

    def to_json(self) -> dict[str, Any]:
        return {
            "mapping": self.id,
            "node": self.node,
            "action": self.action,
            "old": self.old,
            "new": self.new,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Plan:
    actions: list[Action]
    mapping_actions: list[MappingAction] = field(default_factory=list)

    @property
    def writes(self) -> bool:
        return any(a.writes for a in self.actions + self.mapping_actions)

    @property
    def blocked(self) -> list[Action]:
        """Blocked guests of the inventory (foreign guests are only reported)."""
        return [a for a in self.actions if a.action == "blocked" and a.in_inventory]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for action in self.actions:
            counts[action.action] = counts.get(action.action, 0) + 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "actions": [action.to_json() for action in self.actions],
            "mappings": [mapping.to_json() for mapping in self.mapping_actions],
            "summary": self.counts(),
        }


# Guests ---------------------------------------------------------------------------------


def plan_lab(
    desired: DesiredLab,
    observed: dict[str, ObservedCluster],
    destroy: frozenset[str] = frozenset(),
    root_clusters: frozenset[str] = frozenset(),
) -> Plan:
    """``destroy``: names or VMIDs of guests outside the inventory the user asked to remove.
    ``root_clusters``: clusters where root@pam's password is known (see ``root_only``)."""
    mapping_actions = [
        plan_mapping(mapping, cluster, observed[cluster])
        for cluster, mappings in desired.mappings.items()
        if cluster in observed
        for mapping in mappings
    ]
    unusable = {(m.cluster, m.id): m.reason for m in mapping_actions if m.action == "blocked"}
    actions: list[Action] = []
    for guest in desired.guests:
        if guest.cluster not in observed:
            continue
        action = plan_guest(guest, observed[guest.cluster], guest.cluster in root_clusters)
        reasons = [
            f"mapping {name}: {unusable[(guest.cluster, name)]}"
            for name in guest.mappings
            if (guest.cluster, name) in unusable
        ]
        if reasons and action.action != "noop":
            action = _blocked_like(action, "; ".join(reasons))
        actions.append(action)
    for cluster, found in sorted(observed.items()):
        declared = {g.vmid for g in desired.guests if g.cluster == cluster}
        for vmid, present in sorted(found.guests.items()):
            if vmid not in declared:
                actions.append(foreign_guest(cluster, present, destroy))
    return Plan(actions=actions, mapping_actions=mapping_actions)


def plan_guest(desired: DesiredGuest, cluster: ObservedCluster, as_root: bool = False) -> Action:
    """``as_root``: root@pam can be logged in as, so root-only settings are planned as
    changes; otherwise they are reported with the command that sets them."""
    actual = cluster.guests.get(desired.vmid)
    root_send = _root_only_changes(desired, actual) if as_root else {}
    root_notes = [] if as_root else _root_only_notes(desired, actual)
    if actual is None:
        namesake = _same_name(desired, cluster)
        if namesake is not None:
            return _action(
                desired,
                "blocked",
                reason=(
                    f"{_label(namesake)} on {namesake.node} is already called "
                    f"{desired.name!r}; set labsmith_guest.vmid: {namesake.vmid} in "
                    f"{desired.origin} to adopt it, or rename one of them"
                ),
            )
        if desired.node in cluster.offline_nodes:
            return _action(desired, "blocked", reason=f"node {desired.node} is offline")
        return _action(
            desired,
            "create",
            changes={
                key: Change(None, value) for key, value in {**desired.options, **root_send}.items()
            },
            send=dict(desired.options),
            root_send=root_send,
            start=desired.start,
            reason="not on the cluster",
            notes=tuple(root_notes),
        )
    refusal = _refusal(desired, actual, cluster)
    if refusal:
        return _action(desired, "blocked", reason=refusal)
    changes, send, delete, notes = diff_options(desired, actual)
    notes.extend(root_notes)
    for key, value in root_send.items():
        changes[key] = Change(_shown(actual.config.get(key)), value)
    blocked = {key: change for key, change in changes.items() if change.blocked}
    start = desired.start and actual.status == "stopped"
    pending = sorted(actual.pending - set(send) - set(delete))
    if pending:
        notes.append(f"waiting for a restart to take effect: {', '.join(pending)}")
    if blocked:
        return _action(
            desired,
            "blocked",
            changes=changes,
            reason="; ".join(f"{key}: {change.blocked}" for key, change in blocked.items()),
            notes=tuple(notes),
        )
    if send or delete or root_send:
        if actual.status == "running" and not _hot(desired.kind, send, delete):
            notes.append("the guest is running: some changes wait for its next restart")
        return _action(
            desired,
            "update",
            changes=changes,
            send=send,
            root_send=root_send,
            delete=tuple(delete),
            digest=actual.digest,
            start=start,
            reason=f"{len(changes)} setting(s) differ",
            notes=tuple(notes),
        )
    if start:
        return _action(desired, "start", start=True, reason="stopped", notes=tuple(notes))
    return _action(desired, "noop", reason="matches the inventory", notes=tuple(notes))


def _root_only_changes(desired: DesiredGuest, actual: ObservedGuest | None) -> dict[str, str]:
    config = actual.config if actual is not None else {}
    return {
        key: value
        for key, value in desired.root_only.items()
        if compare(desired.kind, key, value, config.get(key)) is not None
    }


def _root_only_notes(desired: DesiredGuest, actual: ObservedGuest | None) -> list[str]:
    """Settings an API token may not make: the command that makes them, run on the node."""
    missing = list(_root_only_changes(desired, actual))
    if not missing:
        return []
    arguments = [word for key in missing for word in (f"--{key}", desired.root_only[key])]
    command = shell_command("pct", "set", str(desired.vmid), *arguments)
    return [
        f"{', '.join(missing)}: PVE lets only root@pam itself set bind mounts and devices, "
        f"not an API token; on {desired.node} run: {command} "
        "(or give labsmith root@pam's password: LABSMITH_PVE_ROOT_PASSWORD)"
    ]


def shell_command(*words: str) -> str:
    """A command for a person to paste into a root shell: every word quoted, so no value
    from the inventory or the cluster can add a word or a second command."""
    return shlex.join(words)


def _action(desired: DesiredGuest, action: ActionKind, **fields: Any) -> Action:
    return Action(
        guest=desired.inventory_name,
        cluster=desired.cluster,
        node=desired.node,
        vmid=desired.vmid,
        kind=desired.kind,
        action=action,
        mappings=desired.mappings,
        **fields,
    )


def foreign_guest(cluster: str, guest: ObservedGuest, destroy: frozenset[str]) -> Action:
    named = guest.name in destroy or str(guest.vmid) in destroy
    return Action(
        guest=guest.name or f"{guest.vmid}",
        cluster=cluster,
        node=guest.node,
        vmid=guest.vmid,
        kind=guest.kind,
        action="destroy" if named else "blocked",
        in_inventory=False,
        reason=(
            "not in the inventory; destroyed as asked with --destroy"
            if named
            else "not in the inventory: left alone "
            f"({shell_command('--destroy', guest.name or str(guest.vmid))} would remove it)"
        ),
    )


def _refusal(desired: DesiredGuest, actual: ObservedGuest, cluster: ObservedCluster) -> str:
    """Why the guest at the VMID cannot be managed as the inventory's guest."""
    where = f"set another labsmith_guest.vmid in {desired.origin}"
    if actual.kind != desired.kind:
        return f"VMID {desired.vmid} is taken by {_label(actual)} {actual.name!r}; {where}"
    # Before the name: a guest being created carries only its lock until the task ends.
    if actual.lock:
        return f"{_label(actual)} is locked ({actual.lock}); run again when the lock is gone"
    ours = MANAGED_MARKER in str(actual.config.get("description", ""))
    if actual.name != desired.name and not ours:
        return (
            f"VMID {desired.vmid} is taken by {_label(actual)} {actual.name!r}, which labsmith "
            f"did not create; {where}"
        )
    if actual.node != desired.node:
        return (
            f"{_label(actual)} is on node {actual.node}, the inventory places it on "
            f"{desired.node}: migrate it (qm/pct migrate) or set labsmith_guest.node"
        )
    if actual.node in cluster.offline_nodes:
        return f"node {actual.node} is offline"
    if actual.template:
        return f"{_label(actual)} is a template; templates are not managed"
    return ""


def _same_name(desired: DesiredGuest, cluster: ObservedCluster) -> ObservedGuest | None:
    for guest in cluster.guests.values():
        if guest.name == desired.name and guest.vmid != desired.vmid:
            return guest
    return None


def _label(guest: ObservedGuest) -> str:
    return f"{'VM' if guest.kind == 'qemu' else 'CT'} {guest.vmid}"


def _blocked_like(action: Action, reason: str) -> Action:
    return Action(
        guest=action.guest,
        cluster=action.cluster,
        node=action.node,
        vmid=action.vmid,
        kind=action.kind,
        action="blocked",
        changes=action.changes,
        reason=reason,
        mappings=action.mappings,
    )


def _hot(kind: GuestType, send: dict[str, Any], delete: list[str]) -> bool:
    """Whether PVE applies these changes to a running guest at once (no restart needed)."""
    cold_qemu = {"cores", "memory", "machine", "bios", "cpu", "balloon", "scsihw", "ostype"}
    keys = set(send) | set(delete)
    if kind == "qemu":
        return not keys & cold_qemu and not any(k.startswith(("hostpci", "efidisk")) for k in keys)
    return not any(k.startswith("rootfs") or k == "unprivileged" for k in keys)


# Options --------------------------------------------------------------------------------


def diff_options(
    desired: DesiredGuest, actual: ObservedGuest
) -> tuple[dict[str, Change], dict[str, str | int], list[str], list[str]]:
    """(changes, values to send, keys to delete, notes) for one existing guest."""
    changes: dict[str, Change] = {}
    send: dict[str, str | int] = {}
    notes: list[str] = []
    for key, wanted in desired.options.items():
        if key in CREATE_ONLY:
            continue
        have = actual.config.get(key)
        verdict = compare(desired.kind, key, wanted, have, desired.vmid)
        if verdict is None:
            continue
        value, blocked = verdict
        changes[key] = Change(_shown(have), wanted, blocked)
        if not blocked:
            send[key] = value
    delete: list[str] = []
    for key in sorted(actual.config):
        if key in desired.options:
            continue
        if key in desired.root_only or (desired.kind == "lxc" and key.startswith(("mp", "dev"))):
            continue  # root@pam's to change; mount points may hold data
        if OWNED_FAMILIES.match(key):
            changes[key] = Change(_shown(actual.config[key]), None)
            delete.append(key)
        elif DATA_DISK.match(key) and desired.kind == "qemu" and _is_volume(actual.config[key]):
            notes.append(f"{key} is not in the inventory; left in place with its data")
    return changes, send, delete, notes


def compare(
    kind: GuestType, key: str, wanted: str | int, have: Any, vmid: int = 0
) -> tuple[str | int, str] | None:
    """None when equal in meaning; else (the value to send, why it is blocked or "")."""
    if key == "unprivileged" and have is None:
        have = 0  # PVE writes the key only for unprivileged containers
    if have is None:
        return wanted, ""
    family = re.sub(r"\d+$", "", key)
    if key in INT_OPTIONS or key == "memory":
        current = propstring.parse(have, "current").get("current", str(have))
        if key == "unprivileged" and str(current) != str(wanted):
            return wanted, (
                "switching between privileged and unprivileged needs a backup and a restore "
                "with the other setting (pct restore --unprivileged)"
            )
        return None if str(current) == str(wanted) else (wanted, "")
    if key == "tags":
        return None if _tags(have) == _tags(wanted) else (wanted, "")
    if key == "description":
        return None if str(have).strip() == str(wanted).strip() else (wanted, "")
    if key == "sshkeys":
        return None if unquote(str(have)).strip() == unquote(str(wanted)).strip() else (wanted, "")
    if key == "efidisk0":
        return None  # exists; its options are fixed at creation
    if key == "ide2" and kind == "qemu":
        return None if "cloudinit" in str(have) else (wanted, f"ide2 holds {have}, not cloud-init")
    if key == "rootfs" or (family in ("scsi", "virtio", "sata") and kind == "qemu"):
        tool = "qm" if kind == "qemu" else "pct"
        return _compare_disk(key, str(wanted), str(have), (tool, "resize", str(vmid)))
    if family == "net":
        return _compare_nic(kind, str(wanted), str(have))
    if family == "ipconfig":
        return None if propstring.parse(have) == propstring.parse(wanted) else (wanted, "")
    if family == "hostpci":
        return _compare_keys(str(wanted), str(have), "host", {"pcie": "0"})
    if family == "mp":
        return _compare_keys(str(wanted), str(have), "volume", {"ro": "0"})
    if family == "dev":
        return _compare_keys(str(wanted), str(have), "path", {})
    return None if str(have) == str(wanted) else (wanted, "")


def _compare_keys(
    wanted: str, have: str, default_key: str, defaults: dict[str, str]
) -> tuple[str, str] | None:
    want = propstring.parse(wanted, default_key)
    got = propstring.parse(have, default_key)
    keys = set(want) | {k for k in got if k in defaults or k == default_key}
    same = all(want.get(k, defaults.get(k)) == got.get(k, defaults.get(k)) for k in keys)
    return None if same else (wanted, "")


def _compare_nic(kind: GuestType, wanted: str, have: str) -> tuple[str, str] | None:
    mac_key = "macaddr" if kind == "qemu" else "hwaddr"
    want = propstring.parse(wanted)
    got = propstring.parse(have)
    defaults = {"firewall": "0", "link_down": "0"}
    keys = (set(want) | {k for k in got if k in ("tag", "firewall", "ip", "gw", "ip6", "gw6")}) - {
        mac_key
    }
    same = all(want.get(k, defaults.get(k)) == got.get(k, defaults.get(k)) for k in keys)
    if mac_key in want and want[mac_key].upper() != got.get(mac_key, "").upper():
        same = False
    if same:
        return None
    # Keep the NIC's MAC: the guest's network config (and DHCP leases) follow it.
    if mac_key not in want and mac_key in got:
        want[mac_key] = got[mac_key]
        return propstring.render(want), ""
    return wanted, ""


def _compare_disk(
    key: str, wanted: str, have: str, resize: tuple[str, ...]
) -> tuple[str, str] | None:
    want = propstring.parse(wanted, "volume")
    got = propstring.parse(have, "volume")
    want_storage, _, want_gib = want.pop("volume").partition(":")
    got_volume = got.pop("volume", "")
    got_storage = got_volume.partition(":")[0]
    got_size = propstring.size_bytes(got.pop("size", "0")) or 0
    want_size = int(float(want_gib) * 1024**3)
    if got.get("media") == "cdrom":
        return wanted, f"{key} is a CD-ROM drive ({have}); free the slot or pick another"
    if got_storage != want_storage:
        return wanted, (
            f"it lives on storage {got_storage}, the inventory says {want_storage}: moving a "
            "disk is not done by labsmith (use qm disk move / pct move-volume)"
        )
    if want_size < got_size:
        return wanted, (
            f"shrinking from {format_size(got_size)} to {format_size(want_size)} would lose "
            "data; disks only grow"
        )
    if want_size > got_size:
        return wanted, (
            f"growing from {format_size(got_size)} to {format_size(want_size)}: run "
            f"{shell_command(*resize, key, format_size(want_size))} on the node (labsmith does "
            "not resize disks)"
        )
    if all(got.get(k) == v for k, v in want.items()):
        return None
    # Same volume, other options (discard, iothread): re-send the volume with them.
    return propstring.render({"volume": got_volume, **want}, "volume"), ""


def _is_volume(value: Any) -> bool:
    text = str(value).split(",")[0]
    return ":" in text and "cloudinit" not in text and "media=cdrom" not in str(value)


def _tags(value: Any) -> frozenset[str]:
    return frozenset(tag for tag in re.split(r"[;, ]+", str(value)) if tag)


def _shown(value: Any) -> Value:
    if value is None or isinstance(value, int):
        return value
    return str(value)


# PCI mappings ---------------------------------------------------------------------------


def plan_mapping(
    desired: DesiredMapping, cluster_name: str, cluster: ObservedCluster
) -> MappingAction:
    def mapping_action(action: MappingActionKind, **fields: Any) -> MappingAction:
        return MappingAction(
            id=desired.id, cluster=cluster_name, node=desired.node, action=action, **fields
        )

    group = _iommu_group(desired, cluster)
    if cluster.iommu_groups and group is None and desired.node not in cluster.offline_nodes:
        known_on_node = any(node == desired.node for node, _ in cluster.iommu_groups)
        if known_on_node:
            return mapping_action(
                "blocked",
                reason=(
                    f"node {desired.node} has no PCI device {desired.path}.0; check "
                    "labsmith_gpus[].pci against lspci -D on the node"
                ),
            )
    entry = desired.map_entry(group)
    existing = cluster.mappings.get(desired.id)
    if existing is None:
        return mapping_action(
            "create",
            entries=(entry,),
            new=entry,
            reason="no such mapping",
            description=desired.description,
        )
    others = [e for e in existing if propstring.parse(e).get("node") != desired.node]
    current = next((e for e in existing if propstring.parse(e).get("node") == desired.node), None)
    if current is not None and _same_entry(current, entry):
        return mapping_action("noop", old=current, new=current)
    return mapping_action(
        "update",
        entries=(*others, entry),
        old=current,
        new=entry,
        reason="no entry for this node" if current is None else "the entry differs",
    )


def _iommu_group(desired: DesiredMapping, cluster: ObservedCluster) -> int | None:
    for function in ("0", "1"):
        group = cluster.iommu_groups.get((desired.node, f"{desired.path}.{function}"))
        if group is not None:
            return group
    return None


def _same_entry(have: str, want: str) -> bool:
    got, wanted = propstring.parse(have), propstring.parse(want)
    return all(got.get(k, "").lower() == v.lower() for k, v in wanted.items())
