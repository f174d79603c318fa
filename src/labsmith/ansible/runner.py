"""Run one playbook through ansible-runner and keep what a person needs from its events.

ansible-runner runs ``ansible-playbook`` in a private data directory that keeps the full
output and every event (the run directory); the caller gets a summary (per-host counts,
the tasks that changed or failed, diffs in check mode) and a callback per event for a
progress display.
"""

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labsmith.errors import LabsmithError
from labsmith.resources import collection_root

COLLECTION = "labsmith.lab"

# ansible-runner's event names -> what they count as.
COUNTED = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
}


class PlaybookError(LabsmithError):
    """ansible-runner could not start the playbook at all."""

    exit_code = 2


@dataclass
class HostCounts:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class TaskOutcome:
    host: str
    role: str
    task: str
    status: str  # changed | failed | unreachable
    message: str = ""
    diff: str = ""


@dataclass
class PlaybookRun:
    playbook: str
    run_dir: Path
    status: str = ""  # successful | failed | timeout | canceled
    rc: int = 0
    hosts: dict[str, HostCounts] = field(default_factory=dict)
    outcomes: list[TaskOutcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def changed(self) -> int:
        return sum(counts.changed for counts in self.hosts.values())

    @property
    def failed_hosts(self) -> list[str]:
        return sorted(h for h, c in self.hosts.items() if c.failed)

    @property
    def unreachable_hosts(self) -> list[str]:
        return sorted(h for h, c in self.hosts.items() if c.unreachable)


@dataclass(frozen=True)
class Event:
    """One ansible-runner event, reduced to what a display shows."""

    kind: str  # task | ok | changed | failed | unreachable | skipped
    host: str
    role: str
    task: str


def run_playbook(
    name: str,
    inventory: Path,
    run_dir: Path,
    *,
    limit: str | None = None,
    check: bool = False,
    extravars: dict[str, Any] | None = None,
    on_event: Callable[[Event], None] | None = None,
) -> PlaybookRun:
    """Run the collection's playbook ``labsmith.lab.<name>`` against the inventory, with
    the collection labsmith ships (the one an AWX or ansible-navigator user installs)."""
    import ansible_runner

    playbook = collection_root() / "playbooks" / f"{name}.yml"
    if not playbook.is_file():
        raise PlaybookError(f"labsmith's playbook {playbook} is missing: reinstall labsmith")
    run_dir.mkdir(parents=True, exist_ok=True)
    collections = link_collection(run_dir / "collections")
    result = PlaybookRun(playbook=name, run_dir=run_dir)
    arguments = ["--check", "--diff"] if check else []

    def handle(event: dict[str, Any]) -> bool:
        _record(result, event, on_event)
        return True  # keep the event in the run directory

    started = time.monotonic()
    runner = ansible_runner.run(
        private_data_dir=str(run_dir),
        playbook=f"{COLLECTION}.{name}",
        inventory=str(inventory.resolve()),
        limit=limit,
        extravars=extravars or {},
        cmdline=" ".join(arguments) or None,
        envvars=_environment(collections),
        event_handler=handle,
        quiet=True,
    )
    result.seconds = time.monotonic() - started
    result.status = str(runner.status)
    result.rc = int(runner.rc)
    if result.status != "successful" and not result.hosts:
        # No task ran on any host: the playbook did not start (syntax, a missing tool).
        tail = _stdout_tail(runner)
        raise PlaybookError(
            f"{name} did not run (ansible-runner: {result.status}, rc {result.rc}): {tail} "
            f"(full output in {run_dir})"
        )
    return result


def _stdout_tail(runner: Any, lines: int = 5) -> str:
    try:
        text = runner.stdout.read()
    except (AttributeError, OSError, ValueError):
        return ""
    return " | ".join(line.strip() for line in str(text).splitlines()[-lines:] if line.strip())


def link_collection(directory: Path) -> Path:
    """A collections path that holds only labsmith's collection, as Ansible expects it
    (``ansible_collections/labsmith/lab``): a symlink to the shipped collection, so the run
    uses exactly this labsmith's roles whatever else is installed."""
    link = directory / "ansible_collections" / "labsmith" / "lab"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(collection_root(), target_is_directory=True)
    return directory


def _environment(collections: Path) -> dict[str, str]:
    """The settings of labsmith's ansible.cfg, whatever directory the run starts in."""
    return {
        "ANSIBLE_COLLECTIONS_PATH": str(collections),
        # Only the collections path above: a copy of labsmith.lab installed elsewhere
        # (~/.ansible/collections) never shadows the one this labsmith ships.
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "False",
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_INTERPRETER_PYTHON": "auto_silent",
        "ANSIBLE_NOCOLOR": "1",
        # Keepalives: a host that reboots behind NAT leaves a dead connection open.
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=60s "
        "-o ServerAliveInterval=5 -o ServerAliveCountMax=3",
        # ansible-playbook comes with the ansible-core labsmith runs on: beside its Python.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }


def _record(
    result: PlaybookRun, event: dict[str, Any], on_event: Callable[[Event], None] | None
) -> None:
    kind = str(event.get("event", ""))
    data: dict[str, Any] = event.get("event_data") or {}
    host = str(data.get("host") or data.get("remote_addr") or "")
    role = str(data.get("role") or "")
    task = str(data.get("task") or "")
    if kind == "playbook_on_task_start" and on_event is not None:
        on_event(Event("task", host, role, task))
        return
    counted = COUNTED.get(kind)
    if counted is None or not host:
        return
    response: dict[str, Any] = data.get("res") or {}
    counts = result.hosts.setdefault(host, HostCounts())
    if data.get("ignore_errors") and counted == "failed":
        counted = "ok"
    status = "changed" if counted == "ok" and response.get("changed") else counted
    setattr(counts, counted, getattr(counts, counted) + 1)
    if status == "changed":
        counts.changed += 1
    if status in ("changed", "failed", "unreachable"):
        result.outcomes.append(
            TaskOutcome(
                host=host,
                role=role,
                task=task,
                status=status,
                message=_message(response)[:2000],
                diff=_diff_text(response.get("diff")),
            )
        )
    if on_event is not None:
        on_event(Event(status, host, role, task))


def _message(response: dict[str, Any]) -> str:
    """A task's message; for a loop, its failed items' messages (the task's own says only
    "One or more items failed")."""
    items = response.get("results")
    if isinstance(items, list):
        failed = [str(i.get("msg", "")) for i in items if isinstance(i, dict) and i.get("failed")]
        if failed:
            return " | ".join(failed)
    return str(response.get("msg") or "")


def _diff_text(diff: Any) -> str:
    """Ansible's diff (a dict or a list of them) as unified-looking text."""
    parts = diff if isinstance(diff, list) else [diff] if isinstance(diff, dict) else []
    lines: list[str] = []
    for part in parts:
        if not isinstance(part, dict):
            continue
        if "prepared" in part:
            lines.append(str(part["prepared"]))
            continue
        before, after = str(part.get("before", "")), str(part.get("after", ""))
        if before == after:
            continue
        header = part.get("after_header") or part.get("before_header") or ""
        if header:
            lines.append(f"--- {header}")
        lines.extend(f"- {line}" for line in before.splitlines())
        lines.extend(f"+ {line}" for line in after.splitlines())
    return "\n".join(lines)
