"""The lab: the inventory's physical hosts and guests as typed objects, with provenance."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from labsmith.inventory.findings import Finding
from labsmith.inventory.model import (
    LAB_WIDE_VARIABLES,
    GuestVars,
    LabWideVars,
    PhysicalHostVars,
    Vlan,
)
from labsmith.inventory.schema import schema_findings
from labsmith.inventory.sources import ResolvedHost, ResolvedInventory


@dataclass(frozen=True)
class ManagedHost:
    """An inventory host labsmith manages; findings about it name the file of each variable."""

    name: str
    source: ResolvedHost

    def origin(self, variable: str) -> str:
        return self.source.origin(variable)


@dataclass(frozen=True)
class PhysicalHost(ManagedHost):
    spec: PhysicalHostVars

    @property
    def cluster(self) -> str:
        return self.spec.cluster or self.name


@dataclass(frozen=True)
class Guest(ManagedHost):
    spec: GuestVars

    @property
    def display_name(self) -> str:
        """The name Proxmox shows: ``labsmith_guest.name`` or the inventory hostname."""
        return self.spec.guest.name or self.name


@dataclass(frozen=True)
class VlanList:
    """One ``labsmith_vlans`` list as written in one file (checked once, not per host)."""

    file: str
    host: str
    vlans: tuple[Vlan, ...]


@dataclass
class Lab:
    root: Path
    hosts: dict[str, PhysicalHost] = field(default_factory=dict)
    guests: dict[str, Guest] = field(default_factory=dict)
    vlan_lists: list[VlanList] = field(default_factory=list)
    # Inventory hosts without labsmith variables (a NAS, a workstation labsmith leaves alone).
    unmanaged: list[str] = field(default_factory=list)
    # Hosts whose variables failed the schema: cross-checks that need them say nothing.
    unjudged: set[str] = field(default_factory=set)
    _by_node: dict[str, list[Guest]] | None = field(default=None, repr=False)

    def managed(self) -> list[PhysicalHost | Guest]:
        """Physical hosts and guests together, in name order."""
        return [self.owner(name) for name in sorted(self.hosts.keys() | self.guests.keys())]

    def owner(self, name: str) -> PhysicalHost | Guest:
        """The physical host or guest called ``name``."""
        return self.hosts.get(name) or self.guests[name]

    def guests_on(self, node: str) -> list[Guest]:
        """The guests placed on ``node``, in name order."""
        if self._by_node is None:
            self._by_node = {}
            for name in sorted(self.guests):
                guest = self.guests[name]
                self._by_node.setdefault(guest.spec.guest.node, []).append(guest)
        return self._by_node.get(node, [])


def build_lab(inventory: ResolvedInventory) -> tuple[Lab, list[Finding]]:
    """Type every host's ``labsmith_*`` variables; schema problems come back as findings."""
    lab = Lab(root=inventory.root)
    findings: list[Finding] = []
    seen_vlan_lists: set[str] = set()
    for name in sorted(inventory.hosts):
        resolved = inventory.hosts[name]
        variables = {k: v for k, v in resolved.variables.items() if k.startswith("labsmith_")}
        model = _model_for(variables)
        if "labsmith_kind" in variables and "labsmith_guest" in variables:
            findings.append(_host_and_guest(resolved))
            lab.unjudged.add(name)
            continue
        try:
            spec = model.model_validate(variables)
        except ValidationError as error:
            findings.extend(schema_findings(error, model, resolved))
            lab.unjudged.add(name)
            continue
        if isinstance(spec, PhysicalHostVars):
            lab.hosts[name] = PhysicalHost(name=name, spec=spec, source=resolved)
        elif isinstance(spec, GuestVars):
            lab.guests[name] = Guest(name=name, spec=spec, source=resolved)
        else:
            lab.unmanaged.append(name)
        if isinstance(spec, LabWideVars) and spec.vlans:
            file = resolved.origin("labsmith_vlans")
            if file not in seen_vlan_lists:
                seen_vlan_lists.add(file)
                lab.vlan_lists.append(VlanList(file=file, host=name, vlans=tuple(spec.vlans)))
    return lab, findings


def _model_for(variables: dict[str, Any]) -> type[BaseModel]:
    if "labsmith_guest" in variables:
        return GuestVars
    if set(variables) <= LAB_WIDE_VARIABLES:
        return LabWideVars
    return PhysicalHostVars


def _host_and_guest(resolved: ResolvedHost) -> Finding:
    return Finding(
        file=resolved.origin("labsmith_guest"),
        key="labsmith_guest",
        rule="schema.host_and_guest",
        severity="error",
        host=resolved.name,
        message=(
            f"{resolved.name} has both labsmith_kind (a physical host) and labsmith_guest "
            f"(a Proxmox guest); labsmith_kind comes from {resolved.origin('labsmith_kind')}"
        ),
        fix="keep labsmith_kind on physical hosts and labsmith_guest on guests only",
    )
