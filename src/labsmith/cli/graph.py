"""``labsmith graph``: the lab as a Mermaid diagram."""

from pathlib import Path

import click

from labsmith.checks.lab import check_lab
from labsmith.cli.options import inventory_option, resolve_inventory
from labsmith.cli.render import redact_vault
from labsmith.inventory.graph import render_mermaid


@click.command()
@inventory_option
def graph(inventory: Path | None, vault_password_file: Path | None) -> None:
    """Print a Mermaid flowchart of the lab: hosts, GPUs, guests, bridges/VLANs, storage."""
    report = check_lab(resolve_inventory(inventory), vault_password_file)
    if report.errors:
        click.echo(
            f"warning: the inventory has {len(report.errors)} error(s) (see labsmith validate); "
            "hosts and guests with schema errors are left out of the diagram",
            err=True,
        )
    # Labels are the inventory's own text; vault ciphertext pasted into one stays unprinted.
    click.echo(redact_vault(render_mermaid(report.lab)), nl=False)
