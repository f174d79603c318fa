"""Simulator pieces without a network: tasks and UPIDs, faults, state files, seeding."""

import json
from pathlib import Path

import pytest

from labsmith.errors import InvalidInventoryError
from labsmith.sim.faults import (
    Fault,
    FaultInjector,
    FaultPlan,
    FaultSpecError,
    parse_lose_node,
    parse_task_failure,
)
from labsmith.sim.seed import SeedError, state_from_inventory
from labsmith.sim.state import (
    Guest,
    Snapshot,
    StateFileError,
    Volume,
    default_state,
    load_state,
    save_state,
)
from labsmith.sim.tasks import TaskFailedError, TaskRunner, encode_upid
from tests.conftest import INVENTORIES


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_upid_has_pves_layout() -> None:
    upid = encode_upid("pve1", 0x1A2B, 0x3C4D5E, 0x65A9B0C2, "qmcreate", "110", "root@pam!ci")
    assert upid == "UPID:pve1:00001A2B:003C4D5E:65A9B0C2:qmcreate:110:root@pam!ci:"


def test_a_task_lands_its_effect_only_when_its_time_is_up() -> None:
    clock = FakeClock()
    runner = TaskRunner(clock)
    landed: list[str] = []

    def land() -> list[str]:
        landed.append("on")
        return ["started"]

    task = runner.start(
        node="pve1",
        task_type="qmstart",
        task_id="110",
        user="root@pam",
        duration=2.0,
        effect=land,
    )
    runner.advance()
    assert task.running and landed == [] and task.status()["status"] == "running"
    clock.now += 2.0
    runner.advance()
    assert landed == ["on"]
    assert task.status()["exitstatus"] == "OK"
    assert task.log_lines() == ["started", "TASK OK"]


def test_a_failing_effect_and_an_injected_failure_run_the_cleanup() -> None:
    runner = TaskRunner(FakeClock())
    cleaned: list[str] = []

    def broken() -> list[str]:
        raise TaskFailedError("out of space")

    failed = runner.start(
        node="pve1",
        task_type="qmcreate",
        task_id="110",
        user="root@pam",
        duration=0,
        effect=broken,
        cleanup=lambda: cleaned.append("110"),
    )
    injected = runner.start(
        node="pve1",
        task_type="qmcreate",
        task_id="111",
        user="root@pam",
        duration=0,
        effect=lambda: ["never"],
        cleanup=lambda: cleaned.append("111"),
        failure="zfs error",
    )
    assert failed.exitstatus == "out of space"
    assert injected.exitstatus == "zfs error"
    assert injected.log_lines() == ["TASK ERROR: zfs error"]
    assert cleaned == ["110", "111"]


def test_a_lost_nodes_tasks_never_end() -> None:
    clock = FakeClock()
    runner = TaskRunner(clock)
    task = runner.start(
        node="pve2",
        task_type="vzstart",
        task_id="200",
        user="root@pam",
        duration=1.0,
        effect=lambda: [],
    )
    runner.freeze_node("pve2")
    clock.now += 10
    runner.advance()
    assert task.running


def test_fault_streams_are_replayable_and_respect_the_rates() -> None:
    def draw(seed: int) -> list[Fault]:
        injector = FaultInjector(FaultPlan(seed=seed, error_rate=0.2, drop_rate=0.2))
        return [injector.next_request().fault for _ in range(500)]

    first = draw(1)
    assert first == draw(1) and first != draw(2)
    errors = first.count(Fault.ERROR) / len(first)
    assert 0.12 < errors < 0.28
    assert Fault.DROP_BEFORE in first and Fault.DROP_AFTER in first
    quiet = FaultInjector(FaultPlan(seed=1))
    assert {quiet.next_request().fault for _ in range(100)} == {Fault.NONE}


def test_task_failures_by_type_and_rate() -> None:
    always = FaultInjector(FaultPlan(task_failures={"qmstart": "boom"}))
    assert always.task_failure("qmstart") == "boom"
    assert always.task_failure("qmcreate") is None
    some = FaultInjector(FaultPlan(seed=4, task_failures={"*": "boom"}, task_failure_rate=0.5))
    outcomes = {some.task_failure("vzcreate") for _ in range(50)}
    assert outcomes == {"boom", None}


def test_fault_options_are_parsed_with_clear_errors() -> None:
    assert parse_task_failure("qmstart=exit code 1") == ("qmstart", "exit code 1")
    assert parse_lose_node("pve2@40") == ("pve2", 40)
    with pytest.raises(FaultSpecError, match="TYPE=EXITSTATUS"):
        parse_task_failure("qmstart")
    with pytest.raises(FaultSpecError, match="NODE@REQUESTS"):
        parse_lose_node("pve2")
    with pytest.raises(FaultSpecError, match="--fault-error-rate"):
        FaultPlan(error_rate=1.5)


def test_state_round_trips_through_its_file(tmp_path: Path) -> None:
    state = default_state()
    guest = Guest(vmid=110, kind="qemu", node="pve1", config={"cores": 4, "lock": "backup"})
    guest.snapshots["s1"] = Snapshot(name="s1", config={"cores": 2}, snaptime=5)
    guest.pending = {"cores": 8}
    state.guests[110] = guest
    state.storages["local"].on("pve1")["local:backup/x.vma.zst"] = Volume(
        volid="local:backup/x.vma.zst",
        content="backup",
        size=10,
        vmid=110,
        guest_config={"cores": 4},
        subtype="qemu",
    )
    state.nodes["pve1"].pending_interfaces = {}
    path = tmp_path / "lab.json"
    save_state(state, path)
    assert load_state(path) == state


def test_unreadable_state_files_name_the_file_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "lab.json"
    path.write_text("{")
    with pytest.raises(StateFileError, match=r"lab\.json.*remove the file"):
        load_state(path)
    path.write_text(json.dumps({"format": 99}))
    with pytest.raises(StateFileError, match="not a labsmith sim state file"):
        load_state(path)
    path.write_text(json.dumps({"format": 1, "nodes": {}}))
    with pytest.raises(StateFileError, match="damaged"):
        load_state(path)


def test_seeding_from_the_example_lab() -> None:
    state = state_from_inventory(INVENTORIES / "example")
    assert list(state.nodes) == ["pve1"]
    node = state.nodes["pve1"]
    assert node.cores == 24 and node.memory == 128 * 1024**3
    assert node.interfaces["vmbr0"].bridge_vlan_aware
    assert node.interfaces["vmbr0"].bridge_ports == "enp7s0"
    assert [d.address for d in node.pci_devices] == ["0000:01:00.0", "0000:02:00.0"]
    assert state.storages["fast"].type == "zfspool"
    assert state.storages["fast"].total < 2 * 1024**4  # a mirror holds its smaller disk
    assert "vztmpl" in state.storages["local"].content


def test_seeding_refuses_an_inventory_with_errors_or_no_proxmox_host() -> None:
    with pytest.raises(SeedError, match="no host has labsmith_kind: proxmox"):
        state_from_inventory(INVENTORIES / "inference-box")
    with pytest.raises(InvalidInventoryError, match=r"1 error\(s\), first: .*labsmith validate -i"):
        state_from_inventory(INVENTORIES / "broken" / "gpu-assigned-twice")
