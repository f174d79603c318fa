"""What the simulated cluster holds: nodes, storages and their volumes, guests, mappings, users.

Plain dataclasses that round-trip through JSON, so ``labsmith sim serve --state FILE`` can keep
a lab between runs. Behaviour (what a request does to them) lives in ``labsmith.sim.handlers``.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labsmith.errors import LabsmithError
from labsmith.private_files import write_private_file
from labsmith.units import GIB

# 2: passwords as salted scrypt hashes (``password_hash``); 1 kept unsalted SHA-256 digests.
STATE_FORMAT = 2
# Container templates a fresh node has downloaded, as ``pveam`` names them.
DEFAULT_TEMPLATES = (
    "debian-12-standard_12.7-1_amd64.tar.zst",
    "debian-13-standard_13.1-2_amd64.tar.zst",
    "ubuntu-24.04-standard_24.04-2_amd64.tar.zst",
)


class StateFileError(LabsmithError):
    """The ``--state`` file cannot be read back."""

    exit_code = 2


@dataclass
class PciDevice:
    """A PCI function the node has (``GET /nodes/{node}/hardware/pci``)."""

    address: str  # 0000:01:00.0
    vendor_device: str  # 10de:2b85
    iommu_group: int
    class_code: str = "0x030000"
    name: str = ""


@dataclass
class Interface:
    """One entry of a node's ``/etc/network/interfaces``."""

    iface: str
    type: str  # bridge | eth | vlan | bond
    bridge_ports: str = ""
    bridge_vlan_aware: bool = False
    cidr: str = ""
    gateway: str = ""
    autostart: bool = True
    comments: str = ""


@dataclass
class Node:
    name: str
    cores: int = 16
    memory: int = 64 * GIB
    online: bool = True
    interfaces: dict[str, Interface] = field(default_factory=dict)
    # Written by POST/PUT .../network, live after PUT /nodes/{node}/network (ifreload).
    pending_interfaces: dict[str, Interface] | None = None
    pci_devices: list[PciDevice] = field(default_factory=list)


@dataclass
class Volume:
    volid: str  # storage:name
    content: str  # images | rootdir | backup | vztmpl | iso
    size: int
    vmid: int | None = None
    format: str = "raw"
    ctime: int = 0
    # Backups: the guest type and the guest config they restore.
    subtype: str | None = None
    guest_config: dict[str, Any] | None = None
    notes: str = ""


@dataclass
class Storage:
    storage: str
    type: str  # dir | zfspool | lvmthin | pbs
    content: list[str]
    total: int = 1024 * GIB
    shared: bool = False
    nodes: list[str] | None = None  # None: every node
    path: str | None = None
    pool: str | None = None
    thinpool: str | None = None
    vgname: str | None = None
    server: str | None = None
    datastore: str | None = None
    # Volumes per node (a shared or PBS storage keeps them under "").
    volumes: dict[str, dict[str, Volume]] = field(default_factory=dict)

    def on(self, node: str) -> dict[str, Volume]:
        return self.volumes.setdefault("" if self.shared else node, {})

    def available_on(self, node: str) -> bool:
        return self.nodes is None or node in self.nodes


@dataclass
class Snapshot:
    name: str
    config: dict[str, Any]
    snaptime: int
    description: str = ""
    parent: str | None = None


@dataclass
class Guest:
    vmid: int
    kind: str  # qemu | lxc
    node: str
    config: dict[str, Any]
    pending: dict[str, Any] = field(default_factory=dict)
    pending_delete: list[str] = field(default_factory=list)
    status: str = "stopped"
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    uptime_since: int | None = None

    @property
    def label(self) -> str:
        """How PVE names the guest in messages: "VM 100" or "CT 100"."""
        return f"{'VM' if self.kind == 'qemu' else 'CT'} {self.vmid}"


@dataclass
class PciMapping:
    id: str
    map: list[str]
    description: str = ""
    mdev: bool = False
    live_migration_capable: bool = False


@dataclass
class Token:
    secret_sha256: str
    privsep: bool = True
    comment: str = ""
    expire: int = 0


@dataclass
class User:
    userid: str
    password_hash: str | None = None  # PHC string: $scrypt$ln=..,r=..,p=..$salt$hash
    enable: bool = True
    tokens: dict[str, Token] = field(default_factory=dict)
    comment: str = ""


@dataclass
class AclRule:
    path: str
    role: str
    propagate: bool
    user: str | None = None
    token: str | None = None


@dataclass
class ClusterState:
    nodes: dict[str, Node] = field(default_factory=dict)
    storages: dict[str, Storage] = field(default_factory=dict)
    guests: dict[int, Guest] = field(default_factory=dict)
    mappings: dict[str, PciMapping] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    acl: list[AclRule] = field(default_factory=list)
    # Counts every write, so a stale ``digest`` or a lost node can be told apart.
    generation: int = 0

    def guest(self, vmid: int) -> Guest | None:
        return self.guests.get(vmid)

    def to_json(self) -> dict[str, Any]:
        return {"format": STATE_FORMAT, **asdict(self)}


def default_state() -> ClusterState:
    """One node ``pve1`` as a fresh ZFS install makes it: ``local``, ``local-zfs``, ``vmbr0``."""
    state = ClusterState()
    add_node(state, Node(name="pve1"))
    state.nodes["pve1"].interfaces["vmbr0"] = Interface(
        iface="vmbr0",
        type="bridge",
        bridge_ports="eno1",
        bridge_vlan_aware=True,
        cidr="192.168.1.10/24",
        gateway="192.168.1.1",
    )
    state.storages["local-zfs"] = Storage(
        storage="local-zfs", type="zfspool", content=["images", "rootdir"], pool="rpool/data"
    )
    return state


def add_node(state: ClusterState, node: Node) -> None:
    """A node with its physical NIC and the ``local`` directory storage every install has."""
    node.interfaces.setdefault("eno1", Interface(iface="eno1", type="eth"))
    state.nodes[node.name] = node
    local = state.storages.setdefault(
        "local",
        Storage(
            storage="local",
            type="dir",
            content=["iso", "vztmpl", "backup"],
            path="/var/lib/vz",
            total=100 * GIB,
        ),
    )
    volumes = local.on(node.name)
    for template in DEFAULT_TEMPLATES:
        volid = f"local:vztmpl/{template}"
        volumes.setdefault(
            volid, Volume(volid=volid, content="vztmpl", size=130 * 1024**2, format="tzst")
        )


def save_state(state: ClusterState, path: Path) -> None:
    """Write atomically and 0600: the file holds password hashes and token digests."""
    write_private_file(path, json.dumps(state.to_json(), indent=1, sort_keys=True).encode())


def load_state(path: Path) -> ClusterState:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise StateFileError(
            f"{path}: cannot read the simulator state ({error}); "
            "remove the file to start from a fresh lab"
        ) from error
    if isinstance(data, dict) and data.get("format") == 1:
        data = _upgrade_from_format_1(data, path)
    if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
        raise StateFileError(
            f"{path}: not a labsmith sim state file (format {STATE_FORMAT}); "
            "remove it to start from a fresh lab"
        )
    try:
        return _state_from_json(data)
    except (KeyError, TypeError, ValueError) as error:
        raise StateFileError(
            f"{path}: damaged simulator state ({error!r}); remove it to start from a fresh lab"
        ) from error


def _upgrade_from_format_1(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """Format 1 differs only in its unsalted password digests, which cannot be turned into
    salted hashes without the passwords: a file that has one is refused."""
    users = data.get("users")
    for userid, raw in users.items() if isinstance(users, dict) else ():
        if not isinstance(raw, dict):
            continue
        if raw.get("password_sha256") is not None:
            raise StateFileError(
                f"{path}: users.{userid} has an unsalted password digest (state format 1, "
                f'labsmith before salted hashes); set its "password_sha256" to null and set '
                "the password again (--password-file for root@pam), or remove the file to "
                "start from a fresh lab"
            )
        raw.pop("password_sha256", None)
    return {**data, "format": STATE_FORMAT}


def _state_from_json(data: dict[str, Any]) -> ClusterState:
    nodes = {}
    for name, raw in data["nodes"].items():
        pending = raw.pop("pending_interfaces")
        nodes[name] = Node(
            **{
                key: value for key, value in raw.items() if key not in ("interfaces", "pci_devices")
            },
            interfaces={k: Interface(**v) for k, v in raw["interfaces"].items()},
            pending_interfaces=(
                {k: Interface(**v) for k, v in pending.items()} if pending is not None else None
            ),
            pci_devices=[PciDevice(**device) for device in raw["pci_devices"]],
        )
    storages = {}
    for storage_id, raw in data["storages"].items():
        volumes = {
            node: {volid: Volume(**volume) for volid, volume in by_id.items()}
            for node, by_id in raw.pop("volumes").items()
        }
        storages[storage_id] = Storage(**raw, volumes=volumes)
    guests = {}
    for raw in data["guests"].values():
        snapshots = {name: Snapshot(**snap) for name, snap in raw.pop("snapshots").items()}
        guest = Guest(**raw, snapshots=snapshots)
        guests[guest.vmid] = guest
    users = {}
    for userid, raw in data["users"].items():
        tokens = {name: Token(**token) for name, token in raw.pop("tokens").items()}
        users[userid] = User(**raw, tokens=tokens)
    return ClusterState(
        nodes=nodes,
        storages=storages,
        guests=guests,
        mappings={key: PciMapping(**value) for key, value in data["mappings"].items()},
        users=users,
        acl=[AclRule(**rule) for rule in data["acl"]],
        generation=data["generation"],
    )
