"""The ``labsmith`` command: a click group with one thin module per subcommand.

This package is the only place that parses arguments, prints for people and chooses exit
codes. Expected failures (``LabsmithError``) become one line on stderr and their exit code;
anything else is a bug and keeps its traceback.

Subcommands are imported only when they run: their modules pull in rich, pydantic, proxmoxer
or ansible-runner, and ``labsmith --help`` or ``labsmith validate`` should not pay for the
imports of every other command.
"""

import importlib
from typing import Any, NamedTuple

import click

from labsmith import __version__
from labsmith.errors import LabsmithError


class LazyCommand(NamedTuple):
    """Where a subcommand lives (``module:attribute``) and the summary ``--help`` lists."""

    import_path: str
    summary: str


# The summaries are copies of each command's first sentence, so that listing the commands
# imports none of them; tests/unit/test_cli_startup.py fails when one drifts from its command.
COMMANDS: dict[str, LazyCommand] = {
    "validate": LazyCommand(
        "labsmith.cli.validate:validate",
        "Check the inventory without touching any host.",
    ),
    "graph": LazyCommand(
        "labsmith.cli.graph:graph",
        "Print a Mermaid flowchart of the lab: hosts, GPUs, guests, bridges/VLANs, storage.",
    ),
    "probe": LazyCommand(
        "labsmith.cli.probe:probe",
        "Check whether hosts can do what the inventory asks: IOMMU, GPU groups, drivers.",
    ),
    "fit": LazyCommand(
        "labsmith.cli.fit:fit",
        "Place models on GPUs the way Ollama or vLLM would and say whether they fit.",
    ),
    "sim": LazyCommand(
        "labsmith.cli.sim:sim",
        "Simulate a Proxmox VE cluster's API (to try a plan before touching a real one).",
    ),
    "plan": LazyCommand(
        "labsmith.cli.guests:plan",
        "Show what apply would change on the Proxmox cluster, changing nothing.",
    ),
    "apply": LazyCommand(
        "labsmith.cli.guests:apply",
        "Create, update and start the inventory's guests on the Proxmox cluster.",
    ),
    "build": LazyCommand(
        "labsmith.cli.build:build",
        "Build the lab's physical hosts: validate the inventory, then run the host playbook "
        "(IOMMU on, GPUs bound to vfio-pci) with a progress display instead of raw Ansible "
        "output.",
    ),
}


def load_command(name: str) -> click.Command:
    """Import the subcommand ``name`` of the lazy table."""
    module_name, _, attribute = COMMANDS[name].import_path.partition(":")
    command = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{COMMANDS[name].import_path} is not a click command")
    return command


class LabsmithGroup(click.Group):
    """The top-level group: lazy subcommands, and expected errors as one red line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in COMMANDS:
            command = load_command(cmd_name)
            self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's own listing calls get_command for every name, which would import them all.
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, self._short_help(ctx, name, limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def _short_help(self, ctx: click.Context, name: str, limit: int) -> str:
        loaded = super().get_command(ctx, name)
        if loaded is not None:
            return loaded.get_short_help_str(limit)
        # Shortened by click's own rule, as it would shorten the command's help.
        return click.Command(name, help=COMMANDS[name].summary).get_short_help_str(limit)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LabsmithError as error:
            click.secho(f"error: {error}", fg="red", err=True)
            ctx.exit(error.exit_code)


@click.group(cls=LabsmithGroup)
@click.version_option(__version__, prog_name="labsmith")
def main() -> None:
    """Build, rebuild and validate local-AI servers from one Ansible inventory."""
