"""Collect a host snapshot over SSH: one connection per host, one channel for all commands.

Only the read-only commands of ``SNAPSHOT_FILES`` are ever run. They run one after another
in one remote ``/bin/sh`` script (``remote_script``), which streams each command's stdout,
stderr, exit status and time back as length-prefixed frames: one channel round trip and one
login-shell start-up (~150 ms when root's .bashrc runs pyenv) instead of one per command.
Where the script cannot run (no ``mktemp``, an unwritable /tmp) or a command hangs, the
commands it did not report run the old way, each in its own channel, a few at a time.
Either way each runs under ``/bin/sh`` with ``LC_ALL=C`` (the login shell may be anything,
and the parsers read untranslated output) and a PATH that includes the sbin directories
(dkms lives in /usr/sbin). A ``needs_root`` command run by a normal user
goes through ``sudo -n`` first, which fails instead of asking for a password; when sudo is
not allowed, the command runs unprivileged (dmesg_restrict makes plain ``dmesg`` fail, and
``lspci -vvv`` then hides the capabilities, but it still names devices and drivers).

The connection, with its host key checks, is ``labsmith.facts.ssh``'s; the script and the
reader of its frames are ``labsmith.facts.snapshot_script``'s.

A snapshot holds what only root may read on the host (the kernel log through sudo, PCI
capabilities, serial numbers), so it is written for its owner alone: directories 0700,
files 0600, whatever the umask.
"""

import getpass
import json
import logging
import secrets
import select
import shlex
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paramiko

from labsmith.facts.snapshot import MANIFEST, SNAPSHOT_FILES, SnapshotFile
from labsmith.facts.snapshot_script import (
    COMMAND_PATH,
    CommandOutput,
    FrameReader,
    remote_script,
)
from labsmith.facts.ssh import HostUnreachableError, connect, where
from labsmith.facts.targets import SshTarget
from labsmith.private_files import PRIVATE_DIR_MODE, write_private_file

log = logging.getLogger(__name__)

NVIDIA_SMI_OUTPUT = "nvidia-smi.xml"
NVIDIA_SMI_FAILURE = "nvidia-smi.err"  # what a failed nvidia-smi said: the checks explain it
# nvidia-smi can hang for minutes on a wedged GPU; one command must not stall a whole probe.
COMMAND_TIMEOUT = 120.0
# OpenSSH's MaxSessions defaults to 10 channels per connection; stay well below it.
CHANNELS_AT_ONCE = 4
_READ_CHUNK = 1 << 16


@dataclass(frozen=True)
class CollectResult:
    target: SshTarget
    destination: Path
    seconds: float
    exit_statuses: dict[str, int]  # snapshot file name -> exit status of its command


@dataclass(frozen=True)
class _CommandRun:
    output: CommandOutput
    seconds: float
    used_sudo: bool
    sudo_status: int | None = None  # set when sudo -n was tried and refused or failed


def collect_snapshot(
    target: SshTarget,
    destination: Path,
    *,
    known_hosts: Path | None = None,
    accept_new_host_key: bool = False,
    connect_timeout: float = 10.0,
    one_channel: bool = True,
    files: Sequence[SnapshotFile] = SNAPSHOT_FILES,
) -> CollectResult:
    """Probe one host into ``destination``; nothing there changes unless the host answers.

    ``one_channel=False`` runs each command in its own channel, as labsmith did before the
    batched script (kept for comparison and as the fallback); ``files`` is for tests.
    """
    started = time.monotonic()
    collected_at = datetime.now(UTC)
    user = target.user or getpass.getuser()
    client = connect(target, user, known_hosts, accept_new_host_key, connect_timeout)
    with client:
        transport = client.get_transport()
        if transport is None:  # connect() succeeded, so this is paramiko breaking its contract
            raise HostUnreachableError(f"{where(target)}: the SSH connection closed at once")
        _make_private_directory(destination)
        _remove_previous_snapshot(destination, files)
        as_root = user == "root"
        runs = _run_in_one_channel(transport, target, files, as_root) if one_channel else {}
        missing = [index for index in range(len(files)) if index not in runs]
        runs.update(_run_in_channels(transport, target, files, missing, as_root))
        entries: dict[str, dict[str, Any]] = {}
        for index, snapshot_file in enumerate(files):
            _write_output(destination, snapshot_file, runs[index].output)
            entries[snapshot_file.name] = _manifest_entry(snapshot_file, runs[index])
    manifest = {
        "host": target.name,
        "address": target.address,
        "port": target.port,
        "user": user,
        "collected_at": collected_at.isoformat(timespec="seconds"),
        "commands": entries,
    }
    write_private_file(destination / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    return CollectResult(
        target=target,
        destination=destination,
        seconds=time.monotonic() - started,
        exit_statuses={name: entry["exit_status"] for name, entry in entries.items()},
    )


def collect_snapshots(
    targets: Sequence[SshTarget],
    root: Path,
    *,
    known_hosts: Path | None = None,
    accept_new_host_key: bool = False,
    max_workers: int = 8,
    on_done: Callable[[SshTarget, CollectResult | HostUnreachableError], None] | None = None,
) -> dict[str, CollectResult | HostUnreachableError]:
    """Probe hosts concurrently, each into ``root/<name>``; keyed by name in the given order.

    ``on_done`` is called in the calling thread as each host finishes.
    """
    unique: dict[str, SshTarget] = {}
    for target in targets:
        unique.setdefault(target.name, target)  # two probes must not write one directory
    if not unique:
        return {}

    def probe(target: SshTarget) -> CollectResult | HostUnreachableError:
        try:
            return collect_snapshot(
                target,
                root / target.name,
                known_hosts=known_hosts,
                accept_new_host_key=accept_new_host_key,
            )
        except HostUnreachableError as error:
            return error

    # Created here, not by each host's thread, so that it too is private when it is new.
    if not root.exists():
        root.mkdir(mode=PRIVATE_DIR_MODE, parents=True)
    outcomes: dict[str, CollectResult | HostUnreachableError] = {}
    workers = max(1, min(max_workers, len(unique)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe") as pool:
        futures = {pool.submit(probe, target): target for target in unique.values()}
        for future in as_completed(futures):
            target = futures[future]
            outcomes[target.name] = future.result()
            if on_done is not None:
                on_done(target, outcomes[target.name])
    return {name: outcomes[name] for name in unique}


# ---- running the commands ----------------------------------------------------------------


def _run_in_one_channel(
    transport: paramiko.Transport,
    target: SshTarget,
    files: Sequence[SnapshotFile],
    as_root: bool,
) -> dict[int, _CommandRun]:
    """What the script reported, by index in ``files``; the caller runs the rest itself.

    A command that sends no frame within ``COMMAND_TIMEOUT`` is recorded as timed out and
    the channel closed, so that the commands after it can still run in their own channels.
    """
    token = f"labsmith-{secrets.token_hex(16)}"
    reader = FrameReader(token, len(files))
    script = remote_script(files, token, as_root=as_root)
    runs: dict[int, _CommandRun] = {}
    command_line = f"env LC_ALL=C PATH={COMMAND_PATH} /bin/sh -c {shlex.quote(script)}"
    try:
        channel = transport.open_session(timeout=COMMAND_TIMEOUT)
        try:
            channel.exec_command(command_line)
            channel.shutdown_write()
            _read_frames(channel, reader, runs, len(files))
        finally:
            channel.close()
    except (OSError, EOFError, paramiko.SSHException) as error:
        raise HostUnreachableError(
            f"{where(target)}: the SSH connection failed while running the snapshot "
            f"commands: {error or type(error).__name__}"
        ) from None
    except ValueError as error:
        log.warning("%s: the snapshot script's output broke off (%s)", target.name, error)
    if reader.no_temp_directory:
        log.info("%s: no private temporary directory; one channel per command", target.name)
    return runs


def _read_frames(
    channel: paramiko.Channel, reader: FrameReader, runs: dict[int, _CommandRun], count: int
) -> None:
    last = time.monotonic()
    while not reader.finished:
        deadline = last + COMMAND_TIMEOUT
        if channel.recv_ready():
            data = channel.recv(_READ_CHUNK)
        elif channel.recv_stderr_ready():
            channel.recv_stderr(_READ_CHUNK)  # the script itself writes nothing there
            continue
        elif channel.eof_received or channel.closed:
            return
        else:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                hung = len(runs)  # the script runs the commands in order
                if hung < count:
                    runs[hung] = _CommandRun(
                        CommandOutput(-1, b"", b"", timed_out=True),
                        COMMAND_TIMEOUT,
                        used_sudo=False,
                    )
                return
            select.select([channel], [], [], remaining)
            continue
        if not data:
            return
        now = time.monotonic()
        for index, output, used_sudo, refused, seconds in reader.feed(data):
            runs[index] = _CommandRun(
                output,
                seconds if seconds is not None else now - last,
                used_sudo=used_sudo,
                sudo_status=refused,
            )
            last = now


def _run_in_channels(
    transport: paramiko.Transport,
    target: SshTarget,
    files: Sequence[SnapshotFile],
    indices: Sequence[int],
    as_root: bool,
) -> dict[int, _CommandRun]:
    if not indices:
        return {}
    with ThreadPoolExecutor(max_workers=CHANNELS_AT_ONCE) as pool:
        runs = pool.map(
            lambda index: _run_snapshot_command(transport, target, files[index], as_root=as_root),
            indices,
        )
        return dict(zip(indices, runs, strict=True))


# ---- running the commands: one channel each ----------------------------------------------


def _run_snapshot_command(
    transport: paramiko.Transport, target: SshTarget, snapshot_file: SnapshotFile, *, as_root: bool
) -> _CommandRun:
    started = time.monotonic()
    command = f"env LC_ALL=C PATH={COMMAND_PATH} /bin/sh -c {shlex.quote(snapshot_file.command)}"
    sudo_status = None
    if snapshot_file.needs_root and not as_root:
        # -n: fail at once where sudo would ask for a password; one is never typed or sent.
        with_sudo = _run(transport, target, f"sudo -n {command}")
        if with_sudo.exit_status == 0:
            return _CommandRun(with_sudo, time.monotonic() - started, used_sudo=True)
        sudo_status = with_sudo.exit_status
        log.debug("%s: sudo -n %s gave %d", target.name, snapshot_file.name, sudo_status)
    output = _run(transport, target, command)
    return _CommandRun(output, time.monotonic() - started, used_sudo=False, sudo_status=sudo_status)


def _run(transport: paramiko.Transport, target: SshTarget, command_line: str) -> CommandOutput:
    try:
        channel = transport.open_session(timeout=COMMAND_TIMEOUT)
        try:
            channel.exec_command(command_line)
            channel.shutdown_write()  # a command that reads stdin sees EOF instead of waiting
            return _read_until_exit(channel, deadline=time.monotonic() + COMMAND_TIMEOUT)
        finally:
            channel.close()
    except (OSError, EOFError, paramiko.SSHException) as error:
        raise HostUnreachableError(
            f"{where(target)}: the SSH connection failed while running `{command_line}`: "
            f"{error or type(error).__name__}"
        ) from None


def _read_until_exit(channel: paramiko.Channel, deadline: float) -> CommandOutput:
    """Read stdout and stderr together (a full stderr must not stall stdout) until exit."""
    stdout, stderr = bytearray(), bytearray()

    def drain() -> None:
        while channel.recv_ready():
            stdout.extend(channel.recv(_READ_CHUNK))
        while channel.recv_stderr_ready():
            stderr.extend(channel.recv_stderr(_READ_CHUNK))

    drain()
    while not (channel.eof_received or channel.closed):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return CommandOutput(-1, bytes(stdout), bytes(stderr), timed_out=True)
        # The channel's file descriptor is readable when data, EOF or close arrived.
        select.select([channel], [], [], remaining)
        drain()
    drain()
    if not channel.status_event.wait(max(0.0, deadline - time.monotonic())):
        return CommandOutput(-1, bytes(stdout), bytes(stderr), timed_out=True)
    return CommandOutput(channel.exit_status, bytes(stdout), bytes(stderr))


# ---- writing the snapshot ----------------------------------------------------------------


def _remove_previous_snapshot(destination: Path, files: Sequence[SnapshotFile]) -> None:
    """Files of an earlier probe would read as this one's (a stale nvidia-smi.err above all)."""
    for name in (*(entry.name for entry in files), NVIDIA_SMI_FAILURE, MANIFEST):
        (destination / name).unlink(missing_ok=True)


def _make_private_directory(directory: Path) -> None:
    directory.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    # An existing directory keeps the mode it was made with: an earlier labsmith's 0755.
    directory.chmod(PRIVATE_DIR_MODE)


def _write_output(destination: Path, snapshot_file: SnapshotFile, output: CommandOutput) -> None:
    if output.exit_status == 0:
        write_private_file(destination / snapshot_file.name, output.stdout)
    elif snapshot_file.name == NVIDIA_SMI_OUTPUT:
        note = f"\n(labsmith: no exit within {COMMAND_TIMEOUT:g} s)\n" if output.timed_out else ""
        write_private_file(
            destination / NVIDIA_SMI_FAILURE, output.stdout + output.stderr + note.encode()
        )


def _manifest_entry(snapshot_file: SnapshotFile, run: _CommandRun) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "command": snapshot_file.command,
        "exit_status": run.output.exit_status,
        "seconds": round(run.seconds, 4),
    }
    if run.used_sudo:
        entry["sudo"] = True
    if run.sudo_status is not None:
        entry["sudo_refused_with"] = run.sudo_status
    if run.output.timed_out:
        entry["timed_out"] = True
    return entry
