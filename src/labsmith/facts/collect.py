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

Host keys are verified as OpenSSH does with ``StrictHostKeyChecking=yes`` (or
``accept-new`` with ``accept_new_host_key``): the system-wide and the user's known_hosts
are read, an unknown key is refused with its fingerprint, a changed key is always refused.
Authentication uses the SSH agent and key files only; labsmith never asks for a password.

A snapshot holds what only root may read on the host (the kernel log through sudo, PCI
capabilities, serial numbers), so it is written for its owner alone: directories 0700,
files 0600, whatever the umask.
"""

import getpass
import json
import logging
import os
import re
import secrets
import select
import shlex
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paramiko

from labsmith.errors import LabsmithError
from labsmith.facts.snapshot import MANIFEST, SNAPSHOT_FILES, SnapshotFile
from labsmith.facts.targets import SshTarget

log = logging.getLogger(__name__)

SYSTEM_KNOWN_HOSTS = Path("/etc/ssh/ssh_known_hosts")
NVIDIA_SMI_OUTPUT = "nvidia-smi.xml"
NVIDIA_SMI_FAILURE = "nvidia-smi.err"  # what a failed nvidia-smi said: the checks explain it
# nvidia-smi can hang for minutes on a wedged GPU; one command must not stall a whole probe.
COMMAND_TIMEOUT = 120.0
# OpenSSH's MaxSessions defaults to 10 channels per connection; stay well below it.
CHANNELS_AT_ONCE = 4
COMMAND_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_READ_CHUNK = 1 << 16
SNAPSHOT_DIRECTORY_MODE = 0o700
SNAPSHOT_FILE_MODE = 0o600
# Probes of many hosts run in threads and may record new host keys in the same file.
_known_hosts_lock = threading.Lock()


class HostUnreachableError(LabsmithError):
    """No trusted, authenticated SSH connection to a host (exit code 3).

    DNS failure, refused connection, timeout, authentication failure, unknown or changed
    host key. The message names the host, its address:port and how to fix it.
    """

    exit_code = 3


class UnknownHostKeyError(HostUnreachableError):
    """The host's key is in no known_hosts file. The advice on how to accept it depends on
    the command (probe has --accept-new-host-key, build does not), so it is kept apart."""

    def __init__(self, detail: str, accept: str = "pass --accept-new-host-key") -> None:
        super().__init__(f"{detail}, or {accept}")
        self.detail = detail

    def advising(self, accept: str) -> "UnknownHostKeyError":
        return UnknownHostKeyError(self.detail, accept)


@dataclass(frozen=True)
class CollectResult:
    target: SshTarget
    destination: Path
    seconds: float
    exit_statuses: dict[str, int]  # snapshot file name -> exit status of its command


@dataclass(frozen=True)
class _Output:
    exit_status: int  # -1: killed by a signal or timed out
    stdout: bytes
    stderr: bytes
    timed_out: bool = False


@dataclass(frozen=True)
class _CommandRun:
    output: _Output
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
    client = _connect(target, user, known_hosts, accept_new_host_key, connect_timeout)
    with client:
        transport = client.get_transport()
        if transport is None:  # connect() succeeded, so this is paramiko breaking its contract
            raise HostUnreachableError(f"{_where(target)}: the SSH connection closed at once")
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
    _write_private(destination / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
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
        root.mkdir(mode=SNAPSHOT_DIRECTORY_MODE, parents=True)
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


# ---- connecting --------------------------------------------------------------------------


class _UnknownHostKeyError(paramiko.SSHException):
    def __init__(self, known_hosts_name: str, key: paramiko.PKey) -> None:
        super().__init__(known_hosts_name, key)
        self.known_hosts_name = known_hosts_name
        self.key = key


class _RefuseUnknownHostKey(paramiko.MissingHostKeyPolicy):
    """paramiko's RejectPolicy, but keeping the key so that the error can show its fingerprint."""

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        raise _UnknownHostKeyError(hostname, key)


class _RecordNewHostKey(paramiko.MissingHostKeyPolicy):
    """OpenSSH's ``accept-new``: trust a key seen for the first time and append it to a file.

    Appending (rather than paramiko's save_host_keys) keeps the file's comments, hashed
    names and @cert-authority lines.
    """

    def __init__(self, known_hosts: Path) -> None:
        self._known_hosts = known_hosts

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        with _known_hosts_lock:
            recorded = self._recorded_key(hostname, key.get_name())
            if recorded is not None and recorded != key:
                raise paramiko.BadHostKeyException(hostname, key, recorded)
            if recorded is None:
                self._append(f"{hostname} {key.get_name()} {key.get_base64()}\n")
                log.info(
                    "recorded the %s host key of %s in %s",
                    key.fingerprint,
                    hostname,
                    self._known_hosts,
                )
        client.get_host_keys().add(hostname, key.get_name(), key)

    def _recorded_key(self, hostname: str, key_type: str) -> paramiko.PKey | None:
        """The key another probe of this run may have recorded since the file was read."""
        if not self._known_hosts.is_file():
            return None
        entries = paramiko.HostKeys(str(self._known_hosts)).lookup(hostname)
        return entries.get(key_type) if entries is not None else None

    def _append(self, line: str) -> None:
        self._known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        existing = self._known_hosts.read_bytes() if self._known_hosts.is_file() else b""
        with self._known_hosts.open("a") as stream:
            stream.write(line if not existing or existing.endswith(b"\n") else "\n" + line)


def _connect(
    target: SshTarget,
    user: str,
    known_hosts: Path | None,
    accept_new_host_key: bool,
    timeout: float,
) -> paramiko.SSHClient:
    user_known_hosts = known_hosts or Path("~/.ssh/known_hosts").expanduser()
    if target.key_file is not None and not target.key_file.is_file():
        raise HostUnreachableError(
            f"{_where(target)}: SSH key file {target.key_file} not found; "
            "fix ansible_ssh_private_key_file"
        )
    client = paramiko.SSHClient()
    # Both files go to paramiko's "system" keys, which it reads but never rewrites.
    for path in (SYSTEM_KNOWN_HOSTS, user_known_hosts):
        try:
            if path.is_file():
                client.load_system_host_keys(str(path))
        except OSError as error:
            raise HostUnreachableError(
                f"{_where(target)}: cannot read the known_hosts file {path}: {error.strerror}"
            ) from None
    client.set_missing_host_key_policy(
        _RecordNewHostKey(user_known_hosts) if accept_new_host_key else _RefuseUnknownHostKey()
    )
    try:
        sock = _open_socket(target, timeout)
        client.connect(
            target.address,
            port=target.port,
            username=user,
            key_filename=str(target.key_file) if target.key_file else None,
            allow_agent=True,
            look_for_keys=True,
            sock=sock,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            channel_timeout=timeout,
        )
    except (OSError, EOFError, paramiko.SSHException) as error:
        client.close()
        if isinstance(error, _UnknownHostKeyError):
            raise UnknownHostKeyError(
                _describe_unknown_key(target, user_known_hosts, error)
            ) from None
        raise HostUnreachableError(
            _describe_connect_error(target, user, user_known_hosts, timeout, error)
        ) from None
    return client


def _open_socket(target: SshTarget, timeout: float) -> socket.socket:
    sock = socket.create_connection((target.address, target.port), timeout=timeout)
    # paramiko leaves Nagle's algorithm on: each channel request then waits ~40 ms for the
    # peer's delayed ACK. OpenSSH turns it off too.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _describe_unknown_key(
    target: SshTarget, known_hosts: Path, error: "_UnknownHostKeyError"
) -> str:
    key = error.key
    return (
        f"{_where(target)}: unknown SSH host key {key.get_name()} {key.fingerprint} (not in "
        f"{known_hosts} nor {SYSTEM_KNOWN_HOSTS}); check that fingerprint on the host "
        f"(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then run `ssh-keyscan -p "
        f"{target.port} {target.address} >> {known_hosts}`"
    )


def _describe_connect_error(
    target: SshTarget, user: str, known_hosts: Path, timeout: float, error: BaseException
) -> str:
    where = _where(target)
    if isinstance(error, paramiko.BadHostKeyException):
        return (
            f"{where}: the SSH host key CHANGED: the host sent {error.key.get_name()} "
            f"{error.key.fingerprint}, known_hosts has {error.expected_key.get_name()} "
            f"{error.expected_key.fingerprint}. Refused (even with --accept-new-host-key): "
            "someone may be intercepting the connection. If the host was reinstalled, check "
            f"the new fingerprint on it, then `ssh-keygen -R '{_known_hosts_name(target)}' "
            f"-f {known_hosts}` and probe again"
        )
    if isinstance(error, paramiko.AuthenticationException):
        return (
            f"{where}: SSH authentication as {user} failed ({error}); labsmith uses the SSH "
            "agent and key files, never passwords: load the key with ssh-add, or set "
            "ansible_user and ansible_ssh_private_key_file"
        )
    if isinstance(error, socket.gaierror):
        return f"{where}: cannot resolve {target.address} ({error.strerror}); check ansible_host"
    if isinstance(error, ConnectionRefusedError):
        return (
            f"{where}: connection refused; is sshd running there, "
            "and is the port right (ansible_port)?"
        )
    if isinstance(error, TimeoutError):
        return (
            f"{where}: no answer within {timeout:g} s; is the host up, and are the address "
            "and port right?"
        )
    if isinstance(error, OSError):
        return f"{where}: cannot connect: {error.strerror or error}"
    return f"{where}: the SSH handshake failed: {error or type(error).__name__}"


def _where(target: SshTarget) -> str:
    return f"{target.name} ({target.address}:{target.port})"


def _known_hosts_name(target: SshTarget) -> str:
    """How known_hosts names the host, as paramiko and OpenSSH look it up."""
    return target.address if target.port == 22 else f"[{target.address}]:{target.port}"


# ---- running the commands: one channel, one script ---------------------------------------

# A frame: "<token> <index> <exit status> <sudo used 0|1> <sudo status|-> <start ns> <end ns>
# <stdout bytes> <stderr bytes>\n", then exactly that many bytes of stdout, then of stderr.
# The lengths alone delimit the output, so no output can end a frame early, whatever it
# prints; the per-run random token tells a frame from stray text (a noisy .bashrc).
_FRAME = re.compile(
    rb"(?P<index>\d+) (?P<status>\d+) (?P<sudo>[01]) (?P<refused>\d+|-) "
    rb"(?P<started>\S+) (?P<ended>\S+) +(?P<stdout>\d+) +(?P<stderr>\d+)"
)
_MAX_HEADER = 4096
# sh's exit status for a command killed by signal N is 128 + N; paramiko reports -1 for it.
_SIGNALLED = 128


def remote_script(files: Sequence[SnapshotFile], token: str, *, as_root: bool) -> str:
    """The POSIX sh script that runs ``files`` in order and frames what each printed.

    Each command's output goes to files in a private ``mktemp -d`` directory (umask 077:
    dmesg read through sudo stays root's), so that stdout and stderr stay apart and their
    lengths are known before they are sent. A ``needs_root`` command of a normal user is
    tried through ``sudo -n`` first, then run unprivileged, as the per-channel path does.
    """
    # sudo resets the environment, so LC_ALL and PATH are set again inside it; the script's
    # own environment (set where it is started) already has them for the rest.
    privileged = f"sudo -n env LC_ALL=C PATH={COMMAND_PATH} /bin/sh -c"
    lines = [
        "umask 077",
        f'd=$(mktemp -d 2>/dev/null) || {{ echo "{token} no-temp"; exit 0; }}',
        "trap 'rm -rf \"$d\"' EXIT",
        "trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 141' PIPE; trap 'exit 143' TERM",
        "now() { date +%s%N 2>/dev/null || echo -; }",
        "frame() {",
        f'  printf \'{token} %s %s %s %s %s %s %s %s\\n\' "$1" "$2" "$3" "$4" "$5" "$(now)" \\',
        '    "$(wc -c <"$d/o")" "$(wc -c <"$d/e")"',
        '  cat "$d/o" "$d/e"',
        "}",
        f'echo "{token} begin"',
    ]
    redirect = '</dev/null >"$d/o" 2>"$d/e"'
    for index, snapshot_file in enumerate(files):
        quoted = shlex.quote(snapshot_file.command)
        command = f"/bin/sh -c {quoted} {redirect}"
        lines.append("t=$(now)")
        if snapshot_file.needs_root and not as_root:
            lines += [
                f'if {privileged} {quoted} {redirect}; then frame {index} 0 1 - "$t"',
                f'else r=$?; {command}; frame {index} $? 0 "$r" "$t"; fi',
            ]
        else:
            lines.append(f'{command}; frame {index} $? 0 - "$t"')
    lines.append(f'echo "{token} end"')
    return "\n".join(lines) + "\n"


# What one frame tells: index in the files, output, used sudo, sudo's refusal, remote seconds.
Frame = tuple[int, _Output, bool, int | None, float | None]


class FrameReader:
    """Cuts the script's stdout into frames as it arrives; a frame per finished command."""

    def __init__(self, token: str, count: int) -> None:
        self._header = token.encode() + b" "
        self._count = count
        self._buffer = bytearray()
        self._started = False
        self.finished = False
        self.no_temp_directory = False

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer.extend(data)
        frames: list[Frame] = []
        while not self.finished:
            newline = self._buffer.find(b"\n")
            if newline < 0:
                if len(self._buffer) > _MAX_HEADER and self._started:
                    raise ValueError("a frame header longer than any the script writes")
                return frames
            line = bytes(self._buffer[:newline])
            if not self._started:
                del self._buffer[: newline + 1]
                # Whatever a login shell printed before the script started is not output.
                self._started = line.endswith(self._header + b"begin")
                self.no_temp_directory = line.endswith(self._header + b"no-temp")
                self.finished = self.no_temp_directory
                continue
            if line == self._header + b"end":
                del self._buffer[: newline + 1]
                self.finished = True
                break
            frame = self._frame(line, newline)
            if frame is None:
                return frames  # its output has not all arrived yet
            frames.append(frame)
        return frames

    def _frame(self, line: bytes, newline: int) -> Frame | None:
        match = (
            _FRAME.fullmatch(line[len(self._header) :]) if line.startswith(self._header) else None
        )
        if match is None or int(match["index"]) >= self._count:
            raise ValueError(f"not a frame header: {line[:200]!r}")
        out_size, err_size = int(match["stdout"]), int(match["stderr"])
        body = newline + 1
        if len(self._buffer) < body + out_size + err_size:
            return None
        stdout = bytes(self._buffer[body : body + out_size])
        stderr = bytes(self._buffer[body + out_size : body + out_size + err_size])
        del self._buffer[: body + out_size + err_size]
        status = int(match["status"])
        refused = None if match["refused"] == b"-" else int(match["refused"])
        seconds = None
        if match["started"].isdigit() and match["ended"].isdigit():
            seconds = (int(match["ended"]) - int(match["started"])) / 1e9
        output = _Output(status if status < _SIGNALLED else -1, stdout, stderr)
        return int(match["index"]), output, match["sudo"] == b"1", refused, seconds


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
            f"{_where(target)}: the SSH connection failed while running the snapshot "
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
                        _Output(-1, b"", b"", timed_out=True), COMMAND_TIMEOUT, used_sudo=False
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


def _run(transport: paramiko.Transport, target: SshTarget, command_line: str) -> _Output:
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
            f"{_where(target)}: the SSH connection failed while running `{command_line}`: "
            f"{error or type(error).__name__}"
        ) from None


def _read_until_exit(channel: paramiko.Channel, deadline: float) -> _Output:
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
            return _Output(-1, bytes(stdout), bytes(stderr), timed_out=True)
        # The channel's file descriptor is readable when data, EOF or close arrived.
        select.select([channel], [], [], remaining)
        drain()
    drain()
    if not channel.status_event.wait(max(0.0, deadline - time.monotonic())):
        return _Output(-1, bytes(stdout), bytes(stderr), timed_out=True)
    return _Output(channel.exit_status, bytes(stdout), bytes(stderr))


# ---- writing the snapshot ----------------------------------------------------------------


def _remove_previous_snapshot(destination: Path, files: Sequence[SnapshotFile]) -> None:
    """Files of an earlier probe would read as this one's (a stale nvidia-smi.err above all)."""
    for name in (*(entry.name for entry in files), NVIDIA_SMI_FAILURE, MANIFEST):
        (destination / name).unlink(missing_ok=True)


def _make_private_directory(directory: Path) -> None:
    directory.mkdir(mode=SNAPSHOT_DIRECTORY_MODE, parents=True, exist_ok=True)
    # An existing directory keeps the mode it was made with: an earlier labsmith's 0755.
    directory.chmod(SNAPSHOT_DIRECTORY_MODE)


def _write_private(path: Path, data: bytes) -> None:
    """Write ``path`` as a new file that only its owner can read, whatever the umask."""
    path.unlink(missing_ok=True)  # O_CREAT's mode applies only to a file it creates
    descriptor = os.open(
        path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, SNAPSHOT_FILE_MODE
    )
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(data)


def _write_output(destination: Path, snapshot_file: SnapshotFile, output: _Output) -> None:
    if output.exit_status == 0:
        _write_private(destination / snapshot_file.name, output.stdout)
    elif snapshot_file.name == NVIDIA_SMI_OUTPUT:
        note = f"\n(labsmith: no exit within {COMMAND_TIMEOUT:g} s)\n" if output.timed_out else ""
        _write_private(
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
