"""Run one playbook through ansible-runner and keep what a person needs from its events.

ansible-runner runs ``ansible-playbook`` in a private data directory that keeps the full
output and every event (the run directory); the caller gets a summary (per-host counts,
the tasks that changed or failed, diffs in check mode) and a callback per event for a
progress display.

The run directory must hold nothing secret: ansible-playbook gets an environment built from
an allow-list (``INHERITED``), not the caller's (ansible-runner writes the environment it runs
with into ``artifacts/<id>/command``), no ``env/`` files are written, vault passwords stay in
their own file (only its path is passed), and everything is created owner-only.
"""

import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from labsmith.errors import LabsmithError
from labsmith.resources import collection_root

COLLECTION = "labsmith.lab"

# What a host's task came to; a progress display also sees "task" (one started).
TaskStatus = Literal["ok", "changed", "failed", "unreachable", "skipped"]
EventKind = Literal["task", "ok", "changed", "failed", "unreachable", "skipped"]
# ansible-runner's own end states of a run ("" before it ends).
RunStatus = Literal["", "successful", "failed", "timeout", "canceled"]

# ansible-runner's event names -> what they count as.
COUNTED: dict[str, TaskStatus] = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
}


# Caller variables ansible-playbook and ssh need, and why; everything else (tokens, passwords,
# the caller's own ANSIBLE_* settings) stays out of the run and its records.
# PATH finds ansible-playbook and ssh; HOME, USER and LOGNAME give ~/.ssh, ~/.ansible and the
# default remote user; LANG, LANGUAGE and LC_* a UTF-8 locale (ansible-core refuses to start
# without one); TERM and TZ the output and timestamps; SSH_AUTH_SOCK the agent that holds the
# login keys; TMPDIR the local temporary files; XDG_* where per-user runtime sockets live.
# The caller's ANSIBLE_* are left out on purpose: the connection settings come from the
# inventory, as they do for the probe, and an exported ANSIBLE_SSH_ARGS, ANSIBLE_CONFIG or
# ANSIBLE_HOST_KEY_CHECKING must not loosen the settings of ``_environment``.
INHERITED = frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TERM", "TZ", "SSH_AUTH_SOCK", "TMPDIR"}
)
INHERITED_PREFIXES = ("LC_", "XDG_")

# StrictHostKeyChecking=yes comes first on ssh's command line: Ansible puts ssh_args before
# the host's ansible_ssh_common_args and ansible_ssh_extra_args, and ssh keeps the first
# value it obtains for an option (ssh_config(5): "the first obtained value will be used"),
# so neither those nor ~/.ssh/config can turn the check off. Keepalives: a host that reboots
# behind NAT leaves a dead connection open.
SSH_ARGS = (
    "-o StrictHostKeyChecking=yes -o ControlMaster=auto -o ControlPersist=60s "
    "-o ServerAliveInterval=5 -o ServerAliveCountMax=3"
)

# Extra variables outrank the inventory: a host's ansible_ssh_args or ansible_host_key_checking
# would otherwise replace SSH_ARGS and the check (per-host options go in
# ansible_ssh_common_args, which still apply after SSH_ARGS).
ENFORCED_VARIABLES: dict[str, Any] = {
    "ansible_ssh_args": SSH_ARGS,
    "ansible_host_key_checking": True,
    "ansible_ssh_host_key_checking": True,
}

# How often (seconds) ansible-runner looks at the cancel callback while output is quiet.
CANCEL_POLL_SECONDS = 1


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
    status: Literal["changed", "failed", "unreachable"]
    message: str = ""
    diff: str = ""


@dataclass
class PlaybookRun:
    playbook: str
    run_dir: Path
    status: RunStatus = ""
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

    kind: EventKind
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
    vault_password_file: Path | None = None,
    on_event: Callable[[Event], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> PlaybookRun:
    """Run the collection's playbook ``labsmith.lab.<name>`` against the inventory, with
    the collection labsmith ships (the one an AWX or ansible-navigator user installs).

    ``cancel`` is asked about once a second; when it answers True the playbook is killed and
    the run comes back with status ``canceled`` and the counts so far."""
    from ansible_runner import Runner, RunnerConfig

    playbook = collection_root() / "playbooks" / f"{name}.yml"
    if not playbook.is_file():
        raise PlaybookError(f"labsmith's playbook {playbook} is missing: reinstall labsmith")
    arguments = ["--check", "--diff"] if check else []
    if vault_password_file is not None:
        arguments += ["--vault-password-file", str(_readable(vault_password_file))]
    with owner_only_umask():
        run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        run_dir.chmod(0o700)
        collections = link_collection(run_dir / "collections")
        result = PlaybookRun(playbook=name, run_dir=run_dir)

        playbook_pids: set[int] = set()

        def handle(event: dict[str, Any]) -> bool:
            if isinstance(event.get("pid"), int):
                playbook_pids.add(event["pid"])
            _record(result, event, on_event)
            return True  # keep the event in the run directory

        settings = _environment(collections)
        config = RunnerConfig(
            private_data_dir=str(run_dir),
            playbook=f"{COLLECTION}.{name}",
            inventory=str(inventory.resolve()),
            limit=limit,
            extravars={**(extravars or {}), **ENFORCED_VARIABLES},
            cmdline=shlex.join(arguments) or None,
            envvars=settings,
            settings={"pexpect_timeout": CANCEL_POLL_SECONDS},
            suppress_env_files=True,
            quiet=True,
        )
        config.prepare()
        config.env = run_environment(config.env, settings)
        runner = Runner(config, event_handler=handle, cancel_callback=cancel)
        started = time.monotonic()
        try:
            runner.run()
        except KeyboardInterrupt:
            # Leaving at once must not leave ansible-playbook changing hosts in the
            # background: it runs in a session of its own (pexpect's pty), which the
            # terminal's Ctrl-C does not reach, so its process group is ended here as
            # ansible-runner ends it on cancel.
            for pid in playbook_pids:
                Runner.handle_termination(pid)
            raise
        result.seconds = time.monotonic() - started
        tighten(run_dir)
    result.status = _run_status(runner.status)
    result.rc = int(runner.rc)
    if result.status != "successful" and result.status != "canceled" and not result.hosts:
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


def _readable(vault_password_file: Path) -> Path:
    path = vault_password_file.expanduser().resolve()
    if not path.is_file():
        raise PlaybookError(
            f"--vault-password-file {vault_password_file}: no such file; pass the file that "
            "holds the inventory's vault password"
        )
    return path


def run_environment(prepared: dict[str, Any], settings: dict[str, str]) -> dict[str, str]:
    """The environment ansible-playbook runs with: ``settings``, the ``INHERITED`` caller
    variables, and what ansible-runner itself set (its callback plugin, artifact paths) --
    told apart from the caller's by differing from ``os.environ``."""
    caller = os.environ
    return {
        key: str(value)
        for key, value in prepared.items()
        if key in settings
        or key in INHERITED
        or key.startswith(INHERITED_PREFIXES)
        or caller.get(key) != value
    }


@contextmanager
def owner_only_umask() -> Iterator[None]:
    """Files and directories created meanwhile (by labsmith, ansible-runner and
    ansible-playbook on this machine) are the owner's only: events hold task output."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def tighten(directory: Path) -> None:
    """Owner-only modes for everything under ``directory`` that was made before the umask
    applied (or by a tool that sets its own); symlinks (the collection link) are left."""
    for root, directories, files in os.walk(directory):
        for name in directories:
            path = Path(root, name)
            if not path.is_symlink():
                path.chmod(0o700)
        for name in files:
            path = Path(root, name)
            if not path.is_symlink():
                path.chmod(0o600)
    directory.chmod(0o700)


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
        "ANSIBLE_SSH_ARGS": SSH_ARGS,
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
    status: TaskStatus = "changed" if counted == "ok" and response.get("changed") else counted
    setattr(counts, counted, getattr(counts, counted) + 1)
    if status == "changed":
        counts.changed += 1
    if status == "changed" or status == "failed" or status == "unreachable":
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


def _run_status(value: object) -> RunStatus:
    """ansible-runner's status as one of its documented end states; anything else (a
    newer runner's word) counts as a failure, never as success."""
    known: dict[str, RunStatus] = {
        "successful": "successful", "failed": "failed", "timeout": "timeout",
        "canceled": "canceled",
    }  # fmt: skip
    return known.get(str(value), "failed")


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
