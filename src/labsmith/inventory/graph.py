"""The lab as a Mermaid flowchart: hosts, their GPUs, bridges and storage, and the guests."""

import re
from dataclasses import dataclass, field
from typing import Literal

import jinja2

from labsmith.inventory.lab import Guest, Lab, PhysicalHost
from labsmith.resources import templates_dir
from labsmith.units import format_size


@dataclass
class Node:
    id: str
    label: str
    shape: str  # a key of the template's SHAPES: box, gpu, bridge, storage


@dataclass
class Cluster:
    id: str
    label: str
    nodes: list[Node] = field(default_factory=list)


@dataclass
class Edge:
    source: str
    target: str
    label: str
    style: Literal["solid", "dotted", "link"]


def render_mermaid(lab: Lab) -> str:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        autoescape=False,  # noqa: S701 - Mermaid source, not HTML; mermaid_text escapes labels
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    clusters, edges = _diagram(lab)
    return environment.get_template("graph.mmd.j2").render(clusters=clusters, edges=edges)


def mermaid_id(*parts: str) -> str:
    return "_".join(re.sub(r"[^A-Za-z0-9]", "_", part) for part in parts)


def mermaid_text(text: str) -> str:
    """Mermaid reads quotes and angle brackets in labels as syntax; use its entity codes."""
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def _diagram(lab: Lab) -> tuple[list[Cluster], list[Edge]]:
    clusters: list[Cluster] = []
    edges: list[Edge] = []
    for host in sorted(lab.hosts.values(), key=lambda h: h.name):
        cluster = _host_cluster(host)
        for guest in sorted(lab.guests_on(host.name), key=lambda g: g.spec.guest.vmid):
            cluster.nodes.append(_guest_node(guest))
            edges.extend(_guest_edges(guest, host))
        clusters.append(cluster)
    orphans = [g for g in lab.guests.values() if g.spec.guest.node not in lab.hosts]
    if orphans:
        cluster = Cluster(id="unplaced", label="guests on unknown nodes")
        cluster.nodes.extend(_guest_node(guest) for guest in orphans)
        clusters.append(cluster)
    return clusters, edges


def _host_cluster(host: PhysicalHost) -> Cluster:
    spec = host.spec
    cpu = spec.cpu.model or spec.cpu.vendor
    title = f"{host.name} · {spec.kind} · {cpu} · {format_size(spec.memory)}"
    cluster = Cluster(id=mermaid_id(host.name), label=mermaid_text(title))
    for gpu in spec.gpus:
        label = f"{gpu.model or gpu.name} · {format_size(gpu.vram)} · {gpu.mode} · {gpu.pci}"
        cluster.nodes.append(
            Node(mermaid_id(host.name, "gpu", gpu.name), mermaid_text(label), "gpu")
        )
    for bridge in spec.bridges:
        label = bridge.name + (" · VLAN-aware" if bridge.vlan_aware else "")
        if bridge.ip is not None:
            label += f" · {bridge.ip}"
        cluster.nodes.append(
            Node(mermaid_id(host.name, "br", bridge.name), mermaid_text(label), "bridge")
        )
    for layout in spec.storage:
        label = f"{layout.id} · {layout.backend} {layout.layout}"
        if layout.disks:
            label += f" · {len(layout.disks)} disk(s)"
        cluster.nodes.append(
            Node(mermaid_id(host.name, "st", layout.id), mermaid_text(label), "storage")
        )
    for service in spec.services:
        cluster.nodes.append(
            _service_node(host.name, service.name, service.kind, len(service.models))
        )
    return cluster


def _service_node(owner: str, name: str, kind: str, models: int) -> Node:
    label = f"{name} ({kind})" + (f" · {models} model(s)" if models else "")
    return Node(mermaid_id(owner, "svc", name), mermaid_text(label), "service")


def _guest_node(guest: Guest) -> Node:
    spec = guest.spec.guest
    kind = "VM" if spec.type == "qemu" else "CT"
    services = ", ".join(service.name for service in guest.spec.services)
    size = f"{spec.cores} cores · {format_size(spec.memory)}"
    label = f"{guest.display_name} · {kind} {spec.vmid} · {size}"
    if services:
        label += f" · {services}"
    return Node(mermaid_id("guest", guest.name), mermaid_text(label), "box")


def _guest_edges(guest: Guest, host: PhysicalHost) -> list[Edge]:
    spec = guest.spec.guest
    target = mermaid_id("guest", guest.name)
    gpu_modes = {gpu.name: gpu.mode for gpu in host.spec.gpus}
    edges = [
        Edge(
            mermaid_id(host.name, "gpu", name), target, gpu_modes.get(name, "unknown GPU"), "solid"
        )
        for name in spec.gpus
    ]
    for nic in spec.nics:
        parts = [f"VLAN {nic.vlan}" if nic.vlan is not None else "untagged"]
        if nic.ip is not None:
            parts.append(str(nic.ip))
        edges.append(
            Edge(
                target,
                mermaid_id(host.name, "br", nic.bridge),
                mermaid_text(" · ".join(parts)),
                "link",
            )
        )
    storages = [disk.storage for disk in spec.disks] + (
        [spec.rootfs.storage] if spec.rootfs else []
    )
    edges.extend(
        Edge(target, mermaid_id(host.name, "st", storage), "disk", "dotted")
        for storage in dict.fromkeys(storages)
    )
    return edges
