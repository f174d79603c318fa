"""``labsmith plan`` and ``labsmith apply``: the inventory's guests through the Proxmox VE API.

Exit status: 0 done (or nothing to do), 1 a guest is blocked or failed, 2 the inventory or
options are unusable, 3 the API cannot be reached or refuses the credentials, 130 apply was
interrupted (Ctrl-C).
"""

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar
from urllib.parse import unquote

import click
from rich.console import Console
from rich.markup import escape

from labsmith.cli.options import make_console, required_inventory_option, resolve_inventory
from labsmith.orchestrate.guests import GuestLab, load_guest_lab
from labsmith.proxmox.apply import (
    ApplyResult,
    ApplySettings,
    Interruption,
    Outcome,
    Progress,
    converge,
)
from labsmith.proxmox.endpoints import Overrides
from labsmith.proxmox.plan import Action, Change, MappingAction, Plan

F = TypeVar("F", bound=Callable[..., object])
# 128 + SIGINT, as shells report a command that Ctrl-C stopped.
EXIT_INTERRUPTED = 130
SYMBOLS = {
    "create": ("+", "green"),
    "update": ("~", "yellow"),
    "start": (">", "cyan"),
    "noop": ("=", "dim"),
    "blocked": ("!", "red"),
    "destroy": ("-", "red"),
}


def api_options(function: F) -> F:
    """Where the API is; each overrides the inventory for every Proxmox host."""
    decorated = click.option(
        "--limit",
        "limit",
        multiple=True,
        help="Only this guest (inventory name or Proxmox name). Repeatable.",
    )(function)
    decorated = click.option(
        "--pve-ca",
        type=click.Path(path_type=Path, dir_okay=False),
        help="CA certificate to verify the API's TLS with (the node's pve-root-ca.pem).",
    )(decorated)
    decorated = click.option(
        "--pve-token",
        envvar="LABSMITH_PVE_TOKEN",
        help="API token as user@realm!name=secret (or in LABSMITH_PVE_TOKEN, which keeps "
        "the secret out of the process list).",
    )(decorated)
    decorated = click.option(
        "--pve-url", help="API URL, https://host:8006 (e.g. what labsmith sim serve prints)."
    )(decorated)
    decorated = click.option(
        "--pve-root-password-file",
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        help="File holding root@pam's password: PVE lets only root@pam itself (not a token) "
        "set a container's bind mounts and devices. Without it, plan prints the pct command.",
    )(decorated)
    return required_inventory_option(decorated)


def _load(
    inventory: Path | None,
    vault_password_file: Path | None,
    pve_url: str | None,
    pve_token: str | None,
    pve_ca: Path | None,
    pve_root_password_file: Path | None,
    limit: tuple[str, ...],
) -> GuestLab:
    source = resolve_inventory(inventory)
    root_password = None
    if pve_root_password_file is not None:
        root_password = pve_root_password_file.read_text().strip()
    overrides = Overrides(url=pve_url, token=pve_token, ca_file=pve_ca, root_password=root_password)
    return load_guest_lab(source, overrides, vault_password_file, limit)


@click.command()
@api_options
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan(
    inventory: Path | None,
    vault_password_file: Path | None,
    pve_url: str | None,
    pve_token: str | None,
    pve_ca: Path | None,
    pve_root_password_file: Path | None,
    limit: tuple[str, ...],
    as_json: bool,
) -> None:
    """Show what apply would change on the Proxmox cluster, changing nothing.

    Exit status: 0, 1 when a guest of the inventory is blocked, 2 unusable inventory or
    options, 3 the API is unreachable or refuses the token.
    """
    lab = _load(
        inventory, vault_password_file, pve_url, pve_token, pve_ca, pve_root_password_file, limit
    )
    planned = lab.plan()
    if as_json:
        click.echo(json.dumps(planned.to_json(), indent=2))
    else:
        print_plan(make_console(), planned)
    if planned.blocked:
        raise click.exceptions.Exit(1)


@click.command()
@api_options
@click.option("--yes", is_flag=True, help="Apply without asking.")
@click.option("--dry-run", is_flag=True, help="Show the plan and stop.")
@click.option(
    "--destroy",
    "destroy",
    multiple=True,
    metavar="GUEST",
    help="Destroy this guest, which is on the cluster but not in the inventory (name or "
    "VMID), with its disks. Repeatable; nothing else is ever destroyed.",
)
@click.option(
    "--per-node",
    type=click.IntRange(1, 32),
    default=ApplySettings.per_node,
    show_default=True,
    help="Guests worked on at once per node.",
)
@click.option(
    "--task-timeout",
    type=click.FloatRange(1),
    default=ApplySettings.task_timeout,
    show_default=True,
    help="Seconds to wait for one Proxmox task (a create, a start).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan and results as JSON.")
def apply(
    inventory: Path | None,
    vault_password_file: Path | None,
    pve_url: str | None,
    pve_token: str | None,
    pve_ca: Path | None,
    pve_root_password_file: Path | None,
    limit: tuple[str, ...],
    yes: bool,
    dry_run: bool,
    destroy: tuple[str, ...],
    per_node: int,
    task_timeout: float,
    as_json: bool,
) -> None:
    """Create, update and start the inventory's guests on the Proxmox cluster.

    Shows the plan, asks unless --yes, then applies it: PCI mappings first, then the guests
    (a few at a time per node), then their starts; every task is awaited. Running it again
    changes nothing once the cluster matches the inventory. Ctrl-C sends no further change,
    prints what was and was not done, and exits 130; a second Ctrl-C leaves at once.
    """
    lab = _load(
        inventory, vault_password_file, pve_url, pve_token, pve_ca, pve_root_password_file, limit
    )
    planned = lab.plan(frozenset(destroy))
    _check_destroy_names(planned, destroy)
    console = make_console() if not as_json else Console(stderr=True, highlight=False)
    print_plan(console, planned)
    if dry_run or not planned.writes:
        if as_json:
            click.echo(json.dumps({"plan": planned.to_json(), "outcomes": []}, indent=2))
        if not planned.writes:
            console.print("Nothing to apply: the cluster matches the inventory.")
        if planned.blocked:
            raise click.exceptions.Exit(1)
        return
    if not yes and not click.confirm("Apply this plan?", default=False, err=as_json):
        raise click.exceptions.Exit(1)
    settings = ApplySettings(per_node=per_node, task_timeout=task_timeout)
    interruption = Interruption()
    started = time.monotonic()
    with _stopped_by_ctrl_c(interruption):
        result = converge(
            lab.clients,
            planned,
            lambda: lab.plan(frozenset(destroy)),
            settings=settings,
            progress=LineProgress(console, _work_count(planned)),
            root_clients=lab.root_clients,
            interruption=interruption,
        )
    _print_summary(console, result, time.monotonic() - started)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "plan": planned.to_json(),
                    "outcomes": [_outcome_json(o) for o in result.outcomes],
                    "interrupted": result.interrupted,
                },
                indent=2,
            )
        )
    if result.interrupted:
        raise click.exceptions.Exit(EXIT_INTERRUPTED)
    if result.failed or planned.blocked:
        raise click.exceptions.Exit(1)


@contextmanager
def _stopped_by_ctrl_c(interruption: Interruption) -> Iterator[None]:
    """The first SIGINT stops the writes not yet sent (the tasks in flight are awaited a
    little, then named); a second one leaves at once. The handler writes to the stderr
    descriptor itself and takes no lock: it may run while the interrupted code holds one."""

    def handle(signum: int, frame: FrameType | None) -> None:
        if not interruption.requested:
            interruption.request()
            os.write(
                sys.stderr.fileno(),
                f"\nInterrupted: no further change is sent; waiting up to "
                f"{interruption.grace:g} s for the Proxmox tasks already running "
                "(Ctrl-C again to leave now).\n".encode(),
            )
            return
        lines = ["\nLeft at once."]
        awaited = interruption.awaited()
        if awaited:
            lines.append("Still running on the nodes (see each node's task list):")
            lines += [f"  {subject}: {upid}" for upid, subject in sorted(awaited.items())]
        os.write(sys.stderr.fileno(), ("\n".join(lines) + "\n").encode())
        os._exit(EXIT_INTERRUPTED)

    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = signal.signal(signal.SIGINT, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _print_summary(console: Console, result: ApplyResult, elapsed: float) -> None:
    failed = result.failed
    done = sum(1 for outcome in result.outcomes if outcome.ok)
    verb = "Interrupted after" if result.interrupted else "Applied in"
    console.print(
        f"{verb} {elapsed:.1f} s: {done} done, {len(failed)} failed"
        + (f", {len(result.not_done)} not done" if result.interrupted else "")
        + (f" (after {result.rounds} rounds)" if result.rounds > 1 else "")
        + "."
    )
    if result.interrupted:
        finished = [o.subject for o in result.latest() if o.ok]
        if finished:
            console.print(f"[green]done[/green]: {escape(', '.join(finished))}")
    for outcome in failed:
        console.print(f"[red]failed[/red] {escape(outcome.subject)}: {escape(outcome.detail)}")
    for outcome in result.not_done:
        console.print(
            f"[yellow]not done[/yellow] {escape(outcome.subject)}: {escape(outcome.detail)}"
        )
    for outcome in result.still_running:
        console.print(
            f"[yellow]still running[/yellow] on {escape(outcome.node)}: "
            f"{escape(str(outcome.running))} ({escape(outcome.subject)})"
        )


def _check_destroy_names(planned: Plan, destroy: tuple[str, ...]) -> None:
    def names(actions: list[Action]) -> set[str]:
        return {a.guest for a in actions} | {str(a.vmid) for a in actions}

    inventory = names([a for a in planned.actions if a.in_inventory])
    targeted = names([a for a in planned.actions if a.action == "destroy"])
    for name in destroy:
        if name in inventory:
            raise click.BadParameter(
                f"{name} is in the inventory; remove it from the inventory first",
                param_hint="--destroy",
            )
        if name not in targeted:
            raise click.BadParameter(f"no guest {name} on the cluster", param_hint="--destroy")


def _work_count(planned: Plan) -> int:
    return sum(1 for a in planned.actions + planned.mapping_actions if a.writes)


def _outcome_json(outcome: Outcome) -> dict[str, Any]:
    return {
        "subject": outcome.subject,
        "node": outcome.node,
        "action": outcome.action,
        "ok": outcome.ok,
        "detail": outcome.detail,
        "interrupted": outcome.interrupted,
        "running_task": outcome.running,
    }


class LineProgress(Progress):
    """One line per step and per finished guest, safe to call from the worker threads."""

    def __init__(self, console: Console, total: int) -> None:
        self.console = console
        self.total = total
        self.finished = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def step(self, subject: str, what: str) -> None:
        with self._lock:
            self.console.print(f"[dim]{self._clock()}[/dim] {escape(subject)}: {escape(what)}")

    def done(self, outcome: Outcome) -> None:
        with self._lock:
            self.finished += 1
            if outcome.ok:
                mark = "[green]ok[/green]"
            else:
                mark = "[yellow]not done[/yellow]" if outcome.interrupted else "[red]failed[/red]"
            count = f"[{self.finished}/{self.total}]" if self.finished <= self.total else ""
            self.console.print(
                f"[dim]{self._clock()}[/dim] {escape(count)} {mark} {escape(outcome.subject)}: "
                f"{escape(outcome.detail)}"
            )

    def _clock(self) -> str:
        return f"{time.monotonic() - self.started:6.1f}s"


# Rendering ------------------------------------------------------------------------------


def print_plan(console: Console, planned: Plan) -> None:
    for mapping in planned.mapping_actions:
        _print_mapping(console, mapping)
    for action in planned.actions:
        _print_action(console, action)
    counts = planned.counts()
    mappings = sum(1 for m in planned.mapping_actions if m.writes)
    parts = [
        f"{counts.get(kind, 0)} to {kind}"
        for kind in ("create", "update", "start", "destroy")
        if counts.get(kind)
    ]
    if mappings:
        parts.insert(0, f"{mappings} PCI mapping(s) to write")
    parts.append(f"{counts.get('noop', 0)} unchanged")
    blocked = len(planned.blocked)
    if blocked:
        parts.append(f"[red]{blocked} blocked[/red]")
    foreign = sum(1 for a in planned.actions if not a.in_inventory and a.action == "blocked")
    if foreign:
        parts.append(f"{foreign} not in the inventory (left alone)")
    console.print("Plan: " + ", ".join(parts) + ".")


def _print_mapping(console: Console, mapping: MappingAction) -> None:
    symbol, color = SYMBOLS.get(mapping.action, ("=", "dim"))
    name = f"[bold]{escape(mapping.id)}[/bold]"
    line = f"[{color}]{symbol}[/{color}] PCI mapping {name} on {mapping.node}"
    if mapping.action == "noop":
        console.print(f"{line} [dim](unchanged)[/dim]")
        return
    console.print(f"{line}: {escape(mapping.reason)}")
    if mapping.old:
        console.print(f"      [red]- {escape(mapping.old)}[/red]")
    if mapping.new and mapping.action != "blocked":
        console.print(f"      [green]+ {escape(mapping.new)}[/green]")


def _print_action(console: Console, action: Action) -> None:
    symbol, color = SYMBOLS[action.action]
    kind = "VM" if action.kind == "qemu" else "CT"
    head = (
        f"[{color}]{symbol}[/{color}] [bold]{escape(action.guest)}[/bold] "
        f"({kind} {action.vmid} on {action.node})"
    )
    if action.action == "noop":
        console.print(f"{head} [dim]unchanged[/dim]")
    elif action.action == "create":
        then = ", then start" if action.start else ""
        console.print(f"{head} create{then}")
    elif action.action == "update":
        then = ", then start" if action.start else ""
        console.print(f"{head} update{then}")
    else:
        console.print(f"{head} {action.action}: {escape(action.reason)}")
    width = max((len(key) for key in action.changes), default=0)
    for key, raw in action.changes.items():
        label = key.ljust(width)
        change = _readable(key, raw)
        if change.old is None:
            text = f"[green]{escape(_text(change.new))}[/green]"
        elif change.new is None:
            text = f"[red]{escape(_text(change.old))}[/red] -> (removed)"
        else:
            text = f"{escape(_text(change.old))} -> [yellow]{escape(_text(change.new))}[/yellow]"
        blocked = f"  [red]({escape(change.blocked)})[/red]" if change.blocked else ""
        console.print(f"      {label}  {text}{blocked}")
    for note in action.notes:
        console.print(f"      [dim]note: {escape(note)}[/dim]")


def _readable(key: str, change: Change) -> Change:
    """SSH keys travel URL-encoded (as PVE stores them); people read them decoded."""
    if key != "sshkeys":
        return change
    return Change(
        unquote(str(change.old)) if change.old is not None else None,
        unquote(str(change.new)) if change.new is not None else None,
        change.blocked,
    )


def _text(value: object) -> str:
    return str(value).replace("\n", "\\n")
