"""Options several commands share, defined once."""

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click
from rich.console import Console

from labsmith.resources import example_inventory

F = TypeVar("F", bound=Callable[..., object])


def inventory_option(function: F) -> F:
    decorated = click.option(
        "-i",
        "--inventory",
        "inventory",
        type=click.Path(path_type=Path),
        default=None,
        help="Inventory directory (or file) of the lab. Default: the bundled example lab.",
    )(function)
    return click.option(
        "--vault-password-file",
        type=click.Path(path_type=Path),
        default=None,
        help="Decrypt vault-encrypted vars files (otherwise they are skipped with a warning).",
    )(decorated)


def json_option(function: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")(
        function
    )


def resolve_inventory(inventory: Path | None) -> Path:
    """The -i path, or the bundled example lab with a note on stderr."""
    if inventory is not None:
        return inventory
    example = example_inventory()
    click.echo(f"no -i given: using the bundled example lab ({example})", err=True)
    return example


def make_console() -> Console:
    """Rich output for people; piped output (CI logs, `| less`) gets room for the tables
    instead of rich's 80 columns."""
    return Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 140)
