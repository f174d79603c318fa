"""Schema problems come back as findings that name the file, the key path and the fix."""

from pathlib import Path
from typing import Any

from labsmith.checks.lab import check_lab
from labsmith.inventory.findings import Finding

HOSTS = """---
all:
  children:
    proxmox:
      hosts:
        pve1:
    guests:
      hosts:
        vm1:
"""
PVE1 = """---
labsmith_kind: proxmox
labsmith_cpu: {vendor: amd, cores: 16, threads: 32}
labsmith_memory: 64G
labsmith_bridges:
  - {name: vmbr0, vlan_aware: true}
labsmith_storage:
  - {id: local-lvm, layout: existing, backend: lvm-thin}
"""
VM1 = """---
labsmith_guest:
  type: qemu
  node: pve1
  vmid: 100
  cores: 4
  memory: 8G
  disks: [{storage: local-lvm, size: 32G}]
"""


def findings_for(write_tree: Any, **overrides: str) -> list[Finding]:
    files = {"hosts.yml": HOSTS, "host_vars/pve1.yml": PVE1, "host_vars/vm1.yml": VM1}
    files.update(
        {name.replace("__", "/").replace("_yml", ".yml"): text for name, text in overrides.items()}
    )
    root: Path = write_tree(files)
    return check_lab(root).findings


def test_the_base_lab_is_valid(write_tree: Any) -> None:
    assert findings_for(write_tree) == []


def test_unknown_key_suggests_the_close_one(write_tree: Any) -> None:
    pve1 = PVE1.replace("vlan_aware: true", "vlan_awre: true")
    [found] = findings_for(write_tree, host_vars__pve1_yml=pve1)
    assert (found.rule, found.file, found.key) == (
        "schema.unknown_key",
        "host_vars/pve1.yml",
        "labsmith_bridges[0].vlan_awre",
    )
    assert found.fix == "did you mean 'vlan_aware'?"


def test_unknown_top_level_variable_is_flagged(write_tree: Any) -> None:
    [found] = findings_for(write_tree, host_vars__pve1_yml=PVE1 + "labsmith_gpu: []\n")
    assert (found.rule, found.key) == ("schema.unknown_key", "labsmith_gpu")
    assert found.fix == "did you mean 'labsmith_gpus'?"


def test_missing_key_is_reported_at_its_path(write_tree: Any) -> None:
    [found] = findings_for(write_tree, host_vars__vm1_yml=VM1.replace("  vmid: 100\n", ""))
    assert (found.rule, found.file, found.key) == (
        "schema.missing",
        "host_vars/vm1.yml",
        "labsmith_guest.vmid",
    )


def test_missing_kind_explains_physical_hosts_and_guests(write_tree: Any) -> None:
    [found] = findings_for(
        write_tree, host_vars__pve1_yml=PVE1.replace("labsmith_kind: proxmox\n", "")
    )
    assert (found.rule, found.key) == ("schema.missing", "labsmith_kind")
    assert "labsmith_kind: proxmox or metal" in found.fix


def test_size_without_unit_says_how_to_write_it(write_tree: Any) -> None:
    [found] = findings_for(write_tree, host_vars__vm1_yml=VM1.replace("memory: 8G", "memory: 8192"))
    assert (found.rule, found.key) == ("schema.invalid", "labsmith_guest.memory")
    assert found.message == "8192 has no unit"
    assert found.fix == "write it as a size such as 8192M or 8192G"


def test_a_size_too_large_for_any_number_is_a_finding(write_tree: Any) -> None:
    huge = "9" * 400 + "P"
    findings = findings_for(
        write_tree, host_vars__vm1_yml=VM1.replace("memory: 8G", f"memory: {huge}")
    )
    [found] = [f for f in findings if f.key == "labsmith_guest.memory"]
    assert found.rule == "schema.invalid"
    assert "too large to be a size" in found.message


def test_bad_ip_in_a_union_field_is_one_finding(write_tree: Any) -> None:
    vm1 = VM1 + "  nics: [{bridge: vmbr0, ip: 10.0.0.5}]\n"
    [found] = findings_for(write_tree, host_vars__vm1_yml=vm1)
    assert (found.rule, found.key) == ("schema.invalid", "labsmith_guest.nics[0].ip")
    assert "no prefix length" in found.message
    assert found.fix == "write it as address/prefix, e.g. 10.0.0.5/24"


def test_wrong_type_in_a_union_field_is_one_finding(write_tree: Any) -> None:
    vm1 = VM1 + "  nics: [{bridge: vmbr0, vlan: [10]}]\n"
    [found] = findings_for(write_tree, host_vars__vm1_yml=vm1)
    assert (found.rule, found.key) == ("schema.invalid", "labsmith_guest.nics[0].vlan")
    assert "got [10]" in found.message


def test_enum_value_lists_the_choices(write_tree: Any) -> None:
    [found] = findings_for(write_tree, host_vars__vm1_yml=VM1.replace("type: qemu", "type: kvm"))
    assert (found.rule, found.key) == ("schema.invalid", "labsmith_guest.type")
    assert "'qemu' or 'lxc'" in found.message and "'kvm'" in found.message


def test_vaulted_value_is_never_shown(write_tree: Any) -> None:
    vault = "!vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  3132\n"
    [found] = findings_for(write_tree, host_vars__pve1_yml=PVE1.replace("64G", vault))
    assert found.key == "labsmith_memory"
    assert "<vault-encrypted>" in found.message and "ANSIBLE_VAULT" not in found.message


def test_group_vars_value_is_reported_once_at_its_file(write_tree: Any) -> None:
    vlans = "---\nlabsmith_vlans:\n  - {name: lab, id: 30, subnet: 10.30.0.1/24}\n"
    [found] = findings_for(write_tree, group_vars__all_yml=vlans)
    assert (found.rule, found.file, found.key) == (
        "schema.invalid",
        "group_vars/all.yml",
        "labsmith_vlans[0].subnet",
    )
    assert "write the network address" in found.fix


def test_a_host_cannot_be_both_physical_and_guest(write_tree: Any) -> None:
    [found] = findings_for(write_tree, host_vars__vm1_yml=VM1 + "labsmith_kind: metal\n")
    assert (found.rule, found.key) == ("schema.host_and_guest", "labsmith_guest")


def test_unquoted_pci_address_read_as_base_60_number_says_to_quote_it(write_tree: Any) -> None:
    gpu = "labsmith_gpus:\n  - {name: g, pci: 01:00.0, vendor_device: '10de:2684', vram: 24G, mode: host}\n"
    [found] = findings_for(write_tree, host_vars__pve1_yml=PVE1 + gpu)
    assert (found.rule, found.key) == ("schema.invalid", "labsmith_gpus[0].pci")
    assert (
        found.message
        == "60.0 is a number: YAML reads unquoted values with colons as base-60 numbers"
    )
    assert found.fix == 'quote it, e.g. "0000:01:00.0"'


def test_api_token_secret_is_accepted_only_vaulted_and_never_shown(write_tree: Any) -> None:
    api = "labsmith_pve_api:\n  token_id: root@pam!labsmith\n  token_secret: {secret}\n"
    vaulted = "!vault |\n    $ANSIBLE_VAULT;1.1;AES256\n    3132\n"
    assert findings_for(write_tree, host_vars__pve1_yml=PVE1 + api.format(secret=vaulted)) == []
    plain = "4f0c9a4e-31c1-4ad9-9c1e-2b1b4c7f3a10"
    [found] = findings_for(write_tree, host_vars__pve1_yml=PVE1 + api.format(secret=plain))
    assert (found.rule, found.key) == ("schema.invalid", "labsmith_pve_api.token_secret")
    assert "ansible-vault encrypt_string" in found.fix
    assert plain not in found.message + found.fix


def test_api_token_id_must_name_user_realm_and_token(write_tree: Any) -> None:
    api = "labsmith_pve_api:\n  token_id: labsmith\n"
    [found] = findings_for(write_tree, host_vars__pve1_yml=PVE1 + api)
    assert (found.rule, found.key) == ("schema.invalid", "labsmith_pve_api.token_id")


def test_root_password_is_accepted_only_vaulted_and_never_shown(write_tree: Any) -> None:
    plain = "correct horse battery staple"
    api = f"labsmith_pve_api:\n  token_id: root@pam!labsmith\n  root_password: {plain}\n"
    [found] = findings_for(write_tree, host_vars__pve1_yml=PVE1 + api)
    assert (found.rule, found.key) == ("schema.invalid", "labsmith_pve_api.root_password")
    assert "LABSMITH_PVE_ROOT_PASSWORD" in found.fix
    assert plain not in found.message + found.fix
