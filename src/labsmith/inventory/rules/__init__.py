"""Cross-checks over the typed lab: the rules that need more than one value to judge."""

from collections.abc import Callable, Iterator

from labsmith.inventory.findings import Finding
from labsmith.inventory.lab import Lab
from labsmith.inventory.rules import gpus, guests, network, services, storage

SCHEMA_RULES = {
    "schema.invalid": "a value of the wrong type or format",
    "schema.missing": "a required key is missing",
    "schema.unknown_key": "a key labsmith does not know (often a typo)",
    "schema.host_and_guest": "a host with both labsmith_kind and labsmith_guest",
}

# Every rule id the inventory alone can judge, with a one-line description; labsmith.checks.lab
# adds the rules that need sizing (the README's rule table is their union).
RULES: dict[str, str] = {
    **SCHEMA_RULES,
    **guests.RULES,
    **gpus.RULES,
    **network.RULES,
    **storage.RULES,
    **services.RULES,
}

_CHECKS: tuple[Callable[[Lab], Iterator[Finding]], ...] = (
    guests.check_guests,
    gpus.check_gpus,
    network.check_network,
    storage.check_storage,
    services.check_services,
)


def cross_check(lab: Lab) -> list[Finding]:
    return [found for check in _CHECKS for found in check(lab)]
