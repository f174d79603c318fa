"""Startup: ``labsmith --help`` and ``--version`` import no subcommand and no heavy library."""

import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from labsmith.cli import COMMANDS, load_command, main

# Libraries only some commands need; each costs tens of milliseconds to import.
HEAVY = [
    "ansible",
    "ansible_runner",
    "cryptography",
    "jinja2",
    "paramiko",
    "proxmoxer",
    "pydantic",
    "requests",
    "rich",
    "yaml",
]
COMMAND_MODULES = sorted({entry.import_path.partition(":")[0] for entry in COMMANDS.values()})
IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", re.MULTILINE)


def imported_modules(*args: str) -> tuple[str, set[str]]:
    """stdout of ``python -m labsmith ARGS`` in a fresh interpreter, and every module it
    imported (``-X importtime`` lists each on stderr)."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "labsmith", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout, set(IMPORT_LINE.findall(completed.stderr))


def loaded(modules: set[str], package: str) -> list[str]:
    return sorted(name for name in modules if name == package or name.startswith(f"{package}."))


@pytest.mark.parametrize("args", [["--help"], ["--version"]])
def test_help_and_version_import_no_subcommand_and_no_heavy_library(args: list[str]) -> None:
    _, modules = imported_modules(*args)
    assert "labsmith.cli" in modules
    for package in [*HEAVY, *COMMAND_MODULES, "labsmith.cli.options", "labsmith.cli.render"]:
        assert loaded(modules, package) == [], f"labsmith {args[0]} imported {package}"


def test_help_lists_every_command_with_its_summary() -> None:
    stdout, _ = imported_modules("--help")
    listed = dict(re.findall(r"^  (\S+)\s+(.+)$", stdout.split("Commands:\n")[1], re.MULTILINE))
    assert sorted(listed) == sorted(COMMANDS)
    for name, text in listed.items():
        assert COMMANDS[name].summary.startswith(text.removesuffix("...")), name


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_summary_is_its_commands_own_summary(name: str) -> None:
    command = load_command(name)
    assert command.name == name
    assert COMMANDS[name].summary == command.get_short_help_str(limit=sys.maxsize)


def test_a_command_runs_once_it_is_named() -> None:
    result = CliRunner().invoke(main, ["sim", "--help"])
    assert result.exit_code == 0, result.output
    assert "serve" in result.stdout


def test_an_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["valdiate"])
    assert result.exit_code == 2
    assert "No such command 'valdiate'" in result.stderr
