"""Options several commands share, defined once.

Which inventory a command gets when ``-i`` is left out depends on what the command does:
offline commands (validate, graph, fit) fall back to the bundled example lab, which is safe
to read and is how people first meet labsmith; commands that connect to hosts or to the
Proxmox API (plan, apply, build) require ``-i``, because the example's addresses are
somebody's real LAN and a forgotten option must not send anything there.
"""

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click
from rich.console import Console

from labsmith.resources import example_inventory

F = TypeVar("F", bound=Callable[..., object])

_VAULT_HELP = "Decrypt vault-encrypted vars files (otherwise they are skipped with a warning)."


def inventory_option(function: F) -> F:
    """``-i`` for offline commands: without it, the bundled example lab."""
    return _inventory_options(
        function,
        help_text="Inventory directory (or file) of the lab. Default: the bundled example lab.",
        callback=None,
    )


def required_inventory_option(function: F) -> F:
    """``-i`` for commands that connect to hosts or APIs: refused when left out (exit 2)."""
    return _inventory_options(
        function,
        help_text="Inventory directory (or file) of the lab whose hosts this command connects to. "
        "Required: there is no default lab for commands that reach out.",
        callback=_require_inventory,
    )


def host_inventory_option(function: F) -> F:
    """``-i`` for probe: optional and never defaulted (without it HOSTS are SSH addresses)."""
    return _inventory_options(
        function,
        help_text="Inventory: connection variables for HOSTS, and the hardware to compare with. "
        "Without it, HOSTS are SSH addresses; the example lab is never used.",
        callback=None,
    )


def _inventory_options(
    function: F,
    *,
    help_text: str,
    callback: Callable[[click.Context, click.Parameter, Path | None], Path | None] | None,
) -> F:
    decorated = click.option(
        "-i",
        "--inventory",
        "inventory",
        type=click.Path(path_type=Path),
        default=None,
        callback=callback,
        help=help_text,
    )(function)
    return click.option(
        "--vault-password-file",
        type=click.Path(path_type=Path),
        default=None,
        help=_VAULT_HELP,
    )(decorated)


def _require_inventory(
    context: click.Context, parameter: click.Parameter, value: Path | None
) -> Path | None:
    # --help and shell completion parse without running the command: nothing to refuse then.
    if value is None and not context.resilient_parsing:
        command = context.command_path
        raise click.UsageError(
            f"{command} connects to the lab's hosts or Proxmox API, so it needs the lab: "
            f"pass -i DIR (e.g. {command} -i inventories/mylab). It never falls back to the "
            "bundled example lab, whose addresses may be a real network; "
            "`labsmith validate` without -i shows that example.",
            ctx=context,
        )
    return value


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
    instead of rich's 80 columns. Emoji codes stay off: ``:name:`` in a probed host's text
    (or an inventory's) is printed as written."""
    return Console(
        highlight=False,
        soft_wrap=True,
        emoji=False,
        width=None if sys.stdout.isatty() else 140,
    )
