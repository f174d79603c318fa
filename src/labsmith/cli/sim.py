"""``labsmith sim serve``: a Proxmox VE API simulator on loopback HTTPS."""

import json
import signal
import sys
import tempfile
import threading
import uuid
from pathlib import Path
from types import FrameType

import click

from labsmith.sim.api import Durations, Simulator
from labsmith.sim.auth import add_token, set_password
from labsmith.sim.faults import FaultPlan, FaultSpecError, parse_lose_node, parse_task_failure
from labsmith.sim.schema import SCHEMA_VERSIONS, ApiSchema
from labsmith.sim.seed import state_from_inventory
from labsmith.sim.server import start_server
from labsmith.sim.state import ClusterState, default_state, load_state, save_state
from labsmith.sim.tls import write_server_certificate

DEFAULT_TOKEN = "root@pam!labsmith"  # noqa: S105 - a token id; its secret is generated


@click.group()
def sim() -> None:
    """Simulate a Proxmox VE cluster's API (to try a plan before touching a real one)."""


def _durations(values: tuple[str, ...]) -> Durations:
    durations = Durations()
    for value in values:
        task_type, separator, seconds = value.rpartition("=")
        try:
            number = float(seconds)
        except ValueError:
            number = -1.0
        if number < 0:
            raise click.BadParameter(
                f"{value!r}: write SECONDS or TYPE=SECONDS, e.g. 2 or qmcreate=2",
                param_hint="--task-seconds",
            )
        if separator:
            durations.by_type[task_type] = number
        else:
            durations.default = number
    return durations


def _faults(
    seed: int,
    error_rate: float,
    drop_rate: float,
    slow_rate: float,
    slow_seconds: float,
    task_failures: tuple[str, ...],
    task_failure_rate: float,
    lose_nodes: tuple[str, ...],
) -> FaultPlan:
    try:
        return FaultPlan(
            seed=seed,
            error_rate=error_rate,
            drop_rate=drop_rate,
            slow_rate=slow_rate,
            slow_seconds=slow_seconds,
            task_failures=dict(parse_task_failure(text) for text in task_failures),
            task_failure_rate=task_failure_rate,
            lose_nodes=dict(parse_lose_node(text) for text in lose_nodes),
        )
    except FaultSpecError as error:
        raise click.BadParameter(str(error)) from error


def _initial_state(
    state_file: Path | None, seed_from: Path | None, vault_password_file: Path | None
) -> ClusterState:
    if state_file is not None and state_file.exists():
        if seed_from is not None:
            raise click.UsageError(
                f"--state {state_file} already holds a lab; remove the file to seed it again "
                f"from {seed_from}"
            )
        return load_state(state_file)
    if seed_from is not None:
        return state_from_inventory(seed_from, vault_password_file)
    return default_state()


@sim.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8006,
    show_default=True,
    help="Port on 127.0.0.1; 0 picks a free one.",
)
@click.option(
    "--pve-version",
    type=click.Choice(SCHEMA_VERSIONS),
    default=SCHEMA_VERSIONS[-1],
    show_default=True,
    help="Bundled API schema to serve.",
)
@click.option(
    "--schema",
    "schema_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A schema file instead: a node's /usr/share/pve-docs/api-viewer/apidata.js.",
)
@click.option(
    "--state",
    "state_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Keep the simulated cluster in this JSON file (read at start, written on change).",
)
@click.option(
    "--seed-from",
    type=click.Path(path_type=Path),
    help="Start with the nodes, storages, bridges and GPUs this inventory declares.",
)
@click.option(
    "--vault-password-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="For --seed-from inventories with vault-encrypted files.",
)
@click.option(
    "--cert-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where to write the CA and server certificate (default: a new temporary directory).",
)
@click.option(
    "--token",
    "token_id",
    default=DEFAULT_TOKEN,
    show_default=True,
    help="API token id (user@realm!name) to create; its secret is printed once.",
)
@click.option(
    "--password-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="root@pam's password for ticket logins, read from this file.",
)
@click.option(
    "--task-seconds",
    multiple=True,
    default=("0.5",),
    show_default=True,
    help="Task duration: SECONDS for all, or TYPE=SECONDS (qmcreate=2). Repeatable.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the fault stream: the same seed and requests give the same faults.",
)
@click.option(
    "--fault-error-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of requests answered 503 before anything happens.",
)
@click.option(
    "--fault-drop-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of connections closed without an answer (half after processing).",
)
@click.option(
    "--fault-slow-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of requests delayed by --fault-slow-seconds.",
)
@click.option("--fault-slow-seconds", type=click.FloatRange(0), default=1.0, show_default=True)
@click.option(
    "--fault-task",
    "fault_tasks",
    multiple=True,
    help="TYPE=EXITSTATUS: tasks of TYPE (or *) end with this error. Repeatable.",
)
@click.option(
    "--fault-task-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="With --fault-task: share of those tasks that fail (0: all of them).",
)
@click.option(
    "--fault-lose-node",
    "lose_nodes",
    multiple=True,
    help="NODE@N: NODE goes offline after the Nth request. Repeatable.",
)
def serve(
    port: int,
    pve_version: str,
    schema_file: Path | None,
    state_file: Path | None,
    seed_from: Path | None,
    vault_password_file: Path | None,
    cert_dir: Path | None,
    token_id: str,
    password_file: Path | None,
    task_seconds: tuple[str, ...],
    seed: int,
    fault_error_rate: float,
    fault_drop_rate: float,
    fault_slow_rate: float,
    fault_slow_seconds: float,
    fault_tasks: tuple[str, ...],
    fault_task_rate: float,
    lose_nodes: tuple[str, ...],
) -> None:
    """Serve the Proxmox VE API on https://127.0.0.1:PORT until stopped.

    Prints one JSON line first: {"url", "token", "ca"}. Point proxmoxer (or labsmith) at the
    url with the token and verify TLS against the ca file.
    """
    if "!" not in token_id or "@" not in token_id.split("!")[0]:
        raise click.BadParameter(
            "write user@realm!name, e.g. root@pam!labsmith", param_hint="--token"
        )
    schema = ApiSchema.load(schema_file) if schema_file else ApiSchema.bundled(pve_version)
    durations = _durations(task_seconds)
    faults = _faults(
        seed,
        fault_error_rate,
        fault_drop_rate,
        fault_slow_rate,
        fault_slow_seconds,
        fault_tasks,
        fault_task_rate,
        lose_nodes,
    )
    state = _initial_state(state_file, seed_from, vault_password_file)
    secret = str(uuid.uuid4())
    add_token(state, token_id, secret, privsep=False)
    if password_file is not None:
        set_password(state, "root@pam", password_file.read_text().strip())
    if state_file is not None:
        save_state(state, state_file)
    directory = cert_dir or Path(tempfile.mkdtemp(prefix="labsmith-sim-"))
    certificate = write_server_certificate(directory)
    simulator = Simulator(schema, state, durations=durations, faults=faults, state_file=state_file)
    try:
        running = start_server(simulator, certificate, port=port)
    except OSError as error:
        raise click.ClickException(
            f"cannot listen on 127.0.0.1:{port} ({error.strerror}); pick another --port, or 0"
        ) from error
    announcement = {
        "url": running.url,
        "token": f"{token_id}={secret}",
        "ca": str(certificate.ca_path),
    }
    click.echo(json.dumps(announcement))
    sys.stdout.flush()
    click.echo(
        f"labsmith sim: Proxmox VE {schema.version} API on {running.url} "
        f"({len(state.nodes)} node(s)); Ctrl-C stops it",
        err=True,
    )
    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stopped.wait()
    running.stop()
    if state_file is not None:
        with simulator.lock:
            save_state(simulator.state, state_file)
