"""Offline validation: inventory -> typed lab -> schema and cross-check findings."""

from dataclasses import dataclass, field
from pathlib import Path

from labsmith.inventory.findings import Finding
from labsmith.inventory.lab import Lab, build_lab
from labsmith.inventory.rules import cross_check
from labsmith.inventory.sources import load_inventory


@dataclass
class Report:
    lab: Lab
    findings: list[Finding]
    skipped_vault_files: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [found for found in self.findings if found.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [found for found in self.findings if found.severity == "warning"]

    @property
    def valid(self) -> bool:
        return not self.errors

    def error_summary(self, source: Path) -> str:
        """One line for commands that stop on an invalid inventory: the count, the first
        error with its file and key, and where to see them all."""
        first = self.errors[0]
        return (
            f"{source}: the inventory has {len(self.errors)} error(s), first: {first.file}: "
            f"{first.key}: {first.message} (labsmith validate -i {source} lists them)"
        )


def validate(source: Path, vault_password_file: Path | None = None) -> Report:
    """Raises UnusableInventoryError when the inventory cannot be read at all."""
    inventory = load_inventory(source, vault_password_file)
    lab, findings = build_lab(inventory)
    findings += cross_check(lab)
    # A value from group_vars/all.yml is seen by every host; report it once.
    unique = {(f.rule, f.file, f.key, f.message): f for f in findings}
    return Report(
        lab=lab,
        findings=sorted(unique.values()),
        skipped_vault_files=inventory.skipped_vault_files,
    )
