"""``labsmith probe``: collect a host snapshot over SSH (or read a saved one) and judge it."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from labsmith.checks.probe_report import ProbeReport, judge
from labsmith.cli.options import host_inventory_option, make_console
from labsmith.errors import UnknownHostError
from labsmith.facts.collect import CollectResult, collect_snapshots
from labsmith.facts.parse_topology import GpuTopology
from labsmith.facts.snapshot import HostFacts, load_snapshot
from labsmith.facts.ssh import HostUnreachableError
from labsmith.facts.targets import SshTarget, targets_from_inventory
from labsmith.inventory.lab import PhysicalHost, build_lab
from labsmith.inventory.sources import ResolvedInventory, load_inventory


@dataclass(frozen=True)
class _Judged:
    report: ProbeReport
    facts: HostFacts

    def as_dict(self) -> dict[str, Any]:
        """The report, and the GPU topology (``nvidia-smi topo -m``) for placing vLLM's
        tensor-parallel GPUs; [] where the snapshot has none."""
        topology = self.facts.gpu_topology or ()
        return {**self.report.as_dict(), "gpu_topology": [gpu.as_dict() for gpu in topology]}


STATUS_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "unknown": "dim"}
EXIT_FAILED, EXIT_UNREACHABLE = 1, 3


@click.command()
@click.argument("hosts", nargs=-1)
@click.option(
    "--snapshot", type=click.Path(path_type=Path), help="Judge a saved snapshot directory."
)
@host_inventory_option
@click.option("--host", "inventory_host", help="With --snapshot: the inventory host it belongs to.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("snapshots"),
    show_default=True,
    help="Where probed snapshots are written, one directory per host.",
)
@click.option(
    "--known-hosts",
    type=click.Path(path_type=Path),
    help="known_hosts file to verify host keys with (default: ~/.ssh/known_hosts).",
)
@click.option(
    "--accept-new-host-key",
    is_flag=True,
    help="Trust and record the key of a host seen for the first time "
    "(a changed key is still refused).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def probe(
    hosts: tuple[str, ...],
    snapshot: Path | None,
    inventory: Path | None,
    vault_password_file: Path | None,
    inventory_host: str | None,
    out: Path,
    known_hosts: Path | None,
    accept_new_host_key: bool,
    as_json: bool,
) -> None:
    """Check whether hosts can do what the inventory asks: IOMMU, GPU groups, drivers.

    HOSTS are inventory host names (with -i) or SSH addresses ([user@]host[:port]); the
    bundled example lab is never used. Only read-only commands run on them, in one SSH
    connection per host, all hosts at once.

    Exit status: 0 nothing fails, 1 a check fails, 2 unusable input, 3 a host cannot be reached.
    """
    if snapshot is not None and hosts:
        raise click.UsageError("give either HOSTS to probe or --snapshot DIR, not both")
    if snapshot is None and not hosts:
        raise click.UsageError("name the HOSTS to probe, or judge a saved one with --snapshot DIR")
    if inventory_host is not None and inventory is None:
        raise click.UsageError(
            f"--host {inventory_host} names a host of an inventory: pass -i DIR with it"
        )
    # Loaded once: the hosts' connection variables and their declared hardware.
    resolved = load_inventory(inventory, vault_password_file) if inventory else None
    physical = build_lab(resolved)[0].hosts if resolved else {}
    if snapshot is not None:
        host = _inventory_host(physical, inventory_host) if inventory_host else None
        facts = load_snapshot(snapshot)
        reports = [_Judged(judge(facts, inventory_host or snapshot.name, host), facts)]
        unreachable: dict[str, HostUnreachableError] = {}
    else:
        reports, unreachable = _probe_hosts(
            hosts, resolved, physical, out, known_hosts, accept_new_host_key, as_json
        )
    _print(reports, unreachable, as_json)
    if unreachable:
        raise click.exceptions.Exit(EXIT_UNREACHABLE)
    if any(judged.report.failed for judged in reports):
        raise click.exceptions.Exit(EXIT_FAILED)


def _inventory_host(physical: dict[str, PhysicalHost], name: str) -> PhysicalHost:
    if name not in physical:
        known = ", ".join(sorted(physical)) or "none"
        raise UnknownHostError(
            f"{name} is not a physical host of the inventory (its hosts: {known})"
        )
    return physical[name]


def _targets(hosts: tuple[str, ...], inventory: ResolvedInventory | None) -> list[SshTarget]:
    if inventory is not None:
        return targets_from_inventory(inventory, list(hosts))
    return [_address_target(host) for host in hosts]


def _address_target(text: str) -> SshTarget:
    user, _, rest = text.rpartition("@")
    address, _, port = rest.partition(":")
    if port and not port.isdigit():
        raise UnknownHostError(f"{text}: the port after ':' must be a number")
    return SshTarget(name=address, address=address, port=int(port or 22), user=user or None)


def _probe_hosts(
    hosts: tuple[str, ...],
    inventory: ResolvedInventory | None,
    physical: dict[str, PhysicalHost],
    out: Path,
    known_hosts: Path | None,
    accept_new_host_key: bool,
    quiet: bool,
) -> tuple[list[_Judged], dict[str, HostUnreachableError]]:
    targets = _targets(hosts, inventory)

    def progress(target: SshTarget, outcome: CollectResult | HostUnreachableError) -> None:
        if not quiet:
            done = (
                "unreachable"
                if isinstance(outcome, HostUnreachableError)
                else f"{outcome.seconds:.1f}s"
            )
            click.echo(f"probed {target.name}: {done}", err=True)

    outcomes = collect_snapshots(
        targets,
        out,
        known_hosts=known_hosts,
        accept_new_host_key=accept_new_host_key,
        on_done=progress,
    )
    reports = []
    unreachable = {}
    for target in targets:
        outcome = outcomes[target.name]
        if isinstance(outcome, HostUnreachableError):
            unreachable[target.name] = outcome
            continue
        facts: HostFacts = load_snapshot(outcome.destination)
        reports.append(_Judged(judge(facts, target.name, physical.get(target.name)), facts))
    return reports, unreachable


def _print(
    reports: list[_Judged], unreachable: dict[str, HostUnreachableError], as_json: bool
) -> None:
    if as_json:
        document = {
            "hosts": [report.as_dict() for report in reports],
            "unreachable": {name: str(error) for name, error in unreachable.items()},
        }
        # One host judged from a snapshot: its report is the document, as DESIGN.md shows it.
        click.echo(
            json.dumps(
                reports[0].as_dict() if len(reports) == 1 and not unreachable else document,
                indent=2,
            )
        )
        return
    console = make_console()
    for judged in reports:
        console.print(_checks_table(judged.report))
        if judged.report.gpus:
            console.print(_gpus_table(judged.report))
        if judged.facts.gpu_topology:
            console.print(_topology_table(judged.report.host, judged.facts.gpu_topology))
    for name, error in unreachable.items():
        console.print(f"[bold red]unreachable[/] {escape(name)}: ", end="")
        console.print(str(error), markup=False)


def _status(status: str) -> str:
    return f"[{STATUS_STYLE[status]}]{status}[/]"


def _checks_table(report: ProbeReport) -> Table:
    # Host names, paths and everything read from a snapshot are the probed host's text:
    # escaped, so that "[link=...]" or "[/]" in it is shown, never interpreted.
    table = Table(title=escape(f"{report.host} ({report.snapshot})"), title_justify="left")
    for column in ("check", "status", "what was seen / how to fix"):
        table.add_column(column)
    for check in report.checks:
        table.add_row(escape(check.id), _status(check.status), escape(check.message))
    return table


def _gpus_table(report: ProbeReport) -> Table:
    table = Table(title=escape(f"{report.host}: GPUs"), title_justify="left")
    for column in ("address", "vendor:device", "IOMMU group", "driver", "passthrough", "reasons"):
        table.add_column(column)
    for gpu in report.gpus:
        reasons = "\n".join(
            f"{_status(r.status)} {escape(r.message)}" for r in gpu.reasons if r.status != "pass"
        )
        table.add_row(
            escape(gpu.address),
            escape(gpu.vendor_device or "?"),
            "-" if gpu.iommu_group is None else str(gpu.iommu_group),
            escape(gpu.driver or "-"),
            _status(gpu.passthrough),
            reasons or "ready",
        )
    return table


def _topology_table(host: str, topology: tuple[GpuTopology, ...]) -> Table:
    """``nvidia-smi topo -m``'s GPU matrix with each GPU's NUMA node and CPUs."""
    table = Table(title=escape(f"{host}: GPU topology"), title_justify="left")
    for column in ("GPU", *(f"GPU{gpu.index}" for gpu in topology), "NUMA", "CPU affinity"):
        table.add_column(column)
    for gpu in topology:
        table.add_row(
            f"GPU{gpu.index}",
            *(escape(gpu.links.get(other.index, "?")) for other in topology),
            "-" if gpu.numa_node is None else str(gpu.numa_node),
            escape(gpu.cpu_affinity or "-"),
        )
    return table
