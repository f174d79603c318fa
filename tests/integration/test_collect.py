"""The SSH collector against a real OpenSSH server on loopback: this machine is the host."""

import json
import os
import shutil
import socket
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from labsmith.facts.collect import (
    NVIDIA_SMI_FAILURE,
    CollectResult,
    collect_snapshot,
    collect_snapshots,
)
from labsmith.facts.snapshot import MANIFEST, SNAPSHOT_FILES, load_snapshot
from labsmith.facts.ssh import HostUnreachableError
from labsmith.facts.targets import InventoryHostError, SshTarget, targets_from_inventory
from labsmith.inventory.sources import load_inventory
from tests.integration.sshd import LoopbackSshd

pytestmark = pytest.mark.integration

# The PATH sshd gives a session (root's; a normal user's has no sbin directories).
SESSION_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ALWAYS_PRESENT = ("cmdline", "cpuinfo", "os-release", "uname")


def manifest(destination: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((destination / MANIFEST).read_text())
    return data


def fingerprint(known_hosts: Path) -> str:
    """The SHA256 fingerprint OpenSSH shows for the one key of a known_hosts file."""
    listing = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(known_hosts)], capture_output=True, text=True, check=True
    ).stdout
    return listing.split()[1]


def new_key(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def other_host_key(directory: Path) -> str:
    """A host key's known_hosts form ("ssh-ed25519 AAAA..."); not the loopback server's."""
    public_key = new_key(directory / "impostor_key").with_suffix(".pub")
    return " ".join(public_key.read_text().split()[:2])


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: nothing listens there


# How sshd logs the end of a connection: a clean close, or a reset when the client's socket
# closed with sshd's last packets unread.
CONNECTION_ENDS = ("Connection closed by", "Read error from", "Connection reset by")


def connection_end(log: list[str], port: str) -> int | None:
    """The index of the log line where the connection from ``port`` ended, if it did."""
    for index, line in enumerate(log):
        if line.startswith(CONNECTION_ENDS) and f" port {port}" in line:
            return index
    return None


def wait_for_connection_ends(sshd: LoopbackSshd, start: int, ports: list[str]) -> list[str]:
    """The log from ``start`` once it shows every connection's end (logged after the client's)."""
    deadline = time.monotonic() + 10
    while True:
        log = sshd.log.read_text(errors="replace")[start:].splitlines()
        ended = all(connection_end(log, port) is not None for port in ports)
        if ended or time.monotonic() > deadline:
            return log
        time.sleep(0.05)


def test_a_probe_collects_a_real_snapshot_of_this_machine(
    sshd: LoopbackSshd, known_hosts: Path, tmp_path: Path
) -> None:
    destination = tmp_path / "loopback"
    result = collect_snapshot(sshd.target(), destination, known_hosts=known_hosts)

    commands = manifest(destination)["commands"]
    assert list(commands) == [entry.name for entry in SNAPSHOT_FILES]
    for entry in SNAPSHOT_FILES:
        assert commands[entry.name]["command"] == entry.command
        assert isinstance(commands[entry.name]["exit_status"], int)
        assert commands[entry.name]["seconds"] >= 0
        status = commands[entry.name]["exit_status"]
        assert result.exit_statuses[entry.name] == status
        assert (destination / entry.name).is_file() == (status == 0), entry.name
    for name in ALWAYS_PRESENT:
        assert commands[name]["exit_status"] == 0
        assert (destination / name).read_text().strip(), name
    assert (destination / "uname").read_text().startswith("Linux ")


def test_a_snapshot_is_readable_by_its_owner_only_whatever_the_umask(
    sshd: LoopbackSshd, known_hosts: Path, tmp_path: Path
) -> None:
    out = tmp_path / "snapshots"
    earlier = out / "earlier"  # a directory an older labsmith made 0755
    earlier.mkdir(parents=True)
    earlier.chmod(0o755)
    (earlier / "dmesg").write_text("stale")
    (earlier / "dmesg").chmod(0o644)
    previous_umask = os.umask(0o022)
    try:
        outcomes = collect_snapshots(
            [sshd.target("earlier"), sshd.target("fresh")],
            out,
            known_hosts=known_hosts,
        )
    finally:
        os.umask(previous_umask)
    assert all(isinstance(outcome, CollectResult) for outcome in outcomes.values())
    for host in ("earlier", "fresh"):
        destination = out / host
        assert stat.S_IMODE(destination.stat().st_mode) == 0o700, host
        files = sorted(destination.iterdir())
        assert MANIFEST in {path.name for path in files}
        assert "cmdline" in {path.name for path in files}
        for path in files:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_the_snapshot_root_is_made_private_when_the_probe_creates_it(
    sshd: LoopbackSshd, known_hosts: Path, tmp_path: Path
) -> None:
    out = tmp_path / "new" / "snapshots"
    previous_umask = os.umask(0o022)
    try:
        collect_snapshots([sshd.target()], out, known_hosts=known_hosts)
    finally:
        os.umask(previous_umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o700


def test_commands_missing_here_fail_and_leave_no_output(
    sshd: LoopbackSshd, known_hosts: Path, tmp_path: Path
) -> None:
    destination = tmp_path / "loopback"
    collect_snapshot(sshd.target(), destination, known_hosts=known_hosts)

    commands = manifest(destination)["commands"]
    missing = {"nvidia-smi.xml": "nvidia-smi", "rocm-smi.json": "rocm-smi", "sb-state": "mokutil"}
    for name, program in missing.items():
        if shutil.which(program, path=SESSION_PATH) is None:
            assert commands[name]["exit_status"] == 127, name
            assert not (destination / name).exists(), name
    if shutil.which("nvidia-smi", path=SESSION_PATH) is None:
        assert "not found" in (destination / NVIDIA_SMI_FAILURE).read_text()


def test_the_snapshot_loads(sshd: LoopbackSshd, known_hosts: Path, tmp_path: Path) -> None:
    destination = tmp_path / "loopback"
    collect_snapshot(sshd.target(), destination, known_hosts=known_hosts)

    facts = load_snapshot(destination)

    assert facts.cmdline is not None
    assert facts.cpu is not None
    assert facts.os_release is not None
    assert facts.uname is not None
    if shutil.which("nvidia-smi", path=SESSION_PATH) is None:
        assert facts.nvidia_smi is None
        assert facts.nvidia_smi_failure is not None


def test_a_new_probe_replaces_every_file_of_the_previous_one(
    sshd: LoopbackSshd, known_hosts: Path, tmp_path: Path
) -> None:
    destination = tmp_path / "loopback"
    destination.mkdir()
    for name in [entry.name for entry in SNAPSHOT_FILES] + [NVIDIA_SMI_FAILURE]:
        (destination / name).write_text("stale\n")
    (destination / "notes.txt").write_text("the user's own file\n")

    result = collect_snapshot(sshd.target(), destination, known_hosts=known_hosts)

    for name, status in result.exit_statuses.items():
        path = destination / name
        assert not path.exists() if status else path.read_text() != "stale\n", name
    if result.exit_statuses["nvidia-smi.xml"] == 0:
        assert not (destination / NVIDIA_SMI_FAILURE).exists()
    assert (destination / "notes.txt").read_text() == "the user's own file\n"


def test_b_one_probe_is_exactly_one_ssh_connection(
    sshd: LoopbackSshd, known_hosts: Path, tmp_path: Path
) -> None:
    before = sshd.accepted_logins()

    collect_snapshot(sshd.target(), tmp_path / "loopback", known_hosts=known_hosts)

    assert sshd.accepted_logins() == before + 1


def test_c_an_unknown_host_key_is_refused_with_its_fingerprint(
    sshd: LoopbackSshd, tmp_path: Path
) -> None:
    empty_known_hosts = tmp_path / "known_hosts"
    empty_known_hosts.touch()
    destination = tmp_path / "loopback"

    with pytest.raises(HostUnreachableError) as refused:
        collect_snapshot(sshd.target(), destination, known_hosts=empty_known_hosts)

    message = str(refused.value)
    assert fingerprint(sshd.known_hosts) in message
    assert f"127.0.0.1:{sshd.port}" in message
    assert f"ssh-keyscan -p {sshd.port} 127.0.0.1 >> {empty_known_hosts}" in message
    assert "--accept-new-host-key" in message
    assert refused.value.exit_code == 3
    assert not destination.exists()
    assert empty_known_hosts.read_text() == ""


def test_c_accept_new_host_key_records_the_key_and_probes(
    sshd: LoopbackSshd, tmp_path: Path
) -> None:
    new_known_hosts = tmp_path / "known_hosts"
    new_known_hosts.write_text("# kept as it is\n[192.0.2.1]:2222 " + other_host_key(tmp_path))

    collect_snapshot(
        sshd.target(),
        tmp_path / "first",
        known_hosts=new_known_hosts,
        accept_new_host_key=True,
    )

    lines = new_known_hosts.read_text().splitlines()
    assert lines[0] == "# kept as it is"
    assert lines[1].startswith("[192.0.2.1]:2222 ssh-ed25519 ")
    assert lines[2:] == [sshd.known_hosts_line().strip()]
    # The recorded key is trusted from now on, without the flag.
    collect_snapshot(sshd.target(), tmp_path / "second", known_hosts=new_known_hosts)


def test_d_a_changed_host_key_is_refused_even_when_accepting_new_keys(
    sshd: LoopbackSshd, tmp_path: Path
) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {other_host_key(tmp_path)}\n")
    before = known_hosts.read_text()
    destination = tmp_path / "loopback"

    with pytest.raises(HostUnreachableError) as refused:
        collect_snapshot(
            sshd.target(), destination, known_hosts=known_hosts, accept_new_host_key=True
        )

    message = str(refused.value)
    assert "CHANGED" in message
    assert fingerprint(sshd.known_hosts) in message
    assert f"ssh-keygen -R '[127.0.0.1]:{sshd.port}'" in message
    assert known_hosts.read_text() == before
    assert not destination.exists()


def test_e_a_closed_port_is_refused_quickly(sshd: LoopbackSshd, tmp_path: Path) -> None:
    port = closed_port()
    target = SshTarget(name="nobody", address="127.0.0.1", port=port, key_file=sshd.client_key)
    started = time.monotonic()

    with pytest.raises(HostUnreachableError) as refused:
        collect_snapshot(target, tmp_path / "nobody", known_hosts=sshd.known_hosts)

    assert time.monotonic() - started < 2
    assert f"nobody (127.0.0.1:{port}): connection refused" in str(refused.value)
    assert not (tmp_path / "nobody").exists()


def test_a_key_the_server_does_not_accept_fails_authentication(
    sshd: LoopbackSshd, known_hosts: Path, tmp_path: Path
) -> None:
    stranger_key = new_key(tmp_path / "stranger_key")
    target = SshTarget(
        name="loopback", address="127.0.0.1", port=sshd.port, user=sshd.user, key_file=stranger_key
    )

    with pytest.raises(HostUnreachableError, match=f"authentication as {sshd.user} failed"):
        collect_snapshot(target, tmp_path / "loopback", known_hosts=known_hosts)


def test_f_many_hosts_are_probed_concurrently(
    sshd: LoopbackSshd, known_hosts: Path, tmp_path: Path
) -> None:
    targets = [sshd.target("first"), sshd.target("second")]
    log_before = len(sshd.log.read_text(errors="replace"))
    finished: list[str] = []

    outcomes = collect_snapshots(
        targets,
        tmp_path,
        known_hosts=known_hosts,
        on_done=lambda target, outcome: finished.append(target.name),
    )

    assert list(outcomes) == ["first", "second"]
    assert sorted(finished) == ["first", "second"]
    for name, outcome in outcomes.items():
        assert isinstance(outcome, CollectResult)
        assert outcome.destination == tmp_path / name
        assert manifest(tmp_path / name)["host"] == name
    # Both sessions were logged in before either ended.
    log = sshd.log.read_text(errors="replace")[log_before:].splitlines()
    ports = [line.split(" port ")[1].split()[0] for line in log if "Accepted publickey" in line]
    assert len(ports) == 2, log
    log = wait_for_connection_ends(sshd, log_before, ports)
    ends = [connection_end(log, port) for port in ports]
    last_login = max(index for index, line in enumerate(log) if "Accepted publickey" in line)
    assert last_login < min(end if end is not None else len(log) for end in ends), "\n".join(log)


def test_unreachable_hosts_are_returned_beside_the_probed_ones(
    sshd: LoopbackSshd, known_hosts: Path, tmp_path: Path
) -> None:
    down = SshTarget(name="down", address="127.0.0.1", port=closed_port())

    outcomes = collect_snapshots([down, sshd.target("up")], tmp_path, known_hosts=known_hosts)

    assert isinstance(outcomes["down"], HostUnreachableError)
    assert isinstance(outcomes["up"], CollectResult)


def test_an_inventory_host_is_probed_with_its_connection_variables(
    sshd: LoopbackSshd, known_hosts: Path, write_tree: Any, tmp_path: Path
) -> None:
    lab = write_tree(
        {
            "lab/hosts.yml": "all:\n  hosts:\n    node1:\n    node2:\n",
            "lab/host_vars/node1.yml": (
                f"ansible_host: 127.0.0.1\nansible_port: {sshd.port}\n"
                f"ansible_user: {sshd.user}\nansible_ssh_private_key_file: {sshd.client_key}\n"
            ),
        }
    )
    inventory = load_inventory(lab / "lab")

    [target] = targets_from_inventory(inventory, ["node1"])
    assert target == sshd.target("node1")
    collect_snapshot(target, tmp_path / "node1", known_hosts=known_hosts)
    assert manifest(tmp_path / "node1")["host"] == "node1"

    with pytest.raises(InventoryHostError, match=r"node9: not a host .*node1, node2"):
        targets_from_inventory(inventory, ["node1", "node9"])
