"""Probe this machine over SSH on loopback; compare with running the same commands locally.

Starts a throwaway OpenSSH sshd on 127.0.0.1 (the launcher the integration tests use),
collects a snapshot N times with ``collect_snapshot`` both ways (all commands in one channel,
the default, and the old one channel per command), and prints the wall time per probe (best
and median), the share of it spent connecting and authenticating (a bare connect, timed N
times), each command's median time from the manifests, and the same commands run here with
``subprocess`` (what a local-only collector would cost). The difference is the price of SSH:
the handshake once per probe, and per channel a round trip plus the remote login shell's
start-up (which reads ~/.bashrc). On a busy machine take the medians, not the best.
Needs /usr/sbin/sshd (``make system-deps``). Run: ``.venv/bin/python benchmarks/probe_loopback.py``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labsmith.facts.collect import collect_snapshot
from labsmith.facts.snapshot import MANIFEST, SNAPSHOT_FILES
from labsmith.facts.ssh import connect

# The sshd launcher lives with the integration tests; this script reuses it from the checkout.
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.integration.sshd import SSHD, LoopbackSshd, running_sshd  # noqa: E402


def connect_only(server: LoopbackSshd, runs: int) -> list[float]:
    """Seconds to connect, verify the host key and authenticate, then close: no commands."""
    walls = []
    for _run in range(runs):
        started = time.perf_counter()
        connect(server.target(), server.user, server.known_hosts, False, 10.0).close()
        walls.append(time.perf_counter() - started)
    return walls


def probe_over_ssh(
    server: LoopbackSshd, workdir: Path, runs: int, *, one_channel: bool
) -> tuple[list[float], dict[str, list[float]]]:
    """Wall seconds of each probe, and each command's seconds per probe (from its manifest)."""
    target = server.target()
    walls: list[float] = []
    per_command: dict[str, list[float]] = {entry.name: [] for entry in SNAPSHOT_FILES}
    for run in range(runs):
        destination = workdir / f"probe-{one_channel}-{run}"
        started = time.perf_counter()
        collect_snapshot(
            target, destination, known_hosts=server.known_hosts, one_channel=one_channel
        )
        walls.append(time.perf_counter() - started)
        commands = json.loads((destination / MANIFEST).read_text())["commands"]
        for name, entry in commands.items():
            per_command[name].append(entry["seconds"])
    return walls, per_command


def run_locally(runs: int) -> tuple[list[float], dict[str, list[float]]]:
    """The same commands under /bin/sh here, as the collector runs them remotely."""
    environment = {**os.environ, "LC_ALL": "C"}
    walls: list[float] = []
    per_command: dict[str, list[float]] = {entry.name: [] for entry in SNAPSHOT_FILES}
    for _run in range(runs):
        started = time.perf_counter()
        for entry in SNAPSHOT_FILES:
            command_started = time.perf_counter()
            subprocess.run(
                ["/bin/sh", "-c", entry.command],
                capture_output=True,
                stdin=subprocess.DEVNULL,
                env=environment,
                check=False,
            )
            per_command[entry.name].append(time.perf_counter() - command_started)
        walls.append(time.perf_counter() - started)
    return walls, per_command


def milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:9.1f}"


def report(
    ssh: tuple[list[float], dict[str, list[float]]],
    per_channel: tuple[list[float], dict[str, list[float]]],
    connecting: list[float],
    local: tuple[list[float], dict[str, list[float]]],
    runs: int,
) -> None:
    ssh_walls, ssh_commands = ssh
    local_walls, local_commands = local
    print(f"{len(SNAPSHOT_FILES)} commands, {runs} runs; milliseconds")
    print(f"{'':24}{'best':>9} {'median':>9}")
    rows = (
        ("probe, one channel", ssh_walls),
        ("probe, channel each", per_channel[0]),
        ("connect + auth only", connecting),
        ("local subprocess", local_walls),
    )
    for label, walls in rows:
        print(f"{label:24}{milliseconds(min(walls))} {milliseconds(statistics.median(walls))}")
    share = statistics.median(connecting) / statistics.median(ssh_walls)
    print(f"{'connect+auth share':24}{'':9} {share * 100:8.0f}%  (of the one-channel median)")
    commands_total = statistics.median(
        sum(seconds[run] for seconds in ssh_commands.values()) for run in range(runs)
    )
    print(f"{'sum of command times':24}{'':9} {milliseconds(commands_total)}  (one channel)")
    print()
    print(f"per command (median){'':4}{'SSH':>9} {'local':>9} {'SSH-local':>9}  (one channel)")
    for entry in SNAPSHOT_FILES:
        over_ssh = statistics.median(ssh_commands[entry.name])
        here = statistics.median(local_commands[entry.name])
        print(
            f"{entry.name:24}{milliseconds(over_ssh)} {milliseconds(here)} "
            f"{milliseconds(over_ssh - here)}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="probes to time (default 5)")
    arguments = parser.parse_args()
    if not SSHD.is_file():
        print(f"{SSHD} is missing: install openssh-server (make system-deps)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as workdir:
        server_dir = Path(workdir) / "sshd"
        server_dir.mkdir()
        with running_sshd(server_dir) as server:
            ssh = probe_over_ssh(server, Path(workdir), arguments.runs, one_channel=True)
            per_channel = probe_over_ssh(server, Path(workdir), arguments.runs, one_channel=False)
            connecting = connect_only(server, arguments.runs)
        local = run_locally(arguments.runs)
    report(ssh, per_channel, connecting, local, arguments.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
