"""How a validation report looks: rich tables for people, a stable dict for --json.

Text that comes from an inventory or a probed host goes through ``shown`` before rich sees
it: rich markup in it (``[link=...]``, ``[/]``) is printed as written, and vault ciphertext
pasted as a plain string (a forgotten ``!vault`` tag) is replaced, as inline ``!vault``
values are, by a placeholder. ``redact_json`` does the same for --json documents.
"""

import re
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from labsmith.inventory.lab import Guest, Lab, PhysicalHost
from labsmith.inventory.sources import VAULT_PLACEHOLDER
from labsmith.inventory.validate import Report
from labsmith.units import format_size

_Owner = TypeVar("_Owner", PhysicalHost, Guest)

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow"}
# Ansible's vault envelope: a "$ANSIBLE_VAULT;1.1;AES256" header, then lines of hex (as
# written, or with the newlines escaped as in a repr).
_VAULT_TEXT = re.compile(r"\$ANSIBLE_VAULT;[^\s'\"\\]*(?:(?:\\n|\s)+[0-9a-fA-F]{4,})*")


def redact_vault(text: str) -> str:
    return _VAULT_TEXT.sub(VAULT_PLACEHOLDER, text)


def shown(text: object) -> str:
    """``text`` safe to hand to rich: no ciphertext, markup escaped."""
    return escape(redact_vault(str(text)))


def redact_json(value: Any) -> Any:
    """A JSON document with vault ciphertext replaced in every string, keys included."""
    if isinstance(value, dict):
        return {redact_vault(str(key)): redact_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_json(item) for item in value]
    if isinstance(value, str):
        return redact_vault(value)
    return value


def print_summary(console: Console, report: Report) -> None:
    lab = report.lab
    console.print(_headline(lab))
    if lab.hosts:
        console.print(_hosts_table(lab))
    if lab.guests:
        console.print(_guests_table(lab))
    if any(owner.spec.services for owner in lab.managed()):
        console.print(_services_table(lab))
    if lab.unmanaged:
        console.print(
            f"not managed by labsmith (no labsmith_ variables): {shown(', '.join(lab.unmanaged))}"
        )


def print_findings(console: Console, source: Path, report: Report) -> None:
    for file in report.skipped_vault_files:
        console.print(
            f"[yellow]note[/]: {shown(file)} is vault-encrypted and no vault password was given; "
            "its variables were not checked (pass --vault-password-file)"
        )
    for found in report.findings:
        style = SEVERITY_STYLE[found.severity]
        location = shown(found.location)
        console.print(
            f"[{style}]{found.severity}[/] {location}  [dim]{shown(f'[{found.rule}]')}[/]"
        )
        console.print(f"    {shown(found.message)}")
        console.print(f"    fix: {shown(found.fix)}")
    errors, warnings = len(report.errors), len(report.warnings)
    verdict = "[bold green]valid[/]" if report.valid else "[bold red]invalid[/]"
    console.print(f"{shown(source)}: {verdict} — {errors} error(s), {warnings} warning(s)")


def report_json(source: Path, report: Report) -> dict[str, Any]:
    lab = report.lab
    document = {
        "inventory": str(source),
        "valid": report.valid,
        "errors": len(report.errors),
        "warnings": len(report.warnings),
        "findings": [found.as_dict() for found in report.findings],
        "skipped_vault_files": report.skipped_vault_files,
        "hosts": [_host_json(host, lab) for host in _sorted(lab.hosts)],
        "guests": [_guest_json(guest) for guest in _sorted(lab.guests)],
        "unmanaged": lab.unmanaged,
    }
    return dict(redact_json(document))


def _sorted(items: dict[str, _Owner]) -> list[_Owner]:
    return [items[name] for name in sorted(items)]


def _headline(lab: Lab) -> str:
    gpus = [gpu for host in lab.hosts.values() for gpu in host.spec.gpus]
    vram = format_size(sum(gpu.vram for gpu in gpus)) if gpus else "no VRAM"
    return (
        f"lab: {len(lab.hosts)} physical host(s), {len(lab.guests)} guest(s), "
        f"{len(gpus)} GPU(s) with {vram}"
    )


def _hosts_table(lab: Lab) -> Table:
    table = Table(title="Hosts", title_justify="left")
    for column in ("host", "kind", "CPU", "memory", "GPUs", "storage", "guests"):
        table.add_column(column)
    for host in _sorted(lab.hosts):
        spec = host.spec
        gpus = "\n".join(f"{g.name} {format_size(g.vram)} ({g.mode})" for g in spec.gpus) or "-"
        storage = "\n".join(f"{s.id}: {s.backend} {s.layout}" for s in spec.storage) or "-"
        cpu = f"{spec.cpu.model or spec.cpu.vendor} ({spec.cpu.vcpus} threads)"
        guests = lab.guests_on(host.name)
        used = sum(guest.spec.guest.memory for guest in guests)
        memory = format_size(spec.memory) + (f"\n{format_size(used)} to guests" if guests else "")
        _add_row(table, host.name, spec.kind, cpu, memory, gpus, storage, str(len(guests)))
    return table


def _guests_table(lab: Lab) -> Table:
    table = Table(title="Guests", title_justify="left")
    for column in (
        "guest",
        "node",
        "type",
        "vmid",
        "cores",
        "memory",
        "GPUs",
        "network",
        "services",
    ):
        table.add_column(column)
    for guest in sorted(lab.guests.values(), key=lambda g: (g.spec.guest.node, g.spec.guest.vmid)):
        spec = guest.spec.guest
        network = "\n".join(
            f"{nic.bridge}"
            + (f" vlan {nic.vlan}" if nic.vlan is not None else "")
            + (f" {nic.ip}" if nic.ip is not None else "")
            for nic in spec.nics
        )
        services = ", ".join(service.name for service in guest.spec.services)
        _add_row(
            table,
            guest.name,
            spec.node,
            spec.type,
            str(spec.vmid),
            str(spec.cores),
            format_size(spec.memory),
            ", ".join(spec.gpus) or "-",
            network or "-",
            services or "-",
        )
    return table


def _services_table(lab: Lab) -> Table:
    table = Table(title="Services", title_justify="left")
    for column in ("host", "service", "kind", "port", "GPUs", "models"):
        table.add_column(column)
    for owner in lab.managed():
        for service in owner.spec.services:
            models = "\n".join(
                m.name + (f" {m.quant}" if m.quant else "") + f" ctx {m.context} x{m.parallel}"
                for m in service.models
            )
            # A model server without a gpus list sees every GPU its host or guest has.
            gpus = ", ".join(service.gpus) or ("all visible" if service.models else "-")
            port = str(service.port) if service.port else "-"
            _add_row(table, owner.name, service.name, service.kind, port, gpus, models or "-")
    return table


def _add_row(table: Table, *cells: str) -> None:
    table.add_row(*(shown(cell) for cell in cells))


def _host_json(host: PhysicalHost, lab: Lab) -> dict[str, Any]:
    return {
        "name": host.name,
        "guests": sorted(guest.name for guest in lab.guests_on(host.name)),
        **host.spec.model_dump(mode="json", by_alias=True),
    }


def _guest_json(guest: Guest) -> dict[str, Any]:
    return {"name": guest.name, **guest.spec.model_dump(mode="json", by_alias=True)}
