"""Proxmox VE's access data: privileges and built-in roles, ACL paths, and a cluster's ACL
entries, users, groups and pools (pve-access-control ``src/PVE/AccessControl.pm``).

:mod:`labsmith.sim.privileges` evaluates what a user or token may do from it.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

# pve-access-control AccessControl.pm $privgroups: per category the privileges only root should
# hold, those for administrators, for users and for auditors (order as PVE lists them).
_PRIVILEGE_GROUPS: dict[str, dict[str, tuple[str, ...]]] = {
    "VM": {
        "root": (),
        "admin": (
            "VM.Config.Disk",
            "VM.Config.CPU",
            "VM.Config.Memory",
            "VM.Config.Network",
            "VM.Config.HWType",
            "VM.Config.Options",
            "VM.Allocate",
            "VM.Clone",
            "VM.GuestAgent.Unrestricted",
            "VM.Migrate",
            "VM.Replicate",
            "VM.Snapshot",
            "VM.Snapshot.Rollback",
        ),
        "user": (
            "VM.Config.CDROM",
            "VM.Config.Cloudinit",
            "VM.Console",
            "VM.Backup",
            "VM.GuestAgent.FileRead",
            "VM.GuestAgent.FileSystemMgmt",
            "VM.GuestAgent.FileWrite",
            "VM.PowerMgmt",
        ),
        "audit": ("VM.Audit", "VM.GuestAgent.Audit"),
    },
    "Sys": {
        "root": ("Sys.PowerMgmt", "Sys.Modify", "Sys.Incoming", "Sys.AccessNetwork"),
        "admin": ("Sys.Console", "Sys.Syslog"),
        "user": (),
        "audit": ("Sys.Audit",),
    },
    "Datastore": {
        "root": (),
        "admin": ("Datastore.Allocate", "Datastore.AllocateTemplate"),
        "user": ("Datastore.AllocateSpace",),
        "audit": ("Datastore.Audit",),
    },
    "SDN": {
        "root": (),
        "admin": ("SDN.Allocate", "SDN.Audit"),
        "user": ("SDN.Use",),
        "audit": ("SDN.Audit",),
    },
    "User": {
        "root": ("Realm.Allocate",),
        "admin": ("User.Modify", "Group.Allocate", "Realm.AllocateUser"),
        "user": (),
        "audit": (),
    },
    "Pool": {
        "root": (),
        "admin": ("Pool.Allocate",),
        "user": ("Pool.Audit",),
        "audit": ("Pool.Audit",),
    },
    "Mapping": {
        "root": (),
        "admin": ("Mapping.Modify",),
        "user": ("Mapping.Use",),
        "audit": ("Mapping.Audit",),
    },
}


def _pve8_groups() -> dict[str, dict[str, tuple[str, ...]]]:
    """$privgroups before pve-access-control 9.0.2 ("privileges: drop VM.Monitor" and "add
    VM.GuestAgent privileges") and 9.0.3 ("add VM.Replicate privilege"): Proxmox VE 8."""
    vm = _PRIVILEGE_GROUPS["VM"]
    admin = [p for p in vm["admin"] if p not in ("VM.GuestAgent.Unrestricted", "VM.Replicate")]
    admin.insert(admin.index("VM.Migrate") + 1, "VM.Monitor")
    return {
        **_PRIVILEGE_GROUPS,
        "VM": {
            "root": (),
            "admin": tuple(admin),
            "user": tuple(p for p in vm["user"] if not p.startswith("VM.GuestAgent.")),
            "audit": ("VM.Audit",),
        },
    }


def _builtin_roles(
    groups: Mapping[str, Mapping[str, tuple[str, ...]]],
) -> dict[str, frozenset[str]]:
    """AccessControl.pm ``create_roles`` plus the ``$special_roles`` it starts from."""
    valid = {"Permissions.Modify"}  # $valid_privs: the one privilege outside every group
    roles: dict[str, set[str]] = {"NoAccess": set(), "PVEAdmin": set(), "PVEAuditor": set()}
    for category, tiers in groups.items():
        valid.update(*tiers.values())
        granted = (*tiers["admin"], *tiers["user"], *tiers["audit"])
        roles.setdefault(f"PVE{category}Admin", set()).update(granted)
        roles["PVEAdmin"].update(granted)
        if tiers["user"]:
            roles.setdefault(f"PVE{category}User", set()).update(tiers["user"], tiers["audit"])
        roles["PVEAuditor"].update(tiers["audit"])
    # Only Administrator, root@pam and PVEMappingAdmin may modify resource mappings.
    roles["PVEAdmin"].discard("Mapping.Modify")
    roles["PVETemplateUser"] = {"VM.Clone", "VM.Audit"}
    roles["Administrator"] = valid
    return {name: frozenset(roles[name]) for name in sorted(roles)}


ROLES: Mapping[str, frozenset[str]] = MappingProxyType(_builtin_roles(_PRIVILEGE_GROUPS))
ALL_PRIVILEGES: frozenset[str] = ROLES["Administrator"]
# The same for Proxmox VE 8 (the bundled 8.4 API schema still checks VM.Monitor).
PVE8_ROLES: Mapping[str, frozenset[str]] = MappingProxyType(_builtin_roles(_pve8_groups()))

_USER_RE = r"[^\s:/]+"  # PVE/Auth/Plugin.pm $user_regex
_REALM_RE = r"[A-Za-z][A-Za-z0-9\.\-_]+"  # PVE/Auth/Plugin.pm $realm_regex
USERID = re.compile(rf"({_USER_RE})@({_REALM_RE})")
_TOKENID = re.compile(rf"({_USER_RE}@{_REALM_RE})!({_REALM_RE})")  # $token_full_regex
_ACL_PATH = re.compile(  # AccessControl.pm check_path
    r"""
    /
    |/access|/access/groups|/access/groups/[A-Za-z0-9.\-_]+
    |/access/realm|/access/realm/[A-Za-z0-9.\-_]+
    |/nodes|/nodes/[A-Za-z0-9.\-_]+
    |/pool|/pool/[A-Za-z0-9.\-_]+(?:/[A-Za-z0-9.\-_]+){0,2}
    |/sdn|/sdn/controllers|/sdn/controllers/[A-Za-z0-9_\-]+
    |/sdn/dns|/sdn/dns/[A-Za-z0-9]+
    |/sdn/fabrics|/sdn/fabrics/[A-Za-z0-9]+
    |/sdn/ipams|/sdn/ipams/[A-Za-z0-9]+
    |/sdn/zones|/sdn/zones/[A-Za-z0-9.\-_]+
    |/sdn/zones/[A-Za-z0-9.\-_]+/[A-Za-z0-9.\-_]+
    |/sdn/zones/[A-Za-z0-9.\-_]+/[A-Za-z0-9.\-_]+/[1-9][0-9]{0,3}
    |/storage|/storage/[A-Za-z0-9.\-_]+
    |/vms|/vms/[1-9][0-9]{2,}
    |/mapping|/mapping/[A-Za-z0-9.\-_]+|/mapping/[A-Za-z0-9.\-_]+/[A-Za-z0-9.\-_]+
    """,
    re.VERBOSE,
)


def normalize_path(path: str | None) -> str | None:
    """AccessControl.pm ``normalize_path``: ``vms//100/`` -> ``/vms/100``; None if unusable."""
    if not path:
        return None
    path = re.sub(r"/+", "/", path)
    path = path.removesuffix("/") or "/"
    if not path.startswith("/"):
        path = "/" + path
    if not re.fullmatch(r"[A-Za-z0-9.\-_/]+", path):
        return None
    return path


def is_acl_path(path: str) -> bool:
    """Whether PVE accepts ``path`` for an ACL entry (AccessControl.pm ``check_path``)."""
    return _ACL_PATH.fullmatch(path) is not None


@dataclass(frozen=True)
class AclEntry:
    path: str
    role: str
    propagate: bool = True


_Subject = tuple[str, str]  # ("user" | "token" | "group", id)


class AclStore:
    """The access data of a cluster: roles, users, groups, pools and ACL entries.

    Only data and its validation; what a user or token may do is :class:`AccessControl`'s
    (``labsmith.sim.privileges``) to work out from it.
    """

    def __init__(self, *, roles: Mapping[str, frozenset[str]] = ROLES) -> None:
        """``roles``: the built-in roles of the PVE release simulated (ROLES or PVE8_ROLES)."""
        self._builtin = roles
        self._valid = roles["Administrator"]
        self._acl: dict[str, dict[_Subject, dict[str, bool]]] = {}
        self._roles: dict[str, frozenset[str]] = dict(roles)
        self._groups: dict[str, set[str]] = {}
        self._pools: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
        # Known user ids, for the ``userid-group``/``userid-param`` checks that first ask
        # whether the user exists; None: not tracked, every well-formed user id exists.
        self.users: set[str] | None = None

    def add_role(self, name: str, privileges: Iterable[str]) -> None:
        """A custom role (``POST /access/roles``); built-in roles cannot be changed."""
        if name in self._builtin:
            raise ValueError(f"cannot modify special role '{name}'")
        privs = frozenset(privileges)
        for priv in sorted(privs - self._valid):
            raise ValueError(f"invalid privilege '{priv}'")
        self._roles[name] = privs

    def add_user(self, userid: str) -> None:
        if self.users is None:
            self.users = set()
        self.users.add(userid)

    def add_group_member(self, group: str, userid: str | None = None) -> None:
        """Create ``group`` if needed, and add ``userid`` to it."""
        members = self._groups.setdefault(group, set())
        if userid is not None:
            members.add(userid)

    def set_pool(
        self, pool: str, *, vms: Iterable[int | str] = (), storage: Iterable[str] = ()
    ) -> None:
        """Pool members: ACLs on ``/pool/{pool}`` also apply to them."""
        self._pools[pool] = (frozenset(str(v) for v in vms), frozenset(storage))

    def set_acl(
        self,
        path: str,
        role: str,
        *,
        user: str | None = None,
        token: str | None = None,
        group: str | None = None,
        propagate: bool = True,
    ) -> None:
        """Grant ``role`` on ``path`` to one user, token (``user@realm!name``) or group."""
        self._entries_of(path, role, user, token, group)[role] = propagate

    def delete_acl(
        self,
        path: str,
        role: str,
        *,
        user: str | None = None,
        token: str | None = None,
        group: str | None = None,
    ) -> None:
        self._entries_of(path, role, user, token, group).pop(role, None)

    def entries(
        self, *, user: str | None = None, token: str | None = None, group: str | None = None
    ) -> tuple[AclEntry, ...]:
        """The ACL entries of one user, token or group, by path."""
        subject = _subject(user, token, group)
        return tuple(
            AclEntry(path, role, propagate)
            for path in sorted(self._acl)
            for role, propagate in sorted(self._acl[path].get(subject, {}).items())
        )

    def _entries_of(
        self, path: str, role: str, user: str | None, token: str | None, group: str | None
    ) -> dict[str, bool]:
        normalized = normalize_path(path)
        if normalized is None or not is_acl_path(normalized):
            raise ValueError(f"invalid ACL path '{path}'")
        if role not in self._roles:
            raise ValueError(f"role '{role}' does not exist")
        subject = _subject(user, token, group)
        return self._acl.setdefault(normalized, {}).setdefault(subject, {})

    # What the evaluator reads -------------------------------------------------------------

    @property
    def valid_privileges(self) -> frozenset[str]:
        return self._valid

    def role_privileges(self, role: str) -> frozenset[str]:
        return self._roles.get(role, frozenset())

    def entries_at(self, path: str) -> Mapping[_Subject, Mapping[str, bool]]:
        """The roles (with their propagate flag) each subject has been given on ``path``."""
        return self._acl.get(path, {})

    def group_names(self) -> list[str]:
        return sorted(self._groups)

    def groups_of(self, authid: str) -> list[str]:
        return [group for group in sorted(self._groups) if authid in self._groups[group]]

    def members(self, group: str) -> frozenset[str]:
        return frozenset(self._groups.get(group, ()))

    def pools_holding(self, path: str) -> list[str]:
        """The pools that have ``path`` (``/vms/N`` or ``/storage/ID``) as a member."""
        return [
            pool
            for pool in sorted(self._pools)
            if path
            in {f"/vms/{v}" for v in self._pools[pool][0]}
            | {f"/storage/{s}" for s in self._pools[pool][1]}
        ]

    def user_exists(self, userid: str) -> bool:
        """Whether ``userid`` is known; with no users registered, every one is."""
        return self.users is None or userid in self.users


def _subject(user: str | None, token: str | None, group: str | None) -> _Subject:
    given = [
        (kind, value)
        for kind, value in (("user", user), ("token", token), ("group", group))
        if value
    ]
    if len(given) != 1:
        raise ValueError("name exactly one of user, token or group")
    kind, value = given[0]
    if kind == "token" and _TOKENID.fullmatch(value) is None:
        raise ValueError(f"value '{value}' does not look like a valid token ID")
    if kind == "user" and USERID.fullmatch(value) is None:
        raise ValueError(f"value '{value}' does not look like a valid user name")
    return kind, value
