"""Secrets handed to labsmith the documented ways (the environment, a password file) never
come back out: not in what plan, apply and probe print, not in any file they write. The
build's run directory has its own canary test (test_build_secrets.py)."""

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from labsmith.cli import main
from labsmith.sim.seed import state_from_inventory
from tests.conftest import INVENTORIES
from tests.integration.sshd import LoopbackSshd
from tests.integration.test_probe_cli import inventory_for
from tests.simsupport.running import ROOT_PASSWORD, ROOT_SECRET, ROOT_TOKEN, LiveSim, live_sim

pytestmark = pytest.mark.integration

EXAMPLE = INVENTORIES / "example"
# Unused by these commands, but exported as the README suggests: must not leak either.
UNUSED_SECRET = "canary-7d1c4e2a-token-secret"
CANARIES = (ROOT_SECRET, ROOT_PASSWORD, UNUSED_SECRET)
ENVIRONMENT = {
    "LABSMITH_PVE_TOKEN": f"{ROOT_TOKEN}={ROOT_SECRET}",
    "LABSMITH_PVE_ROOT_PASSWORD": ROOT_PASSWORD,
    "LABSMITH_PVE_TOKEN_SECRET": UNUSED_SECRET,
}


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[LiveSim]:
    with live_sim(tmp_path / "sim", state=state_from_inventory(EXAMPLE)) as running:
        yield running


def run(*arguments: str) -> Result:
    return CliRunner().invoke(main, list(arguments), env=ENVIRONMENT)


def assert_no_canary(text: str, where: str) -> None:
    for canary in CANARIES:
        assert canary not in text, f"a secret appears in {where}"


def test_plan_and_apply_print_no_secret(sim: LiveSim) -> None:
    target = ["-i", str(EXAMPLE), "--pve-url", f"https://127.0.0.1:{sim.port}",
              "--pve-ca", str(sim.ca)]  # fmt: skip
    for arguments in (["plan"], ["plan", "--json"], ["apply", "--yes"], ["apply", "--json"]):
        result = run(*arguments, *target)
        assert result.exit_code == 0, result.output
        assert_no_canary(result.stdout + result.stderr, " ".join(arguments))
    # The root@pam password was used (the containers' bind mounts need it), not just ignored.
    assert "mp0" in sim.client().nodes("pve1").lxc(120).config.get()


def test_a_failed_login_prints_no_secret(sim: LiveSim) -> None:
    target = ["-i", str(EXAMPLE), "--pve-url", f"https://127.0.0.1:{sim.port}",
              "--pve-ca", str(sim.ca)]  # fmt: skip
    wrong = {**ENVIRONMENT, "LABSMITH_PVE_TOKEN": f"{ROOT_TOKEN}={UNUSED_SECRET}"}
    result = CliRunner().invoke(main, ["plan", *target], env=wrong)
    assert result.exit_code == 3, result.output
    assert_no_canary(result.stdout + result.stderr, "a refused plan")


def test_probe_writes_and_prints_no_secret(
    sshd: LoopbackSshd, known_hosts: Path, tmp_path: Path
) -> None:
    out = tmp_path / "snapshots"
    result = run("probe", "-i", str(inventory_for(sshd, tmp_path / "lab")), "testbox",
                 "--known-hosts", str(known_hosts), "--out", str(out), "--json")  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    assert_no_canary(result.stdout + result.stderr, "probe's output")
    written = [p for p in out.rglob("*") if p.is_file()]
    assert written
    for path in written:
        assert_no_canary(path.read_text(errors="replace"), str(path))
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for directory in [p for p in out.rglob("*") if p.is_dir()]:
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
