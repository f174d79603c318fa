"""How fast the simulator answers: config reads per second, and creating 100 guests.

Runs ``labsmith sim`` in this process on loopback HTTPS and drives it with the real
proxmoxer (one keep-alive session, TLS verified), then the same calls straight into
``Simulator.handle`` (no socket, no TLS) to show what the transport costs. Guests are
created with instant tasks, first one client in sequence, then 8 client threads.
Run: ``.venv/bin/python benchmarks/sim_throughput.py [--reads N] [--guests N]``.
"""

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from labsmith.sim.api import Durations, Request
from labsmith.units import GIB

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.simsupport.running import ROOT_SECRET, ROOT_TOKEN, live_sim, wait_task  # noqa: E402

CT = {
    "ostemplate": "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
    "rootfs": "local-zfs:4",
    "net0": "name=eth0,bridge=vmbr0,ip=dhcp",
    "cores": 1,
    "memory": 512,
}


def timed_reads(call: Any, count: int) -> float:
    """Requests per second over ``count`` calls (best of three rounds)."""
    rates = []
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(count):
            call()
        rates.append(count / (time.perf_counter() - start))
    return max(rates)


def create_guests(api: Any, vmids: list[int]) -> None:
    for vmid in vmids:
        wait_task(api, api.nodes("pve1").lxc.post(vmid=vmid, hostname=f"ct{vmid}", **CT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=1000)
    parser.add_argument("--guests", type=int, default=100)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as directory,
        live_sim(Path(directory), durations=Durations(default=0.0)) as sim,
    ):
        sim.simulator.state.storages["local-zfs"].total = 100_000 * GIB
        api = sim.client()
        create_guests(api, [100])
        vm_config = api.nodes("pve1").lxc(100).config
        over_https = timed_reads(vm_config.get, args.reads)
        request = Request(
            "GET",
            "/api2/json/nodes/pve1/lxc/100/config",
            {"Authorization": f"PVEAPIToken={ROOT_TOKEN}={ROOT_SECRET}"},
        )
        in_process = timed_reads(lambda: sim.simulator.handle(request), args.reads)
        print(f"config reads, proxmoxer over HTTPS : {over_https:8.0f} requests/s")
        print(f"config reads, Simulator.handle      : {in_process:8.0f} requests/s")
        print(f"  transport (TLS + HTTP + proxmoxer) share: {1 - over_https / in_process:.0%}")

        vmids = list(range(1000, 1000 + args.guests))
        start = time.perf_counter()
        create_guests(api, vmids)
        sequential = time.perf_counter() - start
        print(
            f"create {args.guests} containers, 1 client  : {sequential:6.2f} s "
            f"({sequential / args.guests * 1000:.1f} ms each: POST + task status poll)"
        )

        vmids = list(range(5000, 5000 + args.guests))
        clients = [sim.client() for _ in range(8)]
        threads = [
            threading.Thread(target=create_guests, args=(client, vmids[index::8]))
            for index, client in enumerate(clients)
        ]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        parallel = time.perf_counter() - start
        print(
            f"create {args.guests} containers, 8 clients : {parallel:6.2f} s "
            f"({sequential / parallel:.2f}x the single client)"
        )
        listed = api.nodes("pve1").lxc.get()
        print(f"containers on pve1 afterwards: {len(listed)}")


if __name__ == "__main__":
    main()
