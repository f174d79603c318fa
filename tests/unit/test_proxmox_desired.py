"""What the inventory becomes in Proxmox VE's terms: the options of a create request."""

from pathlib import Path
from typing import Any
from urllib.parse import unquote

from labsmith.checks.lab import check_lab
from labsmith.proxmox.desired import DesiredGuest, DesiredLab, desired_lab
from tests.conftest import INVENTORIES

HOSTS = """---
all:
  children:
    proxmox:
      hosts:
        pve1:
    guests:
      hosts:
        vm1:
        ct1:
"""
PVE1 = """---
labsmith_kind: proxmox
labsmith_cpu: {vendor: amd, cores: 16, threads: 32}
labsmith_memory: 128G
labsmith_vlans:
  - {name: lab, id: 30, subnet: 10.0.30.0/24, gateway: 10.0.30.1}
  - {name: v6, id: 60, subnet: "fd00:60::/64", gateway: "fd00:60::1"}
labsmith_bridges:
  - {name: vmbr0, vlan_aware: true}
labsmith_storage:
  - {id: fast, layout: existing, backend: zfs, pool: fast}
labsmith_gpus:
  - {name: a4000, pci: "0000:41:00.0", vendor_device: "10de:24b0", vram: 16G, mode: host}
  - {name: p40, pci: "0000:05:00.0", vendor_device: "10de:1b38", vram: 24G, mode: passthrough}
  - {name: a2000, pci: "0000:21:00.0", vendor_device: "10de:2531", vram: 12G, mode: host}
  - {name: w7800, pci: "0000:c1:00.0", vendor_device: "1002:7448", vram: 32G, mode: host}
"""
VM1 = """---
labsmith_vlans:
  - {name: lab, id: 30, subnet: 10.0.30.0/24, gateway: 10.0.30.1}
  - {name: v6, id: 60, subnet: "fd00:60::/64", gateway: "fd00:60::1"}
labsmith_guest:
  type: qemu
  node: pve1
  vmid: 300
  cores: 4
  memory: 8G
  gpus: [p40]
  disks:
    - {storage: fast, size: 512M}
    - {storage: fast, size: 64G, slot: scsi0}
  nics:
    - {bridge: vmbr0, vlan: lab, ip: 10.0.30.50/24}
    - {bridge: vmbr0, vlan: v6, ip: "fd00:60::50/64", mac: "bc:24:11:00:00:01"}
    - {bridge: vmbr0}
  cloud_init:
    ssh_keys: [ssh-ed25519 AAAA one@a, ssh-ed25519 BBBB two@b]
"""
CT1 = """---
labsmith_vlans:
  - {name: lab, id: 30, subnet: 10.0.30.0/24, gateway: 10.0.30.1}
labsmith_guest:
  type: lxc
  node: pve1
  vmid: 310
  cores: 2
  memory: 2G
  gpus: [a4000, w7800]
  ostemplate: local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst
  rootfs: {storage: fast, size: 8G}
  bind_mounts:
    - {source: /fast/data, path: /srv/data, read_only: true}
  nics:
    - {bridge: vmbr0, vlan: lab, ip: dhcp}
  tags: [web]
"""


def lab(write_tree: Any) -> DesiredLab:
    root: Path = write_tree(
        {
            "hosts.yml": HOSTS,
            "host_vars/pve1.yml": PVE1,
            "host_vars/vm1.yml": VM1,
            "host_vars/ct1.yml": CT1,
        }
    )
    report = check_lab(root)
    assert report.errors == [], report.errors
    return desired_lab(report.lab)


def guest(desired: DesiredLab, name: str) -> DesiredGuest:
    return next(g for g in desired.guests if g.inventory_name == name)


def test_vm_disks_nics_cloud_init_and_the_gpu_mapping(write_tree: Any) -> None:
    desired = lab(write_tree)
    vm = guest(desired, "vm1").options
    # The declared slot is kept; the other disk takes the next free one.
    assert vm["scsi0"] == "fast:64,discard=on,iothread=1"
    assert vm["scsi1"] == "fast:0.5,discard=on,iothread=1"
    assert vm["efidisk0"] == "fast:1,efitype=4m,pre-enrolled-keys=0"
    assert (vm["machine"], vm["bios"], vm["cpu"], vm["balloon"]) == ("q35", "ovmf", "host", 0)
    assert vm["net0"] == "virtio,bridge=vmbr0,tag=30"
    assert vm["net1"] == "virtio=BC:24:11:00:00:01,bridge=vmbr0,tag=60"
    assert vm["net2"] == "virtio,bridge=vmbr0"
    # No gateway on the NIC: the VLAN's; IPv6 uses ip6/gw6; no address: DHCP.
    assert vm["ipconfig0"] == "ip=10.0.30.50/24,gw=10.0.30.1"
    assert vm["ipconfig1"] == "ip6=fd00:60::50/64,gw6=fd00:60::1"
    assert vm["ipconfig2"] == "ip=dhcp"
    assert vm["ciuser"] == "labsmith" and vm["ide2"] == "fast:cloudinit"
    assert unquote(str(vm["sshkeys"])) == "ssh-ed25519 AAAA one@a\nssh-ed25519 BBBB two@b"
    assert vm["hostpci0"] == "mapping=p40,pcie=1"
    assert vm["memory"] == 8192 and vm["tags"] == "labsmith"
    assert vm["description"] == "managed-by: labsmith"
    [mapping] = desired.mappings["pve1"]
    assert (mapping.id, mapping.path, mapping.vendor_device) == ("p40", "0000:05:00", "10de:1b38")
    assert mapping.map_entry(7) == "id=10de:1b38,node=pve1,path=0000:05:00,iommugroup=7"


def test_container_devices_follow_the_drivers_numbering(write_tree: Any) -> None:
    ct = guest(lab(write_tree), "ct1")
    # a2000 (21:00) is the first card the NVIDIA driver runs, a4000 (41:00) the second; the
    # P40 belongs to vfio-pci and is not counted. The AMD card is the first DRM render node.
    assert ct.root_only == {
        "mp0": "/fast/data,mp=/srv/data,ro=1",
        "dev0": "/dev/nvidia1",
        "dev1": "/dev/nvidiactl",
        "dev2": "/dev/nvidia-uvm",
        "dev3": "/dev/nvidia-uvm-tools",
        "dev4": "/dev/nvidia-modeset",
        "dev5": "/dev/dri/renderD128",
        "dev6": "/dev/kfd",
    }
    assert not any(key.startswith(("mp", "dev")) for key in ct.options)
    assert ct.options["net0"] == "name=eth0,bridge=vmbr0,ip=dhcp,tag=30"
    assert ct.options["rootfs"] == "fast:8"
    assert ct.options["tags"] == "labsmith;web"
    assert ct.mappings == ()


def test_the_example_lab() -> None:
    report = check_lab(INVENTORIES / "example")
    desired = desired_lab(report.lab)
    assert [(g.inventory_name, g.vmid, g.kind) for g in desired.guests] == [
        ("ai-private", 110, "qemu"),
        ("ai-public", 120, "lxc"),
        ("backup", 220, "lxc"),
        ("monitoring", 210, "lxc"),
        ("postgres", 200, "lxc"),
        ("redis", 201, "lxc"),
    ]
    private = guest(desired, "ai-private")
    assert private.mappings == ("rtx5090",)
    assert private.options["net0"] == "virtio,bridge=vmbr0,firewall=1,tag=10"
    assert private.options["scsi1"] == "tank:1024,discard=on,iothread=1"
    assert guest(desired, "ai-public").root_only["dev0"] == "/dev/nvidia0"
