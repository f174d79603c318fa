"""A real OpenSSH server on loopback for the SSH collector's tests."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.sshd import SSHD, LoopbackSshd, running_sshd


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackSshd]:
    if not SSHD.is_file():
        reason = f"{SSHD} is missing: the SSH integration tests need openssh-server"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (make test installs it)")
        pytest.skip(f"{reason}; install it, or run make test as root to have it installed")
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture
def known_hosts(sshd: LoopbackSshd, tmp_path: Path) -> Path:
    """A writable known_hosts trusting the loopback server (tests may change it)."""
    path = tmp_path / "known_hosts"
    path.write_text(sshd.known_hosts_line())
    return path
