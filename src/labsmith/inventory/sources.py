"""Read an Ansible inventory and resolve every host's variables the way Ansible does.

ansible-core parses the inventory sources (hosts.yml and friends) and the YAML of every
vars file, so the syntax, the ``!vault`` and ``!unsafe`` tags and the group tree are
exactly Ansible's. The precedence walk over group and host variables is done here rather
than by Ansible's VariableManager for two reasons: every top-level variable must remember
the file it came from (a finding names ``host_vars/pve1.yml``, not "somewhere"), and a
vault-encrypted vars file without a password must be skipped with a warning instead of
aborting the whole validation. The walk follows ansible-core's own order
(``VARIABLE_PRECEDENCE``, groups sorted by depth, priority and name, host inline vars, then
host_vars) and merges with ansible-core's ``combine_vars``, so ``hash_behaviour`` is honoured;
tests compare the result with ``ansible-inventory --list`` on every bundled inventory.

Only the ``host_group_vars`` vars plugin (group_vars/ and host_vars/ beside the inventory)
is read; other vars plugins are not.
"""

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ansible import constants as ansible_constants
from ansible.errors import AnsibleError
from ansible.inventory.group import Group
from ansible.inventory.helpers import sort_groups
from ansible.inventory.host import Host
from ansible.inventory.manager import IGNORED, InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import EncryptedString, get_file_vault_secret, is_encrypted_file
from ansible.utils.vars import combine_vars

from labsmith.errors import UnusableInventoryError

# Variables Ansible itself sets on a host while parsing; not part of the user's inventory.
_PARSER_VARIABLES = frozenset({"inventory_file", "inventory_dir"})


@dataclass(frozen=True)
class VaultedValue:
    """An inline ``!vault`` value. Kept encrypted: labsmith never needs to print it."""

    ciphertext: str

    def __str__(self) -> str:
        return "<vault-encrypted>"


@dataclass
class ResolvedHost:
    """One inventory host with its merged variables and where each top-level one came from."""

    name: str
    groups: tuple[str, ...]
    variables: dict[str, Any]
    origins: dict[str, str]
    # Where a variable that is missing should be written: the host's own vars file.
    own_file: str

    def origin(self, variable: str) -> str:
        return self.origins.get(variable, self.own_file)


@dataclass
class ResolvedInventory:
    root: Path
    hosts: dict[str, ResolvedHost]
    # Vars files that are vault-encrypted while no vault password was given.
    skipped_vault_files: list[str] = field(default_factory=list)


def load_inventory(source: Path, vault_password_file: Path | None = None) -> ResolvedInventory:
    """Load ``source`` (an inventory directory or a single inventory file)."""
    if not source.exists():
        raise UnusableInventoryError(
            f"{source}: no such inventory; pass -i with a lab directory, e.g. inventories/example"
        )
    if not os.access(source, os.R_OK | (os.X_OK if source.is_dir() else 0)):
        raise UnusableInventoryError(f"{source}: not readable; check its permissions")
    loader = DataLoader()
    has_vault_secret = _install_vault_secret(loader, vault_password_file)
    # Absolute, because Ansible records each host's inventory_file as an absolute path.
    root = (source if source.is_dir() else source.parent).resolve()
    for path in _inventory_files(source):
        _load_yaml(loader, path, root)  # a syntax error names file:line here, not deep in Ansible
    manager = _parse(loader, source)
    walk = _VariableWalk(loader, root, has_vault_secret=has_vault_secret)
    hosts = {host.name: walk.resolve(host, manager.groups["all"]) for host in manager.get_hosts()}
    return ResolvedInventory(root=root, hosts=hosts, skipped_vault_files=walk.skipped)


def plain(value: Any) -> Any:
    """Ansible's tagged containers and strings as plain Python values."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, EncryptedString):
        return VaultedValue(ciphertext=value._ciphertext)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return value


def _install_vault_secret(loader: DataLoader, password_file: Path | None) -> bool:
    """Use ``--vault-password-file`` or Ansible's configured one; True when there is one."""
    configured = ansible_constants.DEFAULT_VAULT_PASSWORD_FILE
    chosen = str(password_file) if password_file else configured
    if not chosen:
        return False
    if not Path(chosen).is_file():
        raise UnusableInventoryError(f"{chosen}: vault password file not found")
    try:
        secret = get_file_vault_secret(filename=chosen, vault_id="default", loader=loader)
        secret.load()
    except AnsibleError as error:
        raise UnusableInventoryError(
            f"{chosen}: cannot read the vault password: {error.message}"
        ) from None
    loader.set_vault_secrets([("default", secret)])
    return True


def _inventory_files(source: Path) -> Iterable[Path]:
    """The YAML inventory sources Ansible will parse from ``source``."""
    if source.is_file():
        candidates: Iterable[Path] = [source]
    else:
        candidates = (
            path
            for path in sorted(source.rglob("*"))
            if path.is_file()
            and not any(
                part in {"group_vars", "host_vars"} for part in path.relative_to(source).parts
            )
            and not any(IGNORED.search(part.encode()) for part in path.relative_to(source).parts)
        )
    return (path for path in candidates if path.suffix in {".yml", ".yaml", ".json"})


def _parse(loader: DataLoader, source: Path) -> InventoryManager:
    try:
        manager = InventoryManager(loader=loader, sources=[str(source)])
    except AnsibleError as error:
        raise UnusableInventoryError(f"{source}: {error.message}") from None
    if not manager._inventory.processed_sources:
        raise UnusableInventoryError(
            f"{source}: Ansible found no inventory in it (its reason is printed above); "
            "a lab needs a hosts.yml with an all: group"
        )
    return manager


def _load_yaml(loader: DataLoader, path: Path, root: Path) -> Any:
    try:
        # unsafe=True skips a deep copy of every file: nothing here mutates the parsed data.
        return loader.load_from_file(str(path), cache="none", unsafe=True)
    except AnsibleError as error:
        raise UnusableInventoryError(_describe_load_error(error, path, root)) from None


def _describe_load_error(error: AnsibleError, path: Path, root: Path) -> str:
    where = _relative(path, root)
    mark = getattr(error.__cause__, "problem_mark", None)
    if mark is not None:
        problem = getattr(error.__cause__, "problem", None) or "invalid YAML"
        return f"{where}:{mark.line + 1}:{mark.column + 1}: YAML syntax error: {problem}"
    message = re.sub(r"\s+", " ", error.message).strip()
    return f"{where}: {message}"


def _relative(path: Path, root: Path) -> str:
    for candidate in (path, path.resolve()):
        if candidate.is_relative_to(root):
            return str(candidate.relative_to(root))
    return str(path)


class _VariableWalk:
    """Merges group and host variables in Ansible's order, remembering each key's file."""

    def __init__(self, loader: DataLoader, root: Path, *, has_vault_secret: bool) -> None:
        self._loader = loader
        self._root = root
        self._has_vault_secret = has_vault_secret
        self._file_layers: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
        self.skipped: list[str] = []

    def resolve(self, host: Host, all_group: Group) -> ResolvedHost:
        groups = sort_groups([group for group in host.get_groups() if group.name != "all"])
        # Ansible keeps no file per group; inline group vars are credited to the file that
        # declared the host, which is the one file of an inventory with a single hosts.yml.
        inventory_file = _relative(Path(host.vars.get("inventory_file", self._root)), self._root)
        layers_by_stage: dict[str, Callable[[], list[tuple[str, dict[str, Any]]]]] = {
            "all_inventory": lambda: [(inventory_file, all_group.get_vars())],
            "groups_inventory": lambda: [(inventory_file, group.get_vars()) for group in groups],
            "all_plugins_inventory": lambda: self._files("group_vars", all_group.name),
            "groups_plugins_inventory": lambda: [
                layer for group in groups for layer in self._files("group_vars", group.name)
            ],
        }
        variables: dict[str, Any] = {}
        origins: dict[str, str] = {}
        stages = [
            layers_by_stage.get(stage, list) for stage in ansible_constants.VARIABLE_PRECEDENCE
        ]
        host_vars = {k: v for k, v in host.vars.items() if k not in _PARSER_VARIABLES}
        stages += [
            lambda: [(inventory_file, host_vars)],
            lambda: self._files("host_vars", host.name),
        ]
        for stage in stages:
            for origin, layer in stage():
                variables = combine_vars(variables, layer)
                origins.update(dict.fromkeys(layer, origin))
        own_file = f"host_vars/{host.name}.yml"
        return ResolvedHost(
            name=host.name,
            groups=tuple(group.name for group in groups),
            variables=plain(variables),
            origins=origins,
            own_file=own_file,
        )

    def _files(self, subdir: str, entity: str) -> list[tuple[str, dict[str, Any]]]:
        """The vars files host_group_vars reads for one group or host, loaded once each."""
        key = (subdir, entity)
        if key not in self._file_layers:
            directory = self._root / subdir
            paths = (
                self._loader.find_vars_files(str(directory), entity) if directory.is_dir() else []
            )
            self._file_layers[key] = [
                layer for layer in (self._load_vars_file(Path(path)) for path in paths) if layer
            ]
        return self._file_layers[key]

    def _load_vars_file(self, path: Path) -> tuple[str, dict[str, Any]] | None:
        where = _relative(path, self._root)
        if not self._has_vault_secret:
            with path.open("rb") as stream:
                if is_encrypted_file(stream):
                    if where not in self.skipped:
                        self.skipped.append(where)
                    return None
        data = _load_yaml(self._loader, path, self._root)
        if data is None:
            return None
        if not isinstance(data, Mapping):
            raise UnusableInventoryError(
                f"{where}: a vars file must be a mapping of variable names to values, "
                f"found a {type(data).__name__}"
            )
        return where, dict(data)
