"""Commands that reach out to hosts or APIs never fall back to the bundled example lab: its
addresses may be somebody's real network. No test here opens a connection."""

from pathlib import Path

import click
from click.testing import CliRunner

from labsmith.cli import main
from labsmith.cli.options import required_inventory_option
from tests.conftest import FIXTURES

VAULTED = FIXTURES / "inventories" / "vaulted"
VAULT_PASSWORD = FIXTURES / "inventories" / "vault-password.txt"
LSPCI = FIXTURES / "host" / "lspci_nnk_gtx1650m_nvidia_bound_hp_laptop.txt"


@click.command()
@required_inventory_option
def reach_out(inventory: Path | None, vault_password_file: Path | None) -> None:
    """A stand-in for plan, apply and build: it only says what it was given."""
    click.echo(f"inventory={inventory} vault={vault_password_file}")


def test_a_command_that_reaches_out_refuses_to_run_without_i() -> None:
    result = CliRunner().invoke(reach_out, [])
    assert result.exit_code == 2
    assert "inventory=" not in result.stdout  # the command body never ran
    assert "pass -i DIR" in result.stderr
    assert "never falls back to the bundled example lab" in result.stderr
    assert "`labsmith validate` without -i shows that example" in result.stderr


def test_with_i_it_runs_on_that_inventory(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        reach_out, ["-i", str(tmp_path), "--vault-password-file", str(VAULT_PASSWORD)]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == f"inventory={tmp_path} vault={VAULT_PASSWORD}\n"


def test_help_needs_no_inventory() -> None:
    result = CliRunner().invoke(reach_out, ["--help"])
    assert result.exit_code == 0
    assert "Required: there is no default lab" in " ".join(result.stdout.split())


def test_probe_host_without_an_inventory_says_to_pass_i(tmp_path: Path) -> None:
    (tmp_path / "lspci").write_text(LSPCI.read_text())
    result = CliRunner().invoke(main, ["probe", "--snapshot", str(tmp_path), "--host", "pve1"])
    assert result.exit_code == 2
    assert "--host pve1 names a host of an inventory: pass -i DIR" in result.stderr
    assert "bundled example lab" not in result.stderr


def test_probe_reads_a_vaulted_inventory_with_its_password(tmp_path: Path) -> None:
    (tmp_path / "lspci").write_text(LSPCI.read_text())
    args = ["probe", "--snapshot", str(tmp_path), "-i", str(VAULTED), "--host", "pve1", "--json"]
    result = CliRunner().invoke(main, [*args, "--vault-password-file", str(VAULT_PASSWORD)])
    assert result.exit_code in (0, 1), result.output
    assert '"host": "pve1"' in result.stdout
    wrong = CliRunner().invoke(main, [*args, "--vault-password-file", str(tmp_path / "none")])
    assert wrong.exit_code == 2
    assert "vault password file not found" in wrong.stderr


def test_plan_apply_and_build_refuse_to_run_without_i() -> None:
    for command in (["plan"], ["apply", "--yes"], ["build", "--hosts", "--yes"]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 2, (command, result.output)
        assert "pass -i DIR" in result.stderr, command
