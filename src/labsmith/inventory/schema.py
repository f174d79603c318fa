"""Turn pydantic's validation errors into findings that read like the user's YAML."""

import difflib
import types
from collections.abc import Iterable
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from labsmith.inventory.findings import Finding
from labsmith.inventory.sources import ResolvedHost, VaultedValue

REFERENCE = "the 'Inventory variables' section of labsmith's README"
# Variables whose values a finding never repeats: a token or password pasted under the
# wrong key would otherwise be printed by validate and written into --json output.
UNSHOWN_VARIABLES = frozenset({"labsmith_pve_api"})


def schema_findings(
    error: ValidationError, model: type[BaseModel], host: ResolvedHost
) -> list[Finding]:
    """One finding per bad key; a union's per-branch errors at one key become one finding."""
    by_key: dict[tuple[str | int, ...], list[ErrorDetails]] = {}
    places: dict[tuple[str | int, ...], tuple[str, list[str]]] = {}
    for detail in error.errors():
        parts, siblings = _locate(model, detail["loc"])
        key = tuple(parts)
        by_key.setdefault(key, []).append(detail)
        places[key] = (_format_path(parts), siblings)
    findings = []
    for key, details in by_key.items():
        path, siblings = places[key]
        shown = not key or key[0] not in UNSHOWN_VARIABLES
        message, fix, rule = _describe(details, key[-1] if key else "", siblings, shown)
        findings.append(
            Finding(
                file=host.origin(str(key[0])) if key else host.own_file,
                key=path,
                rule=rule,
                severity="error",
                host=host.name,
                message=message,
                fix=fix,
            )
        )
    return findings


def _locate(model: type[BaseModel], loc: Iterable[int | str]) -> tuple[list[str | int], list[str]]:
    """Follow an error location through the model, dropping pydantic's union branch tags.

    Returns the key path and the keys allowed at its last mapping (for "did you mean").
    """
    parts: list[str | int] = []
    siblings: list[str] = []
    current: Any = model
    for element in loc:
        current = _unwrap(current)
        if isinstance(element, int) and get_origin(current) is list:
            parts.append(element)
            current = get_args(current)[0]
        elif (
            isinstance(element, str)
            and isinstance(current, type)
            and issubclass(current, BaseModel)
        ):
            fields = {info.alias or name: info for name, info in current.model_fields.items()}
            siblings = list(fields)
            parts.append(element)
            current = fields[element].annotation if element in fields else None
        # anything else is the tag of a union branch: the key stays where it is
    return parts, siblings


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            models = [
                arg for arg in members if isinstance(arg, type) and issubclass(arg, BaseModel)
            ]
            if len(members) == 1:
                annotation = members[0]
            elif len(models) == 1:
                annotation = models[0]
            else:
                return annotation
        else:
            return annotation


def _format_path(parts: list[str | int]) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    return path


def _describe(
    details: list[ErrorDetails], name: str | int, siblings: list[str], shown: bool = True
) -> tuple[str, str, str]:
    """(message, fix, rule) for the errors pydantic reported at one key; without ``shown``
    the message says what is wrong but not the value seen."""
    first = details[0]
    if first["type"] == "missing":
        return (
            f"required key {name!r} is missing",
            _missing_fix(str(name), siblings),
            "schema.missing",
        )
    if first["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(name), siblings, n=1)
        fix = (
            f"did you mean {close[0]!r}?"
            if close
            else f"remove it; the keys here are: {', '.join(siblings)}"
        )
        return f"unknown key {name!r}", fix, "schema.unknown_key"
    got = _safe_repr(first["input"]) if shown else "a value not shown here"
    if first["type"] == "value_error":
        text = str(first["ctx"]["error"]) if "ctx" in first else first["msg"]
        problem, _, fix = text.partition("; ")
        return problem, fix or f"see {REFERENCE}", "schema.invalid"
    messages = list(dict.fromkeys(detail["msg"] for detail in details))
    message = " or ".join(messages) if len(messages) > 1 else messages[0]
    return f"{message}, got {got}", f"correct the value; see {REFERENCE}", "schema.invalid"


def _missing_fix(name: str, siblings: list[str]) -> str:
    if name == "labsmith_kind":
        return (
            "set labsmith_kind: proxmox or metal for a physical host, "
            "or give a Proxmox guest its labsmith_guest"
        )
    return f"add {name}: <value>; see {REFERENCE}"


def _safe_repr(value: Any) -> str:
    if isinstance(value, VaultedValue):
        return str(value)
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
