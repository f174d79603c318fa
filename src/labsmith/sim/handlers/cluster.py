"""Cluster-wide endpoints: version, nextid, resources, status, PCI mappings, cluster tasks."""

from typing import Any

from labsmith.sim.handlers.base import ApiError, Call, fail, handles
from labsmith.sim.state import PciMapping

FIRST_VMID = 100


@handles("/version", "GET")
def version(call: Call) -> dict[str, Any]:
    release = ".".join(call.sim.schema.version.split(".")[:2])
    return {"version": call.sim.schema.version, "release": release, "repoid": "labsmith-sim"}


@handles("/cluster/nextid", "GET")
def nextid(call: Call) -> int:
    wanted = call.params.get("vmid")
    if wanted is not None:
        if wanted in call.state.guests:
            # Worded "VM" whatever the guest is (pve-manager API2/Cluster.pm nextid).
            raise ApiError(
                400, "Parameter verification failed.", {"vmid": f"VM {wanted} already exists"}
            )
        return int(wanted)
    vmid = FIRST_VMID
    while vmid in call.state.guests:
        vmid += 1
    return vmid


@handles("/cluster/status", "GET")
def cluster_status(call: Call) -> list[dict[str, Any]]:
    nodes = sorted(call.state.nodes.values(), key=lambda node: node.name)
    rows: list[dict[str, Any]] = [
        {
            "type": "cluster",
            "id": "cluster",
            "name": "labsmith-sim",
            "nodes": len(nodes),
            "quorate": 1,
            "version": 1,
        }
    ]
    for number, node in enumerate(nodes, start=1):
        rows.append(
            {
                "type": "node",
                "id": f"node/{node.name}",
                "name": node.name,
                "nodeid": number,
                "online": 1 if node.online else 0,
                "local": 1 if number == 1 else 0,
                "ip": f"127.0.0.{number}",
                "level": "",
            }
        )
    return rows


@handles("/cluster/resources", "GET")
def resources(call: Call) -> list[dict[str, Any]]:
    wanted = call.params.get("type")
    rows: list[dict[str, Any]] = []
    if wanted in (None, "node"):
        rows.extend(_node_row(call, name) for name in sorted(call.state.nodes))
    if wanted in (None, "vm"):
        rows.extend(_guest_row(call, vmid) for vmid in sorted(call.state.guests))
    if wanted in (None, "storage"):
        for node in sorted(call.state.nodes):
            for storage in sorted(call.state.storages.values(), key=lambda s: s.storage):
                if storage.available_on(node):
                    rows.append(_storage_row(call, node, storage.storage))
    return rows


def _node_row(call: Call, name: str) -> dict[str, Any]:
    node = call.state.nodes[name]
    row: dict[str, Any] = {
        "id": f"node/{name}",
        "type": "node",
        "node": name,
        "status": "online" if node.online else "offline",
    }
    if node.online:
        row.update(maxcpu=node.cores, maxmem=node.memory, cpu=0.01, mem=node.memory // 10)
    return row


def _guest_row(call: Call, vmid: int) -> dict[str, Any]:
    guest = call.state.guests[vmid]
    node = call.state.nodes[guest.node]
    row: dict[str, Any] = {
        "id": f"{guest.kind}/{vmid}",
        "type": guest.kind,
        "vmid": vmid,
        "node": guest.node,
        "name": str(guest.config.get("name") or guest.config.get("hostname") or ""),
        "template": int(bool(guest.config.get("template"))),
    }
    # The config lives in the cluster filesystem, so tags and locks show for a lost node too.
    for key in ("tags", "lock"):
        if key in guest.config:
            row[key] = guest.config[key]
    if not node.online:
        row["status"] = "unknown"
        return row
    row["status"] = guest.status
    row["maxcpu"] = int(guest.config.get("cores", 1))
    row["maxmem"] = _memory_mib(guest.config.get("memory", 512)) * 1024**2
    return row


def _memory_mib(value: Any) -> int:
    text = str(value)
    return int(text.split("=", 1)[-1].split(",")[0]) if text else 512


def _storage_row(call: Call, node: str, storage_id: str) -> dict[str, Any]:
    storage = call.state.storages[storage_id]
    used = sum(volume.size for volume in storage.on(node).values())
    online = call.state.nodes[node].online
    return {
        "id": f"storage/{node}/{storage_id}",
        "type": "storage",
        "node": node,
        "storage": storage_id,
        "plugintype": storage.type,
        "content": ",".join(sorted(storage.content)),
        "shared": int(storage.shared),
        "status": "available" if online else "unknown",
        "maxdisk": storage.total,
        "disk": used,
    }


@handles("/cluster/mapping/pci", "GET")
def list_mappings(call: Call) -> list[dict[str, Any]]:
    rows = []
    for mapping in sorted(call.state.mappings.values(), key=lambda m: m.id):
        if call.sim.access.check(
            call.principal,
            f"/mapping/pci/{mapping.id}",
            ("Mapping.Modify", "Mapping.Use", "Mapping.Audit"),
            any_of=True,
        ):
            rows.append(_mapping_row(mapping))
    return rows


def _mapping_row(mapping: PciMapping) -> dict[str, Any]:
    row: dict[str, Any] = {"id": mapping.id, "map": list(mapping.map)}
    if mapping.description:
        row["description"] = mapping.description
    if mapping.mdev:
        row["mdev"] = 1
    return row


@handles("/cluster/mapping/pci", "POST")
def create_mapping(call: Call) -> None:
    mapping_id = call.params["id"]
    if mapping_id in call.state.mappings:
        raise fail(f"create hardware mapping failed: pci ID '{mapping_id}' already defined")
    call.state.mappings[mapping_id] = PciMapping(
        id=mapping_id,
        map=_as_list(call.params["map"]),
        description=call.params.get("description", ""),
        mdev=bool(call.params.get("mdev", False)),
        live_migration_capable=bool(call.params.get("live-migration-capable", False)),
    )


def _as_list(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]


def _mapping(call: Call, doing: str = "") -> PciMapping:
    mapping_id = call.path_params["id"]
    mapping = call.state.mappings.get(mapping_id)
    if mapping is None:
        if doing:
            raise fail(f"{doing} hardware mapping failed: pci ID '{mapping_id}' does not exist")
        raise fail(f"mapping '{mapping_id}' not found")
    return mapping


@handles("/cluster/mapping/pci/{id}", "GET")
def get_mapping(call: Call) -> dict[str, Any]:
    mapping = _mapping(call)
    row = _mapping_row(mapping)
    row["digest"] = call.sim.mapping_digest()
    return row


@handles("/cluster/mapping/pci/{id}", "PUT")
def update_mapping(call: Call) -> None:
    mapping = _mapping(call, "update")
    digest = call.params.get("digest")
    if digest is not None and digest != call.sim.mapping_digest():
        raise fail("detected modified configuration - file changed by other user? Try again.")
    for key in _as_list(call.params.get("delete", [])) if "delete" in call.params else []:
        for name in key.split(","):
            if name == "description":
                mapping.description = ""
            elif name == "mdev":
                mapping.mdev = False
    if "map" in call.params:
        mapping.map = _as_list(call.params["map"])
    if "description" in call.params:
        mapping.description = call.params["description"]
    if "mdev" in call.params:
        mapping.mdev = bool(call.params["mdev"])


@handles("/cluster/mapping/pci/{id}", "DELETE")
def delete_mapping(call: Call) -> None:
    mapping = _mapping(call, "delete")
    del call.state.mappings[mapping.id]


@handles("/cluster/tasks", "GET")
def cluster_tasks(call: Call) -> list[dict[str, Any]]:
    tasks = sorted(call.sim.tasks.tasks.values(), key=lambda task: task.starttime, reverse=True)
    return [task.summary() for task in tasks]
