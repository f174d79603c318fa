"""``labsmith plan``/``apply``'s engine against the simulator over verified HTTPS: the example
lab from empty, idempotence, exact updates, faults, and GPUs for a token without root."""

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from labsmith.orchestrate.guests import GuestLab, load_guest_lab
from labsmith.proxmox.apply import ApplySettings, Interruption, Progress, converge
from labsmith.proxmox.client import ProxmoxClient, RetryPolicy
from labsmith.proxmox.endpoints import Overrides
from labsmith.proxmox.errors import NodeUnreachableError, ProxmoxApiError, ServerError
from labsmith.proxmox.plan import Plan
from labsmith.sim.api import Durations
from labsmith.sim.faults import FaultPlan
from labsmith.sim.seed import state_from_inventory
from labsmith.sim.tasks import Task
from tests.conftest import INVENTORIES
from tests.integration.test_sim_guests import CT_OPTIONS
from tests.integration.test_sim_wire import limited_token
from tests.simsupport.running import (
    ROOT_PASSWORD,
    ROOT_SECRET,
    ROOT_TOKEN,
    LiveSim,
    live_sim,
    wait_task,
)

pytestmark = pytest.mark.integration

EXAMPLE = INVENTORIES / "example"
FAST = ApplySettings(poll_interval=0.02, task_timeout=30)
NO_WAIT = RetryPolicy(attempts=8, sleep=lambda seconds: None)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[LiveSim]:
    with live_sim(tmp_path, state=state_from_inventory(EXAMPLE)) as running:
        yield running


def guest_lab(
    sim: LiveSim,
    inventory: Path = EXAMPLE,
    token: str = f"{ROOT_TOKEN}={ROOT_SECRET}",
    limit: tuple[str, ...] = (),
) -> GuestLab:
    overrides = Overrides(url=f"https://127.0.0.1:{sim.port}", token=token, ca_file=sim.ca)
    return load_guest_lab(inventory, overrides, limit=limit, retry=NO_WAIT)


def apply_all(lab: GuestLab, rounds: int = 3) -> Any:
    return converge(lab.clients, lab.plan(), lab.plan, rounds=rounds, settings=FAST)


class WriteCounter:
    """Counts every write the client sends, answered or not."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, str]] = []
        original = ProxmoxClient.write

        def counting(client: ProxmoxClient, verb: str, path: str, **params: Any) -> Any:
            self.calls.append((verb, path))
            return original(client, verb, path, **params)

        monkeypatch.setattr(ProxmoxClient, "write", counting)


def test_the_example_lab_applies_from_empty_and_a_second_apply_writes_nothing(
    sim: LiveSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = guest_lab(sim)
    result = apply_all(lab)
    assert result.failed == []
    state = sim.simulator.state
    assert sorted(state.guests) == [110, 120, 200, 201, 210, 220]
    assert all(guest.status == "running" for guest in state.guests.values())
    vm = state.guests[110].config
    assert vm["hostpci0"] == "mapping=rtx5090,pcie=1"
    assert vm["scsi1"].startswith("tank:vm-110-disk-") and vm["scsi1"].endswith("size=1T")
    assert vm["ipconfig0"] == "ip=10.0.10.20/24,gw=10.0.10.1"
    assert "managed-by: labsmith" in vm["description"]
    assert state.mappings["rtx5090"].map == ["id=10de:2b85,node=pve1,path=0000:01:00,iommugroup=12"]
    ct = state.guests[200].config
    assert ct["net0"].startswith("name=eth0,bridge=vmbr0,") and "tag=30" in ct["net0"]
    assert ct["rootfs"].startswith("fast:subvol-200-disk-0") and "size=64G" in ct["rootfs"]

    counter = WriteCounter(monkeypatch)
    generation = state.generation
    again = lab.plan()
    assert {action.action for action in again.actions} == {"noop"}
    assert not again.writes
    assert converge(lab.clients, again, lab.plan, settings=FAST).outcomes == []
    assert counter.calls == [] and state.generation == generation


def test_a_changed_inventory_gives_exactly_the_matching_updates(
    sim: LiveSim, tmp_path: Path
) -> None:
    apply_all(guest_lab(sim))
    changed = tmp_path / "lab"
    shutil.copytree(EXAMPLE, changed)
    postgres_file = changed / "host_vars" / "postgres.yml"
    postgres = yaml.safe_load(postgres_file.read_text())
    guest = postgres["labsmith_guest"]
    guest["cores"] = 6
    guest["memory"] = "12G"
    guest["nics"].append({"bridge": "vmbr0", "vlan": "trust", "ip": "10.0.10.21/24"})
    postgres_file.write_text(yaml.safe_dump(postgres))
    extra = yaml.safe_load((changed / "host_vars" / "redis.yml").read_text())
    extra["ansible_host"] = "10.0.30.25"
    extra["labsmith_guest"].update(vmid=202, description="Valkey for the agents")
    extra["labsmith_guest"]["nics"][0]["ip"] = "10.0.30.25/24"
    (changed / "host_vars" / "valkey.yml").write_text(yaml.safe_dump(extra))
    hosts = (changed / "hosts.yml").read_text()
    (changed / "hosts.yml").write_text(hosts.replace("redis:\n", "redis:\n            valkey:\n"))

    lab = guest_lab(sim, changed)
    plan = lab.plan()
    by_guest = {action.guest: action for action in plan.actions}
    assert {name for name, action in by_guest.items() if action.action != "noop"} == {
        "postgres",
        "valkey",
    }
    update = by_guest["postgres"]
    assert update.action == "update"
    assert set(update.changes) == {"cores", "memory", "net1"}
    assert (update.changes["cores"].old, update.changes["cores"].new) == (4, 6)
    assert update.changes["memory"].new == 12288
    assert update.changes["net1"].old is None
    assert update.send["net1"] == "name=eth1,bridge=vmbr0,ip=10.0.10.21/24,gw=10.0.10.1,tag=10"
    assert by_guest["valkey"].action == "create" and by_guest["valkey"].vmid == 202

    assert converge(lab.clients, plan, lab.plan, settings=FAST).failed == []
    config = sim.simulator.state.guests[200].config
    assert (config["cores"], config["memory"]) == (6, 12288)
    assert "tag=10" in config["net1"]
    assert sim.simulator.state.guests[202].status == "running"
    assert not lab.plan().writes


def test_under_faults_repeated_applies_converge_without_duplicates_or_losses(
    tmp_path: Path,
) -> None:
    faults = FaultPlan(
        seed=7, error_rate=0.1, drop_rate=0.1, task_failures={"*": "got unlucky"},
        task_failure_rate=0.15,
    )  # fmt: skip
    state = state_from_inventory(EXAMPLE)
    with live_sim(tmp_path, state=state, faults=faults) as faulty:
        lab = guest_lab(faulty)
        seen: set[int] = set()
        for _ in range(8):
            try:
                plan = lab.plan()
            except ProxmoxApiError:  # an observation can fail under faults too
                continue
            if not plan.writes:
                break
            converge(lab.clients, plan, lab.plan, settings=FAST)
            seen |= set(faulty.simulator.state.guests)
            # Never more guests than the inventory declares, and none lost once made.
            assert set(faulty.simulator.state.guests) <= {110, 120, 200, 201, 210, 220}
        faulty.simulator.faults.plan.error_rate = 0.0
        faulty.simulator.faults.plan.drop_rate = 0.0
        faulty.simulator.faults.plan.task_failure_rate = 0.0
        faulty.simulator.faults.plan.task_failures = {}
        final = lab.plan()
        assert not final.writes, [a.to_json() for a in final.actions if a.writes]
        assert sorted(faulty.simulator.state.guests) == [110, 120, 200, 201, 210, 220]
        names = [g.config.get("name") or g.config.get("hostname") for g in state.guests.values()]
        assert len(names) == len(set(names))


def test_a_token_without_root_rights_gets_the_gpu_through_a_mapping(sim: LiveSim) -> None:
    api = sim.client()
    token, secret = limited_token(api, "/", "PVEAdmin")
    api.access.acl.put(path="/mapping/pci", roles="PVEMappingAdmin", users="automation@pve")
    api.access.acl.put(path="/mapping/pci", roles="PVEMappingAdmin", tokens=token)
    lab = guest_lab(sim, token=f"{token}={secret}", limit=("ai-private",))
    plan = lab.plan()
    assert [m.action for m in plan.mapping_actions] == ["create"]
    assert [a.action for a in plan.actions] == ["create"]
    assert apply_all(lab).failed == []
    vm = sim.simulator.state.guests[110]
    assert vm.status == "running" and vm.config["hostpci0"] == "mapping=rtx5090,pcie=1"


def test_a_raw_host_device_would_need_root_which_is_why_mappings_are_used(sim: LiveSim) -> None:
    """The contrast: the same token may not pass the card by address (PVE: root@pam only)."""
    api = sim.client()
    token, secret = limited_token(api, "/", "PVEAdmin")
    lab = guest_lab(sim, token=f"{token}={secret}", limit=("ai-private",))
    client = next(iter(lab.clients.values()))
    options = dict(lab.desired.guests[0].options, hostpci0="0000:01:00,pcie=1")
    with pytest.raises(ServerError, match="only root can set 'hostpci0'"):
        client.create_guest("pve1", "qemu", 110, options)


def test_a_slow_task_is_awaited_and_a_stopped_guest_is_started(tmp_path: Path) -> None:
    durations = Durations(default=0.05, by_type={"vzcreate": 0.4})
    with live_sim(tmp_path, state=state_from_inventory(EXAMPLE), durations=durations) as slow:
        lab = guest_lab(slow, limit=("redis",))
        assert apply_all(lab).failed == []
        redis = slow.simulator.state.guests[201]
        redis.status = "stopped"
        plan = lab.plan()
        assert [a.action for a in plan.actions] == ["start"]
        assert apply_all(lab).failed == []
        assert redis.status == "running"


def test_with_root_pams_password_bind_mounts_and_gpu_devices_are_set(sim: LiveSim) -> None:
    """PVE refuses these to every API token; labsmith sets them in a root@pam session."""
    overrides = Overrides(
        url=f"https://127.0.0.1:{sim.port}",
        token=f"{ROOT_TOKEN}={ROOT_SECRET}",
        ca_file=sim.ca,
        root_password=ROOT_PASSWORD,
    )
    lab = load_guest_lab(EXAMPLE, overrides, limit=("ai-public",), retry=NO_WAIT)
    plan = lab.plan()
    [action] = plan.actions
    assert action.action == "create" and action.notes == ()
    assert set(action.root_send) == {"mp0", "dev0", "dev1", "dev2", "dev3", "dev4"}
    result = converge(lab.clients, plan, lab.plan, settings=FAST, root_clients=lab.root_clients)
    assert result.failed == []
    config = sim.simulator.state.guests[120].config
    assert config["mp0"] == "/tank/models/public,mp=/srv/models"
    assert config["dev0"] == "/dev/nvidia0" and config["dev1"] == "/dev/nvidiactl"
    assert not lab.plan().writes


def test_a_wrong_root_password_fails_the_root_settings_only(sim: LiveSim) -> None:
    overrides = Overrides(
        url=f"https://127.0.0.1:{sim.port}",
        token=f"{ROOT_TOKEN}={ROOT_SECRET}",
        ca_file=sim.ca,
        root_password="not-it",
    )
    lab = load_guest_lab(EXAMPLE, overrides, limit=("backup",), retry=NO_WAIT)
    result = converge(
        lab.clients, lab.plan(), lab.plan, settings=FAST, root_clients=lab.root_clients
    )
    [failure] = result.failed
    assert "root@pam could not log in" in failure.detail
    assert 220 in sim.simulator.state.guests  # the token's part is done


def test_a_create_whose_answer_was_lost_is_not_repeated_but_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The create happened but its answer never came: the next round waits for the task's
    lock to clear, sees the guest, and only starts it."""
    durations = Durations(default=0.05, by_type={"vzcreate": 0.3})
    with live_sim(tmp_path, state=state_from_inventory(EXAMPLE), durations=durations) as slow:
        lab = guest_lab(slow, limit=("redis",))
        original = ProxmoxClient.create_guest
        creates: list[int] = []

        def answer_lost(
            client: ProxmoxClient, node: str, kind: str, vmid: int, options: Any
        ) -> str:
            creates.append(vmid)
            original(client, node, kind, vmid, options)
            raise NodeUnreachableError("no answer (connection reset)", method="POST")

        monkeypatch.setattr(ProxmoxClient, "create_guest", answer_lost)
        result = apply_all(lab)
        assert creates == [201]
        assert result.rounds == 2 and result.failed == []
        assert [o.action for o in result.outcomes] == ["create", "start"]
        assert slow.simulator.state.guests[201].status == "running"


def tasks_of(sim: LiveSim, *types: str) -> list[Task]:
    return [task for task in sim.simulator.tasks.tasks.values() if task.task_type in types]


SLOW_TASK = ApplySettings(poll_interval=0.02, task_timeout=0.8)


def test_a_start_that_outlives_the_task_timeout_is_awaited_next_round_not_sent_again(
    tmp_path: Path,
) -> None:
    durations = Durations(default=0.05, by_type={"qmstart": 1.2, "vzstart": 1.2})
    with live_sim(tmp_path, state=state_from_inventory(EXAMPLE), durations=durations) as slow:
        lab = guest_lab(slow)
        result = converge(lab.clients, lab.plan(), lab.plan, settings=SLOW_TASK)
        starts = tasks_of(slow, "qmstart", "vzstart")
        assert sorted(int(task.task_id) for task in starts) == [110, 120, 200, 201, 210, 220]
        assert result.failed == [] and result.rounds == 2
        assert all(guest.status == "running" for guest in slow.simulator.state.guests.values())


def test_a_task_that_outlives_every_wait_is_reported_by_upid_and_never_sent_again(
    tmp_path: Path,
) -> None:
    durations = Durations(default=0.05, by_type={"vzstart": 4.0})
    with live_sim(tmp_path, state=state_from_inventory(EXAMPLE), durations=durations) as slow:
        lab = guest_lab(slow, limit=("redis", "postgres"))
        settings = ApplySettings(poll_interval=0.02, task_timeout=0.4)
        result = converge(lab.clients, lab.plan(), lab.plan, settings=settings)
        starts = tasks_of(slow, "vzstart")
        assert sorted(task.task_id for task in starts) == ["200", "201"]
        assert sorted((o.subject, o.running) for o in result.failed) == sorted(
            ("postgres" if task.task_id == "200" else "redis", task.upid) for task in starts
        )
        assert all("still running on pve1" in o.detail for o in result.failed)
        assert result.still_running == result.failed


def test_a_start_whose_answer_was_lost_is_found_among_the_nodes_tasks_and_awaited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    durations = Durations(default=0.05, by_type={"vzstart": 0.6})
    with live_sim(tmp_path, state=state_from_inventory(EXAMPLE), durations=durations) as slow:
        lab = guest_lab(slow, limit=("redis",))
        original = ProxmoxClient.power

        def answer_lost(client: ProxmoxClient, node: str, kind: str, vmid: int, what: str) -> str:
            original(client, node, kind, vmid, what)
            raise NodeUnreachableError("no answer (connection reset)", method="POST")

        monkeypatch.setattr(ProxmoxClient, "power", answer_lost)
        result = apply_all(lab)
        assert [task.task_id for task in tasks_of(slow, "vzstart")] == ["201"]
        assert result.failed == []
        assert slow.simulator.state.guests[201].status == "running"


def test_an_update_that_outlives_the_task_timeout_is_not_sent_again(tmp_path: Path) -> None:
    with live_sim(tmp_path, state=state_from_inventory(EXAMPLE)) as sim:
        lab = guest_lab(sim, limit=("ai-private",))
        assert apply_all(lab).failed == []
        vm = sim.simulator.state.guests[110]
        vm.status = "stopped"
        vm.config["cores"] = 2
        sim.simulator.durations.by_type["qmconfig"] = 1.2
        plan = lab.plan()
        assert [a.action for a in plan.actions] == ["update"]
        result = converge(lab.clients, plan, lab.plan, settings=SLOW_TASK)
        assert len(tasks_of(sim, "qmconfig")) == 1
        assert result.failed == [] and vm.config["cores"] == 16 and vm.status == "running"


@pytest.mark.parametrize("slow_task", ["vzstop", "vzdestroy"])
def test_a_stop_or_destroy_that_outlives_the_task_timeout_is_not_sent_again(
    tmp_path: Path, slow_task: str
) -> None:
    with live_sim(tmp_path, state=state_from_inventory(EXAMPLE)) as sim:
        api = sim.client()
        options = {**CT_OPTIONS, "hostname": "scratch", "rootfs": "fast:8", "mp0": "fast:1,mp=/srv"}
        wait_task(api, api.nodes("pve1").lxc.post(vmid=300, **options))
        wait_task(api, api.nodes("pve1").lxc(300).status.start.post())
        sim.simulator.durations.by_type[slow_task] = 1.2
        lab = guest_lab(sim)

        def plan() -> Plan:
            return lab.plan(frozenset({"scratch"}))

        first = Plan([a for a in plan().actions if a.action == "destroy"], [])
        result = converge(lab.clients, first, plan, settings=SLOW_TASK)
        assert len(tasks_of(sim, "vzstop")) == 1 and len(tasks_of(sim, "vzdestroy")) == 1
        assert result.failed == [] and 300 not in sim.simulator.state.guests


def test_an_interruption_sends_nothing_more_and_names_the_tasks_it_stopped_awaiting(
    tmp_path: Path,
) -> None:
    durations = Durations(default=0.05, by_type={"vzcreate": 3.0})
    with live_sim(tmp_path, state=state_from_inventory(EXAMPLE), durations=durations) as slow:
        lab = guest_lab(slow, limit=("redis", "postgres"))
        interruption = Interruption(grace=0.2)

        class InterruptAtFirstStep(Progress):
            def step(self, subject: str, what: str) -> None:
                interruption.request()

        result = converge(
            lab.clients,
            lab.plan(),
            lab.plan,
            settings=ApplySettings(per_node=1, poll_interval=0.02, task_timeout=30),
            progress=InterruptAtFirstStep(),
            interruption=interruption,
        )
        [create] = tasks_of(slow, "vzcreate")
        assert result.interrupted and result.rounds == 1 and result.failed == []
        by_guest = {o.subject: o for o in result.not_done}
        assert by_guest["postgres"].running == create.upid and create.task_id == "200"
        assert "still running (no longer awaited) on pve1" in by_guest["postgres"].detail
        assert by_guest["redis"].running is None
        assert by_guest["redis"].detail == "interrupted before creating lxc 201 on pve1"
        assert result.still_running == [by_guest["postgres"]]
        assert len(slow.simulator.tasks.tasks) == 1
