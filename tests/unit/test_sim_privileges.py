"""The simulator's privilege model against Proxmox VE's rules (pve-access-control, qemu-server,
pve-container): roles, ACL inheritance, tokens, schema permission checks, code-level checks."""

import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import labsmith.sim
from labsmith.sim.acl_store import (
    ALL_PRIVILEGES,
    PVE8_ROLES,
    ROLES,
    AclEntry,
    AclStore,
    is_acl_path,
    normalize_path,
)
from labsmith.sim.formats import split_list
from labsmith.sim.privileges import (
    AccessControl,
    PermissionDenied,
    PermissionResult,
    Principal,
    check_lxc_option,
    check_qemu_option,
    check_volume_access,
    hostpci_privileges,
    lxc_config_privileges,
    lxc_dev_privileges,
    qemu_config_privileges,
)

SCHEMAS = Path(labsmith.sim.__file__).parent / "schemas"
ROOT = Principal("root@pam")
ROOT_TOKEN = Principal("root@pam", "labsmith", privsep=False)
ALICE = Principal("alice@pve")
ALICE_TOKEN = Principal("alice@pve", "ci", privsep=True)
ALICE_FULL_TOKEN = Principal("alice@pve", "full", privsep=False)
BOB = Principal("bob@pve")


def vm_admin_token() -> AccessControl:
    """alice holds PVEAdmin everywhere; her privsep token holds PVEVMAdmin on /vms/110 only."""
    acl = AclStore()
    access = AccessControl(acl)
    acl.set_acl("/", "PVEAdmin", user="alice@pve")
    acl.set_acl("/vms/110", "PVEVMAdmin", token="alice@pve!ci")
    return access


def denial(call: Any, *args: Any, **kwargs: Any) -> PermissionDenied:
    with pytest.raises(PermissionDenied) as raised:
        call(*args, **kwargs)
    return raised.value


# Roles -----------------------------------------------------------------------------------


def test_builtin_roles_are_pve9s() -> None:
    assert set(ROLES) == {
        "Administrator",
        "NoAccess",
        "PVEAdmin",
        "PVEAuditor",
        "PVEDatastoreAdmin",
        "PVEDatastoreUser",
        "PVEMappingAdmin",
        "PVEMappingUser",
        "PVEPoolAdmin",
        "PVEPoolUser",
        "PVESDNAdmin",
        "PVESDNUser",
        "PVESysAdmin",
        "PVETemplateUser",
        "PVEUserAdmin",
        "PVEVMAdmin",
        "PVEVMUser",
    }
    assert ROLES["NoAccess"] == frozenset()
    assert ROLES["Administrator"] == ALL_PRIVILEGES
    assert len(ALL_PRIVILEGES) == 47
    assert ROLES["PVEVMUser"] == {
        "VM.Config.CDROM",
        "VM.Config.Cloudinit",
        "VM.Console",
        "VM.Backup",
        "VM.GuestAgent.FileRead",
        "VM.GuestAgent.FileSystemMgmt",
        "VM.GuestAgent.FileWrite",
        "VM.PowerMgmt",
        "VM.Audit",
        "VM.GuestAgent.Audit",
    }
    assert ROLES["PVETemplateUser"] == {"VM.Clone", "VM.Audit"}
    assert ROLES["PVESysAdmin"] == {"Sys.Console", "Sys.Syslog", "Sys.Audit"}
    assert ROLES["PVEPoolUser"] == {"Pool.Audit"}
    assert ROLES["PVEDatastoreUser"] == {"Datastore.AllocateSpace", "Datastore.Audit"}
    assert ROLES["PVEAuditor"] == {
        "VM.Audit",
        "VM.GuestAgent.Audit",
        "Sys.Audit",
        "Datastore.Audit",
        "SDN.Audit",
        "Pool.Audit",
        "Mapping.Audit",
    }
    assert "VM.Replicate" in ROLES["PVEVMAdmin"]
    assert "VM.Monitor" not in ALL_PRIVILEGES


def test_pve_admin_lacks_root_privileges_and_mapping_modify() -> None:
    admin = ROLES["PVEAdmin"]
    for priv in ("Mapping.Modify", "Permissions.Modify", "Realm.Allocate", "Sys.Modify"):
        assert priv not in admin
    assert {"Mapping.Use", "VM.Allocate", "Sys.Console", "User.Modify"} <= admin
    assert "Mapping.Modify" in ROLES["PVEMappingAdmin"]


def test_pve8_roles_still_have_vm_monitor() -> None:
    assert "VM.Monitor" in PVE8_ROLES["PVEVMAdmin"]
    assert not any(p.startswith("VM.GuestAgent.") for p in PVE8_ROLES["Administrator"])
    assert "VM.Replicate" not in PVE8_ROLES["Administrator"]
    acl = AclStore(roles=PVE8_ROLES)
    access = AccessControl(acl)
    acl.set_acl("/vms/100", "PVEVMAdmin", user="alice@pve")
    assert access.check(ALICE, "/vms/100", ["VM.Monitor"])


# Principals and privileges -----------------------------------------------------------------


def test_principal_authid_and_root() -> None:
    assert ROOT.authid == "root@pam"
    assert ROOT.is_root
    assert ROOT_TOKEN.authid == "root@pam!labsmith"
    assert not ROOT_TOKEN.is_root
    assert ALICE_TOKEN.authid == "alice@pve!ci"


def test_root_and_root_token_without_privsep_hold_everything() -> None:
    acl = AclStore()
    access = AccessControl(acl)
    assert access.privileges(ROOT, "/vms/100") == ALL_PRIVILEGES
    assert access.privileges(ROOT_TOKEN, "/vms/100") == ALL_PRIVILEGES
    assert access.privileges(ALICE, "/vms/100") == frozenset()


def test_root_token_with_privsep_holds_only_its_own_acls() -> None:
    acl = AclStore()
    access = AccessControl(acl)
    acl.set_acl("/vms", "PVEAuditor", token="root@pam!ro")
    token = Principal("root@pam", "ro", privsep=True)
    assert access.privileges(token, "/vms/100") == ROLES["PVEAuditor"]
    assert access.privileges(token, "/") == frozenset()


def test_privsep_token_is_limited_to_its_acl() -> None:
    access = vm_admin_token()
    assert access.check(ALICE_TOKEN, "/vms/110", ["VM.Allocate", "VM.Config.HWType"])
    assert not access.check(ALICE_TOKEN, "/vms/111", ["VM.Allocate"])
    assert not access.check(ALICE_TOKEN, "/", ["Sys.Audit"])
    assert access.check(ALICE, "/vms/111", ["VM.Allocate"])
    # Without privilege separation a token is its user.
    assert access.check(ALICE_FULL_TOKEN, "/vms/111", ["VM.Allocate"])


def test_privsep_token_gets_the_intersection_with_its_user() -> None:
    acl = AclStore()
    access = AccessControl(acl)
    acl.set_acl("/vms", "PVEVMUser", user="alice@pve")
    acl.set_acl("/vms", "PVEVMAdmin", token="alice@pve!ci")
    assert access.privileges(ALICE_TOKEN, "/vms/100") == ROLES["PVEVMUser"]
    assert not access.check(ALICE_TOKEN, "/vms/100", ["VM.Allocate"])


def test_propagate_false_applies_to_the_path_only() -> None:
    acl = AclStore()
    access = AccessControl(acl)
    acl.set_acl("/vms", "PVEVMAdmin", user="alice@pve", propagate=False)
    assert access.check(ALICE, "/vms", ["VM.Allocate"])
    assert not access.check(ALICE, "/vms/100", ["VM.Allocate"])
    # An entry that does not apply leaves what was inherited in place.
    acl.set_acl("/", "PVEAuditor", user="alice@pve")
    assert access.privileges(ALICE, "/vms/100") == ROLES["PVEAuditor"]


def test_most_specific_path_replaces_inherited_roles() -> None:
    acl = AclStore()
    access = AccessControl(acl)
    acl.set_acl("/", "PVEAdmin", user="alice@pve")
    acl.set_acl("/vms/100", "PVEAuditor", user="alice@pve")
    assert access.privileges(ALICE, "/vms/100") == ROLES["PVEAuditor"]
    assert access.check(ALICE, "/vms/101", ["VM.Allocate"])


def test_roles_at_one_path_are_united() -> None:
    acl = AclStore()
    access = AccessControl(acl)
    acl.set_acl("/vms/100", "PVEAuditor", user="alice@pve")
    acl.set_acl("/vms/100", "PVETemplateUser", user="alice@pve")
    assert access.privileges(ALICE, "/vms/100") == ROLES["PVEAuditor"] | {"VM.Clone"}


def test_noaccess_at_a_deeper_path_overrides() -> None:
    acl = AclStore()
    access = AccessControl(acl)
    acl.set_acl("/", "Administrator", user="alice@pve")
    acl.set_acl("/vms/100", "NoAccess", user="alice@pve")
    acl.set_acl("/vms/100", "PVEVMAdmin", user="alice@pve")
    assert access.privileges(ALICE, "/vms/100") == frozenset()
    assert access.privileges(ALICE, "/vms/101") == ALL_PRIVILEGES
    assert access.roles("alice@pve", "/vms/100") == {"NoAccess": True}


def test_user_entries_override_group_entries() -> None:
    acl = AclStore()
    access = AccessControl(acl)
    acl.add_group_member("ops", "alice@pve")
    acl.add_group_member("ops", "bob@pve")
    acl.set_acl("/vms", "PVEVMAdmin", group="ops")
    acl.set_acl("/vms", "PVEAuditor", user="alice@pve")
    assert access.privileges(ALICE, "/vms/100") == ROLES["PVEAuditor"]
    assert access.privileges(BOB, "/vms/100") == ROLES["PVEVMAdmin"]
    # Tokens are never group members.
    acl.set_acl("/", "PVEAdmin", user="bob@pve")
    assert access.privileges(Principal("bob@pve", "ci"), "/vms/100") == frozenset()


def test_pool_acls_apply_to_members_but_never_trump_noaccess() -> None:
    acl = AclStore()
    access = AccessControl(acl)
    acl.set_pool("lab", vms=[100, 101], storage=["local"])
    acl.set_acl("/pool/lab", "PVEVMAdmin", user="alice@pve")
    acl.set_acl("/vms/101", "NoAccess", user="alice@pve")
    assert access.check(ALICE, "/vms/100", ["VM.Allocate"])
    assert access.privileges(ALICE, "/vms/101") == frozenset()
    assert not access.check(ALICE, "/vms/102", ["VM.Audit"])
    access.require_vm(ALICE, 102, ["VM.Allocate"], pool="lab")
    assert denial(access.require_vm, ALICE, 102, ["VM.Allocate"]).message == (
        "Permission check failed (/vms/102, VM.Allocate)"
    )


def test_require_names_the_first_missing_privilege_or_all_for_any() -> None:
    acl = AclStore()
    access = AccessControl(acl)
    acl.set_acl("/vms/100", "PVEVMUser", user="alice@pve")
    denied = denial(access.require, ALICE, "/vms/100", ["VM.Audit", "VM.Allocate", "VM.Clone"])
    assert denied.message == "Permission check failed (/vms/100, VM.Allocate)"
    assert (denied.status, denied.path, denied.privileges) == (403, "/vms/100", ("VM.Allocate",))
    denied = denial(access.require, ALICE, "/", ["Sys.Audit", "Sys.Modify"], any_of=True)
    assert str(denied) == "Permission check failed (/, Sys.Audit|Sys.Modify)"
    assert access.check(ALICE, "/vms/100", ["VM.Allocate", "VM.Audit"], any_of=True)
    assert access.check(ALICE, "/vms/100", [])
    assert not access.check(ALICE, "/vms/100", [], any_of=True)


def test_unknown_privilege_is_pves_500() -> None:
    acl = AclStore()
    access = AccessControl(acl)
    denied = denial(access.require, ROOT, "/", ["VM.Monitor"])
    assert (denied.status, denied.message) == (500, "invalid privilege 'VM.Monitor'")
    with pytest.raises(ValueError, match="invalid privilege"):
        access.check(ROOT, "/", ["Sys.Bogus"])


def test_acl_configuration_is_validated_and_listed() -> None:
    acl = AclStore()
    access = AccessControl(acl)
    with pytest.raises(ValueError, match="invalid ACL path"):
        acl.set_acl("/vms/12", "PVEAdmin", user="alice@pve")
    with pytest.raises(ValueError, match="role 'Nope' does not exist"):
        acl.set_acl("/", "Nope", user="alice@pve")
    with pytest.raises(ValueError, match="exactly one"):
        acl.set_acl("/", "PVEAdmin", user="alice@pve", token="alice@pve!ci")
    with pytest.raises(ValueError, match="valid token ID"):
        acl.set_acl("/", "PVEAdmin", token="alice@pve!x")
    with pytest.raises(ValueError, match="special role"):
        acl.add_role("PVEAdmin", ["VM.Audit"])
    with pytest.raises(ValueError, match=r"invalid privilege 'VM\.Bogus'"):
        acl.add_role("Custom", ["VM.Bogus"])
    acl.add_role("Starter", ["VM.PowerMgmt"])
    acl.set_acl("vms//100/", "Starter", user="alice@pve", propagate=False)
    assert acl.entries(user="alice@pve") == (AclEntry("/vms/100", "Starter", False),)
    assert access.check(ALICE, "/vms/100", ["VM.PowerMgmt"])
    acl.delete_acl("/vms/100", "Starter", user="alice@pve")
    assert acl.entries(user="alice@pve") == ()


def test_path_helpers() -> None:
    assert normalize_path("vms//100/") == "/vms/100"
    assert normalize_path("/") == "/"
    assert normalize_path("") is None
    assert normalize_path("/vms/1 00") is None
    assert is_acl_path("/mapping/pci/gpu")
    assert is_acl_path("/sdn/zones/localnetwork/vmbr0/20")
    assert not is_acl_path("/vms/99")
    assert split_list("a,b;c d") == ["a", "b", "c", "d"]
    assert split_list("a b\0c") == ["a b", "c"]


# Schema permission objects -----------------------------------------------------------------


def test_perm_substitutes_path_and_body_parameters() -> None:
    access = vm_admin_token()
    check = ["perm", "/vms/{vmid}", ["VM.Allocate"]]
    assert access.evaluate(ALICE_TOKEN, check, {"vmid": "110"}, {})
    result = access.evaluate(ALICE_TOKEN, check, {"vmid": "111"}, {})
    assert not result.allowed
    assert (result.status, result.message) == (
        403,
        "Permission check failed (/vms/111, VM.Allocate)",
    )
    # Body parameters fill templates too; a missing or false one becomes "-".
    storage = ["perm", "/storage/{storage}", ["Datastore.AllocateSpace"]]
    access.store.set_acl("/storage/local", "PVEDatastoreUser", user="bob@pve")
    assert access.evaluate(BOB, storage, {}, {"storage": "local"})
    assert access.evaluate(BOB, storage, {}, {}).message == (
        "Permission check failed (/storage/-, Datastore.AllocateSpace)"
    )


def test_perm_any_and_require_param() -> None:
    acl = AclStore()
    access = AccessControl(acl)
    acl.set_acl("/", "PVEAuditor", user="bob@pve")
    any_check = ["perm", "/", ["Sys.Modify", "Sys.Audit"], "any", 1]
    assert access.evaluate(BOB, any_check, {}, {})
    assert not access.evaluate(BOB, ["perm", "/", ["Sys.Modify", "Sys.Audit"]], {}, {})
    clone_pool = ["perm", "/pool/{pool}", ["VM.Allocate"], "require_param", "pool"]
    assert access.evaluate(BOB, clone_pool, {}, {}).message == "Permission check failed"
    acl.set_acl("/pool/lab", "PVEVMAdmin", user="bob@pve")
    assert access.evaluate(BOB, clone_pool, {}, {"pool": "lab"})


def test_and_or_forms() -> None:
    acl = AclStore()
    access = AccessControl(acl)
    acl.set_acl("/mapping/notifications", "PVEMappingAdmin", user="bob@pve")
    check = [
        "and",
        ["perm", "/mapping/notifications", ["Mapping.Modify"]],
        ["or", ["perm", "/", ["Sys.Audit", "Sys.Modify"]], ["perm", "/", ["Sys.AccessNetwork"]]],
    ]
    assert access.evaluate(BOB, check, {}, {}).message == "Permission check failed"
    acl.set_acl("/", "Administrator", group="admins")
    acl.add_group_member("admins", "bob@pve")
    acl.set_acl("/mapping/notifications", "PVEMappingAdmin", user="bob@pve")
    assert access.evaluate(BOB, check, {}, {})
    # "and" names the failing member's privilege.
    result = access.evaluate(ALICE, check, {}, {})
    assert result.message == "Permission check failed (/mapping/notifications, Mapping.Modify)"


def test_and_inside_or_raises_as_pve_does() -> None:
    acl = AclStore()
    access = AccessControl(acl)
    acl.set_acl("/", "PVEAuditor", user="bob@pve")
    check = ["or", ["and", ["perm", "/", ["Sys.Modify"]]], ["perm", "/", ["Sys.Audit"]]]
    # exec_api2_perm_check runs "and" members without noerr, so the "or" never gets further.
    assert access.evaluate(BOB, check, {}, {}).message == "Permission check failed (/, Sys.Modify)"


def test_userid_group() -> None:
    acl = AclStore()
    access = AccessControl(acl)
    acl.add_user("carol@pve")
    acl.add_user("dave@pve")
    acl.add_group_member("team", "carol@pve")
    acl.set_acl("/access/groups/team", "PVEUserAdmin", user="bob@pve")
    check = ["userid-group", ["User.Modify"]]
    assert access.evaluate(BOB, check, {"userid": "carol@pve"}, {})
    assert access.evaluate(BOB, check, {"userid": "dave@pve"}, {}).message == (
        "Permission check failed"
    )
    missing = access.evaluate(BOB, check, {"userid": "nobody@pve"}, {})
    assert (missing.status, missing.message) == (500, "no such user ('nobody@pve')")
    create = ["userid-group", ["User.Modify"], "groups_param", "create"]
    assert access.evaluate(BOB, create, {}, {"userid": "new@pve", "groups": "team"})
    assert access.evaluate(BOB, create, {}, {"userid": "new@pve"}).message == (
        "Permission check failed (/access/groups, User.Modify)"
    )
    assert access.evaluate(BOB, create, {}, {"userid": "new@pve", "groups": "other"}).message == (
        "Permission check failed (/access/groups/other, User.Modify)"
    )
    acl.set_acl("/access/groups", "PVEUserAdmin", user="alice@pve")
    assert access.evaluate(ALICE, check, {"userid": "dave@pve"}, {})


def test_userid_param() -> None:
    acl = AclStore()
    access = AccessControl(acl)
    acl.add_user("alice@pve")
    own = ["userid-param", "self"]
    assert access.evaluate(ALICE, own, {}, {"userid": "alice@pve"})
    assert access.evaluate(ALICE_FULL_TOKEN, own, {}, {"userid": "alice@pve"}).message == (
        "Permission check failed"
    )
    bad = access.evaluate(ALICE, own, {}, {"userid": "alice"})
    assert (bad.status, bad.message) == (500, "value 'alice' does not look like a valid user name")
    realm = ["userid-param", "Realm.AllocateUser"]
    assert access.evaluate(BOB, realm, {}, {"userid": "x@ldap"}).message == (
        "Permission check failed (/access/realm/ldap, Realm.AllocateUser)"
    )
    acl.set_acl("/access/realm/ldap", "PVEUserAdmin", user="bob@pve")
    assert access.evaluate(BOB, realm, {}, {"userid": "x@ldap"})


def test_perm_modify() -> None:
    acl = AclStore()
    access = AccessControl(acl)
    acl.set_acl("/vms/100", "PVEVMAdmin", user="bob@pve")
    check = ["perm-modify", "{path}"]
    assert access.evaluate(BOB, check, {}, {"path": "/vms/100"})
    assert access.evaluate(BOB, check, {}, {"path": "/storage/local"}).message == (
        "Permission check failed (/storage/local, Permissions.Modify|Datastore.Allocate)"
    )
    acl.set_acl("/", "Administrator", user="alice@pve")
    assert access.evaluate(ALICE, check, {}, {"path": "/"})


def test_user_all_world_and_methods_without_permissions() -> None:
    acl = AclStore()
    access = AccessControl(acl)
    assert access.evaluate(BOB, {"user": "all"}, {}, {})
    assert access.evaluate(BOB, None, {}, {}, user="all")
    nobody = Principal("")
    assert access.evaluate(nobody, {"user": "world"}, {}, {})
    assert access.evaluate(nobody, {"user": "all"}, {}, {}).message == (
        "Permission check failed (user != null)"
    )
    assert access.evaluate(ROOT, None, {}, {})
    for principal in (ROOT_TOKEN, BOB):
        result = access.evaluate(principal, None, {}, {})
        assert result.message == "Permission check failed (user != root@pam)"
        assert result.status == 403
    # "user: all" wins over a check in the same object (GET /cluster/options).
    assert access.evaluate(BOB, {"user": "all", "check": ["perm", "/", ["Sys.Audit"]]}, {}, {})


def test_allowtoken_zero_refuses_every_token() -> None:
    acl = AclStore()
    access = AccessControl(acl)
    result = access.evaluate(
        ROOT_TOKEN, {"user": "all"}, {}, {}, allowtoken=False, uri="/access/password"
    )
    assert result.status == 403
    assert result.message == (
        "Permission check failed (URI '/access/password' not available with API token, "
        "need proper ticket.\n)"
    )
    assert access.evaluate(ROOT, {"user": "all"}, {}, {}, allowtoken=False)


class _Method:
    path = "/access/tfa/{userid}"
    permissions: dict[str, Any] = {"check": ["userid-param", "self"]}  # noqa: RUF012
    allow_token = False


def test_require_method_builds_the_uri() -> None:
    acl = AclStore()
    access = AccessControl(acl)
    denied = denial(access.require_method, ROOT_TOKEN, _Method(), {"userid": "root@pam"}, {})
    assert denied.message.startswith(
        "Permission check failed (URI '/access/tfa/root@pam' not available with API token"
    )
    access.require_method(ROOT, _Method(), {"userid": "root@pam"}, {})


def test_permission_result() -> None:
    assert PermissionResult().status == 200
    assert PermissionResult().message == ""
    refused = PermissionResult(PermissionDenied.because("x"))
    assert not refused
    with pytest.raises(PermissionDenied, match=r"Permission check failed \(x\)"):
        refused.raise_if_denied()


# Every form in the bundled schemas ---------------------------------------------------------


def _methods(schema: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    with gzip.open(SCHEMAS / schema) as handle:
        tree = json.load(handle)
    stack = list(tree)
    while stack:
        node = stack.pop()
        for http_method, info in (node.get("info") or {}).items():
            yield http_method, node["path"], info
        stack.extend(node.get("children") or [])


def _forms(permissions: dict[str, Any] | None) -> set[str]:
    if permissions is None:
        return {"none"}
    found = {f"user:{permissions['user']}"} if "user" in permissions else set()

    def walk(check: list[Any]) -> None:
        found.add(check[0])
        if check[0] in ("and", "or"):
            for sub in check[1:]:
                walk(sub)
        elif check[0] == "perm":
            found.update(f"perm:{option}" for option in check[3::2])

    if permissions.get("check"):
        walk(permissions["check"])
    return found


@pytest.mark.parametrize("schema", ["pve-api-9.1.3.json.gz", "pve-api-8.4.2.json.gz"])
def test_every_schema_permission_evaluates(schema: str) -> None:
    roles = PVE8_ROLES if "8.4" in schema else ROLES
    acl = AclStore(roles=roles)
    access = AccessControl(acl)
    acl.add_user("alice@pve")
    acl.add_group_member("team", "alice@pve")
    acl.set_acl("/", "PVEAdmin", user="alice@pve")
    acl.set_acl("/vms/110", "PVEVMAdmin", token="alice@pve!ci")
    forms: set[str] = set()
    limited_allowed = 0
    for http_method, path, info in _methods(schema):
        permissions = info.get("permissions")
        forms |= _forms(permissions)
        path_params = {
            name: "110" if name == "vmid" else "alice@pve" if name == "userid" else "x"
            for name in re.findall(r"\{([^}]+)\}", path)
        }
        allowtoken = bool(info.get("allowtoken", 1))
        for principal in (ROOT, ROOT_TOKEN, ALICE_TOKEN, BOB):
            result = access.evaluate(
                principal, permissions, path_params, {}, allowtoken=allowtoken, uri=path
            )
            assert result.status in (200, 403, 500), (http_method, path)
            if principal is ROOT:
                assert result.allowed, (http_method, path)
            if principal is ROOT_TOKEN and result.allowed:
                assert permissions is not None and allowtoken
            if principal is ALICE_TOKEN and result.allowed:
                limited_allowed += 1
    assert forms >= {
        "none",
        "user:all",
        "user:world",
        "perm",
        "perm:any",
        "perm:require_param",
        "and",
        "or",
        "userid-group",
        "userid-param",
        "perm-modify",
    }
    assert forms <= {
        "none",
        "user:all",
        "user:world",
        "perm",
        "perm:any",
        "perm:require_param",
        "and",
        "or",
        "userid-group",
        "userid-param",
        "perm-modify",
    }
    assert limited_allowed > 100


def test_schema_vm_config_update_for_a_limited_token() -> None:
    (info,) = [
        info
        for method, path, info in _methods("pve-api-9.1.3.json.gz")
        if (method, path) == ("PUT", "/nodes/{node}/qemu/{vmid}/config")
    ]
    access = vm_admin_token()
    params = {"node": "pve1", "vmid": "110"}
    assert access.evaluate(ALICE_TOKEN, info["permissions"], params, {"cores": 4})
    params["vmid"] = "111"
    assert not access.evaluate(ALICE_TOKEN, info["permissions"], params, {"cores": 4})


# Checks the guest APIs make in code --------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("cores", None, ("VM.Config.CPU",)),
        ("numa0", None, ("VM.Config.CPU",)),
        ("memory", None, ("VM.Config.Memory",)),
        ("balloon", None, ("VM.Config.Memory",)),
        ("net0", None, ("VM.Config.Network",)),
        ("scsi0", "local-lvm:32", ("VM.Config.Disk",)),
        ("ide2", "local:iso/debian.iso,media=cdrom", ("VM.Config.CDROM",)),
        (
            "ide2",
            "local-lvm:vm-100-cloudinit,media=cdrom",
            ("VM.Config.Cloudinit", "VM.Config.CDROM"),
        ),
        ("efidisk0", None, ("VM.Config.Disk",)),
        ("unused0", None, ("VM.Config.Disk",)),
        ("hostpci0", None, ("VM.Config.HWType",)),
        ("vga", None, ("VM.Config.HWType",)),
        ("machine", None, ("VM.Config.HWType",)),
        ("ipconfig0", None, ("VM.Config.Cloudinit", "VM.Config.Network")),
        ("ciuser", None, ("VM.Config.Cloudinit", "VM.Config.Network")),
        ("tags", None, ("VM.Config.Options",)),
        ("onboot", None, ("VM.Config.Options",)),
        ("description", None, ("VM.Config.Options",)),
        ("name", None, ("VM.Config.Options",)),
        ("boot", None, ("VM.Config.Disk",)),
        ("freeze", None, ("VM.PowerMgmt",)),
        ("vmstate", None, ("VM.Config.Disk", "VM.PowerMgmt")),
        ("args", None, ()),
        ("affinity", None, ()),
        ("digest", None, ()),
    ],
)
def test_qemu_config_privileges(key: str, value: str | None, expected: tuple[str, ...]) -> None:
    assert qemu_config_privileges(key, value) == expected


def test_check_qemu_option_rules() -> None:
    acl = AclStore()
    access = AccessControl(acl)
    acl.set_acl("/vms/100", "PVEVMUser", user="bob@pve")
    # Cloud-init keys need either privilege: VM.Config.Cloudinit is enough.
    check_qemu_option(access, BOB, 100, "ipconfig0", "ip=dhcp")
    denied = denial(check_qemu_option, access, BOB, 100, "cores", 4)
    assert denied.message == "Permission check failed (/vms/100, VM.Config.CPU)"
    denied = denial(check_qemu_option, access, ROOT_TOKEN, 100, "args", "-no-reboot")
    assert (denied.status, denied.message) == (500, "only root can set 'args' config")
    check_qemu_option(access, ROOT, 100, "args", "-no-reboot")
    check_qemu_option(access, ROOT_TOKEN, 100, "cores", 4)

    acl.set_acl("/vms/100", "PVEVMAdmin", user="alice@pve")
    denied = denial(check_qemu_option, access, ALICE, 100, "startup", "order=1")
    assert denied.message == "Permission check failed (/, Sys.Modify)"
    # A disk at create needs storage privileges only; changing one needs VM.Config.Disk.
    check_qemu_option(access, BOB, 100, "scsi0", "local-lvm:32", create=True)
    assert denial(check_qemu_option, access, BOB, 100, "scsi0", "local-lvm:32").message == (
        "Permission check failed (/vms/100, VM.Config.Disk)"
    )
    check_qemu_option(access, BOB, 100, "cdrom", "local:iso/x.iso")
    assert denial(
        check_qemu_option, access, BOB, 100, "ide2", "none", old_value="local:vm-100-disk-0"
    ).message == ("Permission check failed (/vms/100, VM.Config.Disk)")


def test_check_qemu_option_devices_and_bridges() -> None:
    acl = AclStore()
    access = AccessControl(acl)
    acl.set_acl("/vms/100", "PVEVMAdmin", user="alice@pve")
    check_qemu_option(access, ALICE, 100, "serial0", "socket", create=True)
    denied = denial(check_qemu_option, access, ALICE, 100, "serial0", "/dev/ttyS0", create=True)
    assert denied.message == "only root can set 'serial0' config for real devices"
    assert denial(check_qemu_option, access, ALICE, 100, "serial0", "/dev/ttyS0").message == (
        "only root can modify 'serial0' config for real devices"
    )
    assert denial(
        check_qemu_option, access, ALICE, 100, "serial0", "/dev/ttyS0", delete=True
    ).message == ("only root can delete 'serial0' config for real devices")
    check_qemu_option(access, ALICE, 100, "usb0", "host=spice")
    assert denial(check_qemu_option, access, ALICE, 100, "usb0", "host=1234:5678").message == (
        "only root can set 'usb0' config for real devices"
    )
    assert denial(check_qemu_option, access, ALICE, 100, "usb0", "mapping=key").message == (
        "Permission check failed (/mapping/usb/key, Mapping.Use)"
    )
    assert denial(check_qemu_option, access, ALICE, 100, "virtiofs0", "share").message == (
        "Permission check failed (/mapping/dir/share, Mapping.Use)"
    )
    check_qemu_option(access, ALICE, 100, "rng0", "source=/dev/urandom", create=True)
    assert denial(check_qemu_option, access, ALICE, 100, "rng0", "source=/dev/hwrng").message == (
        "Permission check failed (/mapping/hwrng, Mapping.Use)"
    )
    net = "virtio=BC:24:11:00:00:01,bridge=vmbr0"
    assert denial(check_qemu_option, access, ALICE, 100, "net0", net).message == (
        "Permission check failed (/sdn/zones/localnetwork/vmbr0, SDN.Use)"
    )
    assert denial(check_qemu_option, access, ALICE, 100, "net0", net + ",tag=20").message == (
        "Permission check failed (/sdn/zones/localnetwork/vmbr0/20, SDN.Use)"
    )
    acl.set_acl("/sdn/zones/localnetwork/vmbr0", "PVESDNUser", user="alice@pve")
    check_qemu_option(access, ALICE, 100, "net0", net + ",trunks=10;20-22")
    check_qemu_option(access, ALICE, 100, "tags", "gpu;lab")


def test_hostpci_raw_device_is_for_root_only() -> None:
    acl = AclStore()
    access = AccessControl(acl)
    hostpci_privileges(access, ROOT, {"host": "0000:01:00", "pcie": "1"}, key="hostpci0", vmid=100)
    for principal in (ROOT_TOKEN, ALICE):
        denied = denial(hostpci_privileges, access, principal, "0000:01:00,pcie=1", key="hostpci0")
        assert denied.status == 500
        assert denied.message == "only root can set 'hostpci0' config for non-mapped devices"
    denied = denial(hostpci_privileges, access, ALICE, {"pcie": "1"}, key="hostpci0")
    assert denied.message == "either 'host' or 'mapping' must be set."


def test_hostpci_mapping_needs_mapping_use_then_hwtype() -> None:
    acl = AclStore()
    access = AccessControl(acl)
    value = "mapping=gpu,pcie=1"
    denied = denial(hostpci_privileges, access, ALICE, value, key="hostpci0", vmid=100)
    assert denied.message == "Permission check failed (/mapping/pci/gpu, Mapping.Use)"
    acl.set_acl("/mapping/pci/gpu", "PVEMappingUser", user="alice@pve")
    denied = denial(hostpci_privileges, access, ALICE, value, key="hostpci0", vmid=100)
    assert denied.message == "Permission check failed (/vms/100, VM.Config.HWType)"
    acl.set_acl("/vms/100", "PVEVMAdmin", user="alice@pve")
    hostpci_privileges(access, ALICE, {"mapping": "gpu"}, key="hostpci0", vmid=100)
    check_qemu_option(access, ALICE, 100, "hostpci0", value, create=True)
    # A root@pam token without privilege separation holds Mapping.Use like root.
    hostpci_privileges(access, ROOT_TOKEN, value, key="hostpci0", vmid=100)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("cores", ("VM.Config.CPU",)),
        ("cpulimit", ("VM.Config.CPU",)),
        ("memory", ("VM.Config.Memory",)),
        ("swap", ("VM.Config.Memory",)),
        ("rootfs", ("VM.Config.Disk",)),
        ("mp0", ("VM.Config.Disk",)),
        ("net0", ("VM.Config.Network",)),
        ("hostname", ("VM.Config.Network",)),
        ("nameserver", ("VM.Config.Network",)),
        ("features", ("VM.Allocate",)),
        ("tags", ("VM.Config.Options",)),
        ("onboot", ("VM.Config.Options",)),
        ("description", ("VM.Config.Options",)),
        ("dev0", ()),
        ("hookscript", ()),
        ("ostemplate", ()),
    ],
)
def test_lxc_config_privileges(key: str, expected: tuple[str, ...]) -> None:
    assert lxc_config_privileges(key) == expected


def test_lxc_device_passthrough_is_for_root_only() -> None:
    lxc_dev_privileges(ROOT)
    for principal in (ROOT_TOKEN, ALICE):
        denied = denial(lxc_dev_privileges, principal)
        assert denied.status == 403
        assert denied.message == (
            "Permission check failed (configuring device passthrough is only allowed for root@pam)"
        )
    acl = AclStore()
    access = AccessControl(acl)
    assert (
        denial(check_lxc_option, access, ROOT_TOKEN, 200, "dev0", "/dev/dri/renderD128").status
        == 403
    )


def test_check_lxc_option_rules() -> None:
    acl = AclStore()
    access = AccessControl(acl)
    acl.set_acl("/vms/200", "PVEVMAdmin", user="alice@pve")
    check_lxc_option(access, ALICE, 200, "memory", "2048")
    assert denial(check_lxc_option, access, ALICE, 200, "mp0", "/srv/data,mp=/data").message == (
        "Permission check failed (mount point type bind is only allowed for root@pam)"
    )
    assert denial(check_lxc_option, access, ALICE, 200, "rootfs", "local-lvm:8").message == (
        "Permission check failed (/storage/local-lvm, Datastore.AllocateSpace)"
    )
    check_lxc_option(access, ALICE, 200, "features", "nesting=1")
    assert denial(
        check_lxc_option, access, ALICE, 200, "features", "nesting=1,keyctl=1"
    ).message == (
        "Permission check failed (changing feature flags (except nesting) is only allowed for root@pam)"
    )
    check_lxc_option(access, ALICE, 200, "features", "nesting=1,keyctl=1", old_value="keyctl=1")
    assert denial(
        check_lxc_option, access, ALICE, 200, "features", "nesting=1", unprivileged=False
    ).message == (
        "Permission check failed (changing feature flags for privileged container is only "
        "allowed for root@pam)"
    )
    assert denial(
        check_lxc_option, access, ALICE, 200, "hookscript", "local:snippets/x"
    ).message == ("Permission check failed (changing the hookscript is only allowed for root@pam)")
    check_lxc_option(access, ROOT, 200, "hookscript", "local:snippets/x")
    assert denial(check_lxc_option, access, BOB, 200, "hostname", "ct").message == (
        "Permission check failed (/vms/200, VM.Config.Network)"
    )


def test_check_volume_access() -> None:
    acl = AclStore()
    access = AccessControl(acl)
    acl.set_acl("/storage/local", "PVEDatastoreUser", user="bob@pve")
    check_volume_access(access, BOB, "local:iso/debian.iso", vtype="iso")
    check_volume_access(
        access, BOB, "local:100/vm-100-disk-0.raw", vtype="images", owner=100, vmid=100
    )
    denied = denial(
        check_volume_access,
        access,
        BOB,
        "local:backup/vzdump-qemu-100.vma.zst",
        vtype="backup",
        owner=100,
    )
    assert denied.message == "Permission check failed (/vms/100, VM.Backup)"
    denied = denial(check_volume_access, access, BOB, "/mnt/disk.raw", vtype="images")
    assert denied.message == "Only root can pass arbitrary filesystem paths."
    denied = denial(
        check_volume_access, access, BOB, "local:iso/x.iso", vtype="iso", content="vztmpl"
    )
    assert (
        denied.message == "unable to use volume local:iso/x.iso - content type needs to be 'vztmpl'"
    )
