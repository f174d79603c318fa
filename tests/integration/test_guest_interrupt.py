"""Ctrl-C during ``labsmith apply``, sent to the real process as a user's terminal sends it:
one SIGINT stops the writes not yet sent and ends with a truthful summary, a second leaves
at once. The simulator runs in the test process, so its task list is read directly."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from labsmith.proxmox.apply import converge
from labsmith.sim.api import Durations
from labsmith.sim.seed import state_from_inventory
from labsmith.sim.tasks import Task
from tests.conftest import INVENTORIES
from tests.integration.test_guest_apply import FAST, guest_lab
from tests.integration.test_guest_cli import make_ct, target
from tests.simsupport.running import ROOT_SECRET, ROOT_TOKEN, LiveSim, live_sim, wait_task

pytestmark = pytest.mark.integration

EXAMPLE = INVENTORIES / "example"
# Long enough that the signal always lands while the first guest's task runs.
SLOW = 3.0


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str
    seconds_after_signal: float


@pytest.fixture
def slow_sim(tmp_path: Path) -> Iterator[LiveSim]:
    durations = Durations(default=0.05, by_type={"qmcreate": SLOW, "vzcreate": SLOW})
    with live_sim(tmp_path, state=state_from_inventory(EXAMPLE), durations=durations) as sim:
        yield sim


def tasks(sim: LiveSim) -> dict[str, Task]:
    return dict(sim.simulator.tasks.tasks)


def interrupt_apply(
    sim: LiveSim, arguments: list[str], started: Callable[[Task], bool], signals: int = 1
) -> Finished:
    """Run apply, wait until a task ``started`` matches, then send SIGINT ``signals`` times."""
    process = subprocess.Popen(
        [sys.executable, "-m", "labsmith", "apply", "--yes", *arguments, *target(sim)],
        env={**os.environ, "LABSMITH_PVE_TOKEN": f"{ROOT_TOKEN}={ROOT_SECRET}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(started(task) for task in tasks(sim).values()):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "apply never started the expected task"
            time.sleep(0.02)
        # Past the write and into the wait for its task: the signal finds no write half-sent.
        time.sleep(0.5)
        signalled = time.monotonic()
        for _ in range(signals):
            process.send_signal(signal.SIGINT)
            time.sleep(0.3)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return Finished(process.returncode, stdout, stderr, time.monotonic() - signalled)


def test_one_ctrl_c_stops_new_writes_awaits_the_running_task_and_says_what_is_left(
    slow_sim: LiveSim,
) -> None:
    finished = interrupt_apply(
        slow_sim, ["--per-node", "1"], lambda task: task.task_type == "qmcreate"
    )
    at_signal_end = tasks(slow_sim)
    output = finished.stdout + finished.stderr

    assert finished.returncode == 130, output
    # The create in flight is awaited (SLOW s at most), then nothing else is sent.
    assert finished.seconds_after_signal < SLOW + 3, output
    [create] = [task for task in at_signal_end.values() if task.task_type.endswith("create")]
    assert (create.task_id, create.exitstatus) == ("110", "OK")
    assert not [t for t in at_signal_end.values() if t.task_type.endswith("start")]
    state = slow_sim.simulator.state
    assert sorted(state.guests) == [110] and state.guests[110].status == "stopped"

    assert "Interrupted: no further change is sent" in finished.stderr
    assert "Interrupted after" in finished.stdout and "done: mapping rtx5090" in finished.stdout
    assert "not done ai-private: created; then interrupted before starting qemu 110" in output
    for guest in ("ai-public", "backup", "monitoring", "postgres", "redis"):
        assert f"not done {guest}: interrupted before creating" in output, guest
    assert "still running" not in finished.stdout
    assert "Traceback" not in output


def test_a_second_ctrl_c_leaves_at_once_and_names_the_task_still_running(
    slow_sim: LiveSim,
) -> None:
    finished = interrupt_apply(
        slow_sim, ["--per-node", "1"], lambda task: task.task_type == "qmcreate", signals=2
    )
    [create] = [task for task in tasks(slow_sim).values() if task.task_type == "qmcreate"]
    assert finished.returncode == 130, finished.stdout + finished.stderr
    # Leaving did not wait for the create (SLOW s): only the 0.3 s between the signals.
    assert finished.seconds_after_signal < SLOW - 1
    assert "Left at once." in finished.stderr
    assert f"ai-private: {create.upid}" in finished.stderr
    assert len(tasks(slow_sim)) == 1


def test_one_ctrl_c_stops_a_destroy_run_between_its_stop_and_destroy(tmp_path: Path) -> None:
    with live_sim(tmp_path, state=state_from_inventory(EXAMPLE)) as sim:
        for vmid, hostname in ((301, "scratch-a"), (302, "scratch-b"), (303, "scratch-c")):
            make_ct(sim, vmid, hostname)
            api = sim.client()
            wait_task(api, api.nodes("pve1").lxc(vmid).status.start.post())
        lab = guest_lab(sim)
        assert converge(lab.clients, lab.plan(), lab.plan, settings=FAST).failed == []
        sim.simulator.durations.by_type["vzstop"] = SLOW
        before = set(tasks(sim))

        finished = interrupt_apply(
            sim,
            ["--per-node", "1", "--destroy", "scratch-a", "--destroy", "scratch-b",
             "--destroy", "scratch-c"],
            lambda task: task.task_type == "vzstop",
        )  # fmt: skip
        output = finished.stdout + finished.stderr
        assert finished.returncode == 130, output
        new = [tasks(sim)[upid] for upid in set(tasks(sim)) - before]
        assert [(t.task_type, t.task_id, t.exitstatus) for t in new] == [("vzstop", "301", "OK")]
        guests = sim.simulator.state.guests
        assert {301, 302, 303} <= set(guests) and guests[301].status == "stopped"
        assert "not done scratch-a: stopped; then interrupted before destroying lxc 301" in output
        assert "not done scratch-b: interrupted before destroying lxc 302" in output
        assert "not done scratch-c: interrupted before destroying lxc 303" in output
