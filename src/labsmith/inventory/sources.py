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

An inventory may come from someone else (a shared lab, a pull request), so reading it must
not hang or exhaust memory: every entry of the inventory tree must be a regular file or a
directory (opening a FIFO blocks forever), and each YAML document is measured before use,
counting every alias as the copy a consumer would make of it (a "billion laughs" file of a
few lines expands to gigabytes) and refusing aliases that contain themselves.
"""

import os
import re
import stat
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
from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from labsmith.errors import UnusableInventoryError

# Variables Ansible itself sets on a host while parsing; not part of the user's inventory.
_PARSER_VARIABLES = frozenset({"inventory_file", "inventory_dir"})
# Limits on one YAML document with its aliases expanded. A large real vars file holds a few
# thousand values and nests under ten levels; these leave orders of magnitude of room.
MAX_EXPANDED_VALUES = 1_000_000
MAX_NESTING = 100
VAULT_PLACEHOLDER = "<vault-encrypted>"


@dataclass(frozen=True)
class VaultedValue:
    """An inline ``!vault`` value. Kept encrypted: labsmith never needs to print it, so its
    str, repr and pydantic serialisation all show a placeholder instead of the ciphertext."""

    ciphertext: str = field(repr=False)

    def __str__(self) -> str:
        return VAULT_PLACEHOLDER

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.is_instance_schema(
            cls,
            serialization=core_schema.plain_serializer_function_ser_schema(str, when_used="always"),
        )


@dataclass
class ResolvedHost:
    """One inventory host with its merged variables and where each top-level one came from.

    Values read from one vars file are shared by every host that file applies to: read-only.
    """

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
    # Absolute, because Ansible records each host's inventory_file as an absolute path.
    root = (source if source.is_dir() else source.parent).resolve()
    tree = _inventory_tree(source, root)
    loader = DataLoader()
    has_vault_secret = _install_vault_secret(loader, vault_password_file)
    for path in _inventory_files(source, tree):
        _load_yaml(loader, path, root)  # a syntax error names file:line here, not deep in Ansible
    manager = _parse(loader, source)
    walk = _VariableWalk(loader, root, has_vault_secret=has_vault_secret)
    hosts = {host.name: walk.resolve(host, manager.groups["all"]) for host in manager.get_hosts()}
    return ResolvedInventory(root=root, hosts=hosts, skipped_vault_files=walk.skipped)


def plain(value: Any, converted: dict[int, tuple[Any, Any]] | None = None) -> Any:
    """Ansible's tagged containers and strings as plain Python values.

    A container reached twice (a YAML alias, or one vars file shared by many hosts) is
    converted once when ``converted`` is given: it maps id(original) to (original, copy),
    keeping the original alive so that its id cannot be reused by another object.
    """
    if isinstance(value, Mapping | list | tuple):
        if converted is None:
            converted = {}
        known = converted.get(id(value))
        if known is not None:
            return known[1]
        copy: Any = (
            {str(key): plain(item, converted) for key, item in value.items()}
            if isinstance(value, Mapping)
            else [plain(item, converted) for item in value]
        )
        converted[id(value)] = (value, copy)
        return copy
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


def _inventory_tree(source: Path, root: Path) -> list[Path]:
    """Every file Ansible may open for this inventory, in name order; anything else that is
    not a directory (a FIFO, socket or device: opening one blocks or reads forever) is
    refused before Ansible sees it."""
    if source.is_dir():
        entries = sorted(source.rglob("*"))
    else:
        # A single inventory file: Ansible still reads group_vars/ and host_vars/ beside it.
        vars_dirs = (root / "group_vars", root / "host_vars")
        entries = [source, *(entry for d in vars_dirs for entry in sorted(d.rglob("*")))]
    files = []
    for entry in entries:
        try:
            mode = entry.stat().st_mode
        except OSError:
            continue  # a dangling symlink: Ansible reports it, nothing here can hang on it
        if stat.S_ISREG(mode):
            files.append(entry)
        elif not stat.S_ISDIR(mode):
            raise UnusableInventoryError(
                f"{_relative(entry, root)}: a {_file_kind(mode)}, not a regular file; an "
                "inventory holds only directories and files: remove it or move it elsewhere"
            )
    return files


def _file_kind(mode: int) -> str:
    kinds = {
        stat.S_ISFIFO: "FIFO (named pipe)",
        stat.S_ISSOCK: "socket",
        stat.S_ISCHR: "character device",
        stat.S_ISBLK: "block device",
    }
    return next((kind for test, kind in kinds.items() if test(mode)), "special file")


def _inventory_files(source: Path, tree: list[Path]) -> Iterable[Path]:
    """The YAML inventory sources Ansible will parse from ``source``."""
    if source.is_file():
        candidates: Iterable[Path] = [source]
    else:
        candidates = (
            path
            for path in tree
            if not any(
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
        data = loader.load_from_file(str(path), cache="none", unsafe=True)
    except AnsibleError as error:
        raise UnusableInventoryError(_describe_load_error(error, path, root)) from None
    problem = _shape_problem(data)
    if problem is not None:
        raise UnusableInventoryError(f"{_relative(path, root)}: {problem}")
    return data


class _ShapeError(Exception):
    pass


def _shape_problem(data: Any) -> str | None:
    """Why ``data`` is unusable once its aliases are expanded, or None."""
    try:
        _expanded_size(data, 0, {}, set())
    except _ShapeError as error:
        return str(error)
    return None


def _expanded_size(value: Any, depth: int, sizes: dict[int, int], open_ids: set[int]) -> int:
    """How many values ``value`` holds with every alias copied out, each container measured
    once (so a document of n distinct nodes costs O(n) however it expands)."""
    if not isinstance(value, Mapping | list | tuple):
        return 1
    key = id(value)
    if key in sizes:
        return sizes[key]
    if key in open_ids:
        raise _ShapeError(
            "a YAML alias refers to a value that contains it, so it never ends; "
            "remove the alias (*name) that points back at its own anchor (&name)"
        )
    if depth >= MAX_NESTING:
        raise _ShapeError(
            f"nests deeper than {MAX_NESTING} levels; no inventory variable needs that"
        )
    open_ids.add(key)
    items = value.values() if isinstance(value, Mapping) else value
    size = 1 + sum(_expanded_size(item, depth + 1, sizes, open_ids) for item in items)
    open_ids.discard(key)
    if size > MAX_EXPANDED_VALUES:
        raise _ShapeError(
            f"expands to more than {MAX_EXPANDED_VALUES:,} values once its YAML aliases "
            "(*name) are copied out (anchors that refer to anchors multiply: a 'billion "
            "laughs' file); write the values out or use fewer nested aliases"
        )
    sizes[key] = size
    return size


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
        # Shared by every host: a group's vars are converted once, not once per host.
        self._converted: dict[int, tuple[Any, Any]] = {}
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
            variables={str(key): plain(value, self._converted) for key, value in variables.items()},
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
