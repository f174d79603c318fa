"""What the simulator leaves on disk: a 0600 state file and key, salted password hashes."""

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from labsmith.sim.auth import Authenticator, hash_password, password_matches, set_password
from labsmith.sim.handlers.base import ApiError
from labsmith.sim.state import StateFileError, default_state, load_state, save_state
from labsmith.sim.tls import write_server_certificate


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """The usual umask, under which a plainly created file is world-readable."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_state_file_and_the_directories_made_for_it_are_private(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    path = tmp_path / "labs" / "one" / "state.json"
    save_state(default_state(), path)
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700 and _mode(path.parent.parent) == 0o700
    assert _mode(tmp_path) == 0o755  # not made by labsmith: the user's to set


def test_a_readable_state_file_is_replaced_by_a_private_one(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    path = tmp_path / "state.json"
    path.write_text("{}")
    path.chmod(0o644)
    save_state(default_state(), path)
    assert _mode(path) == 0o600
    assert _mode(tmp_path) == 0o755


def test_the_private_key_is_0600_even_over_a_readable_one(tmp_path: Path) -> None:
    cert_dir = tmp_path / "tls"
    cert_dir.mkdir()
    stale = cert_dir / "server-key.pem"
    stale.write_text("an old key")
    stale.chmod(0o644)
    paths = write_server_certificate(cert_dir)
    assert paths.key_path == stale
    assert _mode(stale) == 0o600
    assert b"PRIVATE KEY" in stale.read_bytes()


def test_a_created_cert_dir_is_private(tmp_path: Path) -> None:
    paths = write_server_certificate(tmp_path / "new" / "tls")
    assert _mode(paths.key_path.parent) == 0o700
    assert _mode(paths.key_path) == 0o600


def test_passwords_are_salted_and_stored_with_their_parameters() -> None:
    first, second = hash_password("hunter2"), hash_password("hunter2")
    assert first != second
    assert first.startswith("$scrypt$ln=14,r=8,p=1$")
    assert password_matches(first, "hunter2") and password_matches(second, "hunter2")
    assert not password_matches(first, "hunter3")
    assert not password_matches("not a hash", "hunter2")


def test_the_state_file_holds_no_plain_or_unsalted_password(tmp_path: Path) -> None:
    state = default_state()
    set_password(state, "root@pam", "hunter2")
    path = tmp_path / "state.json"
    save_state(state, path)
    text = path.read_text()
    assert "hunter2" not in text
    assert "f52fbd32b2b3b86ff88ef6c490628285f482af15ddcb29541f94bcf526a3f6c7" not in text
    reloaded = load_state(path)
    ticket, _ = Authenticator(reloaded).login("root@pam", "hunter2")
    assert ticket.startswith("PVE:root@pam:")
    with pytest.raises(ApiError):
        Authenticator(reloaded).login("root@pam", "hunter3")


def _format_1(path: Path, password_sha256: str | None) -> None:
    state = default_state()
    save_state(state, path)
    data = json.loads(path.read_text())
    data["format"] = 1
    data["users"] = {
        "root@pam": {
            "userid": "root@pam",
            "password_sha256": password_sha256,
            "enable": True,
            "tokens": {},
            "comment": "",
        }
    }
    path.write_text(json.dumps(data))


def test_a_format_1_file_with_an_unsalted_password_is_refused_with_the_fix(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.json"
    _format_1(path, "f52fbd32b2b3b86ff88ef6c490628285f482af15ddcb29541f94bcf526a3f6c7")
    with pytest.raises(StateFileError) as refused:
        load_state(path)
    message = str(refused.value)
    assert str(path) in message and "users.root@pam" in message
    assert '"password_sha256" to null' in message and "--password-file" in message


def test_a_format_1_file_without_passwords_is_read(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    _format_1(path, None)
    state = load_state(path)
    assert state.users["root@pam"].password_hash is None
    assert "pve1" in state.nodes
