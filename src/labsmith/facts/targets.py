"""Where to SSH to probe a host: an inventory host's Ansible connection variables.

``labsmith probe`` reaches a host the way ``ansible`` would, so the inventory that
provisions a lab is also the one that probes it: ``ansible_host``, ``ansible_port``,
``ansible_user`` and ``ansible_ssh_private_key_file`` (or their older ``ansible_ssh_*``
spellings), falling back to the inventory name and port 22.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labsmith.errors import LabsmithError
from labsmith.inventory.sources import ResolvedInventory

# Each setting with the variables Ansible reads it from, the preferred spelling first.
_ADDRESS_VARIABLES = ("ansible_host", "ansible_ssh_host")
_PORT_VARIABLES = ("ansible_port", "ansible_ssh_port")
_USER_VARIABLES = ("ansible_user", "ansible_ssh_user")
_KEY_FILE_VARIABLES = ("ansible_ssh_private_key_file", "ansible_private_key_file")


class InventoryHostError(LabsmithError):
    """A host to probe is not in the inventory, or its connection variables are unusable."""

    exit_code = 2


@dataclass(frozen=True)
class SshTarget:
    name: str  # the inventory name; also the snapshot directory's name
    address: str
    port: int = 22
    user: str | None = None  # None: the local user name, as ssh does
    key_file: Path | None = None


def targets_from_inventory(inventory: ResolvedInventory, names: Sequence[str]) -> list[SshTarget]:
    unknown = [name for name in names if name not in inventory.hosts]
    if unknown:
        known = ", ".join(sorted(inventory.hosts)) or "none"
        raise InventoryHostError(
            f"{', '.join(unknown)}: not a host of the inventory {inventory.root} "
            f"(its hosts: {known})"
        )
    return [target_for_host(name, inventory.hosts[name].variables) for name in names]


def target_for_host(name: str, variables: Mapping[str, Any]) -> SshTarget:
    """The SSH target of one inventory host from its resolved variables."""
    address = _text(name, variables, _ADDRESS_VARIABLES) or name
    user = _text(name, variables, _USER_VARIABLES)
    key_file = _text(name, variables, _KEY_FILE_VARIABLES)
    return SshTarget(
        name=name,
        address=address,
        port=_port(name, variables),
        user=user,
        key_file=Path(key_file).expanduser() if key_file else None,
    )


def _first(variables: Mapping[str, Any], spellings: Sequence[str]) -> tuple[str, Any] | None:
    for variable in spellings:
        if variables.get(variable) is not None:
            return variable, variables[variable]
    return None


def _text(name: str, variables: Mapping[str, Any], spellings: Sequence[str]) -> str | None:
    found = _first(variables, spellings)
    if found is None:
        return None
    variable, value = found
    if not isinstance(value, str | int) or isinstance(value, bool):
        # A !vault value or a mapping: Ansible would decrypt or template it; labsmith won't.
        raise InventoryHostError(
            f"{name}: {variable} must be plain text to probe the host, found {type(value).__name__}"
        )
    text = str(value)
    if "{{" in text or "{%" in text:
        raise InventoryHostError(
            f"{name}: {variable} is a Jinja template ({text}); labsmith probe does not "
            "template variables: set a literal value or probe the address directly"
        )
    return text


def _port(name: str, variables: Mapping[str, Any]) -> int:
    text = _text(name, variables, _PORT_VARIABLES)
    if text is None:
        return 22
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise InventoryHostError(f"{name}: ansible_port must be a TCP port (1-65535), not {text}")
    return int(text)
