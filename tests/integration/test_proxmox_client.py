"""labsmith's Proxmox adapter against the simulator over verified HTTPS."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from labsmith.proxmox.client import Endpoint, ProxmoxClient, RetryPolicy
from labsmith.proxmox.errors import (
    AuthenticationFailedError,
    NodeUnreachableError,
    ParameterRejectedError,
    PermissionDeniedError,
    ServerError,
    TaskFailedError,
    TaskTimeoutError,
    TlsFailureError,
)
from labsmith.sim.api import Durations
from labsmith.sim.faults import FaultPlan
from tests.integration.test_sim_guests import CT_OPTIONS, VM_OPTIONS
from tests.integration.test_sim_wire import limited_token
from tests.simsupport.running import ROOT_SECRET, ROOT_TOKEN, LiveSim, live_sim

pytestmark = pytest.mark.integration

NO_WAIT = RetryPolicy(attempts=6, sleep=lambda seconds: None)


def client_for(sim: LiveSim, token: str = ROOT_TOKEN, secret: str = ROOT_SECRET) -> ProxmoxClient:
    endpoint = Endpoint(f"https://127.0.0.1:{sim.port}", token, secret, ca_file=sim.ca)
    return ProxmoxClient(endpoint, timeout=5, retry=NO_WAIT)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[LiveSim]:
    with live_sim(tmp_path) as running:
        yield running


def test_create_and_read_guests(sim: LiveSim) -> None:
    client = client_for(sim)
    status = client.wait_task(
        client.create_guest("pve1", "qemu", 110, VM_OPTIONS), poll_interval=0.01
    )
    assert (status.task_type, status.exitstatus, status.node) == ("qmcreate", "OK", "pve1")
    client.wait_task(client.create_guest("pve1", "lxc", 200, CT_OPTIONS), poll_interval=0.01)
    assert client.guest_config("pve1", "qemu", 110)["cores"] == 8
    assert client.guest_config("pve1", "lxc", 200)["hostname"] == "postgres"
    assert {row["vmid"] for row in client.cluster_resources("vm")} == {110, 200}
    assert client.next_vmid() == 100
    assert client.update_config("pve1", "lxc", 200, {"cores": 4}) is None
    upid = client.update_config("pve1", "qemu", 110, {"cores": 6}, delete=["tags"])
    assert upid is not None
    client.wait_task(upid, poll_interval=0.01)
    config = client.guest_config("pve1", "qemu", 110)
    assert config["cores"] == 6 and "tags" not in config


def test_the_secret_never_shows_in_the_endpoints_repr(sim: LiveSim) -> None:
    assert ROOT_SECRET not in repr(client_for(sim).endpoint)


def test_an_untrusted_certificate_names_the_fix(sim: LiveSim) -> None:
    endpoint = Endpoint(f"https://127.0.0.1:{sim.port}", ROOT_TOKEN, ROOT_SECRET)
    with pytest.raises(TlsFailureError, match="--pve-ca"):
        ProxmoxClient(endpoint, retry=NO_WAIT).version()


def test_errors_are_classified_by_status(sim: LiveSim) -> None:
    with pytest.raises(AuthenticationFailedError, match="token id and its secret"):
        client_for(sim, secret="wrong").nodes()
    client = client_for(sim)
    with pytest.raises(ParameterRejectedError) as rejected:
        client.create_guest("pve1", "qemu", 99, {"cores": 0})
    assert set(rejected.value.errors) == {"vmid", "cores"}
    client.wait_task(client.create_guest("pve1", "qemu", 110, VM_OPTIONS), poll_interval=0.01)
    with pytest.raises(ServerError, match="already exists"):
        client.create_guest("pve1", "qemu", 110, VM_OPTIONS)
    token, secret = limited_token(sim.client(), "/vms/111", "PVEVMAdmin")
    with pytest.raises(PermissionDeniedError, match=r"/vms/110.*grant"):
        client_for(sim, token, secret).update_config("pve1", "lxc", 110, {"cores": 2})


def test_task_failures_and_timeouts(tmp_path: Path) -> None:
    plan = FaultPlan(task_failures={"qmstart": "start failed: boom"})
    durations = Durations(default=0.01, by_type={"vzcreate": 30.0})
    with live_sim(tmp_path, faults=plan, durations=durations) as sim:
        client = client_for(sim)
        client.wait_task(client.create_guest("pve1", "qemu", 110, VM_OPTIONS), poll_interval=0.01)
        with pytest.raises(TaskFailedError) as failed:
            client.wait_task(client.power("pve1", "qemu", 110, "start"), poll_interval=0.01)
        assert failed.value.exitstatus == "start failed: boom"
        assert failed.value.log_tail[-1] == "TASK ERROR: start failed: boom"
        upid = client.create_guest("pve1", "lxc", 200, CT_OPTIONS)
        with pytest.raises(TaskTimeoutError):
            client.wait_task(upid, timeout=0.2, poll_interval=0.05)


def test_reads_are_retried_and_writes_are_not(tmp_path: Path) -> None:
    with live_sim(tmp_path, faults=FaultPlan(error_rate=0.5, seed=11)) as sim:
        client = client_for(sim)
        for _ in range(20):
            assert client.version()["version"]
    with live_sim(tmp_path / "drops", faults=FaultPlan(drop_rate=0.4, seed=5)) as sim:
        client = client_for(sim)
        for _ in range(20):
            assert [node["node"] for node in client.nodes()] == ["pve1"]
    with live_sim(tmp_path / "down", faults=FaultPlan(error_rate=1.0)) as sim:
        client = client_for(sim)
        with pytest.raises(ServerError):
            client.create_guest("pve1", "lxc", 200, CT_OPTIONS)
        assert sim.simulator.faults.requests == 1
        with pytest.raises(ServerError):
            client.nodes()
        assert sim.simulator.faults.requests == 1 + NO_WAIT.attempts


def test_a_dropped_write_is_reported_not_repeated(tmp_path: Path) -> None:
    with live_sim(tmp_path, faults=FaultPlan(drop_rate=1.0)) as sim:
        client = client_for(sim)
        with pytest.raises(NodeUnreachableError):
            client.create_guest("pve1", "lxc", 200, CT_OPTIONS)
        assert sim.simulator.faults.requests == 1


def test_unknown_kinds_and_non_upids_are_refused(sim: LiveSim) -> None:
    client = client_for(sim)
    with pytest.raises(ValueError, match="qemu or lxc"):
        client.guests("pve1", "docker")
    with pytest.raises(Exception, match="not a task id"):
        client.wait_task("12345")
