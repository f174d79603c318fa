"""A throwaway OpenSSH server on 127.0.0.1, run as the current user in a temporary directory.

Shared by the integration tests and ``benchmarks/probe_loopback.py``. Keys are generated
per server; nothing outside the directory is touched except /run/sshd (below).
"""

import getpass
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from labsmith.facts.targets import SshTarget

SSHD = Path("/usr/sbin/sshd")  # sshd refuses to start unless run by its absolute path
SSH_KEYGEN = "ssh-keygen"
# Debian's sshd, started as root, needs its privilege separation directory; the service
# manager normally creates it at boot.
PRIVSEP_DIRECTORY = Path("/run/sshd")
START_TIMEOUT = 10.0


class SshdStartError(RuntimeError):
    pass


@dataclass(frozen=True)
class LoopbackSshd:
    address: str
    port: int
    user: str
    host_public_key: str  # "ssh-ed25519 AAAA..."
    client_key: Path  # private key whose public half is authorized
    known_hosts: Path  # trusts exactly this server's host key
    log: Path

    def accepted_logins(self) -> int:
        """Successful authentications so far: one per SSH connection that logged in."""
        return self.log.read_text(errors="replace").count("Accepted publickey")

    def known_hosts_line(self) -> str:
        return f"[{self.address}]:{self.port} {self.host_public_key}\n"

    def target(self, name: str = "loopback") -> SshTarget:
        """This server as a probe target, logging in with the authorized client key."""
        return SshTarget(
            name=name, address=self.address, port=self.port, user=self.user,
            key_file=self.client_key,
        )  # fmt: skip


@contextmanager
def running_sshd(directory: Path) -> Iterator[LoopbackSshd]:
    """Start sshd with fresh keys in ``directory`` (which must exist); stop it on exit."""
    host_key = _keygen(directory / "ssh_host_ed25519_key")
    client_key = _keygen(directory / "client_ed25519_key")
    authorized_keys = directory / "authorized_keys"
    authorized_keys.write_text(client_key.with_suffix(".pub").read_text())
    host_public_key = " ".join(host_key.with_suffix(".pub").read_text().split()[:2])
    if os.geteuid() == 0:
        PRIVSEP_DIRECTORY.mkdir(mode=0o755, exist_ok=True)
    log = directory / "sshd.log"
    # Another process may take the free port between the probe for it and sshd's bind.
    for _attempt in range(3):
        port = _free_port()
        config = _write_config(directory, port, host_key, authorized_keys)
        process = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config), "-E", str(log)])
        try:
            if _wait_until_listening(process, port):
                break
        except BaseException:
            _stop(process)
            raise
        _stop(process)
    else:
        raise SshdStartError(f"sshd did not start; its log:\n{_tail(log)}")
    server = LoopbackSshd(
        address="127.0.0.1",
        port=port,
        user=getpass.getuser(),
        host_public_key=host_public_key,
        client_key=client_key,
        known_hosts=directory / "known_hosts",
        log=log,
    )
    server.known_hosts.write_text(server.known_hosts_line())
    try:
        yield server
    finally:
        _stop(process)


def _keygen(path: Path) -> Path:
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
    )
    return path


def _write_config(directory: Path, port: int, host_key: Path, authorized_keys: Path) -> Path:
    config = directory / "sshd_config"
    config.write_text(
        f"Port {port}\n"
        "ListenAddress 127.0.0.1\n"
        f"HostKey {host_key}\n"
        f"AuthorizedKeysFile {authorized_keys}\n"
        f"PidFile {directory / 'sshd.pid'}\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "StrictModes no\n"
        "UsePAM no\n"
        "PermitRootLogin prohibit-password\n"
        "PrintMotd no\n"
        "LogLevel VERBOSE\n"
    )
    return config


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_listening(process: subprocess.Popen[bytes], port: int) -> bool:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tail(log: Path, lines: int = 20) -> str:
    if not log.is_file():
        return "(no log)"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
