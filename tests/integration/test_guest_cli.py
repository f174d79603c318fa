"""``labsmith plan`` and ``labsmith apply`` as a user runs them, against the simulator."""

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from labsmith.cli import main
from labsmith.sim.seed import state_from_inventory
from tests.conftest import INVENTORIES
from tests.integration.test_guest_apply import guest_lab
from tests.integration.test_sim_guests import CT_OPTIONS
from tests.simsupport.running import ROOT_SECRET, ROOT_TOKEN, LiveSim, live_sim, wait_task

pytestmark = pytest.mark.integration

EXAMPLE = INVENTORIES / "example"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[LiveSim]:
    with live_sim(tmp_path, state=state_from_inventory(EXAMPLE)) as running:
        yield running


def make_ct(sim: LiveSim, vmid: int, hostname: str) -> None:
    """A container made by hand, outside labsmith."""
    api = sim.client()
    options = {**CT_OPTIONS, "hostname": hostname, "rootfs": "fast:8", "mp0": "fast:1,mp=/srv"}
    wait_task(api, api.nodes("pve1").lxc.post(vmid=vmid, **options))


def target(sim: LiveSim) -> list[str]:
    return [
        "-i",
        str(EXAMPLE),
        "--pve-url",
        f"https://127.0.0.1:{sim.port}",
        "--pve-ca",
        str(sim.ca),
    ]


def run(sim: LiveSim, *arguments: str, stdin: str | None = None) -> Result:
    """The command with the simulator's URL and CA; the token from the environment."""
    return CliRunner().invoke(
        main,
        [*arguments, *target(sim)],
        env={"LABSMITH_PVE_TOKEN": f"{ROOT_TOKEN}={ROOT_SECRET}"},
        input=stdin,
    )


def test_plan_json_has_the_documented_shape(sim: LiveSim) -> None:
    result = run(sim, "plan", "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    actions = {action["guest"]: action for action in plan["actions"]}
    assert set(actions) == {"ai-private", "ai-public", "backup", "monitoring", "postgres", "redis"}
    first = actions["ai-private"]
    assert {"guest", "node", "vmid", "action", "changes", "reason"} <= set(first)
    assert (first["node"], first["vmid"], first["action"]) == ("pve1", 110, "create")
    assert first["changes"]["cores"] == {"old": None, "new": 16}
    assert plan["mappings"][0]["mapping"] == "rtx5090"
    assert ROOT_SECRET not in result.output


def test_apply_asks_shows_progress_and_a_second_run_has_nothing_to_do(sim: LiveSim) -> None:
    declined = run(sim, "apply", stdin="n\n")
    assert declined.exit_code == 1 and "Apply this plan?" in declined.output
    assert sim.simulator.state.guests == {}
    dry = run(sim, "apply", "--dry-run")
    assert dry.exit_code == 0 and "6 to create" in dry.output
    assert sim.simulator.state.guests == {}

    applied = run(sim, "apply", "--yes")
    assert applied.exit_code == 0, applied.output
    assert "[7/7] ok" in applied.output
    assert "7 done, 0 failed" in applied.output
    assert "ai-private: starting qemu 110" in applied.output

    generation = sim.simulator.state.generation
    again = run(sim, "apply", "--yes")
    assert again.exit_code == 0
    assert "Nothing to apply" in again.output and "6 unchanged" in again.output
    assert "pct set 120 --mp0 /tank/models/public,mp=/srv/models" in again.output
    assert sim.simulator.state.generation == generation


def test_a_guest_outside_the_inventory_is_reported_and_destroyed_only_when_named(
    sim: LiveSim,
) -> None:
    make_ct(sim, 300, "scratch")
    plan = json.loads(run(sim, "plan", "--json", "--limit", "redis").stdout)
    assert [a["guest"] for a in plan["actions"]] == ["redis"]  # --limit: no foreign report
    full = json.loads(run(sim, "plan", "--json").stdout)
    foreign = [a for a in full["actions"] if a["vmid"] == 300]
    assert foreign[0]["action"] == "blocked" and foreign[0]["in_inventory"] is False
    assert "--destroy scratch" in foreign[0]["reason"]

    refused = run(sim, "apply", "--yes", "--destroy", "redis")
    assert refused.exit_code == 2 and "is in the inventory" in refused.output
    unknown = run(sim, "apply", "--yes", "--destroy", "nothing-here")
    assert unknown.exit_code == 2 and "no guest nothing-here" in unknown.output
    assert 300 in sim.simulator.state.guests

    destroyed = run(sim, "apply", "--yes", "--destroy", "300")
    assert destroyed.exit_code == 0, destroyed.output
    assert 300 not in sim.simulator.state.guests
    assert len(sim.simulator.state.guests) == 6


def test_a_blocked_guest_makes_plan_exit_1_with_the_reason(sim: LiveSim) -> None:
    make_ct(sim, 200, "legacy-db")
    result = run(sim, "plan")
    assert result.exit_code == 1
    assert "VMID 200 is taken by CT 200 'legacy-db', which labsmith did not create" in (
        result.output
    )


def test_limit_names_an_unknown_guest(sim: LiveSim) -> None:
    result = run(sim, "plan", "--limit", "nope")
    assert result.exit_code == 2
    assert "--limit nope: no such guest" in result.output and "ai-private" in result.output


def test_an_unreachable_api_and_a_wrong_secret_exit_3(sim: LiveSim) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    unreachable = CliRunner().invoke(
        main,
        ["plan", "-i", str(EXAMPLE), "--pve-url", f"https://127.0.0.1:{free_port}"],
        env={"LABSMITH_PVE_TOKEN": f"{ROOT_TOKEN}={ROOT_SECRET}"},
    )
    assert unreachable.exit_code == 3 and "no answer from" in unreachable.output
    wrong = CliRunner().invoke(
        main,
        ["plan", *target(sim), "--pve-token", f"{ROOT_TOKEN}=wrong"],
    )
    assert wrong.exit_code == 3 and "check the API token id and its secret" in wrong.output
    assert "wrong" not in wrong.output.replace("wrong secret", "")


def test_the_engine_and_the_command_agree(sim: LiveSim) -> None:
    engine = guest_lab(sim).plan().to_json()
    command = json.loads(run(sim, "plan", "--json").stdout)
    assert command == engine
