"""Judge one host snapshot, alone or against the host's inventory entry."""

from dataclasses import dataclass
from typing import Any

from labsmith.checks.gpu import GpuIntent, gpu_verdicts
from labsmith.checks.host import host_checks
from labsmith.checks.inventory import inventory_checks
from labsmith.checks.verdict import Check, GpuVerdict, Status, worst
from labsmith.facts.snapshot import HostFacts
from labsmith.inventory.lab import PhysicalHost


@dataclass(frozen=True)
class ProbeReport:
    host: str
    snapshot: str
    checks: tuple[Check, ...]
    gpus: tuple[GpuVerdict, ...]

    @property
    def status(self) -> Status:
        return worst(
            [check.status for check in self.checks] + [gpu.passthrough for gpu in self.gpus]
        )

    @property
    def failed(self) -> bool:
        return any(check.status == "fail" for check in self.checks) or any(
            gpu.passthrough == "fail" for gpu in self.gpus
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "snapshot": self.snapshot,
            "status": self.status,
            "checks": [check.as_dict() for check in self.checks],
            "gpus": [gpu.as_dict() for gpu in self.gpus],
        }


def judge(facts: HostFacts, name: str, host: PhysicalHost | None = None) -> ProbeReport:
    intents = {}
    checks = list(host_checks(facts))
    if host is not None:
        intents = {
            gpu.pci: GpuIntent(name=gpu.name, mode=gpu.mode, display=gpu.display)
            for gpu in host.spec.gpus
        }
        checks += inventory_checks(facts, host)
    return ProbeReport(
        host=name,
        snapshot=str(facts.source),
        checks=tuple(checks),
        gpus=tuple(gpu_verdicts(facts, intents)),
    )
