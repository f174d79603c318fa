"""The whole offline verdict on a lab: the inventory's own rules plus the VRAM fit.

Fit findings need ``labsmith.sizing``, which sits to the right of ``labsmith.inventory`` in
the data flow, so they are added here rather than among the inventory's rules.
"""

from pathlib import Path

from labsmith.checks.fit import RULES as FIT_RULES
from labsmith.checks.fit import check_models
from labsmith.errors import InvalidInventoryError
from labsmith.inventory.rules import RULES as INVENTORY_RULES
from labsmith.inventory.validate import Report, validate

# Every rule id labsmith reports, with a one-line description (the README's rule table).
RULES: dict[str, str] = {**INVENTORY_RULES, **FIT_RULES}


def check_lab(source: Path, vault_password_file: Path | None = None) -> Report:
    """Raises UnusableInventoryError when the inventory cannot be read at all."""
    report = validate(source, vault_password_file)
    report.findings = sorted([*report.findings, *check_models(report.lab)])
    return report


def require_valid_lab(source: Path, vault_password_file: Path | None = None) -> Report:
    """The checked lab, or InvalidInventoryError naming the first error: the one gate every
    command that changes something passes before it touches a host or an API."""
    report = check_lab(source, vault_password_file)
    if report.errors:
        raise InvalidInventoryError(f"{report.error_summary(source)}; nothing was changed")
    return report
