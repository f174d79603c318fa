"""An SSH connection to a probed host, as OpenSSH makes one with StrictHostKeyChecking=yes.

Host keys are verified against the system-wide and the user's known_hosts; an unknown key is
refused with its fingerprint (or recorded, with ``accept_new_host_key``, as ``accept-new``
does), a changed key is always refused. Authentication uses the SSH agent and key files
only; labsmith never asks for a password.
"""

import logging
import socket
import threading
from pathlib import Path

import paramiko

from labsmith.errors import LabsmithError
from labsmith.facts.targets import SshTarget

log = logging.getLogger(__name__)

SYSTEM_KNOWN_HOSTS = Path("/etc/ssh/ssh_known_hosts")
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


def connect(
    target: SshTarget,
    user: str,
    known_hosts: Path | None,
    accept_new_host_key: bool,
    timeout: float,
) -> paramiko.SSHClient:
    user_known_hosts = known_hosts or Path("~/.ssh/known_hosts").expanduser()
    if target.key_file is not None and not target.key_file.is_file():
        raise HostUnreachableError(
            f"{where(target)}: SSH key file {target.key_file} not found; "
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
                f"{where(target)}: cannot read the known_hosts file {path}: {error.strerror}"
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
        f"{where(target)}: unknown SSH host key {key.get_name()} {key.fingerprint} (not in "
        f"{known_hosts} nor {SYSTEM_KNOWN_HOSTS}); check that fingerprint on the host "
        f"(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then run `ssh-keyscan -p "
        f"{target.port} {target.address} >> {known_hosts}`"
    )


def _describe_connect_error(
    target: SshTarget, user: str, known_hosts: Path, timeout: float, error: BaseException
) -> str:
    place = where(target)
    if isinstance(error, paramiko.BadHostKeyException):
        return (
            f"{place}: the SSH host key CHANGED: the host sent {error.key.get_name()} "
            f"{error.key.fingerprint}, known_hosts has {error.expected_key.get_name()} "
            f"{error.expected_key.fingerprint}. Refused (even with --accept-new-host-key): "
            "someone may be intercepting the connection. If the host was reinstalled, check "
            f"the new fingerprint on it, then `ssh-keygen -R '{_known_hosts_name(target)}' "
            f"-f {known_hosts}` and probe again"
        )
    if isinstance(error, paramiko.AuthenticationException):
        return (
            f"{place}: SSH authentication as {user} failed ({error}); labsmith uses the SSH "
            "agent and key files, never passwords: load the key with ssh-add, or set "
            "ansible_user and ansible_ssh_private_key_file"
        )
    if isinstance(error, socket.gaierror):
        return f"{place}: cannot resolve {target.address} ({error.strerror}); check ansible_host"
    if isinstance(error, ConnectionRefusedError):
        return (
            f"{place}: connection refused; is sshd running there, "
            "and is the port right (ansible_port)?"
        )
    if isinstance(error, TimeoutError):
        return (
            f"{place}: no answer within {timeout:g} s; is the host up, and are the address "
            "and port right?"
        )
    if isinstance(error, OSError):
        return f"{place}: cannot connect: {error.strerror or error}"
    return f"{place}: the SSH handshake failed: {error or type(error).__name__}"


def where(target: SshTarget) -> str:
    return f"{target.name} ({target.address}:{target.port})"


def _known_hosts_name(target: SshTarget) -> str:
    """How known_hosts names the host, as paramiko and OpenSSH look it up."""
    return target.address if target.port == 22 else f"[{target.address}]:{target.port}"
