"""A simulator serving HTTPS in the test process, and proxmoxer clients for it."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proxmoxer import ProxmoxAPI

from labsmith.sim.api import Durations, Simulator
from labsmith.sim.auth import add_token, set_password
from labsmith.sim.faults import FaultPlan
from labsmith.sim.schema import SCHEMA_VERSIONS, ApiSchema
from labsmith.sim.server import RunningServer, start_server
from labsmith.sim.state import ClusterState, default_state
from labsmith.sim.tls import write_server_certificate

ROOT_TOKEN = "root@pam!labsmith"
ROOT_SECRET = "5ecc0a1e-0000-4000-8000-000000000001"
ROOT_PASSWORD = "correct horse battery staple"


@dataclass
class LiveSim:
    simulator: Simulator
    server: RunningServer
    ca: Path

    @property
    def port(self) -> int:
        return int(self.server.server.server_address[1])

    def client(self, token: str = ROOT_TOKEN, secret: str = ROOT_SECRET) -> Any:
        user, _, name = token.partition("!")
        return ProxmoxAPI(
            "127.0.0.1",
            port=self.port,
            user=user,
            token_name=name,
            token_value=secret,
            verify_ssl=str(self.ca),
            timeout=10,
        )

    def login(self, user: str = "root@pam", password: str = ROOT_PASSWORD) -> Any:
        return ProxmoxAPI(
            "127.0.0.1",
            port=self.port,
            user=user,
            password=password,
            verify_ssl=str(self.ca),
            timeout=10,
        )


def wait_task(api: Any, upid: str, timeout: float = 10.0) -> dict[str, Any]:
    """Poll a task until it stops; its final status."""
    node = upid.split(":")[1]
    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = api.nodes(node).tasks(upid).status.get()
        if status["status"] == "stopped":
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"task {upid} still running after {timeout}s")
        time.sleep(0.01)


@contextmanager
def live_sim(
    directory: Path,
    *,
    state: ClusterState | None = None,
    durations: Durations | None = None,
    faults: FaultPlan | None = None,
    version: str = SCHEMA_VERSIONS[-1],
) -> Iterator[LiveSim]:
    cluster = state or default_state()
    add_token(cluster, ROOT_TOKEN, ROOT_SECRET, privsep=False)
    set_password(cluster, "root@pam", ROOT_PASSWORD)
    simulator = Simulator(
        ApiSchema.bundled(version),
        cluster,
        durations=durations or Durations(default=0.05),
        faults=faults,
        auth_failure_delay=0.0,
    )
    certificate = write_server_certificate(directory)
    running = start_server(simulator, certificate)
    try:
        yield LiveSim(simulator, running, certificate.ca_path)
    finally:
        running.stop()
