"""Validate a request's parameters against its method, as a Proxmox VE node does.

The order is the API server's:

1. pve-http-server ``PVE/APIServer/AnyEvent.pm`` ``handle_api2_request`` drops ``_dc``
   (the web UI's cache buster);
2. pve-manager ``PVE/HTTPServer.pm`` ``rest_handler`` refuses a parameter that repeats a
   path variable with another value, before anything else;
3. pve-common ``src/PVE/RESTHandler.pm`` ``handle`` converts legacy shapes
   (``$normalize_legacy_param_formats``: a repeated key for a ``-list`` string is joined
   with commas, a single value for an ``array`` becomes a list) and runs
   ``PVE::JSONSchema::validate``, which reports every bad parameter at once.

The checks themselves live in :mod:`labsmith.sim.formats`.
"""

from collections.abc import Iterator, Mapping
from typing import Any

from labsmith.sim.formats import check_object, perl_str, perl_truthy
from labsmith.sim.schema import Method

__all__ = ["URI_CONFLICT", "ParameterError", "validate_parameters"]

URI_CONFLICT = "duplicate parameter (already defined in URI) with conflicting values!"

Value = Any
Schema = Mapping[str, Any]

# Named formats that qemu-server registers from the very hash another parameter of the same
# method carries inline (Drive.pm registers "pve-qm-ide" from ide[n]'s format).
_SIBLING_FORMATS = {"pve-qm-ide": "ide[n]"}


class ParameterError(Exception):
    """PVE's 400 ``Parameter verification failed.``: one message per parameter name."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        lines = "".join(f"{name}: {message}\n" for name, message in self.errors.items())
        super().__init__(f"Parameter verification failed.\n{lines}")


def validate_parameters(
    method: Method,
    params: Mapping[str, Value],
    path_params: Mapping[str, str],
) -> dict[str, Any]:
    """Check ``params`` (query string or body) and the path's variables against ``method``.

    Returns every given parameter, path variables included, keyed by its concrete name
    (``net0``) and converted to its schema type: int, float, bool, str, or a list of those.
    Raises :class:`ParameterError` with all problems found.
    """
    given = {name: value for name, value in params.items() if name != "_dc"}
    _check_uri_conflicts(given, path_params)
    values: dict[str, Any] = {**path_params, **given}
    plan = _plan_for(method)
    _normalize_legacy(values, plan)
    errors: dict[str, str] = {}
    # The dump drops an empty "properties => {}", so a method without parameters reads the
    # same whether PVE would check its (empty) object or skip the check; it is checked here,
    # as most such methods declare it (pve-manager PVE/API2.pm "version", for one).
    additional = None if method.additional_properties else 0
    check_object(None, plan, values, additional, errors)
    if errors:
        raise ParameterError(errors)
    return {name: _coerce(value, plan.get(name)) for name, value in values.items()}


def _check_uri_conflicts(params: Mapping[str, Value], path_params: Mapping[str, str]) -> None:
    """``rest_handler``: the first conflicting name (sorted) ends the request."""
    for name in sorted(params):
        if name in path_params and path_params[name] != perl_str(params[name]):
            raise ParameterError({name: URI_CONFLICT})


def _normalize_legacy(values: dict[str, Any], plan: "_Parameters") -> None:
    """``$normalize_legacy_param_formats`` (RESTHandler.pm), for object-like schemas only."""
    if not plan.method.properties:
        return
    for name, value in values.items():
        schema = plan.get(name)
        if schema is None or not perl_truthy(value):
            continue
        type_ = schema.get("type")
        fmt = schema.get("format")
        if isinstance(value, list) and type_ == "string" and str(fmt or "").endswith("-list"):
            values[name] = ",".join(perl_str(element) for element in value)
        elif not isinstance(value, list) and type_ == "array":
            values[name] = [value]


def _coerce(value: Any, schema: Schema | None) -> Any:
    """A validated value in its schema type (Perl keeps strings; handlers want types)."""
    if schema is None or value is None or isinstance(value, dict):
        return value
    if isinstance(value, list):
        items = schema.get("items")
        return [
            _coerce(element, items if isinstance(items, Mapping) else None) for element in value
        ]
    converter = _CONVERTERS.get(str(schema.get("type")))
    return value if converter is None else converter(value)


def _to_bool(value: Any) -> bool:
    return value if isinstance(value, bool) else perl_str(value) == "1"


def _to_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(perl_str(value).strip())


def _to_float(value: Any) -> float:
    return float(perl_str(value).strip())


_CONVERTERS = {"boolean": _to_bool, "integer": _to_int, "number": _to_float, "string": perl_str}


_UNRESOLVED = object()
# Names looked up per method are remembered, up to a bound (requests can invent names).
_RESOLVED_LIMIT = 4096


class _Parameters(Mapping[str, Schema]):
    """A method's parameter schemas by concrete name (``net5`` -> ``net[n]``), with the
    sibling-defined formats filled in."""

    def __init__(self, method: Method) -> None:
        self.method = method
        self._overrides = _sibling_overrides(method)
        self._resolved: dict[str, Any] = {}

    def get(self, name: str, default: Any = None) -> Any:
        found = self._resolved.get(name, _UNRESOLVED)
        if found is _UNRESOLVED:
            found = self._overrides.get(name) or self.method.parameter(name)
            if len(self._resolved) < _RESOLVED_LIMIT:
                self._resolved[name] = found
        return default if found is None else found

    def __getitem__(self, name: str) -> Schema:
        found = self.get(name)
        if found is None:
            raise KeyError(name)
        return found  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[str]:
        return (name for name in self.method.properties if not name.endswith("[n]"))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _sibling_overrides(method: Method) -> dict[str, Schema]:
    overrides: dict[str, Schema] = {}
    for name, schema in method.properties.items():
        sibling = _SIBLING_FORMATS.get(str(schema.get("format")))
        sibling_format = (method.properties.get(sibling) or {}).get("format") if sibling else None
        if isinstance(sibling_format, Mapping):
            overrides[name] = {**schema, "format": sibling_format}
    return overrides


# Plans by method identity; a Method holds dicts, so it cannot be a cache key itself.
_PLANS: dict[int, _Parameters] = {}
_PLAN_LIMIT = 8192


def _plan_for(method: Method) -> _Parameters:
    plan = _PLANS.get(id(method))
    if plan is None or plan.method is not method:
        if len(_PLANS) >= _PLAN_LIMIT:
            _PLANS.clear()
        plan = _PLANS[id(method)] = _Parameters(method)
    return plan
