"""The simulator's wire behaviour through proxmoxer and requests: TLS, auth, errors, faults."""

import gzip
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from proxmoxer import ProxmoxAPI
from proxmoxer.core import ResourceException

import labsmith.sim
from labsmith.sim.api import Durations
from labsmith.sim.faults import FaultPlan
from labsmith.sim.schema import SCHEMA_VERSIONS
from labsmith.sim.state import Node, Storage, add_node, default_state
from labsmith.units import GIB
from tests.conftest import INVENTORIES
from tests.integration.test_sim_guests import CT_OPTIONS, VM_OPTIONS, create_ct, create_vm, error_of
from tests.simsupport.running import ROOT_SECRET, LiveSim, live_sim, wait_task

pytestmark = pytest.mark.integration

BUNDLED_SCHEMA = Path(labsmith.sim.__file__).parent / "schemas" / "pve-api-9.1.3.json.gz"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[LiveSim]:
    with live_sim(tmp_path) as running:
        yield running


@pytest.fixture
def api(sim: LiveSim) -> Any:
    return sim.client()


def url(sim: LiveSim, path: str) -> str:
    return f"https://127.0.0.1:{sim.port}/api2/json{path}"


# TLS and authentication --------------------------------------------------------------------


def test_tls_is_verified_against_the_written_ca_only(sim: LiveSim) -> None:
    assert sim.client().version.get()["version"] == SCHEMA_VERSIONS[-1]
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url(sim, "/version"), timeout=5)


def test_bad_token_and_missing_ticket_answer_401(sim: LiveSim) -> None:
    error = error_of(lambda: sim.client(secret="wrong").nodes.get())
    assert error.status_code == 401
    answer = requests.get(url(sim, "/nodes"), verify=str(sim.ca), timeout=5)
    assert (answer.status_code, answer.reason, answer.content) == (401, "No ticket", b"")


def test_ticket_login_needs_the_csrf_token_for_writes(sim: LiveSim) -> None:
    api = sim.login()
    assert [node["node"] for node in api.nodes.get()] == ["pve1"]
    wait_task(api, api.nodes("pve1").qemu.post(vmid=130, **VM_OPTIONS))
    ticket, _ = api._store["session"].auth.get_tokens()
    answer = requests.put(
        url(sim, "/nodes/pve1/qemu/130/config"),
        data={"cores": 2},
        cookies={"PVEAuthCookie": ticket},
        verify=str(sim.ca),
        timeout=5,
    )
    assert answer.status_code == 401 and "csrf" in answer.reason.lower()
    wrong = requests.post(
        url(sim, "/access/ticket"),
        data={"username": "root@pam", "password": "nope"},
        verify=str(sim.ca),
        timeout=5,
    )
    assert wrong.status_code == 401


# Error classes -----------------------------------------------------------------------------


def test_parameter_errors_name_each_field(api: Any) -> None:
    error = error_of(
        lambda: api.nodes("pve1").qemu.post(vmid=99, cores=0, ostype="dos", net0="virtio,tag=5000")
    )
    assert error.status_code == 400
    assert error.content == "Parameter verification failed."
    assert set(error.errors) == {"vmid", "cores", "ostype", "net0"}


def test_unknown_routes_answer_501(sim: LiveSim, api: Any) -> None:
    answer = requests.get(
        url(sim, "/nodes/pve1/nonsense"),
        headers={"Authorization": f"PVEAPIToken=root@pam!labsmith={ROOT_SECRET}"},
        verify=str(sim.ca),
        timeout=5,
    )
    assert answer.status_code == 501
    assert "nonsense" in answer.reason


def test_an_unknown_node_fails_its_hostname_lookup(api: Any) -> None:
    error = error_of(lambda: api.nodes("pve9").qemu.get())
    assert error.status_code == 500
    assert error.content.startswith("hostname lookup 'pve9' failed")


# Privileges --------------------------------------------------------------------------------


def limited_token(api: Any, path: str, role: str, name: str = "ci") -> tuple[str, str]:
    """A privilege-separated token of a new user, granted ``role`` on ``path`` only."""
    userid = "automation@pve"
    if userid not in [user["userid"] for user in api.access.users.get()]:
        api.access.users.post(userid=userid)
    created = api.access.users(userid).token(name).post(privsep=1)
    full_id = created["full-tokenid"]
    api.access.acl.put(path=path, roles=role, users=userid)
    api.access.acl.put(path=path, roles=role, tokens=full_id)
    return full_id, created["value"]


def test_a_token_limited_to_one_vm_path_is_refused_elsewhere(sim: LiveSim, api: Any) -> None:
    token, secret = limited_token(api, "/vms/110", "PVEVMAdmin")
    limited = sim.client(token, secret)
    api.access.acl.put(path="/storage/local-zfs", roles="PVEDatastoreUser", users="automation@pve")
    api.access.acl.put(path="/storage/local-zfs", roles="PVEDatastoreUser", tokens=token)
    api.access.acl.put(path="/sdn/zones/localnetwork", roles="PVESDNUser", users="automation@pve")
    api.access.acl.put(path="/sdn/zones/localnetwork", roles="PVESDNUser", tokens=token)
    options = dict(VM_OPTIONS)
    assert (
        wait_task(limited, limited.nodes("pve1").qemu.post(vmid=110, **options))["exitstatus"]
        == "OK"
    )
    error = error_of(lambda: limited.nodes("pve1").qemu.post(vmid=111, **options))
    assert error.status_code == 403
    assert "/vms/111" in error.content and "VM.Allocate" in error.content


def test_gpu_passthrough_needs_root_for_raw_hostpci_but_a_mapping_works_with_a_token(
    sim: LiveSim, api: Any
) -> None:
    sim.simulator.state.nodes["pve1"].pci_devices.clear()
    error = error_of(lambda: create_vm(api, hostpci0="0000:01:00,pcie=1"))
    assert (error.status_code, error.content) == (
        500,
        "only root can set 'hostpci0' config for non-mapped devices",
    )
    api.cluster.mapping.pci.post(
        id="rtx5090", map=["node=pve1,path=0000:01:00,id=10de:2b85,iommugroup=14"]
    )
    assert create_vm(api, hostpci0="mapping=rtx5090,pcie=1")["exitstatus"] == "OK"
    token, secret = limited_token(api, "/vms/112", "PVEVMAdmin", name="gpu")
    for path, role in (
        ("/storage/local-zfs", "PVEDatastoreUser"),
        ("/sdn/zones/localnetwork", "PVESDNUser"),
    ):
        api.access.acl.put(path=path, roles=role, users="automation@pve")
        api.access.acl.put(path=path, roles=role, tokens=token)
    limited = sim.client(token, secret)
    error = error_of(
        lambda: limited.nodes("pve1").qemu.post(vmid=112, hostpci0="mapping=rtx5090", **VM_OPTIONS)
    )
    assert error.status_code == 403 and "/mapping/pci/rtx5090" in error.content
    api.access.acl.put(path="/mapping/pci/rtx5090", roles="PVEMappingUser", users="automation@pve")
    api.access.acl.put(path="/mapping/pci/rtx5090", roles="PVEMappingUser", tokens=token)
    upid = limited.nodes("pve1").qemu.post(vmid=112, hostpci0="mapping=rtx5090", **VM_OPTIONS)
    assert wait_task(limited, upid)["exitstatus"] == "OK"


# PCI mappings ------------------------------------------------------------------------------


def test_pci_mappings_are_created_read_updated_and_checked_at_start(api: Any) -> None:
    mappings = api.cluster.mapping.pci
    mappings.post(id="rtx3060", map=["node=pve1,path=0000:02:00,id=10de:2504,iommugroup=15"])
    error = error_of(
        lambda: mappings.post(id="rtx3060", map=["node=pve1,path=0000:02:00,id=10de:2504"])
    )
    assert error.content == "create hardware mapping failed: pci ID 'rtx3060' already defined"
    listed = mappings.get()
    assert listed == [
        {"id": "rtx3060", "map": ["node=pve1,path=0000:02:00,id=10de:2504,iommugroup=15"]}
    ]
    digest = mappings("rtx3060").get()["digest"]
    mappings("rtx3060").put(description="shared card", digest=digest)
    error = error_of(lambda: mappings("rtx3060").put(description="again", digest=digest))
    assert "modified" in error.content
    create_vm(api, hostpci0="mapping=gone,pcie=1")
    status = wait_task(api, api.nodes("pve1").qemu(110).status.start.post())
    assert status["exitstatus"] == "PCI device mapping 'gone' not found"
    mappings("rtx3060").delete()
    assert mappings.get() == []


# Backups and restore -----------------------------------------------------------------------


@pytest.fixture
def backup_sim(tmp_path: Path) -> Iterator[LiveSim]:
    state = default_state()
    state.storages["backup"] = Storage(
        storage="backup", type="dir", content=["backup"], path="/mnt/backup", total=500 * GIB
    )
    state.storages["pbs"] = Storage(
        storage="pbs",
        type="pbs",
        content=["backup"],
        shared=True,
        server="10.0.30.5",
        datastore="lab",
    )
    with live_sim(tmp_path, state=state) as running:
        yield running


def test_vzdump_then_restore_qemu_and_lxc(backup_sim: LiveSim) -> None:
    api = backup_sim.client()
    create_vm(api)
    create_ct(api)
    status = wait_task(
        api, api.nodes("pve1").vzdump.post(vmid="110,200", storage="backup", compress="zstd")
    )
    assert (status["type"], status["exitstatus"]) == ("vzdump", "OK")
    backups = api.nodes("pve1").storage("backup").content.get(content="backup")
    by_vmid = {row["vmid"]: row for row in backups}
    assert by_vmid[110]["volid"].startswith("backup:backup/vzdump-qemu-110-")
    assert by_vmid[110]["volid"].endswith(".vma.zst") and by_vmid[110]["subtype"] == "qemu"
    assert by_vmid[200]["volid"].endswith(".tar.zst") and by_vmid[200]["subtype"] == "lxc"
    original = api.nodes("pve1").qemu(110).config.get()
    wait_task(api, api.nodes("pve1").qemu(110).delete())
    wait_task(api, api.nodes("pve1").lxc(200).delete())
    upid = api.nodes("pve1").qemu.post(vmid=110, archive=by_vmid[110]["volid"])
    assert wait_task(api, upid)["type"] == "qmrestore"
    restored = api.nodes("pve1").qemu(110).config.get()
    assert restored["net0"] == original["net0"] and restored["cores"] == original["cores"]
    assert (
        restored["scsi0"].startswith("local-zfs:vm-110-disk-") and "size=32G" in restored["scsi0"]
    )
    error = error_of(lambda: api.nodes("pve1").qemu.post(vmid=110, archive=by_vmid[110]["volid"]))
    assert error.status_code == 500 and "already exists" in error.content
    assert (
        wait_task(
            api, api.nodes("pve1").qemu.post(vmid=110, archive=by_vmid[110]["volid"], force=1)
        )["exitstatus"]
        == "OK"
    )
    upid = api.nodes("pve1").lxc.post(
        vmid=200, ostemplate=by_vmid[200]["volid"], restore=1, storage="local-zfs"
    )
    assert wait_task(api, upid)["type"] == "vzrestore"
    assert api.nodes("pve1").lxc(200).config.get()["hostname"] == "postgres"


def test_backup_to_pbs_names_snapshots_like_pbs(backup_sim: LiveSim) -> None:
    api = backup_sim.client()
    create_ct(api)
    wait_task(api, api.nodes("pve1").vzdump.post(vmid="200", storage="pbs"))
    (backup,) = api.nodes("pve1").storage("pbs").content.get()
    assert backup["volid"].startswith("pbs:backup/ct/200/") and backup["volid"].endswith("Z")


def test_a_guest_being_backed_up_is_locked(tmp_path: Path) -> None:
    state = default_state()
    state.storages["backup"] = Storage(storage="backup", type="dir", content=["backup"])
    durations = Durations(default=0.02, by_type={"vzdump": 1.0})
    with live_sim(tmp_path, state=state, durations=durations) as sim:
        api = sim.client()
        create_ct(api)
        upid = api.nodes("pve1").vzdump.post(vmid="200", storage="backup")
        error = error_of(lambda: api.nodes("pve1").lxc(200).config.put(cores=4))
        assert error.content == "CT is locked (backup)"
        assert wait_task(api, upid)["exitstatus"] == "OK"
        api.nodes("pve1").lxc(200).config.put(cores=4)


# Fault injection ---------------------------------------------------------------------------


def test_error_rate_answers_503_and_changes_nothing(tmp_path: Path) -> None:
    with live_sim(tmp_path, faults=FaultPlan(error_rate=1.0)) as sim:
        error = error_of(lambda: sim.client().nodes("pve1").qemu.post(vmid=110, **VM_OPTIONS))
        assert error.status_code == 503
        assert sim.simulator.state.guests == {}


def test_dropped_connections_before_and_after_processing(tmp_path: Path) -> None:
    with live_sim(tmp_path, faults=FaultPlan(drop_rate=1.0, seed=3)) as sim:
        api = sim.client()
        outcomes = []
        for vmid in range(110, 118):
            with pytest.raises(requests.exceptions.ConnectionError):
                api.nodes("pve1").lxc.post(vmid=vmid, **CT_OPTIONS)
            outcomes.append(vmid in sim.simulator.state.guests)
        assert True in outcomes and False in outcomes


def test_the_same_seed_replays_the_same_faults(tmp_path: Path) -> None:
    def run(seed: int) -> list[int]:
        plan = FaultPlan(seed=seed, error_rate=0.3)
        with live_sim(tmp_path / str(seed), faults=plan) as sim:
            api = sim.client()
            codes = []
            for _ in range(30):
                try:
                    api.version.get()
                    codes.append(200)
                except ResourceException as error:
                    codes.append(error.status_code)
            return codes

    first = run(7)
    assert first == run(7)
    assert 503 in first and 200 in first
    assert first != run(8)


def test_failing_tasks_end_with_the_given_exit_status(tmp_path: Path) -> None:
    plan = FaultPlan(task_failures={"qmstart": "start failed: QEMU exited with code 1"})
    with live_sim(tmp_path, faults=plan) as sim:
        api = sim.client()
        assert create_vm(api)["exitstatus"] == "OK"
        status = wait_task(api, api.nodes("pve1").qemu(110).status.start.post())
        assert status["exitstatus"] == "start failed: QEMU exited with code 1"
        assert api.nodes("pve1").qemu(110).status.current.get()["status"] == "stopped"


def test_a_failing_create_task_leaves_no_guest(tmp_path: Path) -> None:
    with live_sim(tmp_path, faults=FaultPlan(task_failures={"qmcreate": "zfs error"})) as sim:
        api = sim.client()
        assert create_vm(api)["exitstatus"] == "zfs error"
        assert api.nodes("pve1").qemu.get() == []


def test_a_node_lost_mid_run(tmp_path: Path) -> None:
    state = default_state()
    add_node(state, Node(name="pve2"))
    state.storages["local-zfs"].nodes = None
    with live_sim(tmp_path, state=state) as sim:
        api = sim.client()
        create_ct(api, vmid=201)
        sim.simulator.durations.by_type["vzcreate"] = 60.0
        upid = api.nodes("pve2").lxc.post(vmid=202, **CT_OPTIONS)
        # From the third request on, pve2 is gone (--fault-lose-node pve2@N).
        faults = sim.simulator.faults
        faults.plan.lose_nodes["pve2"] = faults.requests + 3
        assert api.nodes("pve2").tasks(upid).status.get()["status"] == "running"
        api.version.get()
        error = error_of(lambda: api.nodes("pve2").tasks(upid).status.get())
        assert (error.status_code, error.content) == (595, "No route to host")
        by_id = {row["id"]: row for row in api.cluster.resources.get()}
        assert by_id["node/pve2"]["status"] == "offline"
        assert by_id["lxc/202"]["status"] == "unknown" and by_id["lxc/202"]["lock"] == "create"
        assert by_id["lxc/201"]["status"] == "stopped"


# The command -------------------------------------------------------------------------------


def test_sim_serve_prints_one_json_line_and_keeps_its_state(tmp_path: Path) -> None:
    # A node's own schema file: the bundled JSON in apidata.js's JavaScript wrapper.
    schema = json.loads(gzip.decompress(BUNDLED_SCHEMA.read_bytes()))
    apidata = tmp_path / "apidata.js"
    apidata.write_text(f"const apiSchema = {json.dumps(schema)};\n\nlet method2cmd = {{}};\n")
    state_file = tmp_path / "lab.json"
    command = [
        sys.executable, "-m", "labsmith", "sim", "serve", "--port", "0",
        "--schema", str(apidata), "--seed-from", str(INVENTORIES / "example"),
        "--state", str(state_file), "--cert-dir", str(tmp_path / "tls"),
        "--task-seconds", "0.05",
    ]  # fmt: skip
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ)
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        announced = json.loads(process.stdout.readline())
        assert set(announced) == {"url", "token", "ca"}
        host, port = announced["url"].removeprefix("https://").split(":")
        token_id, secret = announced["token"].split("=", 1)
        user, name = token_id.split("!")
        api = ProxmoxAPI(
            host, port=int(port), user=user, token_name=name, token_value=secret,
            verify_ssl=announced["ca"],
        )  # fmt: skip
        assert api.version.get()["version"] == "9.1.3"
        bridges = api.nodes("pve1").network.get(type="bridge")
        assert [(b["iface"], b["bridge_vlan_aware"]) for b in bridges] == [("vmbr0", 1)]
        storages = {row["storage"] for row in api.nodes("pve1").storage.get()}
        assert {"local", "fast"} <= storages
        wait_task(
            api,
            api.nodes("pve1").lxc.post(
                vmid=200, **{**CT_OPTIONS, "rootfs": "fast:8", "mp0": "fast:16,mp=/srv"}
            ),
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert secret not in process.stdout.read() + process.stderr.read()
    saved = json.loads(state_file.read_text())
    assert "200" in saved["guests"]
    assert secret not in state_file.read_text()
