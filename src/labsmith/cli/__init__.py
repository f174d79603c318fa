"""The ``labsmith`` command: a click group with one thin module per subcommand.

This package is the only place that parses arguments, prints for people and chooses exit
codes. Expected failures (``LabsmithError``) become one line on stderr and their exit code;
anything else is a bug and keeps its traceback.
"""

from typing import Any

import click

from labsmith import __version__
from labsmith.cli.build import build
from labsmith.cli.fit import fit
from labsmith.cli.graph import graph
from labsmith.cli.guests import apply, plan
from labsmith.cli.probe import probe
from labsmith.cli.sim import sim
from labsmith.cli.validate import validate
from labsmith.errors import LabsmithError


class LabsmithGroup(click.Group):
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


main.add_command(validate)
main.add_command(graph)
main.add_command(probe)
main.add_command(fit)
main.add_command(sim)
main.add_command(plan)
main.add_command(apply)
main.add_command(build)
