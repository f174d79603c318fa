"""Proxmox VE's API schema: load it, list its methods, route a request path to one.

The schema is the tree ``PVE::RESTHandler::api_dump`` writes (pve-docs ``apidata.js``):
nodes ``{path, text, leaf, children, info: {METHOD: {...}}}``. Routing follows pve-common
``src/PVE/RESTHandler.pm`` ``map_path_to_methods``: the path is split on ``/`` (empty parts
skipped), each part matches a fixed name or, at a ``{var}`` level, any text without
whitespace (the ``\\S+`` that ``register_method`` gives variables without a regex). A
literal name is tried before a variable.
"""

import functools
import gzip
import json
import re
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labsmith.errors import LabsmithError

__all__ = [
    "INDEXED_LIMITS",
    "SCHEMA_VERSIONS",
    "ApiSchema",
    "Method",
    "MethodNotAllowedError",
    "NoRouteError",
    "Route",
    "SchemaError",
]

SCHEMA_VERSIONS: tuple[str, ...] = ("8.4.2", "9.1.3")
_SCHEMA_DIR = Path(__file__).parent / "schemas"

# How many ``foo0``, ``foo1``, ... a ``foo[n]`` parameter stands for. The dump collapses them
# (RESTHandler.pm ``api_clone_schema``), so the counts come from the packages' Perl sources:
#   qemu-server src/PVE/QemuServer.pm: $MAX_NETS 32 (net, ipconfig), $MAX_SERIAL_PORTS 4,
#     $MAX_PARALLEL_PORTS 3; QemuServer/Drive.pm: $MAX_IDE_DISKS 4, $MAX_SCSI_DISKS 31,
#     $MAX_VIRTIO_DISKS 16, $MAX_SATA_DISKS 6, $MAX_UNUSED_DISKS 256; QemuServer/PCI.pm:
#     $MAX_HOSTPCI_DEVICES 16; QemuServer/USB.pm: $MAX_USB_DEVICES 14; QemuServer/Memory.pm:
#     $MAX_NUMA 8; QemuServer/Virtiofs.pm: $MAX_VIRTIOFS 10
#   pve-container src/PVE/LXC/Config.pm: $MAX_LXC_NETWORKS 32, $MAX_MOUNT_POINTS 256 (mp),
#     $MAX_UNUSED_DISKS 256, $MAX_DEVICES 256 (dev)
#   pve-manager PVE/NodeConfig.pm: acmedomain0 .. acmedomain$MAXDOMAINS (5), i.e. 6
#   pve-cluster src/PVE/Corosync.pm: link0 .. link MAX_LINK_INDEX (7), i.e. 8
# net and unused mean the same count for qemu and lxc, so one table serves both.
INDEXED_LIMITS: Mapping[str, int] = {
    "net": 32,
    "ipconfig": 32,
    "serial": 4,
    "parallel": 3,
    "ide": 4,
    "scsi": 31,
    "virtio": 16,
    "sata": 6,
    "unused": 256,
    "hostpci": 16,
    "usb": 14,
    "numa": 8,
    "virtiofs": 10,
    "mp": 256,
    "dev": 256,
    "acmedomain": 6,
    "link": 8,
}
# A ``[n]`` family missing above (a schema from another release): no upper bound is known,
# so every index is accepted rather than valid requests refused.
_UNKNOWN_LIMIT = 1 << 30

# Subclasses registered with ``fragmentDelimiter => ''``: below these paths the rest of the
# URL is one component, because storage volume IDs and CIDRs contain '/'
# (pve-storage src/PVE/API2/Storage/Status.pm, pve-firewall src/PVE/API2/Firewall/IPSet.pm).
_WHOLE_REST_BELOW = frozenset(
    {
        "/nodes/{node}/storage/{storage}/content",
        "/cluster/firewall/ipset/{name}",
        "/nodes/{node}/qemu/{vmid}/firewall/ipset/{name}",
        "/nodes/{node}/lxc/{vmid}/firewall/ipset/{name}",
    }
)
_INDEXED_NAME = re.compile(r"([a-z]+)(0|[1-9][0-9]*)")
_VARIABLE = re.compile(r"\{([\w-]+)\}")
_NO_WHITESPACE = re.compile(r"\S+")
_JS_ASSIGNMENT = re.compile(r"\b(?:const|let|var)\s+apiSchema\s*=\s*")
_HTTP_METHODS = ("GET", "POST", "PUT", "DELETE")


class SchemaError(LabsmithError):
    """A schema file that cannot be used; the message names the file and what to pass."""

    exit_code = 2


class NoRouteError(Exception):
    """No method at this path; PVE answers 501 ``Method 'GET /x' not implemented``."""


class MethodNotAllowedError(NoRouteError):
    """The path exists but not with this HTTP method (PVE answers the same 501)."""


@dataclass(frozen=True)
class Method:
    """One API method as the schema describes it."""

    path: str
    http_method: str
    name: str
    properties: Mapping[str, Mapping[str, Any]] = field(repr=False)
    additional_properties: bool = field(repr=False)
    permissions: Mapping[str, Any] = field(repr=False)
    protected: bool = field(repr=False)
    allow_token: bool = field(repr=False)
    returns: Mapping[str, Any] = field(repr=False)
    _families: Mapping[str, Mapping[str, Any]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        families = {
            name[:-3]: schema for name, schema in self.properties.items() if name.endswith("[n]")
        }
        object.__setattr__(self, "_families", families)

    @property
    def path_parameters(self) -> tuple[str, ...]:
        """The ``{var}`` names of the path template, in order."""
        return tuple(_VARIABLE.findall(self.path))

    def parameter(self, name: str) -> Mapping[str, Any] | None:
        """The schema of a concrete parameter: ``net5`` gives the ``net[n]`` entry.

        None for names the method does not have, including indexes past PVE's limit
        (``net32``) and non-canonical spellings (``net05``).
        """
        if name.endswith("[n]"):
            return None
        schema = self.properties.get(name)
        if schema is not None or not self._families:
            return schema
        match = _INDEXED_NAME.fullmatch(name)
        if match is None or match.group(1) not in self._families:
            return None
        if int(match.group(2)) >= INDEXED_LIMITS.get(match.group(1), _UNKNOWN_LIMIT):
            return None
        return self._families[match.group(1)]

    def indexed_names(self, family: str) -> tuple[str, ...]:
        """Every concrete name of a ``family[n]`` parameter (``net0`` .. ``net31``); only
        ``family0`` for a family whose limit is not known."""
        limit = INDEXED_LIMITS.get(family, 1)
        return tuple(f"{family}{index}" for index in range(limit))


@dataclass(frozen=True)
class Route:
    method: Method
    path_params: dict[str, str]


@dataclass
class _Node:
    """One level of the routing tree: fixed children, a variable child, methods here."""

    template: str
    literals: dict[str, "_Node"] = field(default_factory=dict)
    variable: tuple[str, "_Node"] | None = None
    methods: dict[str, Method] = field(default_factory=dict)


class ApiSchema:
    """A Proxmox VE API schema with a routing tree over its methods."""

    def __init__(self, tree: list[Any], *, version: str, source: str) -> None:
        self.version = version
        self.source = source
        self._root = _Node("")
        self._methods: dict[tuple[str, str], Method] = {}
        self._add_nodes(tree)

    @classmethod
    def bundled(cls, version: str = SCHEMA_VERSIONS[-1]) -> "ApiSchema":
        """The schema of a Proxmox VE release shipped with labsmith (loaded once)."""
        if version not in SCHEMA_VERSIONS:
            choices = ", ".join(SCHEMA_VERSIONS)
            raise SchemaError(
                f"no bundled Proxmox VE API schema for version {version!r}; use one of "
                f"{choices}, or pass a node's apidata.js as a schema file"
            )
        return _bundled(version)

    @classmethod
    def load(cls, path: Path) -> "ApiSchema":
        """A schema file: ``.json``, ``.json.gz``, or a node's ``apidata.js``."""
        tree = _read_tree(path)
        return cls(tree, version=_guess_version(path, tree), source=str(path))

    def methods(self) -> Iterator[Method]:
        """Every method, in the schema's order."""
        return iter(self._methods.values())

    def format_names(self) -> frozenset[str]:
        """Every named format the parameters use, at any depth (``pve-vmid-list`` as is)."""
        names: set[str] = set()
        for method in self.methods():
            for schema in method.properties.values():
                _collect_formats(schema, names)
        return frozenset(names)

    def method(self, template: str, http_method: str) -> Method:
        """The method at a path template such as ``/nodes/{node}/qemu``."""
        found = self._methods.get((template, http_method.upper()))
        if found is None:
            raise NoRouteError(_not_implemented(http_method.upper(), template))
        return found

    def route(self, path: str, http_method: str) -> Route:
        """The method a request path reaches (no ``/api2/json`` prefix) and its variables."""
        verb = http_method.upper()
        node, params = self._walk(path, verb)
        found = node.methods.get(verb)
        if found is None:
            error = MethodNotAllowedError if node.methods else NoRouteError
            raise error(_not_implemented(verb, path))
        return Route(found, params)

    def _walk(self, path: str, verb: str) -> tuple[_Node, dict[str, str]]:
        parts = [part for part in path.split("/") if part]
        node, params = self._root, {}
        index = 0
        while index < len(parts):
            if node.template in _WHOLE_REST_BELOW and len(parts) - index > 1:
                parts[index:] = ["/".join(parts[index:])]
            part = parts[index]
            child = node.literals.get(part)
            if child is None and node.variable and _NO_WHITESPACE.fullmatch(part):
                name, child = node.variable
                params[name] = part
            if child is None:
                raise NoRouteError(_not_implemented(verb, path))
            node, index = child, index + 1
        return node, params

    def _add_nodes(self, nodes: list[Any]) -> None:
        for entry in nodes:
            if not isinstance(entry, dict):
                continue
            template = str(entry.get("path", ""))
            node = self._node_at(template)
            for verb, info in (entry.get("info") or {}).items():
                if not isinstance(info, dict):
                    continue
                method = _method(template, str(verb).upper(), info)
                node.methods[method.http_method] = method
                self._methods[(template, method.http_method)] = method
            self._add_nodes(entry.get("children") or [])

    def _node_at(self, template: str) -> _Node:
        node = self._root
        for part in (part for part in template.split("/") if part):
            variable = _VARIABLE.fullmatch(part)
            if variable is None:
                child = node.literals.get(part)
                if child is None:
                    child = node.literals[part] = _Node(f"{node.template}/{part}")
            elif node.variable is None:
                child = _Node(f"{node.template}/{part}")
                node.variable = (variable.group(1), child)
            else:
                child = node.variable[1]
            node = child
        return node


def _collect_formats(schema: Any, names: set[str]) -> None:
    if not isinstance(schema, Mapping):
        return
    fmt = schema.get("format")
    if isinstance(fmt, str):
        names.add(fmt)
    elif isinstance(fmt, Mapping):
        for sub in fmt.values():
            _collect_formats(sub, names)
    _collect_formats(schema.get("items"), names)
    for alternative in schema.get("oneOf") or []:
        _collect_formats(alternative, names)


def _not_implemented(verb: str, path: str) -> str:
    """pve-manager ``PVE/HTTPServer.pm`` ``rest_handler`` (and pve-http-server
    ``PVE/APIServer/AnyEvent.pm``): the 501 for unknown paths and methods alike."""
    return f"Method '{verb} {path}' not implemented"


def _method(template: str, verb: str, info: Mapping[str, Any]) -> Method:
    parameters = info.get("parameters") or {}
    return Method(
        path=template,
        http_method=verb,
        name=str(info.get("name", "")),
        properties=parameters.get("properties") or {},
        # Absent means "not restricted" to check_object, as does a true value.
        additional_properties=bool(parameters.get("additionalProperties", 1)),
        permissions=info.get("permissions") or {},
        protected=bool(info.get("protected")),
        allow_token=bool(info.get("allowtoken", 1)),
        returns=info.get("returns") or {},
    )


@functools.cache
def _bundled(version: str) -> ApiSchema:
    path = _SCHEMA_DIR / f"pve-api-{version}.json.gz"
    return ApiSchema(_read_tree(path), version=version, source=f"bundled {version}")


_FIX = (
    "pass a Proxmox VE API schema: a node's /usr/share/pve-docs/api-viewer/apidata.js, "
    "or that tree as .json or .json.gz"
)


def _read_tree(path: Path) -> list[Any]:
    text = _read_text(path)
    try:
        tree = _parse_tree(text)
    except ValueError as error:
        raise SchemaError(f"{path}: not a Proxmox VE API schema ({error}); {_FIX}") from error
    if not isinstance(tree, list) or not _looks_like_api(tree):
        raise SchemaError(f"{path}: no API methods in this file; {_FIX}")
    return tree


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        return raw.decode("utf-8")
    except FileNotFoundError as error:
        raise SchemaError(f"{path}: no such schema file; {_FIX}") from error
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as error:
        raise SchemaError(f"{path}: cannot read the schema ({error}); {_FIX}") from error


def _parse_tree(text: str) -> Any:
    """JSON, or the JS of apidata.js: ``const apiSchema = [...];`` and whatever follows."""
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("["):
        return json.loads(stripped)
    assignment = _JS_ASSIGNMENT.search(text)
    if assignment is None:
        raise ValueError("neither JSON nor an apidata.js 'const apiSchema = [...]'")
    tree, _end = json.JSONDecoder().raw_decode(text, assignment.end())
    return tree


def _looks_like_api(tree: Any) -> bool:
    def has_method(nodes: Any) -> bool:
        return isinstance(nodes, list) and any(
            isinstance(node, dict)
            and "path" in node
            and (
                any(verb in (node.get("info") or {}) for verb in _HTTP_METHODS)
                or has_method(node.get("children"))
            )
            for node in nodes
        )

    return has_method(tree)


def _guess_version(path: Path, tree: list[Any]) -> str:
    """A version in the file name, else the bundled release with the same methods, else the
    file's name."""
    named = re.search(r"(\d+\.\d+(?:\.\d+)?)", path.name)
    if named is not None:
        return named.group(1)
    routes = _route_set(tree)
    for version in reversed(SCHEMA_VERSIONS):
        bundled = _bundled(version)
        if {(m.path, m.http_method) for m in bundled.methods()} == routes:
            return version
    return path.name


def _route_set(nodes: list[Any]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for node in nodes:
        for verb in node.get("info") or {}:
            found.add((str(node.get("path")), str(verb).upper()))
        found |= _route_set(node.get("children") or [])
    return found
