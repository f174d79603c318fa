"""``labsmith sim serve``'s refusals of bad options, each naming the option and the fix."""

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from labsmith.cli import main
from tests.conftest import INVENTORIES


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--task-seconds", "slow"], "write SECONDS or TYPE=SECONDS"),
        (["--task-seconds", "qmcreate=-1"], "write SECONDS or TYPE=SECONDS"),
        (["--fault-task", "qmstart"], "TYPE=EXITSTATUS"),
        (["--fault-lose-node", "pve2"], "NODE@REQUESTS"),
        (["--fault-error-rate", "2"], "--fault-error-rate"),
        (["--token", "root@pam"], "user@realm!name"),
        (["--pve-version", "7.4"], "'7.4' is not one of"),
    ],
)
def test_bad_options_are_refused_before_serving(options: list[str], expected: str) -> None:
    result = CliRunner().invoke(main, ["sim", "serve", "--port", "0", *options])
    assert result.exit_code == 2
    assert expected in result.output


def test_a_kept_state_is_not_seeded_over(tmp_path: Path) -> None:
    state = tmp_path / "lab.json"
    state.write_text("{}")
    result = CliRunner().invoke(
        main,
        [
            "sim",
            "serve",
            "--port",
            "0",
            "--state",
            str(state),
            "--seed-from",
            str(INVENTORIES / "example"),
        ],
    )
    assert result.exit_code == 2
    assert "already holds a lab; remove the file" in result.output


def test_unusable_schema_and_state_files_are_named(tmp_path: Path) -> None:
    garbage = tmp_path / "apidata.js"
    garbage.write_text("not a schema")
    result = CliRunner().invoke(main, ["sim", "serve", "--port", "0", "--schema", str(garbage)])
    assert result.exit_code == 2
    assert str(garbage) in result.output
    state = tmp_path / "lab.json"
    state.write_text("{")
    result = CliRunner().invoke(main, ["sim", "serve", "--port", "0", "--state", str(state)])
    assert result.exit_code == 2
    assert f"{state}: cannot read the simulator state" in result.output


def test_seeding_from_an_inventory_without_proxmox_hosts_is_refused() -> None:
    result = CliRunner().invoke(
        main, ["sim", "serve", "--port", "0", "--seed-from", str(INVENTORIES / "inference-box")]
    )
    assert result.exit_code == 2
    assert "no host has labsmith_kind: proxmox" in result.output


def test_a_taken_port_is_reported_with_the_fix(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            main, ["sim", "serve", "--port", str(port), "--cert-dir", str(tmp_path)]
        )
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and "--port" in result.output
