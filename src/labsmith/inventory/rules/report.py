"""Building a finding from the host or guest that owns the offending value."""

from labsmith.inventory.findings import Finding, Severity, key_path
from labsmith.inventory.lab import Guest, PhysicalHost


def finding(
    owner: PhysicalHost | Guest,
    rule: str,
    path: tuple[str | int, ...],
    message: str,
    fix: str,
    severity: Severity = "error",
) -> Finding:
    """``path`` starts with the top-level variable: ("labsmith_gpus", 1, "pci")."""
    variable = str(path[0])
    return Finding(
        file=owner.origin(variable),
        key=key_path(variable, *path[1:]),
        rule=rule,
        severity=severity,
        host=owner.name,
        message=message,
        fix=fix,
    )
