"""Validate a generated lab of 500 Proxmox hosts and 5,000 guests; compare with ansible-inventory.

Prints wall times (best and median of a few runs) of two separate processes on the same
inventory: ``labsmith validate --json`` (load with Ansible's parser, resolve variables, type
them, run every cross-check) and ``ansible-inventory --list`` (parse and resolve only), plus
the in-process time of each labsmith stage. Run: ``make bench``.
"""

import argparse
import ipaddress
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from labsmith.inventory.lab import build_lab
from labsmith.inventory.rules import cross_check
from labsmith.inventory.sources import load_inventory

BIN = Path(sys.executable).parent
LAB_NET = ipaddress.ip_network("10.100.0.0/16")
MGMT_NET = ipaddress.ip_network("10.99.0.0/16")


def write_lab(root: Path, hosts: int, guests_per_host: int) -> None:
    host_vars = root / "host_vars"
    host_vars.mkdir(parents=True)
    (root / "group_vars").mkdir()
    vlans = [
        {"name": "mgmt", "id": 99, "subnet": str(MGMT_NET), "gateway": "10.99.0.1"},
        {"name": "lab", "id": 100, "subnet": str(LAB_NET), "gateway": "10.100.0.1"},
    ]
    (root / "group_vars" / "all.yml").write_text(yaml.safe_dump({"labsmith_vlans": vlans}))
    node_names = [f"pve{n:03d}" for n in range(hosts)]
    guest_names: list[str] = []
    for index, node in enumerate(node_names):
        (host_vars / f"{node}.yml").write_text(yaml.safe_dump(_host(index)))
        for slot in range(guests_per_host):
            number = index * guests_per_host + slot
            name = f"vm{number:05d}"
            guest_names.append(name)
            (host_vars / f"{name}.yml").write_text(yaml.safe_dump(_guest(node, number)))
    inventory = {
        "all": {
            "children": {
                "proxmox": {"hosts": dict.fromkeys(node_names)},
                "guests": {"hosts": dict.fromkeys(guest_names)},
            }
        }
    }
    (root / "hosts.yml").write_text(yaml.safe_dump(inventory))


def _host(index: int) -> dict[str, object]:
    disks = [f"/dev/disk/by-id/nvme-Samsung_SSD_990_PRO_2TB_S7B{index:05d}{side}" for side in "AB"]
    return {
        "labsmith_kind": "proxmox",
        "labsmith_cpu": {"vendor": "amd", "model": "EPYC 9354", "cores": 32, "threads": 64},
        "labsmith_memory": "512G",
        "labsmith_gpus": [
            {
                "name": "gpu0",
                "pci": "0000:01:00.0",
                "vendor_device": "10de:2684",
                "vram": "24G",
                "mode": "passthrough",
            },
        ],
        "labsmith_nics": [{"name": "enp65s0f0"}],
        "labsmith_bridges": [
            {
                "name": "vmbr0",
                "ports": ["enp65s0f0"],
                "vlan_aware": True,
                "vlan": "mgmt",
                "ip": f"{MGMT_NET[index + 10]}/16",
                "gateway": "10.99.0.1",
            },
        ],
        "labsmith_disks": [{"id": disk, "size": "2T"} for disk in disks],
        "labsmith_storage": [
            {"id": "fast", "layout": "mirror", "backend": "zfs", "disks": disks},
        ],
    }


def _guest(node: str, number: int) -> dict[str, object]:
    guest: dict[str, object] = {
        "type": "qemu",
        "node": node,
        "vmid": 1000 + number,
        "cores": 4,
        "memory": "16G",
        "disks": [{"storage": "fast", "size": "64G"}],
        "nics": [
            {
                "bridge": "vmbr0",
                "vlan": "lab",
                "ip": f"{LAB_NET[number + 10]}/16",
                "gateway": "10.100.0.1",
            }
        ],
    }
    if number % 10 == 0:
        guest["gpus"] = ["gpu0"]
    return {"labsmith_guest": guest}


def time_command(command: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def stages(root: Path) -> dict[str, float]:
    start = time.perf_counter()
    inventory = load_inventory(root)
    loaded = time.perf_counter()
    lab, findings = build_lab(inventory)
    built = time.perf_counter()
    findings += cross_check(lab)
    checked = time.perf_counter()
    if findings:
        raise SystemExit(
            f"the generated lab should be valid, got {len(findings)} findings: {findings[:3]}"
        )
    return {
        "load + resolve variables": loaded - start,
        "type (pydantic)": built - loaded,
        "cross-checks": checked - built,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--guests-per-host", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        write_lab(root, args.hosts, args.guests_per_host)
        guests = args.hosts * args.guests_per_host
        print(
            f"inventory: {args.hosts} hosts, {guests} guests, {args.hosts + guests} host_vars files"
        )
        for stage, seconds in stages(root).items():
            print(f"  labsmith in-process {stage:<26} {seconds:7.2f} s")
        ours = time_command(
            [str(BIN / "labsmith"), "validate", "-i", str(root), "--json"], args.runs
        )
        theirs = time_command(
            [str(BIN / "ansible-inventory"), "-i", str(root), "--list"], args.runs
        )
        print(f"{'command':<40} {'best':>8} {'median':>8}")
        for label, times in (
            ("labsmith validate --json", ours),
            ("ansible-inventory --list", theirs),
        ):
            print(f"{label:<40} {min(times):7.2f}s {statistics.median(times):7.2f}s")
        print(
            f"ratio labsmith / ansible-inventory (median): "
            f"{statistics.median(ours) / statistics.median(theirs):.2f}x"
        )


if __name__ == "__main__":
    main()
