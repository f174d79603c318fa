"""Passing cases at each rule's edge: what looks close to a finding but is right."""

from pathlib import Path
from typing import Any

import yaml

from labsmith.checks.lab import check_lab

NODE: dict[str, Any] = {
    "labsmith_kind": "proxmox",
    "labsmith_cpu": {"vendor": "intel", "cores": 16, "threads": 32},
    "labsmith_memory": "64G",
    "labsmith_gpus": [
        {
            "name": "big",
            "pci": "01:00.0",
            "vendor_device": "10de:2b85",
            "vram": "32G",
            "mode": "passthrough",
        },
        {
            "name": "small",
            "pci": "0000:02:00.0",
            "vendor_device": "10de:2504",
            "vram": "12G",
            "mode": "host",
        },
    ],
    "labsmith_nics": [{"name": "enp5s0"}],
    "labsmith_bridges": [
        {
            "name": "vmbr0",
            "ports": ["enp5s0"],
            "vlan_aware": True,
            "vlan": 10,
            "ip": "10.10.0.2/24",
            "gateway": "10.10.0.1",
        },
        {"name": "vmbr1"},
    ],
    "labsmith_disks": [
        {"id": "/dev/disk/by-id/nvme-A_1"},
        {"id": "/dev/disk/by-id/nvme-B_2"},
    ],
    "labsmith_storage": [
        {
            "id": "fast",
            "layout": "mirror",
            "backend": "zfs",
            "disks": ["/dev/disk/by-id/nvme-A_1", "/dev/disk/by-id/nvme-B_2"],
        },
        {
            "id": "local",
            "layout": "existing",
            "backend": "dir",
            "content": ["iso", "vztmpl", "backup"],
        },
    ],
    "labsmith_services": [
        {"name": "exporter", "kind": "node_exporter", "port": 9100},
        {"name": "ollama", "kind": "ollama", "port": 11434, "gpus": ["small"]},
    ],
}
VLANS = [
    {"name": "trust", "id": 10, "subnet": "10.10.0.0/24", "gateway": "10.10.0.1"},
    {"name": "lab", "id": 30, "subnet": "10.30.0.0/24", "gateway": "10.30.0.1"},
    {"name": "v6", "id": 60, "subnet": "fd00:60::/64", "gateway": "fd00:60::1"},
]


def lxc(vmid: int, **extra: Any) -> dict[str, Any]:
    guest = {
        "type": "lxc",
        "node": "pve1",
        "vmid": vmid,
        "cores": 2,
        "memory": "4G",
        "rootfs": {"storage": "fast", "size": "8G"},
    }
    return {"labsmith_guest": guest | extra}


def lab(write_tree: Any, guests: dict[str, dict[str, Any]]) -> Path:
    hosts = {
        "all": {
            "children": {
                "proxmox": {"hosts": {"pve1": None}},
                "guests": {"hosts": dict.fromkeys(guests)},
            }
        }
    }
    files = {
        "hosts.yml": yaml.safe_dump(hosts),
        "group_vars/all.yml": yaml.safe_dump({"labsmith_vlans": VLANS}),
        "host_vars/pve1.yml": yaml.safe_dump(NODE),
    }
    files |= {f"host_vars/{name}.yml": yaml.safe_dump(spec) for name, spec in guests.items()}
    root: Path = write_tree(files)
    return root


def assert_clean(root: Path) -> None:
    assert [f"{f.rule} {f.location}: {f.message}" for f in check_lab(root).findings] == []


def test_a_host_mode_gpu_may_serve_several_containers(write_tree: Any) -> None:
    assert_clean(
        lab(write_tree, {"ct-a": lxc(200, gpus=["small"]), "ct-b": lxc(201, gpus=["small"])})
    )


def test_one_vm_takes_the_passthrough_gpu_with_default_q35_ovmf(write_tree: Any) -> None:
    vm = {
        "type": "qemu",
        "node": "pve1",
        "vmid": 100,
        "cores": 32,
        "memory": "32G",
        "gpus": ["big"],
        "disks": [{"storage": "fast", "size": "100G"}],
    }
    assert_clean(lab(write_tree, {"vm": {"labsmith_guest": vm}}))


def test_guest_using_exactly_all_host_threads_and_memory_is_allowed(write_tree: Any) -> None:
    assert_clean(lab(write_tree, {"ct": lxc(200, cores=32, memory="64G")}))


def test_undeclared_numeric_tag_dhcp_and_ipv6_addresses_are_fine(write_tree: Any) -> None:
    nics = [
        {"bridge": "vmbr0", "vlan": 4094, "ip": "dhcp"},
        {"bridge": "vmbr0", "vlan": "v6", "ip": "fd00:60::10/64", "gateway": "fd00:60::1"},
        {"bridge": "vmbr0", "vlan": 30, "ip": "10.30.0.10/24", "gateway": "10.30.0.1"},
        {"bridge": "vmbr1"},
    ]
    assert_clean(lab(write_tree, {"ct": lxc(200, nics=nics)}))


def test_same_vmid_in_two_clusters_is_fine(write_tree: Any) -> None:
    root = lab(write_tree, {"ct": lxc(200)})
    second = NODE | {"labsmith_cluster": "other", "labsmith_bridges": [], "labsmith_services": []}
    hosts = {
        "all": {
            "children": {
                "proxmox": {"hosts": {"pve1": None, "pve2": None}},
                "guests": {"hosts": {"ct": None, "ct2": None}},
            }
        }
    }
    (root / "hosts.yml").write_text(yaml.safe_dump(hosts))
    (root / "host_vars" / "pve2.yml").write_text(yaml.safe_dump(second))
    (root / "host_vars" / "ct2.yml").write_text(yaml.safe_dump(lxc(200, node="pve2")))
    assert_clean(root)


def test_services_on_different_hosts_may_share_a_port(write_tree: Any) -> None:
    ollama = {"name": "ollama", "kind": "ollama", "port": 11434, "gpus": ["small"]}
    assert_clean(
        lab(write_tree, {"ct": lxc(200, gpus=["small"]) | {"labsmith_services": [ollama]}})
    )


def test_hosts_without_labsmith_variables_are_left_alone(write_tree: Any) -> None:
    root = lab(write_tree, {"ct": lxc(200)})
    (root / "extra.yml").write_text(
        yaml.safe_dump({"all": {"hosts": {"nas": {"ansible_host": "10.10.0.5"}}}})
    )
    report = check_lab(root)
    assert report.findings == []
    assert report.lab.unmanaged == ["nas"]
