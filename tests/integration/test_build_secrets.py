"""What a build leaves on disk, and how it stops: real ansible-runner and ansible-playbook
running a local playbook (connection: local) in place of the collection's, so no packet
leaves this machine."""

import io
import json
import os
import signal
import socket
import stat
import sys
import threading
import time
from pathlib import Path

import pytest
from ansible.parsing.vault import VaultLib, VaultSecret
from click.testing import CliRunner

import labsmith.ansible.runner as runner_module
from labsmith.ansible.runner import Event, run_playbook
from labsmith.cli.build import build
from labsmith.orchestrate.build import BuildTarget, make_run_dir
from tests.conftest import FIXTURES

pytestmark = pytest.mark.integration

CANARIES = {
    "LABSMITH_PVE_TOKEN_SECRET": "canary-token-secret-4f1d9a",
    "LABSMITH_PVE_ROOT_PASSWORD": "canary-root-password-77c2e0",
    "LABSMITH_PVE_TOKEN": "root@pam!labsmith=canary-token-b81e3c",
}
VAULT_PASSWORD = "canary-vault-password-5a9e71"

PLAYBOOK = """\
- name: Stand in for the collection's playbook
  hosts: all
  gather_facts: false
  tasks:
    - name: Use the vaulted variable
      ansible.builtin.assert:
        that: canary_vaulted == "vaulted-ok"
    - name: Show the environment the modules get
      ansible.builtin.command: env
      changed_when: false
"""

SLOW_PLAYBOOK = """\
- name: Stand in for the collection's playbook
  hosts: all
  gather_facts: false
  tasks:
    - name: Say the run started
      ansible.builtin.file:
        path: {started}
        state: touch
    - name: Take a long time
      ansible.builtin.command: sleep 60
      changed_when: false
"""


def stand_in_collection(
    root: Path, monkeypatch: pytest.MonkeyPatch, playbooks: dict[str, str]
) -> None:
    for name, text in playbooks.items():
        path = root / "playbooks" / f"{name}.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.setattr(runner_module, "collection_root", lambda: root)


def local_inventory(directory: Path, vaulted: str | None = None) -> Path:
    host_vars = directory / "host_vars"
    host_vars.mkdir(parents=True)
    hosts = {
        "all": {
            "hosts": {
                "localhost": {
                    "ansible_connection": "local",
                    "ansible_python_interpreter": sys.executable,
                }
            }
        }
    }
    (directory / "hosts.yml").write_text(json.dumps(hosts))
    if vaulted is not None:
        indented = "\n".join(f"  {line}" for line in vaulted.splitlines())
        (host_vars / "localhost.yml").write_text(f"canary_vaulted: !vault |\n{indented}\n")
    return directory


def encrypt(text: str, password: str) -> str:
    vault = VaultLib([("default", VaultSecret(password.encode()))])
    return bytes(vault.encrypt(text)).decode()


def assert_private_and_clean(run_root: Path, secrets: list[str]) -> int:
    """No byte of any secret under run_root; each file 0600, each directory 0700."""
    assert stat.S_IMODE(run_root.stat().st_mode) == 0o700
    checked = 0
    for root, directories, files in os.walk(run_root):
        for name in directories:
            path = Path(root, name)
            if not path.is_symlink():
                assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
        for name in files:
            path = Path(root, name)
            if path.is_symlink():
                continue
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
            data = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, f"{secret} in {path}"
            checked += 1
    return checked


def test_a_run_keeps_no_secret_and_passes_the_vault_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in CANARIES.items():
        monkeypatch.setenv(name, value)
    stand_in_collection(tmp_path / "collection", monkeypatch, {"canary": PLAYBOOK})
    password_file = tmp_path / "vault-password"
    password_file.write_text(VAULT_PASSWORD + "\n")
    inventory = local_inventory(tmp_path / "lab", encrypt("vaulted-ok", VAULT_PASSWORD))
    run_root = tmp_path / "runs"
    run_dir = make_run_dir(run_root, check=False)

    result = run_playbook(
        "canary", inventory, run_dir / "ansible", vault_password_file=password_file
    )

    assert result.status == "successful", result
    assert result.hosts["localhost"].ok == 2
    [command_file] = (run_dir / "ansible" / "artifacts").glob("*/command")
    recorded = json.loads(command_file.read_text())
    option = recorded["command"].index("--vault-password-file")
    assert recorded["command"][option + 1] == str(password_file.resolve())
    assert "HOME" in recorded["env"] and not set(CANARIES) & set(recorded["env"])
    assert "StrictHostKeyChecking=yes" in recorded["env"]["ANSIBLE_SSH_ARGS"]
    # The module's own environment (the env task's output) is in the events: checked too.
    checked = assert_private_and_clean(run_root, [*CANARIES.values(), VAULT_PASSWORD])
    assert checked > 5


def test_build_dry_run_keeps_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real host playbook, through the CLI, with a vaulted inventory: Ansible must
    decrypt the host's vars too (the host has no passthrough GPU, so the play ends for it
    after reading them), and the run directory holds no canary. The host's address is a
    closed loopback port, so the probe sends nothing off this machine."""
    for name, value in CANARIES.items():
        monkeypatch.setenv(name, value)
    with socket.socket() as probe_port:
        probe_port.bind(("127.0.0.1", 0))
        closed_port = probe_port.getsockname()[1]
    lab = tmp_path / "lab"
    source = FIXTURES / "inventories" / "vaulted"
    for path in source.rglob("*"):
        if path.is_file():
            target = lab / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    with (lab / "host_vars" / "pve1.yml").open("a") as stream:
        stream.write(f"ansible_host: 127.0.0.1\nansible_port: {closed_port}\n")
    password_file = FIXTURES / "inventories" / "vault-password.txt"
    run_root = tmp_path / "runs"

    outcome = CliRunner().invoke(
        build,
        ["-i", str(lab), "--vault-password-file", str(password_file), "--hosts", "--dry-run",
         "--run-dir", str(run_root)],
    )  # fmt: skip

    assert outcome.exit_code == 0, outcome.output
    assert "No changes" in outcome.output
    secrets = [*CANARIES.values(), password_file.read_text().strip()]
    assert assert_private_and_clean(run_root, secrets) > 5


def test_one_ctrl_c_stops_the_playbook_and_shows_what_was_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = tmp_path / "started"
    stand_in_collection(
        tmp_path / "collection", monkeypatch, {"host": SLOW_PLAYBOOK.format(started=started)}
    )
    inventory = local_inventory(tmp_path / "lab")
    target = BuildTarget(source=inventory, lab=None, hosts=["localhost"])  # type: ignore[arg-type]
    monkeypatch.setattr("labsmith.cli.build.prepare", lambda *arguments: target)
    monkeypatch.setattr("labsmith.cli.build.probe_stage", lambda *arguments, **options: [])

    def interrupt_once_started() -> None:
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_once_started, daemon=True).start()
    began = time.monotonic()
    outcome = CliRunner().invoke(
        build, ["-i", str(inventory), "--hosts", "--yes", "--run-dir", str(tmp_path / "runs")]
    )

    assert outcome.exit_code == 130, outcome.output
    assert time.monotonic() - began < 45  # the sleep task alone takes 60 s
    assert "Interrupted" in outcome.output and "the playbook was stopped" in outcome.output
    assert "localhost" in outcome.output  # the per-host table so far
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_cancel_stops_a_run_and_keeps_the_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = tmp_path / "started"
    stand_in_collection(
        tmp_path / "collection", monkeypatch, {"slow": SLOW_PLAYBOOK.format(started=started)}
    )
    seen: list[Event] = []

    def cancel() -> bool:
        return any(event.task == "Take a long time" for event in seen)

    began = time.monotonic()
    result = run_playbook(
        "slow", local_inventory(tmp_path / "lab"), tmp_path / "run", on_event=seen.append,
        cancel=cancel,
    )  # fmt: skip

    assert result.status == "canceled"
    assert time.monotonic() - began < 45
    assert result.hosts["localhost"].changed == 1  # the touch, before the cancel


def test_a_second_ctrl_c_leaves_at_once(tmp_path: Path) -> None:
    from rich.console import Console

    from labsmith.cli.build import Interrupt

    interrupt = Interrupt(Console(file=io.StringIO()))
    interrupt(signal.SIGINT, None)
    assert interrupt.cancel() is True
    with pytest.raises(KeyboardInterrupt):
        interrupt(signal.SIGINT, None)
