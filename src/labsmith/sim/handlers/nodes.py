"""Per-node endpoints: status, network, storage and content, PCI hardware, tasks."""

import dataclasses
from typing import Any

from labsmith.sim.handlers.base import ApiError, Call, Reply, fail, handles
from labsmith.sim.state import Interface, Node, Storage

DEFAULT_LOG_LIMIT = 50


@handles("/nodes", "GET")
def list_nodes(call: Call) -> list[dict[str, Any]]:
    rows = []
    for name in sorted(call.state.nodes):
        node = call.state.nodes[name]
        row: dict[str, Any] = {"node": name, "status": "online" if node.online else "offline"}
        if node.online:
            row.update(maxcpu=node.cores, maxmem=node.memory, cpu=0.01, mem=node.memory // 10)
            row["uptime"] = 86400
        rows.append(row)
    return rows


@handles("/nodes/{node}/status", "GET")
def node_status(call: Call) -> dict[str, Any]:
    node = call.node()
    release = call.sim.schema.version
    return {
        "cpuinfo": {"cpus": node.cores, "cores": node.cores, "sockets": 1, "model": "simulated"},
        "memory": {"total": node.memory, "used": node.memory // 10, "free": node.memory * 9 // 10},
        "pveversion": f"pve-manager/{release}/labsmith-sim",
        "kversion": "Linux 6.14.8-2-pve",
        "uptime": 86400,
        "loadavg": ["0.05", "0.03", "0.01"],
    }


# Network -----------------------------------------------------------------------------------


def _interface_row(interface: Interface) -> dict[str, Any]:
    row: dict[str, Any] = {
        "iface": interface.iface,
        "type": interface.type,
        "active": 1,
        "autostart": int(interface.autostart),
        "families": ["inet"],
        "method": "static" if interface.cidr else "manual",
        "method6": "manual",
    }
    if interface.type == "bridge":
        row["bridge_ports"] = interface.bridge_ports
        row["bridge_stp"] = "off"
        row["bridge_fd"] = "0"
        if interface.bridge_vlan_aware:
            row["bridge_vlan_aware"] = 1
            row["bridge_vids"] = "2-4094"
    if interface.cidr:
        address, _, prefix = interface.cidr.partition("/")
        row.update(cidr=interface.cidr, address=address, netmask=prefix)
    if interface.gateway:
        row["gateway"] = interface.gateway
    if interface.comments:
        row["comments"] = interface.comments
    return row


@handles("/nodes/{node}/network", "GET")
def list_network(call: Call) -> list[dict[str, Any]]:
    node = call.node()
    wanted = call.params.get("type")
    rows = []
    for name in sorted(node.interfaces):
        interface = node.interfaces[name]
        if wanted in (None, "any") or interface.type == wanted:
            rows.append(_interface_row(interface))
    return rows


@handles("/nodes/{node}/network/{iface}", "GET")
def get_interface(call: Call) -> dict[str, Any]:
    node = call.node()
    interface = node.interfaces.get(call.path_params["iface"])
    if interface is None:
        raise fail(f"interface '{call.path_params['iface']}' does not exist")
    return _interface_row(interface)


@handles("/nodes/{node}/network", "POST")
def create_interface(call: Call) -> None:
    node = call.node()
    name = call.params["iface"]
    pending = _pending_interfaces(node)
    if name in pending:
        raise fail(f"interface '{name}' already exists")
    pending[name] = Interface(
        iface=name,
        type=call.params["type"],
        bridge_ports=call.params.get("bridge_ports", ""),
        bridge_vlan_aware=bool(call.params.get("bridge_vlan_aware", False)),
        cidr=call.params.get("cidr", ""),
        gateway=call.params.get("gateway", ""),
        autostart=bool(call.params.get("autostart", False)),
        comments=call.params.get("comments", ""),
    )


@handles("/nodes/{node}/network/{iface}", "PUT")
def update_interface(call: Call) -> None:
    node = call.node()
    pending = _pending_interfaces(node)
    name = call.path_params["iface"]
    interface = pending.get(name)
    if interface is None:
        raise fail(f"interface '{name}' does not exist")
    changes = {
        field.name: call.params[field.name]
        for field in dataclasses.fields(Interface)
        if field.name in call.params and field.name not in ("iface", "type")
    }
    pending[name] = dataclasses.replace(interface, **changes)


@handles("/nodes/{node}/network", "PUT")
def reload_network(call: Call) -> str:
    """Apply the pending interfaces file (``ifreload -a``) as a task."""
    node = call.node()

    def apply() -> list[str]:
        if node.pending_interfaces is not None:
            node.interfaces = node.pending_interfaces
            node.pending_interfaces = None
        return ["ifreload -a"]

    return call.sim.start_task(call, "srvreload", "networking", apply)


@handles("/nodes/{node}/network", "DELETE")
def revert_network(call: Call) -> None:
    call.node().pending_interfaces = None


def _pending_interfaces(node: Node) -> dict[str, Interface]:
    if node.pending_interfaces is None:
        node.pending_interfaces = {
            name: dataclasses.replace(interface) for name, interface in node.interfaces.items()
        }
    return node.pending_interfaces


# Storage -----------------------------------------------------------------------------------


def _storage_config_row(storage: Storage) -> dict[str, Any]:
    row: dict[str, Any] = {
        "storage": storage.storage,
        "type": storage.type,
        "content": ",".join(sorted(storage.content)),
        "shared": int(storage.shared),
    }
    for key in ("path", "pool", "thinpool", "vgname", "server", "datastore"):
        value = getattr(storage, key)
        if value:
            row[key] = value
    if storage.nodes is not None:
        row["nodes"] = ",".join(storage.nodes)
    return row


@handles("/storage", "GET")
def list_storage_config(call: Call) -> list[dict[str, Any]]:
    wanted = call.params.get("type")
    return [
        _storage_config_row(storage)
        for storage in sorted(call.state.storages.values(), key=lambda s: s.storage)
        if wanted is None or storage.type == wanted
    ]


@handles("/storage/{storage}", "GET")
def get_storage_config(call: Call) -> dict[str, Any]:
    storage = call.state.storages.get(call.path_params["storage"])
    if storage is None:
        raise fail(f"storage '{call.path_params['storage']}' does not exist")
    return _storage_config_row(storage)


def _storage_status(call: Call, node: str, storage: Storage) -> dict[str, Any]:
    used = sum(volume.size for volume in storage.on(node).values())
    return {
        "storage": storage.storage,
        "type": storage.type,
        "content": ",".join(sorted(storage.content)),
        "shared": int(storage.shared),
        "active": 1,
        "enabled": 1,
        "total": storage.total,
        "used": used,
        "avail": storage.total - used,
        "used_fraction": used / storage.total if storage.total else 0.0,
    }


@handles("/nodes/{node}/storage", "GET")
def list_node_storage(call: Call) -> list[dict[str, Any]]:
    node = call.node()
    content = call.params.get("content")
    wanted = call.params.get("storage")
    rows = []
    for storage in sorted(call.state.storages.values(), key=lambda s: s.storage):
        if not storage.available_on(node.name):
            continue
        if content is not None and not set(str(content).split(",")) & set(storage.content):
            continue
        if wanted is not None and storage.storage != wanted:
            continue
        rows.append(_storage_status(call, node.name, storage))
    return rows


def _node_storage(call: Call) -> tuple[Node, Storage]:
    node = call.node()
    storage_id = call.path_params["storage"]
    storage = call.state.storages.get(storage_id)
    if storage is None:
        raise fail(f"storage '{storage_id}' does not exist")
    if not storage.available_on(node.name):
        raise fail(f"storage '{storage_id}' is not available on node '{node.name}'")
    return node, storage


@handles("/nodes/{node}/storage/{storage}/status", "GET")
def storage_status(call: Call) -> dict[str, Any]:
    node, storage = _node_storage(call)
    return _storage_status(call, node.name, storage)


@handles("/nodes/{node}/storage/{storage}/content", "GET")
def storage_content(call: Call) -> list[dict[str, Any]]:
    node, storage = _node_storage(call)
    content = call.params.get("content")
    vmid = call.params.get("vmid")
    rows = []
    for volid in sorted(storage.on(node.name)):
        volume = storage.on(node.name)[volid]
        if content is not None and volume.content != content:
            continue
        if vmid is not None and volume.vmid != vmid:
            continue
        row: dict[str, Any] = {
            "volid": volume.volid,
            "content": volume.content,
            "format": volume.format,
            "size": volume.size,
            "ctime": volume.ctime,
        }
        if volume.vmid is not None:
            row["vmid"] = volume.vmid
        if volume.subtype is not None:
            row["subtype"] = volume.subtype
        if volume.notes:
            row["notes"] = volume.notes
        rows.append(row)
    return rows


@handles("/nodes/{node}/storage/{storage}/content/{volume}", "DELETE")
def delete_volume(call: Call) -> str:
    node, storage = _node_storage(call)
    volid = call.path_params["volume"]
    if ":" not in volid:
        volid = f"{storage.storage}:{volid}"
    volumes = storage.on(node.name)
    volume = volumes.get(volid)
    if volume is None:
        raise fail(f"volume '{volid}' does not exist")
    if volume.vmid is not None and volume.content in ("images", "rootdir"):
        owner = call.state.guests.get(volume.vmid)
        if owner is not None and _referenced(owner.config, volid):
            raise fail(f"volume '{volid}' is in use by {owner.label}")

    def remove() -> list[str]:
        volumes.pop(volid, None)
        return [f"Removed volume '{volid}'"]

    return call.sim.start_task(call, "imgdel", volid, remove)


def _referenced(config: dict[str, Any], volid: str) -> bool:
    return any(str(value).split(",")[0] == volid for value in config.values())


# Hardware ----------------------------------------------------------------------------------


@handles("/nodes/{node}/hardware/pci", "GET")
def list_pci(call: Call) -> list[dict[str, Any]]:
    node = call.node()
    rows = []
    for device in node.pci_devices:
        vendor, _, device_id = device.vendor_device.partition(":")
        rows.append(
            {
                "id": device.address,
                "class": device.class_code,
                "vendor": f"0x{vendor}",
                "device": f"0x{device_id}",
                "iommugroup": device.iommu_group,
                "device_name": device.name,
                "subsystem_vendor": f"0x{vendor}",
                "subsystem_device": "0x0000",
            }
        )
    return rows


# Tasks -------------------------------------------------------------------------------------


def _task(call: Call) -> Any:
    node = call.node()
    upid = call.path_params["upid"]
    task = call.sim.tasks.tasks.get(upid)
    if task is None or task.node != node.name:
        raise fail(f"no such task '{upid}'")
    return task


@handles("/nodes/{node}/tasks", "GET")
def list_tasks(call: Call) -> list[dict[str, Any]]:
    node = call.node()
    vmid = call.params.get("vmid")
    source = call.params.get("source", "archive")
    limit = int(call.params.get("limit", DEFAULT_LOG_LIMIT))
    tasks = [
        task
        for task in call.sim.tasks.tasks.values()
        if task.node == node.name
        and (vmid is None or task.task_id == str(vmid))
        and (source == "all" or (source == "active") == task.running)
    ]
    tasks.sort(key=lambda task: task.starttime, reverse=True)
    return [task.summary() for task in tasks[:limit]]


@handles("/nodes/{node}/tasks/{upid}/status", "GET")
def task_status(call: Call) -> dict[str, Any]:
    status: dict[str, Any] = _task(call).status()
    return status


@handles("/nodes/{node}/tasks/{upid}/log", "GET")
def task_log(call: Call) -> Reply:
    lines = _task(call).log_lines()
    start = int(call.params.get("start", 0))
    limit = int(call.params.get("limit", DEFAULT_LOG_LIMIT))
    window = lines[start : start + limit]
    rows = [{"n": start + index + 1, "t": text} for index, text in enumerate(window)]
    return Reply(rows, {"total": len(lines)})


@handles("/nodes/{node}/tasks/{upid}", "GET")
def task_index(call: Call) -> list[dict[str, str]]:
    _task(call)
    return [{"name": "log"}, {"name": "status"}]


@handles("/nodes/{node}/tasks/{upid}", "DELETE")
def stop_task(call: Call) -> None:
    task = _task(call)
    if not task.running:
        return
    task.effect = None
    task.exitstatus = "unexpected status"
    task.endtime = call.sim.tasks.wall_time()
    if task.cleanup is not None:
        task.cleanup()


def unknown_node(name: str) -> ApiError:
    return ApiError(595, f"no such cluster node '{name}'")
