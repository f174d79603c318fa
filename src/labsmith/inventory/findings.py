"""A finding: one thing wrong with the inventory, where it is, and how to fix it."""

from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Finding:
    file: str  # relative to the inventory directory: host_vars/pve1.yml
    key: str  # path from the top-level variable: labsmith_gpus[1].pci
    rule: str  # stable id, e.g. gpu.assigned_twice
    severity: Severity
    host: str  # the inventory host whose variables hold the value
    message: str  # what is wrong, with the values seen
    fix: str  # what to change

    @property
    def location(self) -> str:
        return f"{self.file}: {self.key}"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def key_path(variable: str, *parts: str | int) -> str:
    """``key_path("labsmith_gpus", 1, "pci")`` -> ``labsmith_gpus[1].pci``."""
    path = variable
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path
