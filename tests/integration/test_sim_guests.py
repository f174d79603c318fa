"""The simulator through the real proxmoxer over verified HTTPS: guests and their tasks."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from proxmoxer.core import ResourceException

from labsmith.sim.api import Durations
from labsmith.sim.schema import SCHEMA_VERSIONS
from tests.simsupport.running import LiveSim, live_sim, wait_task

pytestmark = pytest.mark.integration

VM_OPTIONS: dict[str, Any] = {
    "name": "ai-private",
    "cores": 8,
    "memory": "16384",
    "machine": "q35",
    "bios": "ovmf",
    "ostype": "l26",
    "scsihw": "virtio-scsi-single",
    "scsi0": "local-zfs:32,iothread=1",
    "efidisk0": "local-zfs:1,efitype=4m",
    "net0": "virtio,bridge=vmbr0,tag=30",
    "ipconfig0": "ip=10.0.30.20/24,gw=10.0.30.1",
    "ide2": "local-zfs:cloudinit",
    "ciuser": "labsmith",
    "onboot": 1,
    "tags": "labsmith;ai",
}
CT_OPTIONS: dict[str, Any] = {
    "hostname": "postgres",
    "ostemplate": "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
    "cores": 2,
    "memory": 2048,
    "rootfs": "local-zfs:8",
    "mp0": "local-zfs:16,mp=/var/lib/postgresql",
    "net0": "name=eth0,bridge=vmbr0,ip=10.0.30.30/24,gw=10.0.30.1,tag=30",
    "unprivileged": 1,
}


@pytest.fixture(params=SCHEMA_VERSIONS)
def sim(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveSim]:
    """The guest tests run against both bundled Proxmox VE versions."""
    with live_sim(tmp_path, version=request.param) as running:
        yield running


@pytest.fixture
def api(sim: LiveSim) -> Any:
    return sim.client()


def create_vm(api: Any, vmid: int = 110, **overrides: Any) -> dict[str, Any]:
    upid = api.nodes("pve1").qemu.post(vmid=vmid, **{**VM_OPTIONS, **overrides})
    return wait_task(api, upid)


def create_ct(api: Any, vmid: int = 200, **overrides: Any) -> dict[str, Any]:
    upid = api.nodes("pve1").lxc.post(vmid=vmid, **{**CT_OPTIONS, **overrides})
    return wait_task(api, upid)


def error_of(call: Any) -> ResourceException:
    with pytest.raises(ResourceException) as caught:
        call()
    return caught.value


def test_qemu_create_writes_the_config_pve_writes(api: Any) -> None:
    status = create_vm(api)
    assert status["exitstatus"] == "OK"
    assert status["type"] == "qmcreate" and status["id"] == "110"
    assert (status["user"], status["tokenid"]) == ("root@pam", "labsmith")
    config = api.nodes("pve1").qemu(110).config.get()
    assert config["cores"] == 8 and config["memory"] == "16384" and config["onboot"] == 1
    assert config["scsi0"] == "local-zfs:vm-110-disk-0,iothread=1,size=32G"
    assert config["efidisk0"] == "local-zfs:vm-110-disk-1,efitype=4m,size=528K"
    assert config["ide2"] == "local-zfs:vm-110-cloudinit,media=cdrom"
    model_mac, *rest = config["net0"].split(",")
    assert model_mac.startswith("virtio=BC:24:11:")
    assert rest == ["bridge=vmbr0", "tag=30"]
    assert config["meta"].startswith("creation-qemu=")
    assert "vmgenid" in config and config["smbios1"].startswith("uuid=")
    assert "lock" not in config and len(config["digest"]) == 40
    volumes = api.nodes("pve1").storage("local-zfs").content.get(vmid=110)
    assert sorted(v["volid"] for v in volumes) == [
        "local-zfs:vm-110-cloudinit",
        "local-zfs:vm-110-disk-0",
        "local-zfs:vm-110-disk-1",
    ]


def test_a_guest_being_created_is_locked(tmp_path: Path) -> None:
    with live_sim(tmp_path, durations=Durations(default=0.05, by_type={"qmcreate": 1.0})) as sim:
        api = sim.client()
        upid = api.nodes("pve1").qemu.post(vmid=110, **VM_OPTIONS)
        assert upid.startswith("UPID:pve1:") and ":qmcreate:110:root@pam!labsmith:" in upid
        assert api.nodes("pve1").tasks(upid).status.get()["status"] == "running"
        assert api.nodes("pve1").qemu(110).config.get()["lock"] == "create"
        error = error_of(lambda: api.nodes("pve1").qemu(110).config.put(cores=4))
        assert error.status_code == 500
        assert error.content == "VM is locked (create)"
        start = api.nodes("pve1").qemu(110).status.start.post()
        assert wait_task(api, start)["exitstatus"] == "VM is locked (create)"
        assert wait_task(api, upid)["exitstatus"] == "OK"
        log = api.nodes("pve1").tasks(upid).log.get()
        assert log[-1] == {"n": len(log), "t": "TASK OK"}


def test_create_on_a_taken_vmid_fails_with_pves_wording(api: Any) -> None:
    create_vm(api)
    error = error_of(lambda: api.nodes("pve1").qemu.post(vmid=110, **VM_OPTIONS))
    assert (error.status_code, error.content) == (
        500,
        "unable to create VM 110 - VM 110 already exists on node 'pve1'",
    )
    # The message names the type of the guest that holds the id.
    error = error_of(lambda: api.nodes("pve1").lxc.post(vmid=110, **CT_OPTIONS))
    assert error.content == "VM 110 already exists on node 'pve1'"


def test_nextid_skips_taken_ids_and_refuses_a_taken_one(api: Any) -> None:
    assert int(api.cluster.nextid.get()) == 100
    create_vm(api, vmid=100)
    assert int(api.cluster.nextid.get()) == 101
    assert int(api.cluster.nextid.get(vmid=150)) == 150
    error = error_of(lambda: api.cluster.nextid.get(vmid=100))
    assert error.status_code == 400 and error.errors == {"vmid": "VM 100 already exists"}


def test_missing_storage_and_wrong_content_are_refused_before_a_task(api: Any) -> None:
    error = error_of(lambda: create_vm(api, scsi0="nvme:32"))
    assert error.content == "storage 'nvme' does not exist"
    error = error_of(lambda: create_vm(api, scsi0="local:32"))
    assert error.content == "storage 'local' does not support vm images"
    assert api.nodes("pve1").qemu.get() == []


def test_a_disk_larger_than_the_storage_fails_the_task_and_leaves_nothing(api: Any) -> None:
    status = create_vm(api, scsi0="local-zfs:5000")
    assert status["exitstatus"].startswith("storage 'local-zfs' on node 'pve1' has not enough")
    assert api.nodes("pve1").qemu.get() == []
    assert api.nodes("pve1").storage("local-zfs").content.get() == []


def test_running_vm_keeps_non_hotplug_changes_pending(api: Any) -> None:
    create_vm(api)
    vm = api.nodes("pve1").qemu(110)
    wait_task(api, vm.status.start.post())
    assert vm.status.current.get()["status"] == "running"
    digest = vm.config.get()["digest"]
    wait_task(api, vm.config.post(cores=12, name="ai-private-2", digest=digest))
    assert vm.config.get(current=1)["cores"] == 8
    assert vm.config.get()["cores"] == 12
    assert vm.config.get(current=1)["name"] == "ai-private-2"
    pending = {row["key"]: row for row in vm.pending.get()}
    assert pending["cores"] == {"key": "cores", "value": 8, "pending": 12}
    assert pending["digest"]["value"] == vm.config.get()["digest"]
    assert "pending" not in pending["name"]
    error = error_of(lambda: vm.config.put(cores=4, digest=digest))
    assert error.content == "checksum mismatch (file change by other user?)"
    wait_task(api, vm.status.stop.post())
    assert vm.config.get(current=1)["cores"] == 12
    assert all("pending" not in row for row in vm.pending.get())


def test_stopped_vm_applies_changes_and_keeps_replaced_disks(api: Any) -> None:
    create_vm(api)
    vm = api.nodes("pve1").qemu(110)
    vm.config.put(scsi0="local-zfs:64", net1="virtio,bridge=vmbr0,tag=20", delete="tags")
    config = vm.config.get()
    assert config["scsi0"] == "local-zfs:vm-110-disk-2,size=64G"
    assert config["unused0"] == "local-zfs:vm-110-disk-0"
    assert config["net1"].endswith(",bridge=vmbr0,tag=20")
    assert "tags" not in config
    mac = config["net0"].split(",")[0]
    vm.config.put(net0="virtio,bridge=vmbr0,tag=10")
    assert vm.config.get()["net0"] == f"{mac},bridge=vmbr0,tag=10"


def test_power_cycle_and_its_refusals(api: Any) -> None:
    create_vm(api)
    vm = api.nodes("pve1").qemu(110)
    # qemu-server finds out in the worker; pve-container refuses before forking.
    assert wait_task(api, vm.status.stop.post())["exitstatus"] == "OK"
    wait_task(api, vm.status.start.post())
    assert wait_task(api, vm.status.start.post())["exitstatus"] == "VM 110 already running"
    error = error_of(lambda: vm.delete())
    assert error.content == "VM 110 is running - destroy failed"
    assert wait_task(api, vm.status.shutdown.post())["exitstatus"] == "OK"
    assert vm.status.current.get()["status"] == "stopped"
    wait_task(api, vm.delete())
    assert api.nodes("pve1").qemu.get() == []
    assert api.nodes("pve1").storage("local-zfs").content.get() == []
    error = error_of(lambda: vm.config.get())
    assert error.content == "Configuration file 'nodes/pve1/qemu-server/110.conf' does not exist"


def test_container_power_refusals_come_before_a_task(api: Any) -> None:
    create_ct(api)
    ct = api.nodes("pve1").lxc(200)
    assert error_of(lambda: ct.status.stop.post()).content == "CT 200 not running"
    wait_task(api, ct.status.start.post())
    assert error_of(lambda: ct.status.start.post()).content == "CT 200 already running"
    error = error_of(lambda: ct.delete())
    assert error.content == "unable to destroy CT 200 - container is running"


def test_start_fails_in_the_task_when_a_bridge_is_missing(api: Any) -> None:
    create_vm(api, net0="virtio,bridge=vmbr9")
    status = wait_task(api, api.nodes("pve1").qemu(110).status.start.post())
    assert status["exitstatus"] == "bridge 'vmbr9' does not exist"
    assert api.nodes("pve1").qemu(110).status.current.get()["status"] == "stopped"
    log = api.nodes("pve1").tasks(status["upid"]).log.get()
    assert log[-1]["t"] == "TASK ERROR: bridge 'vmbr9' does not exist"


def test_lxc_create_allocates_subvolumes_and_fills_in_the_nic(api: Any) -> None:
    status = create_ct(api)
    assert (status["exitstatus"], status["type"]) == ("OK", "vzcreate")
    config = api.nodes("pve1").lxc(200).config.get()
    assert config["rootfs"] == "local-zfs:subvol-200-disk-0,size=8G"
    assert config["mp0"] == "local-zfs:subvol-200-disk-1,mp=/var/lib/postgresql,size=16G"
    assert config["hostname"] == "postgres" and config["ostype"] == "debian"
    assert config["arch"] == "amd64" and config["unprivileged"] == 1
    net = config["net0"].split(",")
    assert net[0] == "name=eth0" and "type=veth" in net
    assert any(part.startswith("hwaddr=BC:24:11:") for part in net)
    assert "ostemplate" not in config and "password" not in config


def test_lxc_create_needs_an_existing_template(api: Any) -> None:
    error = error_of(lambda: create_ct(api, ostemplate="local:vztmpl/nothing.tar.zst"))
    assert error.content == "volume 'local:vztmpl/nothing.tar.zst' does not exist"


def test_template_and_clones(api: Any) -> None:
    create_vm(api, vmid=9000, name="debian-template")
    source = api.nodes("pve1").qemu(9000)
    error = error_of(lambda: source.clone.post(newid=111, full=0))
    assert error.status_code == 500
    wait_task(api, source.template.post())
    config = source.config.get()
    assert config["template"] == 1
    assert config["scsi0"].startswith("local-zfs:base-9000-disk-0,")
    status = wait_task(api, source.status.start.post())
    assert status["exitstatus"] == "you can't start a vm if it's a template"
    status = wait_task(api, source.clone.post(newid=111, name="ai-clone", full=1))
    assert (status["type"], status["id"], status["exitstatus"]) == ("qmclone", "9000", "OK")
    clone = api.nodes("pve1").qemu(111).config.get()
    assert clone["name"] == "ai-clone" and "template" not in clone
    assert clone["scsi0"] == "local-zfs:vm-111-disk-0,iothread=1,size=32G"
    assert clone["net0"] != config["net0"]
    assert clone["vmgenid"] != config["vmgenid"]
    error = error_of(lambda: source.clone.post(newid=111))
    assert error.content == "unable to create VM 111: config file already exists"


def test_snapshots_rollback_and_delete(api: Any) -> None:
    create_ct(api)
    ct = api.nodes("pve1").lxc(200)
    wait_task(api, ct.snapshot.post(snapname="before", description="clean"))
    ct.config.put(cores=6)
    error = error_of(lambda: ct.snapshot.post(snapname="before"))
    assert error.content == "snapshot name 'before' already used"
    names = [row["name"] for row in ct.snapshot.get()]
    assert names == ["before", "current"]
    assert ct.snapshot("before").config.get()["cores"] == 2
    wait_task(api, ct.snapshot("before").rollback.post())
    assert ct.config.get()["cores"] == 2 and ct.config.get()["parent"] == "before"
    wait_task(api, ct.snapshot("before").delete())
    assert [row["name"] for row in ct.snapshot.get()] == ["current"]
    assert "parent" not in ct.config.get()


def test_cluster_resources_list_nodes_guests_and_storages(api: Any) -> None:
    create_vm(api)
    create_ct(api)
    resources = api.cluster.resources.get()
    by_id = {row["id"]: row for row in resources}
    assert by_id["node/pve1"]["status"] == "online"
    assert by_id["qemu/110"]["name"] == "ai-private" and by_id["qemu/110"]["status"] == "stopped"
    assert by_id["lxc/200"]["name"] == "postgres"
    assert by_id["storage/pve1/local-zfs"]["plugintype"] == "zfspool"
    vms = api.cluster.resources.get(type="vm")
    assert sorted(row["id"] for row in vms) == ["lxc/200", "qemu/110"]


def test_node_network_lists_the_vlan_aware_bridge(api: Any) -> None:
    bridges = api.nodes("pve1").network.get(type="bridge")
    assert [(b["iface"], b["bridge_vlan_aware"]) for b in bridges] == [("vmbr0", 1)]
    api.nodes("pve1").network.post(iface="vmbr1", type="bridge", bridge_vlan_aware=1)
    assert [b["iface"] for b in api.nodes("pve1").network.get(type="bridge")] == ["vmbr0"]
    wait_task(api, api.nodes("pve1").network.put())
    assert [b["iface"] for b in api.nodes("pve1").network.get(type="bridge")] == [
        "vmbr0",
        "vmbr1",
    ]


def test_container_clone_locks_the_source_while_it_copies(tmp_path: Path) -> None:
    with live_sim(tmp_path, durations=Durations(default=0.02, by_type={"vzclone": 1.0})) as sim:
        api = sim.client()
        create_ct(api)
        source = api.nodes("pve1").lxc(200)
        upid = source.clone.post(newid=201, hostname="postgres-copy", full=1)
        assert source.config.get()["lock"] == "disk"
        assert api.nodes("pve1").lxc(201).config.get()["lock"] == "create"
        assert error_of(lambda: source.config.put(cores=4)).content == "CT is locked (disk)"
        assert wait_task(api, upid)["exitstatus"] == "OK"
        copy = api.nodes("pve1").lxc(201).config.get()
        assert copy["hostname"] == "postgres-copy" and "lock" not in source.config.get()
        assert copy["rootfs"] == "local-zfs:subvol-201-disk-0,size=8G"
        assert copy["net0"] != source.config.get()["net0"]
