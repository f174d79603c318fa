"""``labsmith build``: make the physical hosts ready (IOMMU, vfio), with progress.

Exit status: 0 built (or nothing to change), 1 a task failed or the inventory is invalid,
2 unusable options, 3 a host is unreachable, 130 interrupted (Ctrl-C).
"""

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from labsmith.ansible.runner import Event, PlaybookRun, owner_only_umask
from labsmith.cli.options import make_console, required_inventory_option, resolve_inventory
from labsmith.orchestrate.build import (
    KEEP_RUNS,
    ProbeOutcome,
    default_run_root,
    make_run_dir,
    prepare,
    probe_stage,
    run_host_stage,
)

EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C


@click.command()
@required_inventory_option
@click.option("--limit", "limit", multiple=True, metavar="HOST", help="Only this physical host.")
@click.option(
    "--hosts",
    "hosts_only",
    is_flag=True,
    help="Only the host half: IOMMU and vfio on the physical hosts (the guests are made "
    "by labsmith apply).",
)
@click.option(
    "--dry-run", is_flag=True, help="Run the playbook in check mode and show what would change."
)
@click.option("--yes", is_flag=True, help="Change the hosts without asking.")
@click.option(
    "--run-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Keep the run (full Ansible output and events) under this directory "
    "(default: ~/.local/state/labsmith/runs).",
)
@click.option(
    "--keep-runs",
    type=click.IntRange(min=1),
    default=KEEP_RUNS,
    show_default=True,
    envvar="LABSMITH_KEEP_RUNS",
    show_envvar=True,
    help="Keep this many runs in the run directory; older ones labsmith made are removed.",
)
def build(
    inventory: Path | None,
    vault_password_file: Path | None,
    limit: tuple[str, ...],
    hosts_only: bool,
    dry_run: bool,
    yes: bool,
    run_dir: Path | None,
    keep_runs: int,
) -> None:
    """Build the lab's physical hosts: validate the inventory, then run the host playbook
    (IOMMU on, GPUs bound to vfio-pci) with a progress display instead of raw Ansible output.

    A second run changes nothing. Hosts reboot only with labsmith_allow_reboot: true.
    Ctrl-C stops the playbook and shows what was done; a second Ctrl-C leaves at once.
    """
    source = resolve_inventory(inventory)
    console = make_console()
    target = prepare(source, limit, vault_password_file)
    mode = "check mode: nothing is changed" if dry_run else "changes the hosts"
    console.print(f"Building {', '.join(target.hosts)} from {source} ({mode}).")
    if not hosts_only and target.lab.guests:
        console.print("[dim]This build does the host half; labsmith apply makes the guests.[/dim]")
    if not dry_run and not yes and not click.confirm("Go ahead?", default=False):
        raise click.exceptions.Exit(1)
    with owner_only_umask(), interruptible(console) as interrupt:
        directory = make_run_dir(run_dir or default_run_root(), dry_run, keep_runs)
        probe_stage(target, directory, on_host=lambda outcome: _print_probe(console, outcome))
        if interrupt.requested:
            console.print(
                f"Interrupted before the playbook started; nothing was changed. {directory}"
            )
            raise click.exceptions.Exit(EXIT_INTERRUPTED)
        progress = BuildProgress(console, interactive=sys.stdout.isatty())
        try:
            result = run_host_stage(
                target, directory, check=dry_run, on_event=progress.event, cancel=interrupt.cancel
            )
        except KeyboardInterrupt:
            progress.close()
            console.print(
                "[red]Interrupted[/red]: left at once; the hosts may be part-way through a "
                f"task. The run so far: {directory}"
            )
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
        progress.close()
    print_summary(console, result, dry_run=dry_run)
    if result.status == "canceled":
        console.print(
            "[red]Interrupted[/red]: the playbook was stopped; the table shows what was done. "
            "The hosts may be part-way through a task: build again to finish."
        )
        raise click.exceptions.Exit(EXIT_INTERRUPTED)
    if result.unreachable_hosts:
        raise click.exceptions.Exit(EXIT_UNREACHABLE)
    if result.failed_hosts or result.status != "successful":
        raise click.exceptions.Exit(1)


class Interrupt:
    """The SIGINT handler: the first asks the playbook to stop (ansible-runner polls
    ``cancel``), the second raises KeyboardInterrupt to leave at once. The handler only sets
    a flag: printing from it could re-enter the console while it is writing."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.requested = False
        self._announced = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def cancel(self) -> bool:
        if self.requested and not self._announced:
            self._announced = True
            self.console.print("Stopping the playbook (Ctrl-C again to leave at once)...")
        return self.requested


@contextmanager
def interruptible(console: Console) -> Iterator[Interrupt]:
    interrupt = Interrupt(console)
    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        yield interrupt
    finally:
        signal.signal(signal.SIGINT, previous)


def _print_probe(console: Console, outcome: ProbeOutcome) -> None:
    if outcome.report is None:
        console.print(f"probe {outcome.host}: skipped ({escape(outcome.skipped)})")
        return
    report = outcome.report
    counts = dict.fromkeys(("pass", "warn", "fail", "unknown"), 0)
    for check in report.checks:
        counts[check.status] += 1
    summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    console.print(f"probe {outcome.host}: {summary}")
    for check in report.checks:
        if check.status == "fail":
            console.print(f"  [red]fail[/red] {check.id}: {escape(check.message)}")


class BuildProgress:
    """A live status line per task on a terminal; elsewhere a line per role and per change."""

    def __init__(self, console: Console, *, interactive: bool) -> None:
        self.console = console
        self.interactive = interactive
        self.changed = 0
        self.failed = 0
        self.done = 0
        self._role = ""
        self._lock = threading.Lock()
        self._status = console.status("starting") if interactive else None
        if self._status is not None:
            self._status.start()

    def event(self, event: Event) -> None:
        with self._lock:
            if event.kind == "task":
                self._task(event)
                return
            self.done += 1
            if event.kind == "changed":
                self.changed += 1
            elif event.kind in ("failed", "unreachable"):
                self.failed += 1
            if event.kind in ("changed", "failed", "unreachable"):
                color = "yellow" if event.kind == "changed" else "red"
                self.console.print(
                    f"  [{color}]{event.kind}[/{color}] {escape(event.host)}: "
                    f"{escape(_label(event))}"
                )
            self._refresh(event)

    def _task(self, event: Event) -> None:
        if event.role != self._role:
            self._role = event.role
            if event.role:
                self.console.print(f"[bold]role {escape(event.role)}[/bold]")
        self._refresh(event)

    def _refresh(self, event: Event) -> None:
        if self._status is not None:
            self._status.update(
                f"{escape(_label(event))}  [dim]tasks {self.done}, changed {self.changed}, "
                f"failed {self.failed}[/dim]"
            )

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()


def _label(event: Event) -> str:
    return f"{event.role}: {event.task}" if event.role else event.task


def print_summary(console: Console, result: PlaybookRun, *, dry_run: bool) -> None:
    table = Table(title=f"{result.playbook} in {result.seconds:.0f} s", title_justify="left")
    for column in ("host", "ok", "changed", "failed", "unreachable", "skipped"):
        table.add_column(column, justify="left" if column == "host" else "right")
    for host, counts in sorted(result.hosts.items()):
        table.add_row(
            host,
            str(counts.ok),
            str(counts.changed),
            str(counts.failed),
            str(counts.unreachable),
            str(counts.skipped),
        )
    console.print(table)
    verb = "would change" if dry_run else "changed"
    for outcome in result.outcomes:
        if outcome.status == "changed" and dry_run:
            console.print(f"[yellow]{verb}[/yellow] {outcome.host}: {escape(outcome.task)}")
            if outcome.diff:
                console.print(escape(outcome.diff), highlight=False)
        elif outcome.status in ("failed", "unreachable"):
            console.print(
                f"[red]{outcome.status}[/red] {outcome.host}: {escape(outcome.task)}: "
                f"{escape(outcome.message)}"
            )
    if result.changed == 0 and not result.failed_hosts and not result.unreachable_hosts:
        console.print("No changes: the hosts match the inventory.")
    else:
        console.print(f"{result.changed} task(s) {verb}.")
    console.print(f"[dim]Full log and events: {result.run_dir.parent}[/dim]")
