"""Who may do what: Proxmox VE's privileges, built-in roles, ACLs and permission checks.

The model is Proxmox VE 9.1's, read from the Perl sources:

* pve-access-control ``src/PVE/AccessControl.pm``: ``$privgroups`` and ``create_roles`` (the
  built-in roles), ``roles`` (ACL inheritance), ``normalize_path``, ``check_path``;
* pve-access-control ``src/PVE/RPCEnvironment.pm``: ``permissions`` and ``compile_acl_path``
  (root, tokens, pools), ``check``/``check_any``/``check_vm_perm``, ``exec_api2_perm_check``
  and ``check_api2_permissions`` (a schema method's ``permissions`` object);
* pve-manager ``PVE/HTTPServer.pm`` ``rest_handler`` (``allowtoken``);
* the checks the guest APIs make in code: qemu-server 9.1.3 ``PVE/API2/Qemu.pm``
  (``$check_vm_modify_config_perm`` and its helpers) and pve-container ``src/PVE/LXC.pm``
  ``check_ct_modify_config_perm``.

Throughout PVE, ``$authuser eq 'root@pam'`` compares the *auth id*, which for an API token is
``user@realm!name``: a token of root@pam is never "root" there, even without privilege
separation, although it holds every privilege.
"""

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from labsmith.sim.acl_store import USERID, AclStore, normalize_path
from labsmith.sim.formats import property_values, split_list

ROOT = "root@pam"


def verify_username(userid: Any) -> tuple[str, str]:
    """``(userid, realm)``, or raises PVE's message (``PVE::Auth::Plugin::verify_username``)."""
    text = str(userid) if userid else ""
    if len(text) < 3:
        raise PermissionDenied.die(f"user name '{text}' is too short")
    if len(text) > 64:
        raise PermissionDenied.die(f"user name '{text}' is too long ({len(text)} > 64)")
    match = USERID.fullmatch(text)
    if match is None:
        raise PermissionDenied.die(f"value '{text}' does not look like a valid user name")
    return text, match.group(2)


@dataclass
class Principal:
    """Who is calling: a user with a ticket, or one of a user's API tokens."""

    userid: str  # "root@pam" or "alice@pve"; "" for the unauthenticated login calls
    token: str | None = None  # "labsmith" for root@pam!labsmith; None for a ticket
    privsep: bool = True  # token privilege separation; PVE's default for new tokens

    @property
    def authid(self) -> str:
        """``user@realm!token`` for a token, else the user id: what PVE calls ``$authuser``."""
        return f"{self.userid}!{self.token}" if self.token is not None else self.userid

    @property
    def is_root(self) -> bool:
        """True only for root@pam itself: PVE's ``$authuser eq 'root@pam'`` (for instance
        RPCEnvironment.pm ``check_api2_permissions``, Qemu.pm ``check_hostpci_perm``) compares
        the auth id, and a token's is ``root@pam!name``."""
        return self.authid == ROOT


class PermissionDenied(Exception):  # noqa: N818 - the name the simulator's modules share
    """A refused check with PVE's wording, e.g. ``Permission check failed (/vms/100, VM.Allocate)``.

    ``status`` is 403 for PVE's ``raise_perm_exc`` and 500 for the checks that ``die`` with a
    plain message ("only root can set 'args' config"). ``message`` drops the newline PVE ends
    its messages with.
    """

    def __init__(
        self,
        path: str = "",
        privileges: Sequence[str] = (),
        *,
        any_of: bool = False,
        message: str | None = None,
        status: int = 403,
    ) -> None:
        self.path = path
        self.privileges = tuple(privileges)
        self.status = status
        if message is None:
            # RPCEnvironment.pm check names the first privilege it finds missing; check_any
            # names all of them. Built directly, the first one listed stands for "the" one.
            named = "|".join(self.privileges) if any_of else next(iter(self.privileges), "")
            message = _perm_message(f"{path}, {named}")
        self.message = message
        super().__init__(message)

    @classmethod
    def because(cls, what: str | None = None) -> "PermissionDenied":
        """pve-common PVE/Exception.pm ``raise_perm_exc($what)``: HTTP 403."""
        return cls(message=_perm_message(what))

    @classmethod
    def die(cls, message: str) -> "PermissionDenied":
        """A plain ``die`` in a permission helper: HTTP 500 with the message as it is."""
        return cls(message=message, status=500)


def _perm_message(what: str | None) -> str:
    return f"Permission check failed ({what})" if what else "Permission check failed"


@dataclass(frozen=True)
class PermissionResult:
    """The outcome of a schema method's permission check; falsy when refused."""

    denial: PermissionDenied | None = None

    @property
    def allowed(self) -> bool:
        return self.denial is None

    @property
    def status(self) -> int:
        return 200 if self.denial is None else self.denial.status

    @property
    def message(self) -> str:
        return "" if self.denial is None else self.denial.message

    def __bool__(self) -> bool:
        return self.allowed

    def raise_if_denied(self) -> None:
        if self.denial is not None:
            raise self.denial


class MethodLike(Protocol):
    """What ``require_method`` reads of a schema method."""

    @property
    def path(self) -> str: ...

    @property
    def permissions(self) -> Mapping[str, Any] | None: ...

    @property
    def allow_token(self) -> bool: ...


class AccessControl:
    """PVE's permission checks (RPCEnvironment.pm) against one cluster's :class:`AclStore`."""

    def __init__(self, store: AclStore) -> None:
        self.store = store

    # Privileges ---------------------------------------------------------------------------

    def roles(self, authid: str, path: str) -> dict[str, bool]:
        """Roles of a user or token id on ``path`` from ACLs alone: AccessControl.pm ``roles``.

        Walking from ``/`` down to ``path``, the entries at each level that apply (those set
        on ``path`` itself, or with propagate) replace everything inherited so far; token
        entries come first, then the user's own, then the union of its groups'. A NoAccess
        among the result leaves only NoAccess.
        """
        parts = [""] if path == "/" else path.split("/")
        roles: dict[str, bool] = {}
        for depth in range(len(parts)):
            final = depth == len(parts) - 1
            level = "/".join(parts[: depth + 1]) or "/"
            entries = self.store.entries_at(level)
            found = _applicable(entries.get(("token", authid)), final)
            if not found:
                found = _applicable(entries.get(("user", authid)), final)
            if not found:
                for group in self.store.groups_of(authid):
                    found.update(_applicable(entries.get(("group", group)), final))
            if found:
                roles = found
        if "NoAccess" in roles:
            return {"NoAccess": roles["NoAccess"]}
        return roles

    def privileges(self, principal: Principal, path: str | None) -> frozenset[str]:
        """RPCEnvironment.pm ``permissions``: root@pam holds everything; a token without
        privilege separation holds its user's privileges; one with it, those its own ACLs grant
        that its user also holds (a root@pam token: its own ACLs alone)."""
        if principal.authid == ROOT:
            return self.store.valid_privileges
        normalized = normalize_path(path)
        if normalized is None or not principal.userid:
            return frozenset()
        if principal.token is None:
            return self._acl_privileges(principal.userid, normalized)
        user_privileges = (
            self.store.valid_privileges
            if principal.userid == ROOT
            else self._acl_privileges(principal.userid, normalized)
        )
        if not principal.privsep:
            return user_privileges
        return self._acl_privileges(principal.authid, normalized) & user_privileges

    def _acl_privileges(self, authid: str, path: str) -> frozenset[str]:
        """RPCEnvironment.pm ``compile_acl_path``: ACL roles plus those from pools."""
        roles = self.roles(authid, path)
        from_pools: dict[str, bool] = {}
        for pool in self.store.pools_holding(path):
            from_pools.update(dict.fromkeys(self.roles(authid, f"/pool/{pool}"), False))
        # NoAccess on the path itself is never trumped by pools; NoAccess on a pool trumps
        # the path's other roles.
        if from_pools and "NoAccess" not in roles:
            noaccess = "NoAccess" in from_pools
            roles = {"NoAccess": False} if noaccess else {**from_pools, **roles}
        granted: set[str] = set()
        for role in roles:
            granted.update(self.store.role_privileges(role))
        return frozenset(granted)

    def check(
        self,
        principal: Principal,
        path: str | None,
        privileges: Iterable[str],
        *,
        any_of: bool = False,
    ) -> bool:
        """RPCEnvironment.pm ``check`` (all of them) or ``check_any`` (``any_of``)."""
        try:
            self.require(principal, path, privileges, any_of=any_of)
        except PermissionDenied as denied:
            if denied.status != 403:
                raise ValueError(denied.message) from denied
            return False
        return True

    def require(
        self,
        principal: Principal,
        path: str | None,
        privileges: Iterable[str],
        *,
        any_of: bool = False,
    ) -> None:
        """Like ``check`` but raises PVE's exact PermissionDenied; an unknown privilege name
        is PVE's ``invalid privilege 'X'`` (``verify_privname``, HTTP 500)."""
        wanted = tuple(privileges)
        held = self.privileges(principal, path)
        shown = path if path is not None else ""
        for priv in wanted:
            if priv not in self.store.valid_privileges:
                raise PermissionDenied.die(f"invalid privilege '{priv}'")
            if any_of and priv in held:
                return
            if not any_of and priv not in held:
                raise PermissionDenied(shown, (priv,))
        if any_of:
            raise PermissionDenied(shown, wanted, any_of=True)

    def require_vm(
        self,
        principal: Principal,
        vmid: int | str,
        privileges: Iterable[str],
        *,
        pool: str | None = None,
        any_of: bool = False,
    ) -> None:
        """RPCEnvironment.pm ``check_vm_perm``: the privileges on ``/pool/{pool}`` (when
        given) or else on ``/vms/{vmid}``."""
        wanted = tuple(privileges)
        if pool and self.check(principal, f"/pool/{pool}", wanted, any_of=any_of):
            return
        self.require(principal, f"/vms/{vmid}", wanted, any_of=any_of)

    # Schema permission objects ------------------------------------------------------------

    def require_method(
        self,
        principal: Principal,
        method: MethodLike,
        path_params: Mapping[str, str],
        params: Mapping[str, Any],
    ) -> None:
        """Raise PermissionDenied unless ``principal`` may call ``method`` (403, or 500 for
        PVE's plain ``die`` cases: see ``PermissionDenied.status``)."""
        uri = re.sub(
            r"\{([^}]+)\}", lambda m: str(path_params.get(m.group(1), m.group(0))), method.path
        )
        result = self.evaluate(
            principal,
            method.permissions,
            path_params,
            params,
            allowtoken=method.allow_token,
            uri=uri,
        )
        result.raise_if_denied()

    def evaluate(
        self,
        principal: Principal,
        check: Sequence[Any] | Mapping[str, Any] | None,
        path_params: Mapping[str, str],
        params: Mapping[str, Any],
        *,
        user: str | None = None,
        allowtoken: bool = True,
        uri: str = "",
    ) -> PermissionResult:
        """Whether ``principal`` passes a schema method's permissions.

        ``check`` is the method's whole ``permissions`` object, or just its ``check`` list with
        its ``user`` (``"all"``, ``"world"``) passed separately; None (with no ``user``) is a
        method without permissions, which only root@pam may call. ``allowtoken`` is the
        method's flag: with it false, API tokens are refused (HTTPServer.pm ``rest_handler``).
        """
        if isinstance(check, Mapping):
            permissions: Mapping[str, Any] | None = check or None
        elif check is None and user is None:
            permissions = None
        else:
            permissions = {"check": check, "user": user}
        # pveproxy merges the path's parameters into the request's (they must agree).
        merged = {**params, **path_params}
        try:
            if principal.token is not None and not allowtoken:
                # HTTPServer.pm rest_handler; the newline is PVE's, so the HTTP reason phrase
                # (the message's first line) ends at "ticket."
                raise PermissionDenied.because(
                    f"URI '{uri}' not available with API token, need proper ticket.\n"
                )
            self._check_api2_permissions(principal, permissions, merged)
        except PermissionDenied as denied:
            return PermissionResult(denied)
        return PermissionResult()

    def _check_api2_permissions(
        self, principal: Principal, permissions: Mapping[str, Any] | None, param: Mapping[str, Any]
    ) -> None:
        """RPCEnvironment.pm ``check_api2_permissions``."""
        authid = principal.authid if principal.userid else ""
        wanted_user = permissions.get("user") if permissions else None
        if not authid and wanted_user == "world":
            return
        if not authid:
            raise PermissionDenied.because("user != null")
        if authid == ROOT:
            return
        if not permissions:
            raise PermissionDenied.because("user != root@pam")
        if wanted_user == "all":
            return
        check = permissions.get("check")
        if check:
            # rest_handler ignores the return value: only an exception refuses the call.
            self._exec(principal, check, param, noerr=False)
            return
        raise PermissionDenied.because()

    def _exec(
        self, principal: Principal, check: Sequence[Any], param: Mapping[str, Any], *, noerr: bool
    ) -> bool:
        """RPCEnvironment.pm ``exec_api2_perm_check``. As there, ``and`` always raises on a
        failing member (even inside an ``or``), and ``or`` tries each member quietly."""
        test = check[0] if check else None
        if test == "and":
            for sub in _members(check):
                self._exec(principal, sub, param, noerr=False)
            return True
        if test == "or":
            for sub in _members(check):
                if self._exec(principal, sub, param, noerr=True):
                    return True
            if noerr:
                return False
            raise PermissionDenied.because()
        if test == "perm":
            return self._exec_perm(principal, check, param, noerr=noerr)
        if test == "userid-group":
            return self._exec_userid_group(principal, check, param, noerr=noerr)
        if test == "userid-param":
            return self._exec_userid_param(principal, check, param, noerr=noerr)
        if test == "perm-modify" and len(check) >= 2:
            path = normalize_path(_template_replace(str(check[1]), param))
            if path is None:
                return False  # PVE: "should already die in API2::ACL"
            return self._check_perm_modify(principal, path, noerr=noerr)
        # A form PVE would reject ("unknown permission test"): only root@pam gets here past
        # check_api2_permissions, so refuse everyone else as for a method without permissions.
        raise PermissionDenied.because("user != root@pam")

    def _exec_perm(
        self, principal: Principal, check: Sequence[Any], param: Mapping[str, Any], *, noerr: bool
    ) -> bool:
        template = check[1] if len(check) > 1 else None
        privileges = check[2] if len(check) > 2 else None
        options = _options(check[3:])
        if not template or not isinstance(privileges, list | tuple) or not privileges:
            raise PermissionDenied.die("missing parameters")
        required = options.get("require_param")
        if required and param.get(str(required)) is None:
            if noerr:
                return False
            raise PermissionDenied.because()
        path = normalize_path(_template_replace(str(template), param))
        return self._check_full(
            principal,
            path,
            [str(p) for p in privileges],
            any_of=bool(options.get("any")),
            noerr=noerr,
        )

    def _exec_userid_group(
        self, principal: Principal, check: Sequence[Any], param: Mapping[str, Any], *, noerr: bool
    ) -> bool:
        privileges = [str(p) for p in check[1]] if len(check) > 1 else []
        groups_param = _options(check[2:]).get("groups_param")
        userid = param.get("userid")
        check_existing = not groups_param or groups_param != "create"
        if check_existing and not self._user_exists(userid, noerr=noerr):
            return False
        if self._check_full(principal, "/access/groups", privileges, any_of=True, noerr=True):
            return True
        allowed_groups = {
            group
            for group in self.store.group_names()
            if self._check_full(
                principal, f"/access/groups/{group}", privileges, any_of=True, noerr=True
            )
        }
        joined = "|".join(privileges)
        if groups_param:
            requested = split_list(param.get("groups"))
            if not requested:
                raise PermissionDenied.because(f"/access/groups, {joined}")
            for group in requested:
                if group not in allowed_groups:
                    raise PermissionDenied.because(f"/access/groups/{group}, {joined}")
        if check_existing:
            members = frozenset().union(*(self.store.members(g) for g in allowed_groups))
            if userid not in members:
                if noerr:
                    return False
                raise PermissionDenied.because()
        return True

    def _exec_userid_param(
        self, principal: Principal, check: Sequence[Any], param: Mapping[str, Any], *, noerr: bool
    ) -> bool:
        userid, realm = verify_username(param.get("userid"))
        subtest = check[1] if len(check) > 1 else None
        if not subtest:
            raise PermissionDenied.die("missing parameters")
        if subtest == "self":
            if not self._user_exists(userid, noerr=noerr):
                return False
            if principal.authid == userid:
                return True
            if noerr:
                return False
            raise PermissionDenied.because()
        if subtest == "Realm.AllocateUser":
            return self._check_full(
                principal,
                f"/access/realm/{realm}",
                ["Realm.AllocateUser"],
                any_of=False,
                noerr=noerr,
            )
        raise PermissionDenied.die("unknown userid-param test")

    def _check_perm_modify(self, principal: Principal, path: str, *, noerr: bool) -> bool:
        """RPCEnvironment.pm ``check_perm_modify``."""
        wanted = ["Permissions.Modify"]
        if re.match(r"/storage/.+", path):
            wanted.append("Datastore.Allocate")
        elif re.match(r"/vms/.+", path):
            wanted.append("VM.Allocate")
        elif re.match(r"/pool/.+", path):
            wanted.append("Pool.Allocate")
        return self._check_full(principal, path, wanted, any_of=True, noerr=noerr)

    def _check_full(
        self,
        principal: Principal,
        path: str | None,
        privileges: Sequence[str],
        *,
        any_of: bool,
        noerr: bool,
    ) -> bool:
        try:
            self.require(principal, path, privileges, any_of=any_of)
        except PermissionDenied as denied:
            if noerr and denied.status == 403:
                return False
            raise
        return True

    def _user_exists(self, userid: Any, *, noerr: bool) -> bool:
        """AccessControl.pm ``check_user_exist``."""
        try:
            name, _ = verify_username(userid)
        except PermissionDenied:
            if noerr:
                return False
            raise
        if self.store.user_exists(name):
            return True
        if noerr:
            return False
        raise PermissionDenied.die(f"no such user ('{name}')")


def _applicable(entries: Mapping[str, bool] | None, final: bool) -> dict[str, bool]:
    return {role: prop for role, prop in (entries or {}).items() if final or prop}


def _members(check: Sequence[Any]) -> Iterable[Sequence[Any]]:
    # ``while (my $subcheck = $check->[$ind++])`` stops at the first false member.
    for sub in check[1:]:
        if not sub:
            return
        yield sub


def _options(pairs: Sequence[Any]) -> dict[str, Any]:
    return {str(pairs[i]): pairs[i + 1] for i in range(0, len(pairs) - 1, 2)}


def _perl_string(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list | tuple):
        return "\0".join(_perl_string(v) for v in value)
    return str(value)


def _template_replace(template: str, data: Mapping[str, Any]) -> str:
    """pve-common PVE/Tools.pm ``template_replace``: ``{name}`` from ``data``, and ``-`` for a
    missing or false (Perl: undef, "" or "0") value."""

    def value(match: re.Match[str]) -> str:
        raw = data.get(match.group(1))
        text = "" if raw is None else _perl_string(raw)
        return text if text not in ("", "0") else "-"

    return re.sub(r"\{([^}]+)\}", value, template)


# Checks the guest APIs make in code --------------------------------------------------------


# A config option's value: as sent, as validated (numbers), or already parsed.
OptionValue = str | int | float | Mapping[str, Any] | None


def option_properties(value: OptionValue, default_key: str) -> dict[str, str]:
    """A config option's property string by key (a bare leading item is ``default_key``'s);
    a value already parsed passes through."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(k): _perl_string(v) for k, v in value.items()}
    return property_values(str(value), default_key)


# qemu-server PVE/API2/Qemu.pm: the option tables of $check_vm_modify_config_perm.
QEMU_CPU_OPTIONS = frozenset(
    {"cores", "cpu", "runningcpu", "cpulimit", "cpuunits", "numa", "smp", "sockets", "vcpus"}
)
QEMU_MEMORY_OPTIONS = frozenset({"memory", "balloon", "shares", "allow-ksm"})
QEMU_HWTYPE_OPTIONS = frozenset(
    {
        "acpi",
        "hotplug",
        "kvm",
        "machine",
        "runningmachine",
        "scsihw",
        "smbios1",
        "tablet",
        "vga",
        "watchdog",
        "audio0",
        "rng0",
    }
)
QEMU_GENERAL_OPTIONS = frozenset(
    {
        "agent",
        "autostart",
        "bios",
        "description",
        "keyboard",
        "localtime",
        "migrate_downtime",
        "migrate_speed",
        "name",
        "onboot",
        "ostype",
        "protection",
        "reboot",
        "startdate",
        "startup",
        "tdf",
        "template",
    }
)
QEMU_POWER_OPTIONS = frozenset({"freeze"})
QEMU_DISK_OPTIONS = frozenset({"boot", "bootdisk", "vmstatestorage"})
QEMU_CLOUDINIT_OPTIONS = frozenset(
    {
        "cicustom",
        "cipassword",
        "citype",
        "ciuser",
        "ciupgrade",
        "nameserver",
        "searchdomain",
        "sshkeys",
    }
)
# Request parameters the create/update code extracts before any option is checked.
QEMU_REQUEST_PARAMS = frozenset(
    {
        "node",
        "vmid",
        "archive",
        "bwlimit",
        "force",
        "pool",
        "start",
        "ha-managed",
        "storage",
        "unique",
        "live-restore",
        "import-working-storage",
        "digest",
        "background_delay",
        "skip_cloud_init",
        "skiplock",
        "delete",
        "revert",
    }
)
LXC_REQUEST_PARAMS = frozenset(
    {
        "node",
        "vmid",
        "ignore-unpack-errors",
        "bwlimit",
        "start",
        "ha-managed",
        "unprivileged",
        "restore",
        "unique",
        "force",
        "password",
        "ssh-public-keys",
        "pool",
        "ostemplate",
        "storage",
        "digest",
        "delete",
        "revert",
    }
)

# qemu-server PVE/QemuServer/Drive.pm: $MAX_IDE_DISKS 4, $MAX_SATA_DISKS 6, $MAX_SCSI_DISKS 31,
# $MAX_VIRTIO_DISKS 16, plus efidisk0 and tpmstate0 (is_valid_drivename; unusedN excluded).
_QEMU_DRIVE = re.compile(
    r"ide[0-3]|sata[0-5]|scsi(?:[0-9]|[12][0-9]|30)|virtio(?:[0-9]|1[0-5])|efidisk0|tpmstate0"
)
# Drive.pm drive_is_cloudinit ($QEMU_FORMAT_RE).
_CLOUDINIT_VOLUME = re.compile(
    r"[:/](?:vm-\d+-)?cloudinit(?:\.(?:raw|qcow|qcow2|qed|vmdk|cloop))?$"
)
_NEW_DISK = re.compile(r"([^:\s]+):(\d+(?:\.\d+)?)")  # pve-container LXC.pm $NEW_DISK_RE


def is_qemu_drive(key: str) -> bool:
    return _QEMU_DRIVE.fullmatch(key) is not None


def _qemu_drive_privileges(value: OptionValue) -> tuple[str, ...]:
    """Qemu.pm ``$check_drive_perms`` (update_vm): what changing this drive needs."""
    drive = option_properties(value, "file")
    if _CLOUDINIT_VOLUME.search(drive.get("file", "")):
        return ("VM.Config.Cloudinit", "VM.Config.CDROM")
    if drive.get("media") == "cdrom":
        return ("VM.Config.CDROM",)
    return ("VM.Config.Disk",)


def qemu_config_privileges(key: str, value: OptionValue = None) -> tuple[str, ...]:
    """The privileges on ``/vms/{vmid}`` PVE asks of a non-root caller who sets or deletes
    ``key`` on an existing VM (``$check_vm_modify_config_perm`` and ``$check_drive_perms`` in
    qemu-server PVE/API2/Qemu.pm); ``value`` refines drives (CD-ROM, cloud-init).

    Every privilege returned is needed, except for the cloud-init keys (``ciuser``,
    ``ipconfigN``, ...), which PVE accepts with either VM.Config.Cloudinit or
    VM.Config.Network. Checks on other paths or that depend on the caller (``startup`` also
    needs Sys.Modify on ``/``; keys only root@pam may set, such as ``args``, ``affinity`` or a
    raw ``hostpciN``) are not expressed here: ``check_qemu_option`` makes every check exactly.
    Request parameters (``digest``, ``delete``, ...) and keys only root@pam may set return ().
    """
    if key in QEMU_REQUEST_PARAMS:
        return ()
    if key == "cdrom":
        return ("VM.Config.CDROM",)
    if is_qemu_drive(key):
        return _qemu_drive_privileges(value)
    if re.fullmatch(r"unused\d+", key):
        return ("VM.Config.Disk",)
    if re.fullmatch(r"(?:serial|usb|hostpci)\d+", key):
        return ("VM.Config.HWType",)
    if re.fullmatch(r"virtiofs\d", key):
        return ("VM.Config.Disk",)
    if key == "tags":
        return ("VM.Config.Options",)  # GuestHelpers.pm assert_tag_permissions
    rule = _qemu_option_rule(key)
    return rule[0] if rule is not None else ()


def _qemu_option_rule(key: str) -> tuple[tuple[str, ...], bool] | None:
    """``(privileges, any_of)`` on the VM for ``$check_vm_modify_config_perm``; None: root only."""
    if key in QEMU_CPU_OPTIONS or re.fullmatch(r"numa\d+", key):
        return ("VM.Config.CPU",), False
    if key in QEMU_MEMORY_OPTIONS:
        return ("VM.Config.Memory",), False
    if key in QEMU_HWTYPE_OPTIONS:
        return ("VM.Config.HWType",), False
    if key in QEMU_GENERAL_OPTIONS:
        return ("VM.Config.Options",), False
    if key in QEMU_POWER_OPTIONS:
        return ("VM.PowerMgmt",), False
    if key in QEMU_DISK_OPTIONS:
        return ("VM.Config.Disk",), False
    if re.fullmatch(r"net\d+", key) or key == "running-nets-host-mtu":
        return ("VM.Config.Network",), False
    if key in QEMU_CLOUDINIT_OPTIONS or re.fullmatch(r"ipconfig\d+", key):
        return ("VM.Config.Cloudinit", "VM.Config.Network"), True
    if key == "vmstate":
        return ("VM.Config.Disk", "VM.PowerMgmt"), False
    return None


def check_qemu_option(
    access: AccessControl,
    principal: Principal,
    vmid: int | str,
    key: str,
    value: OptionValue = None,
    *,
    create: bool = False,
    delete: bool = False,
    old_value: OptionValue = None,
    pool: str | None = None,
) -> None:
    """Every check qemu-server 9.1.3 makes in code for one option of a VM create
    (``create``), a config update, or a deletion (``delete``, with ``value`` the current
    one); raises PermissionDenied. Storage checks for new disks are the caller's.

    Follows PVE/API2/Qemu.pm ``create_vm``/``$update_vm_api``: ``$check_vm_modify_config_perm``,
    ``$check_drive_perms``, ``check_usb_perm``, ``check_hostpci_perm``, ``check_rng_perm``,
    ``check_dir_perm``, the serial port checks, ``assert_tag_permissions`` and
    ``check_bridge_access``.
    """
    if principal.authid == ROOT or key in QEMU_REQUEST_PARAMS:
        return
    if key == "cdrom":  # $resolve_cdrom_alias
        key, value = "ide2", {**option_properties(value, "file"), "media": "cdrom"}
    skipped = (
        is_qemu_drive(key)
        or key == "tags"
        or re.fullmatch(r"(?:unused|serial|usb|hostpci|virtiofs)\d+", key) is not None
    )
    if not skipped:
        rule = _qemu_option_rule(key)
        if rule is None:
            raise PermissionDenied.die(f"only root can set '{key}' config")
        access.require_vm(principal, vmid, rule[0], pool=pool, any_of=rule[1])
        if key == "startup":
            access.require(principal, "/", ("Sys.Modify",))
    if create:
        _qemu_create_checks(access, principal, vmid, key, value, pool)
    elif delete:
        _qemu_delete_checks(access, principal, vmid, key, value)
    else:
        _qemu_update_checks(access, principal, vmid, key, value, old_value)


def _qemu_create_checks(
    access: AccessControl,
    principal: Principal,
    vmid: int | str,
    key: str,
    value: OptionValue,
    pool: str | None,
) -> None:
    # $check_vm_create_serial_perm, check_vm_create_{usb,hostpci,dir}_perm, check_rng_perm
    # (for rng0 only), check_bridge_access. Drives need only storage privileges here.
    if re.fullmatch(r"serial\d+", key):
        if _perl_string(value) != "socket":
            raise PermissionDenied.die(f"only root can set '{key}' config for real devices")
        access.require_vm(principal, vmid, ("VM.Config.HWType",), pool=pool)
    elif re.fullmatch(r"usb\d+", key):
        _check_usb(access, principal, vmid, key, value, pool)
    elif re.fullmatch(r"hostpci\d+", key):
        hostpci_privileges(access, principal, value, key=key, vmid=vmid, pool=pool)
    elif key == "rng0" and value:
        _check_rng(access, principal, vmid, value, pool)
    elif re.fullmatch(r"virtiofs\d", key) and value:
        _check_dir(access, principal, vmid, value, pool)
    elif re.fullmatch(r"net\d+", key):
        _check_bridge(access, principal, value)


def _qemu_update_checks(
    access: AccessControl,
    principal: Principal,
    vmid: int | str,
    key: str,
    value: OptionValue,
    old_value: OptionValue,
) -> None:
    """The per-option checks of ``$update_vm_api``'s add/change loop."""
    if is_qemu_drive(key):
        if old_value:
            access.require_vm(principal, vmid, _qemu_drive_privileges(old_value))
        access.require_vm(principal, vmid, _qemu_drive_privileges(value))
    elif re.fullmatch(r"serial\d+", key):
        old = _perl_string(old_value) if old_value is not None else None
        if old in (None, "socket") and _perl_string(value) == "socket":
            access.require_vm(principal, vmid, ("VM.Config.HWType",))
        else:
            raise PermissionDenied.die(f"only root can modify '{key}' config for real devices")
    elif re.fullmatch(r"usb\d+", key):
        if old_value:
            _check_usb(access, principal, vmid, key, old_value, None)
        _check_usb(access, principal, vmid, key, value, None)
    elif re.fullmatch(r"hostpci\d+", key):
        if old_value:
            hostpci_privileges(access, principal, old_value, key=key, vmid=vmid)
        hostpci_privileges(access, principal, value, key=key, vmid=vmid)
    elif re.fullmatch(r"rng\d+", key):
        if old_value:
            _check_rng(access, principal, vmid, old_value, None)
        _check_rng(access, principal, vmid, value, None)
    elif re.fullmatch(r"virtiofs\d", key):
        if old_value:
            _check_dir(access, principal, vmid, old_value, None)
        _check_dir(access, principal, vmid, value, None)
    elif key == "tags":
        # assert_tag_permissions; with datacenter.cfg's default user-tag-access (free) and no
        # registered privileged tags, VM.Config.Options is all it asks.
        access.require_vm(principal, vmid, ("VM.Config.Options",))
    elif re.fullmatch(r"net\d+", key):
        _check_bridge(access, principal, value)
        if old_value:
            _check_bridge(access, principal, old_value)
    elif re.fullmatch(r"unused\d+", key):
        access.require_vm(principal, vmid, ("VM.Config.Disk",))


def _qemu_delete_checks(
    access: AccessControl,
    principal: Principal,
    vmid: int | str,
    key: str,
    value: OptionValue,
) -> None:
    """The per-option checks of ``$update_vm_api``'s delete loop (``value``: the current one)."""
    if value is None:
        return  # "cannot delete 'X' - not set in current configuration!" (a warning)
    if re.fullmatch(r"unused\d+", key):
        access.require_vm(principal, vmid, ("VM.Config.Disk",))
    elif is_qemu_drive(key):
        access.require_vm(principal, vmid, _qemu_drive_privileges(value))
    elif re.fullmatch(r"serial\d+", key):
        if _perl_string(value) != "socket":
            raise PermissionDenied.die(f"only root can delete '{key}' config for real devices")
        access.require_vm(principal, vmid, ("VM.Config.HWType",))
    elif re.fullmatch(r"usb\d+", key):
        _check_usb(access, principal, vmid, key, value, None)
    elif re.fullmatch(r"hostpci\d+", key):
        hostpci_privileges(access, principal, value, key=key, vmid=vmid)
    elif re.fullmatch(r"rng\d+", key):
        _check_rng(access, principal, vmid, value, None)
    elif re.fullmatch(r"virtiofs\d", key):
        _check_dir(access, principal, vmid, value, None)
    elif key == "tags":
        access.require_vm(principal, vmid, ("VM.Config.Options",))
    elif re.fullmatch(r"net\d+", key):
        _check_bridge(access, principal, value)


def hostpci_privileges(
    access: AccessControl,
    principal: Principal,
    value: OptionValue,
    *,
    key: str | None = None,
    vmid: int | str | None = None,
    pool: str | None = None,
) -> None:
    """Qemu.pm ``check_hostpci_perm``: a raw ``host=`` device only root@pam may pass through
    (a root@pam token is refused too); ``mapping=`` needs Mapping.Use on
    ``/mapping/pci/{id}`` and then VM.Config.HWType on the VM (checked when ``vmid`` is given).
    The ``romfile`` restriction of later qemu-server releases is not part of 9.1.3."""
    if principal.authid == ROOT:
        return
    device = option_properties(value, "host")
    option = key or "hostpci"
    if device.get("host"):
        raise PermissionDenied.die(f"only root can set '{option}' config for non-mapped devices")
    if not device.get("mapping"):
        raise PermissionDenied.die("either 'host' or 'mapping' must be set.")
    access.require(principal, f"/mapping/pci/{device['mapping']}", ("Mapping.Use",))
    if vmid is not None:
        access.require_vm(principal, vmid, ("VM.Config.HWType",), pool=pool)


def _check_usb(
    access: AccessControl,
    principal: Principal,
    vmid: int | str,
    key: str,
    value: OptionValue,
    pool: str | None,
) -> None:
    """Qemu.pm ``check_usb_perm``."""
    access.require_vm(principal, vmid, ("VM.Config.HWType",), pool=pool)
    device = option_properties(value, "host")
    host = device.get("host")
    if host:
        if host.lower() != "spice":
            raise PermissionDenied.die(f"only root can set '{key}' config for real devices")
    elif device.get("mapping"):
        access.require(principal, f"/mapping/usb/{device['mapping']}", ("Mapping.Use",))
    else:
        raise PermissionDenied.die("either 'host' or 'mapping' must be set.")


def _check_rng(
    access: AccessControl,
    principal: Principal,
    vmid: int | str,
    value: OptionValue,
    pool: str | None,
) -> None:
    """Qemu.pm ``check_rng_perm``."""
    access.require_vm(principal, vmid, ("VM.Config.HWType",), pool=pool)
    if option_properties(value, "source").get("source") == "/dev/hwrng":
        access.require(principal, "/mapping/hwrng", ("Mapping.Use",))


def _check_dir(
    access: AccessControl,
    principal: Principal,
    vmid: int | str,
    value: OptionValue,
    pool: str | None,
) -> None:
    """Qemu.pm ``check_dir_perm``."""
    access.require_vm(principal, vmid, ("VM.Config.Disk",), pool=pool)
    dirid = option_properties(value, "dirid").get("dirid", "")
    access.require(principal, f"/mapping/dir/{dirid}", ("Mapping.Use",))


def _check_bridge(access: AccessControl, principal: Principal, value: OptionValue) -> None:
    """pve-guest-common GuestHelpers.pm ``check_vnet_access`` for a NIC, in the zone
    ``localnetwork`` that plain Linux bridges belong to."""
    if principal.authid == ROOT:
        return
    net = option_properties(value, "model")
    bridge = net.get("bridge")
    if not bridge:
        return
    path = f"/sdn/zones/localnetwork/{bridge}"
    tag, trunks = net.get("tag"), net.get("trunks")
    if tag:
        access.require(principal, f"{path}/{tag}", ("SDN.Use",))
    if trunks:
        for vlan in sorted(_trunk_tags(trunks)):
            access.require(principal, f"{path}/{vlan}", ("SDN.Use",))
    if not (tag or trunks):
        access.require(principal, path, ("SDN.Use",))


def _trunk_tags(trunks: str) -> set[str]:
    """GuestHelpers.pm ``get_tags_from_trunk``: ``10;20-22`` -> 10, 20, 21, 22."""
    tags: set[str] = set()
    for trunk in trunks.split(";"):
        start, _, end = trunk.partition("-")
        if end.isdigit() and start.isdigit() and int(end) > int(start):
            tags.update(str(t) for t in range(int(start), int(end) + 1))
        elif start:
            tags.add(start)
    return tags


def lxc_config_privileges(key: str) -> tuple[str, ...]:
    """The privileges on ``/vms/{vmid}`` pve-container's ``check_ct_modify_config_perm``
    (src/PVE/LXC.pm) asks of a non-root caller for ``key``, all of them needed.

    Keys whose rule depends on the caller or value (``devN`` and ``hookscript``: root@pam
    only; ``features``: root@pam, or VM.Allocate for nesting alone; bind/device mount points:
    root@pam) return () or their common privilege: ``check_lxc_option`` checks exactly.
    """
    if key in LXC_REQUEST_PARAMS or key == "hookscript" or re.fullmatch(r"dev\d+", key):
        return ()
    if key in ("cores", "cpuunits", "cpulimit"):
        return ("VM.Config.CPU",)
    if key == "rootfs" or re.fullmatch(r"mp\d+", key):
        return ("VM.Config.Disk",)
    if key in ("memory", "swap"):
        return ("VM.Config.Memory",)
    if re.fullmatch(r"net\d+", key) or key in ("nameserver", "searchdomain", "hostname"):
        return ("VM.Config.Network",)
    if key == "features":
        return ("VM.Allocate",)
    return ("VM.Config.Options",)  # tags (assert_tag_permissions) and every other option


def lxc_dev_privileges(principal: Principal) -> None:
    """LXC.pm ``check_ct_modify_config_perm``: ``devN`` passthrough is for root@pam alone (a
    root@pam token included, it is refused)."""
    if principal.authid != ROOT:
        raise PermissionDenied.because(
            "configuring device passthrough is only allowed for root@pam"
        )


def check_lxc_option(
    access: AccessControl,
    principal: Principal,
    vmid: int | str,
    key: str,
    value: OptionValue = None,
    *,
    delete: bool = False,
    old_value: OptionValue = None,
    unprivileged: bool = True,
    pool: str | None = None,
) -> None:
    """pve-container LXC.pm ``check_ct_modify_config_perm`` for one option of a create or
    config update (``delete``: removing it; ``old_value``: the current one; ``unprivileged``:
    the container's flag). Volume access beyond a new volume's storage is the caller's."""
    if principal.authid == ROOT or key in LXC_REQUEST_PARAMS:
        return
    if re.fullmatch(r"dev\d+", key):
        lxc_dev_privileges(principal)
    elif key == "hookscript":
        raise PermissionDenied.because("changing the hookscript is only allowed for root@pam")
    elif key == "features":
        _check_lxc_features(access, principal, vmid, value, old_value, delete, unprivileged, pool)
    elif key == "rootfs" or re.fullmatch(r"mp\d+", key):
        access.require_vm(principal, vmid, ("VM.Config.Disk",), pool=pool)
        if delete:
            return
        volume = option_properties(value, "volume").get("volume", "")
        kind = (
            ("device" if volume.startswith("/dev/") else "bind")
            if volume.startswith("/")
            else "volume"
        )
        if kind != "volume":
            raise PermissionDenied.because(f"mount point type {kind} is only allowed for root@pam")
        new_disk = _NEW_DISK.fullmatch(volume)
        if new_disk is not None:
            access.require(principal, f"/storage/{new_disk.group(1)}", ("Datastore.AllocateSpace",))
    elif re.fullmatch(r"net\d+", key):
        access.require_vm(principal, vmid, ("VM.Config.Network",), pool=pool)
        if old_value:
            _check_bridge(access, principal, old_value)
        if value and not delete:
            _check_bridge(access, principal, value)
    else:
        access.require_vm(principal, vmid, lxc_config_privileges(key), pool=pool)


def _check_lxc_features(
    access: AccessControl,
    principal: Principal,
    vmid: int | str,
    value: OptionValue,
    old_value: OptionValue,
    delete: bool,
    unprivileged: bool,
    pool: str | None,
) -> None:
    if not unprivileged:
        raise PermissionDenied.because(
            "changing feature flags for privileged container is only allowed for root@pam"
        )
    old = option_properties(old_value, "nesting") if old_value else {}
    if delete:
        changed = set(old)
    elif old:
        new = option_properties(value, "nesting")
        changed = {f for f in set(old) | set(new) if old.get(f, "") != new.get(f, "")}
    else:
        changed = set(option_properties(value, "nesting"))
    if changed - {"nesting"}:
        raise PermissionDenied.because(
            "changing feature flags (except nesting) is only allowed for root@pam"
        )
    if changed:
        access.require_vm(principal, vmid, ("VM.Allocate",), pool=pool)


def check_volume_access(
    access: AccessControl,
    principal: Principal,
    volid: str,
    *,
    vtype: str,
    owner: int | str | None = None,
    vmid: int | str | None = None,
    content: str | None = None,
) -> None:
    """pve-storage PVE/Storage.pm ``check_volume_access`` for a volume whose content type
    (``vtype``: images, rootdir, iso, vztmpl, backup, import) and owning guest the caller has
    parsed; ``content`` is the type the caller expects."""
    storage, separator, _ = volid.partition(":")
    if not separator:
        if principal.authid != ROOT:
            raise PermissionDenied.die("Only root can pass arbitrary filesystem paths.")
        return
    if content is not None and vtype != content and (content != "rootdir" or vtype != "images"):
        raise PermissionDenied.die(
            f"unable to use volume {volid} - content type needs to be '{content}'"
        )
    path = f"/storage/{storage}"
    if access.check(principal, path, ("Datastore.Allocate",)):
        return
    if vtype in ("iso", "vztmpl", "import"):
        access.require(principal, path, ("Datastore.AllocateSpace", "Datastore.Audit"), any_of=True)
    elif owner is not None and vmid is not None and str(owner) == str(vmid):
        return
    elif vtype == "backup" and owner:
        access.require(principal, path, ("Datastore.AllocateSpace",))
        access.require(principal, f"/vms/{owner}", ("VM.Backup",))
    elif vtype in ("images", "rootdir") and owner:
        access.require(principal, path, ("Datastore.Audit",))
        access.require(principal, f"/vms/{owner}", ("VM.Config.Disk",))
    else:
        raise PermissionDenied.die(f"missing privileges to access {volid}")
