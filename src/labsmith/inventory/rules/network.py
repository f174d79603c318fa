"""Bridges, VLANs and addresses: what exists, what is VLAN-aware, what overlaps."""

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from labsmith.inventory.findings import Finding
from labsmith.inventory.lab import Guest, Lab, PhysicalHost, VlanList
from labsmith.inventory.model import Bridge, GuestNic, Vlan, VlanRef
from labsmith.inventory.rules.report import finding

RULES = {
    "network.bridge_unknown": "a guest NIC is on a bridge its node does not declare",
    "network.bridge_port_unknown": "a bridge port is not a declared NIC",
    "network.vlan_not_aware": "a VLAN on a bridge that is not VLAN-aware",
    "network.vlan_range": "a VLAN tag outside 1-4094",
    "network.vlan_unknown": "a VLAN name that labsmith_vlans does not declare",
    "network.vlan_duplicate": "two VLANs share a name or tag",
    "network.subnet_overlap": "two VLAN subnets overlap",
    "network.ip_duplicate": "one IP address on two interfaces",
    "network.gateway_outside": "a gateway outside its subnet",
    "network.ip_outside_vlan": "an address outside its VLAN's subnet",
}

MIN_TAG, MAX_TAG = 1, 4094  # 802.1Q: 0 and 4095 are reserved


@dataclass(frozen=True)
class _Interface:
    """A bridge address of a host or a NIC of a guest: where a VLAN ref and an IP meet."""

    owner: PhysicalHost | Guest
    path: tuple[str | int, ...]
    bridge: Bridge | None
    node: PhysicalHost | None
    vlan: VlanRef | None
    ip: ipaddress.IPv4Interface | ipaddress.IPv6Interface | str | None
    gateway: ipaddress.IPv4Address | ipaddress.IPv6Address | None


def check_network(lab: Lab) -> Iterator[Finding]:
    for vlan_list in lab.vlan_lists:
        yield from _vlan_list(vlan_list, lab)
    interfaces = list(_interfaces(lab))
    for host in lab.hosts.values():
        yield from _bridge_ports(host)
    for interface in interfaces:
        yield from _interface(interface)
    yield from _duplicate_ips(interfaces)


def _vlan_finding(
    vlan_list: VlanList, lab: Lab, path: tuple[str | int, ...], rule: str, message: str, fix: str
) -> Finding:
    owner = lab.owner(vlan_list.host)
    return finding(owner, rule, ("labsmith_vlans", *path), message, fix)


def _vlan_list(vlan_list: VlanList, lab: Lab) -> Iterator[Finding]:
    names: dict[str, int] = {}
    tags: dict[int, int] = {}
    for index, vlan in enumerate(vlan_list.vlans):
        if not MIN_TAG <= vlan.id <= MAX_TAG:
            yield _vlan_finding(
                vlan_list,
                lab,
                (index, "id"),
                "network.vlan_range",
                f"VLAN {vlan.name} has tag {vlan.id}, outside 1-4094",
                "use a tag from 1 to 4094 (0 and 4095 are reserved by 802.1Q)",
            )
        for key, earlier_index in (("name", names.get(vlan.name)), ("id", tags.get(vlan.id))):
            if earlier_index is not None:
                yield _vlan_finding(
                    vlan_list,
                    lab,
                    (index, key),
                    "network.vlan_duplicate",
                    f"VLAN {key} {getattr(vlan, key)!r} is already used by "
                    f"labsmith_vlans[{earlier_index}]",
                    "give every VLAN its own name and tag",
                )
        names.setdefault(vlan.name, index)
        tags.setdefault(vlan.id, index)
        if vlan.subnet is not None and vlan.gateway is not None and vlan.gateway not in vlan.subnet:
            yield _vlan_finding(
                vlan_list,
                lab,
                (index, "gateway"),
                "network.gateway_outside",
                f"gateway {vlan.gateway} of VLAN {vlan.name} is outside its subnet {vlan.subnet}",
                f"use an address inside {vlan.subnet} as the gateway",
            )
        for earlier_index, earlier in enumerate(vlan_list.vlans[:index]):
            if (
                vlan.subnet is not None
                and earlier.subnet is not None
                and vlan.subnet.version == earlier.subnet.version
                and vlan.subnet.overlaps(earlier.subnet)
            ):
                yield _vlan_finding(
                    vlan_list,
                    lab,
                    (index, "subnet"),
                    "network.subnet_overlap",
                    f"subnet {vlan.subnet} of VLAN {vlan.name} overlaps {earlier.subnet} "
                    f"of VLAN {earlier.name} (labsmith_vlans[{earlier_index}])",
                    "give every VLAN a subnet of its own",
                )


def _interfaces(lab: Lab) -> Iterator[_Interface]:
    """Every addressable interface, hosts and guests together in name order."""
    for owner in lab.managed():
        if isinstance(owner, PhysicalHost):
            for index, bridge in enumerate(owner.spec.bridges):
                yield _Interface(
                    owner,
                    ("labsmith_bridges", index),
                    bridge,
                    owner,
                    bridge.vlan,
                    bridge.ip,
                    bridge.gateway,
                )
        else:
            node = lab.hosts.get(owner.spec.guest.node)
            bridges = {bridge.name: bridge for bridge in node.spec.bridges} if node else {}
            for index, nic in enumerate(owner.spec.guest.nics):
                yield _Interface(
                    owner,
                    ("labsmith_guest", "nics", index),
                    bridges.get(nic.bridge),
                    node,
                    nic.vlan,
                    nic.ip,
                    nic.gateway,
                )


def _bridge_ports(host: PhysicalHost) -> Iterator[Finding]:
    nics = {nic.name for nic in host.spec.nics}
    for index, bridge in enumerate(host.spec.bridges):
        for port_index, port in enumerate(bridge.ports):
            if port not in nics:
                yield finding(
                    host,
                    "network.bridge_port_unknown",
                    ("labsmith_bridges", index, "ports", port_index),
                    f"bridge {bridge.name} uses port {port!r}, which labsmith_nics of "
                    f"{host.name} does not declare ({', '.join(sorted(nics)) or 'none'})",
                    "declare the NIC in labsmith_nics (name as `ip link` shows it) "
                    "or fix the port name",
                )


def _interface(interface: _Interface) -> Iterator[Finding]:
    owner, path = interface.owner, interface.path
    if isinstance(owner, Guest) and interface.node is not None and interface.bridge is None:
        nic = owner.spec.guest.nics[int(path[-1])]
        yield _unknown_bridge(owner, path, nic, interface.node)
        return
    vlan = None
    if interface.vlan is not None and interface.node is not None and interface.bridge is not None:
        vlan, problems = _resolve_vlan(interface)
        yield from problems
    if isinstance(interface.ip, str) or interface.ip is None:
        return
    if interface.gateway is not None and interface.gateway not in interface.ip.network:
        yield finding(
            owner,
            "network.gateway_outside",
            (*path, "gateway"),
            f"gateway {interface.gateway} is outside {interface.ip.network}, the subnet "
            f"of {interface.ip}",
            "use a gateway inside the subnet, or fix the address's prefix length",
        )
    if vlan is not None and vlan.subnet is not None and interface.ip.ip not in vlan.subnet:
        yield finding(
            owner,
            "network.ip_outside_vlan",
            (*path, "ip"),
            f"address {interface.ip} is outside {vlan.subnet}, the subnet of VLAN {vlan.name}",
            f"use an address inside {vlan.subnet}, or put the interface on the right VLAN",
        )


def _unknown_bridge(
    guest: Guest, path: tuple[str | int, ...], nic: GuestNic, node: PhysicalHost
) -> Finding:
    names = ", ".join(bridge.name for bridge in node.spec.bridges) or "none"
    return finding(
        guest,
        "network.bridge_unknown",
        (*path, "bridge"),
        f"{guest.name} is on bridge {nic.bridge!r}, which node {node.name} does not "
        f"declare (its bridges: {names})",
        f"use one of {node.name}'s bridges or add {nic.bridge} to its labsmith_bridges",
    )


def _resolve_vlan(interface: _Interface) -> tuple[Vlan | None, list[Finding]]:
    assert interface.node is not None and interface.bridge is not None
    owner, path, ref = interface.owner, (*interface.path, "vlan"), interface.vlan
    declared = interface.node.spec.vlans
    problems: list[Finding] = []
    vlan: Vlan | None
    if isinstance(ref, int):
        vlan = next((v for v in declared if v.id == ref), None)
        if not MIN_TAG <= ref <= MAX_TAG:
            problems.append(
                finding(
                    owner,
                    "network.vlan_range",
                    path,
                    f"VLAN tag {ref} is outside 1-4094",
                    "use a tag from 1 to 4094, or a VLAN name from labsmith_vlans",
                )
            )
    else:
        vlan = next((v for v in declared if v.name == ref), None)
        if vlan is None:
            names = ", ".join(v.name for v in declared) or "none declared"
            problems.append(
                finding(
                    owner,
                    "network.vlan_unknown",
                    path,
                    f"VLAN {ref!r} is not in labsmith_vlans ({names})",
                    "declare it in labsmith_vlans (group_vars/all.yml) or fix the name",
                )
            )
    if not interface.bridge.vlan_aware:
        problems.append(
            finding(
                owner,
                "network.vlan_not_aware",
                path,
                f"a VLAN is set on bridge {interface.bridge.name} of "
                f"{interface.node.name}, which is not VLAN-aware: the tag would "
                "be dropped",
                f"set vlan_aware: true on {interface.bridge.name}",
            )
        )
    return vlan, problems


def _duplicate_ips(interfaces: list[_Interface]) -> Iterator[Finding]:
    seen: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, _Interface] = {}
    for interface in interfaces:
        if interface.ip is None or isinstance(interface.ip, str):
            continue
        first = seen.setdefault(interface.ip.ip, interface)
        if first is not interface:
            yield finding(
                interface.owner,
                "network.ip_duplicate",
                (*interface.path, "ip"),
                f"address {interface.ip.ip} is already used by {first.owner.name} "
                f"({first.owner.origin(str(first.path[0]))})",
                "give every interface its own address",
            )
