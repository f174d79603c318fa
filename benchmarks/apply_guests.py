"""How close the guest apply engine comes to its ideal: 60 containers on 3 simulated nodes.

Every create and start task takes ``--task-seconds`` (2 s) of simulated time, so with at most
``--per-node`` (4) guests in flight on a node the ideal is the critical path
``ceil(20 / per_node) * (create + start)``, the three nodes in parallel. The engine
(``observe_cluster`` + ``plan_lab`` + ``converge``) runs against ``labsmith sim`` in this
process on loopback HTTPS (TLS verified, one API token), polling tasks every 0.1 s:

1. the plan in inventory order (``desired_lab`` sorts guests by name: here node by node);
2. the same plan with the guests interleaved across nodes (pve1, pve2, pve3, pve1, ...):
   each node has its own workers, so the order must not change the wall time;
3. a sequential run (``per_node=1``, one node after the other: one worker overall), with
   shorter tasks when the full one would pass ~1 minute, projected to the full task time;
4. a second observe + plan + converge on the converged lab, which must write nothing
   (writes counted by the simulator's ``ClusterState.generation``).

Run: ``.venv/bin/python benchmarks/apply_guests.py [--per-node N] [--task-seconds S]``.
"""

import argparse
import math
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from labsmith.proxmox.apply import DEFAULT_PER_NODE, ApplySettings, apply_plan, converge
from labsmith.proxmox.client import Endpoint, ProxmoxClient
from labsmith.proxmox.desired import MANAGED_TAG, DesiredGuest, DesiredLab, description
from labsmith.proxmox.observe import observe_cluster
from labsmith.proxmox.plan import Plan, plan_lab
from labsmith.sim.api import Durations, Simulator
from labsmith.sim.auth import add_token
from labsmith.sim.schema import SCHEMA_VERSIONS, ApiSchema
from labsmith.sim.server import start_server
from labsmith.sim.state import (
    DEFAULT_TEMPLATES,
    ClusterState,
    Interface,
    Node,
    Storage,
    add_node,
)
from labsmith.sim.tls import write_server_certificate

CLUSTER = "bench"
NODES = ("pve1", "pve2", "pve3")
PER_NODE_GUESTS = 20
# A throwaway simulator's token.
TOKEN = "root@pam!bench"  # noqa: S105
SECRET = "5ecc0a1e-0000-4000-8000-0000000be7c4"  # noqa: S105
POLL = 0.1
# The sequential run's task time is cut so that its tasks take at most this long in all.
SEQUENTIAL_BUDGET = 60.0
TASK_TYPES = ("vzcreate", "vzstart")  # guests.py: TASK_PREFIX["lxc"] + create / start


@dataclass
class Bench:
    simulator: Simulator
    clients: dict[str, ProxmoxClient]

    @property
    def client(self) -> ProxmoxClient:
        return self.clients[CLUSTER]

    @property
    def generation(self) -> int:
        with self.simulator.lock:
            return self.simulator.state.generation


def cluster_state() -> ClusterState:
    """Three nodes with ``vmbr0`` and a ``local-zfs`` pool each (``nodes=None``: on all)."""
    state = ClusterState()
    for index, name in enumerate(NODES, start=1):
        node = Node(name=name)
        node.interfaces["vmbr0"] = Interface(
            iface="vmbr0",
            type="bridge",
            bridge_ports="eno1",
            bridge_vlan_aware=True,
            cidr=f"192.168.1.{10 + index}/24",
            gateway="192.168.1.1",
        )
        add_node(state, node)
    state.storages["local-zfs"] = Storage(
        storage="local-zfs", type="zfspool", content=["images", "rootdir"], pool="rpool/data"
    )
    add_token(state, TOKEN, SECRET, privsep=False)
    return state


def desired_guests() -> list[DesiredGuest]:
    """20 containers per node, in the order ``desired_lab`` gives them (by name)."""
    guests = []
    for index, node in enumerate(NODES, start=1):
        for number in range(1, PER_NODE_GUESTS + 1):
            vmid = index * 1000 + number
            options: dict[str, str | int] = {
                "hostname": f"ct{vmid}",
                "cores": 1,
                "memory": 512,
                "onboot": 1,
                "tags": MANAGED_TAG,
                "description": description(""),
                "ostemplate": f"local:vztmpl/{DEFAULT_TEMPLATES[0]}",
                "rootfs": "local-zfs:4",
                "net0": "name=eth0,bridge=vmbr0",
            }
            guests.append(
                DesiredGuest(
                    inventory_name=f"ct{vmid}",
                    name=f"ct{vmid}",
                    cluster=CLUSTER,
                    node=node,
                    vmid=vmid,
                    kind="lxc",
                    options=options,
                    start=True,
                )
            )
    return sorted(guests, key=lambda guest: guest.inventory_name)


def interleaved(guests: list[DesiredGuest]) -> list[DesiredGuest]:
    by_node = [[g for g in guests if g.node == node] for node in NODES]
    return [guest for row in zip(*by_node, strict=True) for guest in row]


@contextmanager
def running_sim(task_seconds: float) -> Iterator[Bench]:
    durations = Durations(default=0.0, by_type=dict.fromkeys(TASK_TYPES, task_seconds))
    simulator = Simulator(
        ApiSchema.bundled(SCHEMA_VERSIONS[-1]),
        cluster_state(),
        durations=durations,
        auth_failure_delay=0.0,
    )
    with tempfile.TemporaryDirectory() as directory:
        certificate = write_server_certificate(Path(directory))
        server = start_server(simulator, certificate)
        try:
            endpoint = Endpoint(server.url, TOKEN, SECRET, ca_file=certificate.ca_path)
            yield Bench(simulator, {CLUSTER: ProxmoxClient(endpoint)})
        finally:
            server.stop()


def plan_for(bench: Bench, lab: DesiredLab) -> Plan:
    observed = observe_cluster(bench.client, [guest.vmid for guest in lab.guests])
    return plan_lab(lab, {CLUSTER: observed})


def timed_converge(bench: Bench, lab: DesiredLab, per_node: int) -> tuple[float, int]:
    """(seconds, guests that ended failed) for observe + plan + converge."""
    settings = ApplySettings(per_node=per_node, poll_interval=POLL)
    start = time.perf_counter()
    plan = plan_for(bench, lab)
    result = converge(bench.clients, plan, lambda: plan_for(bench, lab), settings=settings)
    return time.perf_counter() - start, len(result.failed)


def check_converged(bench: Bench, guests: list[DesiredGuest]) -> str:
    state = bench.simulator.state
    with bench.simulator.lock:
        bench.simulator.tasks.advance()
        running = sum(
            1
            for g in guests
            if (found := state.guests.get(g.vmid)) is not None
            and found.status == "running"
            and found.node == g.node
        )
    return f"{running}/{len(guests)} running on their node"


def replan_converged(bench: Bench, lab: DesiredLab, per_node: int) -> str:
    """Observe, plan and converge again: what it wrote and how long it took."""
    before = bench.generation
    start = time.perf_counter()
    plan = plan_for(bench, lab)
    planned = time.perf_counter() - start
    result = converge(bench.clients, plan, lambda: plan, settings=ApplySettings(per_node=per_node))
    total = time.perf_counter() - start
    writes = bench.generation - before
    kinds = sorted({action.action for action in plan.actions})
    return (
        f"re-plan of the converged lab: {writes} write request(s), actions {', '.join(kinds)}; "
        f"observe + plan {planned:.2f} s, with converge {total:.2f} s ({result.rounds} round)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-node", type=int, default=DEFAULT_PER_NODE)
    parser.add_argument("--task-seconds", type=float, default=2.0)
    args = parser.parse_args()
    per_node: int = args.per_node
    task: float = args.task_seconds
    guests = desired_guests()
    per_guest = 2 * task  # create, then start
    ideal = math.ceil(PER_NODE_GUESTS / per_node) * per_guest
    sequential_ideal = len(guests) * per_guest
    print(
        f"{len(guests)} containers on {len(NODES)} nodes ({PER_NODE_GUESTS} each), "
        f"create {task:g} s + start {task:g} s per guest, per_node={per_node}, "
        f"task poll every {POLL:g} s"
    )
    print(
        f"ideal (critical path): ceil({PER_NODE_GUESTS}/{per_node}) x {per_guest:g} s "
        f"= {ideal:6.2f} s"
    )

    measured: dict[str, float] = {}
    for label, order in (("inventory order", guests), ("interleaved", interleaved(guests))):
        with running_sim(task) as bench:
            seconds, failed = timed_converge(bench, DesiredLab(order, {}), per_node)
            measured[label] = seconds
            print(
                f"apply, {label:16}: {seconds:6.2f} s  measured/ideal {seconds / ideal:.2f}  "
                f"({check_converged(bench, guests)}, {failed} failed)"
            )
            if label != "inventory order":
                continue
            print(replan_converged(bench, DesiredLab(guests, {}), per_node))

    seq_task = min(task, SEQUENTIAL_BUDGET / (2 * len(guests)))
    with running_sim(seq_task) as bench:
        plan = plan_for(bench, DesiredLab(guests, {}))
        settings = ApplySettings(per_node=1, poll_interval=POLL)
        start = time.perf_counter()
        for node in NODES:
            apply_plan(bench.clients, Plan([a for a in plan.actions if a.node == node]), settings)
        seq_run = time.perf_counter() - start
        overhead = seq_run - len(guests) * 2 * seq_task
        sequential = sequential_ideal + overhead
        print(
            f"sequential run (per_node=1, one node after another, tasks {seq_task:g} s): "
            f"{seq_run:6.2f} s ({check_converged(bench, guests)}), "
            f"overhead {overhead / len(guests) * 1000:.0f} ms per guest"
        )
    print(
        f"sequential projected to {task:g} s tasks: {sequential_ideal:g} s of tasks + that "
        f"overhead = {sequential:6.2f} s"
    )
    best = measured["inventory order"]
    print(
        f"sequential/measured: {sequential / best:.2f}x (inventory order), "
        f"{sequential / measured['interleaved']:.2f}x (interleaved); "
        f"ideal speed-up {sequential_ideal / ideal:.2f}x"
    )


if __name__ == "__main__":
    main()
