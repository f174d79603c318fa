"""``labsmith validate``: check an inventory offline and summarise the lab."""

import json
from pathlib import Path

import click

from labsmith.checks.lab import check_lab
from labsmith.cli.options import inventory_option, json_option, make_console, resolve_inventory
from labsmith.cli.render import print_findings, print_summary, redact_json, report_json
from labsmith.errors import UnusableInventoryError


@click.command()
@inventory_option
@json_option
def validate(inventory: Path | None, vault_password_file: Path | None, as_json: bool) -> None:
    """Check the inventory without touching any host.

    Exit status: 0 valid (warnings allowed), 1 findings, 2 the inventory cannot be read.
    """
    source = resolve_inventory(inventory)
    try:
        report = check_lab(source, vault_password_file)
    except UnusableInventoryError as error:
        if as_json:
            document = {"inventory": str(source), "valid": False, "error": str(error)}
            click.echo(json.dumps(redact_json(document)))
        raise
    if as_json:
        click.echo(json.dumps(report_json(source, report), indent=2))
    else:
        console = make_console()
        print_summary(console, report)
        print_findings(console, source, report)
    if not report.valid:
        raise click.exceptions.Exit(1)
