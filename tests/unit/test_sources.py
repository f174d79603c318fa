"""Variables resolve exactly as Ansible resolves them, and each remembers its file."""

import json
from pathlib import Path
from typing import Any

import pytest

from labsmith.errors import UnusableInventoryError
from labsmith.inventory.sources import VaultedValue, load_inventory
from tests.conftest import BROKEN_LABS, FIXTURES, GOOD_LABS, ansible_inventory_list

VAULTED = FIXTURES / "inventories" / "vaulted"
VAULT_PASSWORD = FIXTURES / "inventories" / "vault-password.txt"


def as_ansible_json(value: Any) -> Any:
    """Our resolved values in the shape ansible-inventory prints them."""
    if isinstance(value, VaultedValue):
        return {"__ansible_vault": value.ciphertext}
    if isinstance(value, dict):
        return {key: as_ansible_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_ansible_json(item) for item in value]
    return json.loads(json.dumps(value))


def assert_same_as_ansible(source: Path, ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    expected_hosts = set(theirs["_meta"]["hostvars"]) | {
        host
        for group in theirs.values()
        if isinstance(group, dict)
        for host in group.get("hosts", [])
    }
    assert set(ours) == expected_hosts, source
    for name, variables in ours.items():
        assert as_ansible_json(variables) == theirs["_meta"]["hostvars"].get(name, {}), (
            source,
            name,
        )


@pytest.mark.parametrize(
    "lab", GOOD_LABS + BROKEN_LABS, ids=lambda p: str(p.relative_to(p.parents[1]))
)
def test_every_bundled_inventory_resolves_like_ansible_inventory(lab: Path) -> None:
    inventory = load_inventory(lab)
    ours = {name: host.variables for name, host in inventory.hosts.items()}
    assert_same_as_ansible(lab, ours, ansible_inventory_list(lab))


def test_vaulted_inventory_resolves_like_ansible_inventory_with_the_password() -> None:
    inventory = load_inventory(VAULTED, VAULT_PASSWORD)
    ours = {name: host.variables for name, host in inventory.hosts.items()}
    theirs = ansible_inventory_list(VAULTED, "--vault-password-file", str(VAULT_PASSWORD))
    assert_same_as_ansible(VAULTED, ours, theirs)
    assert ours["pve1"]["vault_pve_token_secret"] == "0e1c2a64-7f0b-4d5e-9a43-51d2c5a0b7c1"
    assert inventory.skipped_vault_files == []


def test_vault_encrypted_file_without_password_is_skipped_and_reported() -> None:
    inventory = load_inventory(VAULTED)
    pve1 = inventory.hosts["pve1"]
    assert inventory.skipped_vault_files == ["group_vars/proxmox/vault.yml"]
    assert "vault_pve_token_secret" not in pve1.variables
    # the plain file of the same group is still read, and the inline secret stays encrypted
    assert pve1.variables["labsmith_memory"] == "32G"
    secret = pve1.variables["ansible_become_password"]
    assert isinstance(secret, VaultedValue)
    assert "hunter2" not in repr(secret) and str(secret) == "<vault-encrypted>"


PRECEDENCE_LAB = {
    "hosts.yml": """---
all:
  vars: {a: all_inline, b: all_inline, c: all_inline}
  children:
    proxmox:
      vars: {c: group_inline, d: group_inline}
      hosts:
        pve1: {e: host_inline, f: host_inline}
      children:
        gpu_hosts:
          vars: {d: child_inline}
          hosts:
            pve1:
""",
    "group_vars/all.yml": "---\nb: all_file\nc: all_file\n",
    "group_vars/proxmox/10-first.yml": "---\nd: proxmox_dir_first\ng: proxmox_dir_first\n",
    "group_vars/proxmox/20-second.yml": "---\ng: proxmox_dir_second\n",
    "group_vars/gpu_hosts.yaml": "---\nh: deeper_group_file\n",
    "host_vars/pve1.yml": "---\nf: host_file\n",
}


def test_precedence_and_origin_of_every_variable(write_tree: Any) -> None:
    root = write_tree(PRECEDENCE_LAB)
    pve1 = load_inventory(root).hosts["pve1"]
    assert_same_as_ansible(root, {"pve1": pve1.variables}, ansible_inventory_list(root))
    assert pve1.origins == {
        "a": "hosts.yml",
        "b": "group_vars/all.yml",
        "c": "group_vars/all.yml",
        "d": "group_vars/proxmox/10-first.yml",
        "e": "hosts.yml",
        "f": "host_vars/pve1.yml",
        "g": "group_vars/proxmox/20-second.yml",
        "h": "group_vars/gpu_hosts.yaml",
    }
    assert pve1.origin("never_set") == "host_vars/pve1.yml"
    assert pve1.groups == ("proxmox", "gpu_hosts")


def test_a_single_inventory_file_is_accepted(write_tree: Any) -> None:
    root = write_tree(PRECEDENCE_LAB)
    inventory = load_inventory(root / "hosts.yml")
    assert inventory.root == root
    assert inventory.hosts["pve1"].variables["f"] == "host_file"


def test_yaml_syntax_error_names_file_and_line(write_tree: Any) -> None:
    root = write_tree(
        {
            "hosts.yml": "---\nall:\n  hosts:\n    pve1:\n",
            "host_vars/pve1.yml": "---\na: 1\nb: [1, 2\nc: 3\n",
        }
    )
    with pytest.raises(UnusableInventoryError, match=r"^host_vars/pve1.yml:4:2: YAML syntax error"):
        load_inventory(root)


def test_yaml_syntax_error_in_hosts_file_names_it(write_tree: Any) -> None:
    root = write_tree({"hosts.yml": "---\nall:\n  hosts:\n    pve1: {a: 1\n"})
    with pytest.raises(UnusableInventoryError, match=r"^hosts.yml:5:1: YAML syntax error"):
        load_inventory(root)


def test_vars_file_that_is_not_a_mapping_is_unusable(write_tree: Any) -> None:
    root = write_tree(
        {"hosts.yml": "---\nall:\n  hosts:\n    pve1:\n", "group_vars/all.yml": "---\n- a\n- b\n"}
    )
    with pytest.raises(
        UnusableInventoryError, match=r"group_vars/all.yml: a vars file must be a mapping"
    ):
        load_inventory(root)


def test_missing_inventory_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(UnusableInventoryError, match=r"no such inventory; pass -i"):
        load_inventory(tmp_path / "nope")


@pytest.mark.parametrize(
    "files", [{}, {"hosts.yml": "---\n- pve1\n- pve2\n"}], ids=["empty", "list"]
)
def test_directory_without_inventory_is_unusable(write_tree: Any, files: dict[str, str]) -> None:
    root = write_tree(files)
    with pytest.raises(UnusableInventoryError, match=r"Ansible found no inventory"):
        load_inventory(root)
