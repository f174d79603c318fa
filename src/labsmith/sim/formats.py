"""Value checks of Proxmox VE's JSON schema: types, limits, named formats, property strings.

This is the part of pve-common ``src/PVE/JSONSchema.pm`` that judges one value against one
schema (``check_prop``, ``check_object``, ``check_type``, ``check_format``,
``parse_property_string``), with the same order of checks and the same message texts, plus
the named formats that Proxmox's Perl packages register with ``register_format``. Each
format names the file its rules come from. :mod:`labsmith.sim.params` applies this to a
whole request.

Messages keep PVE's exact text, including the trailing newline of a Perl ``die "...\\n"``:
a bad ``vmid`` reads ``invalid format - value does not look like a valid VM ID\\n`` on the
wire, as it does on a real node.
"""

import functools
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from labsmith.sim.perl_regex import compile_anchored

__all__ = [
    "MISSING",
    "NOT_ALLOWED",
    "UNCHECKED_FORMATS",
    "Errors",
    "FormatError",
    "add_error",
    "check_format",
    "check_object",
    "check_prop",
    "format_names",
    "is_checked_format",
    "named_property_format",
    "parse_boolean",
    "parse_property_string",
    "parse_size",
    "perl_split",
    "perl_str",
    "perl_truthy",
    "split_list",
]

Errors = dict[str, str]
Schema = Mapping[str, Any]
Verifier = Callable[[str], Any]
Validator = Callable[[dict[str, Any]], dict[str, Any]]

NOT_ALLOWED = (
    "property is not defined in schema and the schema does not allow additional properties"
)
MISSING = "property is missing and it is not optional"


class FormatError(Exception):
    """A value failed a format; ``str()`` is PVE's die text, ``errors`` per sub-key if any."""

    def __init__(self, text: str, errors: Mapping[str, str] | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.errors = dict(errors or {})

    def __str__(self) -> str:
        return self.text


def _words(text: str) -> frozenset[str]:
    """A set from a whitespace-separated word list (keeps long name tables compact)."""
    return frozenset(text.split())


def _die(message: str) -> FormatError:
    """A Perl ``die "message\\n"``: the text PVE puts after ``invalid format - ``."""
    return FormatError(message + "\n")


# --- Perl scalar semantics --------------------------------------------------------------


def perl_str(value: Any) -> str:
    """How Perl stringifies a decoded request value (JSON booleans are 1/0 objects)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:.15g}"
    if isinstance(value, list):
        return f"ARRAY(0x{id(value):x})"
    if isinstance(value, dict):
        return f"HASH(0x{id(value):x})"
    return "" if value is None else str(value)


def perl_truthy(value: Any) -> bool:
    """Perl truth: undef, '' and '0' (and 0) are false; references are always true."""
    if value is None:
        return False
    if isinstance(value, (list, dict)):
        return True
    if isinstance(value, (bool, int, float)):
        return bool(value)
    return value not in ("", "0")


_NUMBER = re.compile(r"^[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")


def is_number(text: str) -> bool:
    """pve-common ``JSONSchema::is_number`` (the perlretut number pattern)."""
    return _NUMBER.search(text) is not None


def is_integer(text: str) -> bool:
    """pve-common ``JSONSchema::is_integer``."""
    return _INTEGER.search(text) is not None


def to_number(text: str) -> int | float:
    """Perl's numeric value of a string that passed :func:`is_number`."""
    stripped = text.strip()
    return int(stripped) if is_integer(stripped) else float(stripped)


def parse_boolean(text: str) -> int | None:
    """pve-common ``JSONSchema::parse_boolean``: 1/on/yes/true and 0/off/no/false, any case."""
    lowered = text.lower().rstrip("\n")
    if lowered in ("1", "on", "yes", "true"):
        return 1
    if lowered in ("0", "off", "no", "false"):
        return 0
    return None


def perl_split(text: str, separator: str) -> list[str]:
    """Perl ``split(/separator/, text)``: trailing empty fields are dropped, leading kept."""
    parts = text.split(separator)
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def split_list(text: str) -> list[str]:
    """pve-common ``ParseUtils::split_list``: NUL-separated, else commas, semicolons, spaces."""
    if "\0" in text:
        return perl_split(text, "\0")
    spaced = re.sub(r"^\s+", "", re.sub(r"[,;]", " ", text))
    parts = re.split(r"\s+", spaced)
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def _perl_number_text(number: Any) -> str:
    """A schema limit as Perl interpolates it into a message (4094, not 4094.0)."""
    return perl_str(float(number)) if isinstance(number, float) else str(number)


# --- JSONSchema.pm: check_type / check_prop / check_object ------------------------------


def add_error(errors: Errors, path: str | None, message: str) -> None:
    """``add_error``: one message per path; a second one is joined with a literal ``\\n``."""
    key = path or "_root"
    errors[key] = f"{errors[key]}\\n{message}" if key in errors else message


def _perl_ref(value: Any) -> str:
    """Perl's ``ref()`` of a decoded JSON value ('' for plain scalars)."""
    if isinstance(value, bool):
        return "JSON::PP::Boolean"
    if isinstance(value, list):
        return "ARRAY"
    if isinstance(value, dict):
        return "HASH"
    return ""


def check_type(path: str, type_: Any, value: Any, errors: Errors) -> bool:
    """``check_type``: whether ``value`` is of ``type_``; adds PVE's message when not."""
    if not type_ or type_ == "any":
        return True
    if isinstance(type_, list):
        return _check_type_union(path, type_, value, errors)
    if isinstance(type_, Mapping):
        trial: Errors = {}
        check_prop(value, type_, path, trial)
        if trial:
            add_error(errors, path, "type check failed")
        return not trial
    if type_ == "null":
        add_error(errors, path, "type check ('null') failed - value is not null")
        return False
    return _check_named_type(path, str(type_), value, errors)


def _check_type_union(path: str, types: list[Any], value: Any, errors: Errors) -> bool:
    for candidate in types:
        if check_type(path, candidate, value, {}):
            return True
    add_error(errors, path, f"type check ('{'|'.join(map(str, types))}') failed")
    return False


def _check_named_type(path: str, type_: str, value: Any, errors: Errors) -> bool:
    ref = _perl_ref(value)
    container = {"array": "ARRAY", "object": "HASH"}.get(type_)
    if container is not None or type_ == "coderef":
        if ref != container:
            add_error(errors, path, f"type check ('{type_}') failed")
            return False
        return True
    if ref:
        if type_ == "boolean" and ref == "JSON::PP::Boolean":
            return True
        add_error(errors, path, f"type check ('{type_}') failed - got {ref}")
        return False
    text = perl_str(value)
    valid = {
        "boolean": lambda: text in ("1", "0"),
        "integer": lambda: is_integer(text),
        "number": lambda: is_number(text),
    }.get(type_)
    if valid is not None and not valid():
        add_error(errors, path, f"type check ('{type_}') failed - got '{text}'")
        return False
    return True


def check_prop(
    value: Any,
    schema: Any,
    path: str,
    errors: Errors,
    instance_type: str | None = None,
) -> None:
    """``check_prop``: validate one value; every problem lands in ``errors`` under ``path``."""
    if not isinstance(schema, Mapping):
        add_error(errors, path, "Invalid schema definition.")
        return
    optional_for_type = _check_alternatives(value, schema, path, errors, instance_type)
    if optional_for_type is None or schema.get("alias"):
        return
    if value is None:
        _check_missing(schema, path, errors, optional_for_type=optional_for_type)
        return
    if not check_type(path, schema.get("type"), value, errors):
        return
    if isinstance(value, list):
        _check_items(value, schema, path, errors)
    elif isinstance(value, dict):
        # Perl truth: an empty properties hash still counts
        if schema.get("properties") is not None or perl_truthy(schema.get("additionalProperties")):
            properties = schema.get("properties") or {}
            check_object(path, properties, value, schema.get("additionalProperties"), errors)
    elif not isinstance(value, bool):
        _check_scalar(perl_str(value), schema, path, errors)


def _check_alternatives(
    value: Any, schema: Schema, path: str, errors: Errors, instance_type: str | None
) -> bool | None:
    """The ``oneOf``/``instance-types`` part of ``check_prop``.

    Returns whether the property may be absent for this instance type, or None when an
    error already ended the check.
    """
    one_of = schema.get("oneOf")
    if one_of and not schema.get("type-property-schema"):
        if schema.get("type-property"):
            return _check_typed_one_of(value, one_of, path, errors, instance_type)
        _check_plain_one_of(value, one_of, path, errors)
        return False
    if instance_type:
        instance_types = schema.get("instance-types")
        if instance_types is None:
            add_error(errors, path, "missing 'instance-types'")
            return None
        return instance_type not in instance_types
    return False


def _check_typed_one_of(
    value: Any, one_of: list[Any], path: str, errors: Errors, instance_type: str | None
) -> bool | None:
    optional_for_type = True
    for inner in one_of:
        if not instance_type:
            break
        instance_types = inner.get("instance-types")
        if instance_types is None:
            add_error(errors, path, "missing 'instance-types' in oneOf alternative")
            return None
        if instance_type not in instance_types:
            continue
        optional_for_type = bool(inner.get("optional"))
        check_prop(value, inner, path, errors)
    return optional_for_type


def _check_plain_one_of(value: Any, one_of: list[Any], path: str, errors: Errors) -> None:
    collected: Errors = {}
    for index, inner in enumerate(one_of):
        inner_errors: Errors = {}
        check_prop(value, inner, f"{path}.oneOf[{index}]", inner_errors)
        if not inner_errors:
            return
        for inner_path, message in inner_errors.items():
            add_error(collected, inner_path, message)
    for inner_path, message in collected.items():
        add_error(errors, inner_path, message)


def _check_missing(schema: Schema, path: str, errors: Errors, *, optional_for_type: bool) -> None:
    if schema.get("type") == "null":
        return
    if not (perl_truthy(schema.get("optional")) or schema.get("group") or optional_for_type):
        add_error(errors, path, MISSING)


def _check_items(value: list[Any], schema: Schema, path: str, errors: Errors) -> None:
    items = schema.get("items")
    if not isinstance(items, Mapping):
        return
    for index, element in enumerate(value):
        check_prop(element, items, f"{path}[{index}]", errors)


def _check_scalar(text: str, schema: Schema, path: str, errors: Errors) -> None:
    """The scalar checks of ``check_prop`` in PVE's order; each stops at its first failure."""
    if schema.get("allOf") or (schema.get("oneOf") and schema.get("type-property-schema")):
        add_error(errors, path, "value must be an object")
        return
    message = _scalar_problem(text, schema, path)
    if message is not None:
        add_error(errors, path, message)


def _scalar_problem(text: str, schema: Schema, path: str) -> str | None:
    fmt = schema.get("format")
    if fmt:
        try:
            check_format(fmt, text, path)
        except FormatError as error:
            return f"invalid format - {error.text}"
    return (
        _pattern_problem(text, schema)
        or _length_problem(text, schema)
        or _range_problem(text, schema)
        or _enum_problem(text, schema)
    )


def _pattern_problem(text: str, schema: Schema) -> str | None:
    pattern = schema.get("pattern")
    if pattern and compile_anchored(str(pattern)).search(text) is None:
        return "value does not match the regex pattern"
    return None


def _length_problem(text: str, schema: Schema) -> str | None:
    longest = schema.get("maxLength")
    if longest is not None and len(text) > int(longest):
        return f"value may only be {longest} characters long"
    shortest = schema.get("minLength")
    if shortest is not None and len(text) < int(shortest):
        return f"value must be at least {shortest} characters long"
    return None


def _range_problem(text: str, schema: Schema) -> str | None:
    if not is_number(text):
        return None
    number = to_number(text)
    highest = schema.get("maximum")
    if highest is not None and number > to_number(str(highest)):
        return f"value must have a maximum value of {_perl_number_text(highest)}"
    lowest = schema.get("minimum")
    if lowest is not None and number < to_number(str(lowest)):
        return f"value must have a minimum value of {_perl_number_text(lowest)}"
    return None


def _enum_problem(text: str, schema: Schema) -> str | None:
    enum = schema.get("enum")
    if enum is not None and text not in [perl_str(choice) for choice in enum]:
        choices = ", ".join(perl_str(choice) for choice in enum)
        return f"value '{text}' does not have a value in the enumeration '{choices}'"
    return None


def _join_path(path: str | None, key: str) -> str:
    return f"{path}.{key}" if path else key


def _instance_type(schema: Mapping[str, Any], key: str, value: Mapping[str, Any]) -> Any:
    sub = schema.get(key)
    type_property = sub.get("type-property") if isinstance(sub, Mapping) else None
    return value.get(type_property) if type_property else None


def check_object(
    path: str | None,
    schema: Mapping[str, Any],
    value: Any,
    additional_properties: Any,
    errors: Errors,
) -> None:
    """``check_object``: every schema key, then every given key (requires, unknown keys).

    ``value`` is modified as PVE modifies it (alias keys move to their target). Absent keys
    that cannot fail are skipped (same outcome, for schemas with hundreds of optional keys).
    """
    if not isinstance(value, dict):
        add_error(errors, path, "an object is required")
        return
    _remap_aliases(path, schema, value, errors)
    for key in dict.fromkeys([*_keys_checked_when_absent(schema), *value]):
        sub = schema.get(key)
        if sub is not None:
            instance = _instance_type(schema, key, value)
            check_prop(value.get(key), sub, _join_path(path, key), errors, instance)
    for key in value:
        _check_given_key(path, schema, value, key, additional_properties, errors)


# Per schema object (kept alive here, so its id stays unique): the keys that check_prop can
# refuse even when absent.
_ABSENT_KEYS: dict[int, tuple[Mapping[str, Any], tuple[str, ...]]] = {}
_ABSENT_KEYS_LIMIT = 1 << 16


def _keys_checked_when_absent(schema: Mapping[str, Any]) -> tuple[str, ...]:
    cached = _ABSENT_KEYS.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    keys = tuple(key for key in schema if _may_fail_when_absent(schema.get(key)))
    if len(_ABSENT_KEYS) >= _ABSENT_KEYS_LIMIT:
        _ABSENT_KEYS.clear()
    _ABSENT_KEYS[id(schema)] = (schema, keys)
    return keys


def _may_fail_when_absent(sub: Any) -> bool:
    """Whether ``check_prop(undef, sub, ...)`` can add an error."""
    if not isinstance(sub, Mapping) or sub.get("oneOf") or sub.get("type-property"):
        return True
    if sub.get("alias") or sub.get("type") == "null" or sub.get("group"):
        return False
    return not perl_truthy(sub.get("optional"))


def _remap_aliases(
    path: str | None, schema: Mapping[str, Any], value: dict[str, Any], errors: Errors
) -> None:
    for key in list(value):
        sub = schema.get(key)
        alias = sub.get("alias") if isinstance(sub, Mapping) else None
        if alias is None:
            continue
        if value.get(alias) is not None:
            message = f"cannot set both '{key}' and its alias target '{alias}'"
            add_error(errors, _join_path(path, key), message)
        else:
            value[alias] = value.pop(key)


def _check_given_key(
    path: str | None,
    schema: Mapping[str, Any],
    value: dict[str, Any],
    key: str,
    additional_properties: Any,
    errors: Errors,
) -> None:
    new_path = _join_path(path, key)
    sub = schema.get(key)
    if sub is not None:
        _check_requires(path, value, sub, new_path, errors)
        if _matches_instance_type(schema, value, key, sub):
            return
    if additional_properties is not None and not perl_truthy(additional_properties):
        add_error(errors, new_path, NOT_ALLOWED)
    elif isinstance(additional_properties, Mapping):
        check_prop(value[key], additional_properties, new_path, errors)


def _check_requires(
    path: str | None, value: dict[str, Any], sub: Schema, new_path: str, errors: Errors
) -> None:
    requires = sub.get("requires")
    if not requires:
        return
    if isinstance(requires, Mapping):
        check_prop(value, requires, path or "", errors)
    elif value.get(requires) is None:
        add_error(errors, _join_path(path, requires), f"missing property required by '{new_path}'")


def _matches_instance_type(
    schema: Mapping[str, Any], value: dict[str, Any], key: str, sub: Schema
) -> bool:
    alternatives = sub.get("oneOf")
    if not alternatives:
        return True
    instance = _instance_type(schema, key, value)
    for alternative in alternatives:
        instance_types = alternative.get("instance-types")
        if instance_types and instance not in instance_types:
            continue
        return True
    return False


# --- JSONSchema.pm: check_format / parse_property_string -------------------------------

_FORMAT_SUFFIX = re.compile(r"^(.*?)(?:-(list|opt))?$")
_KEY_VALUE = re.compile(r"([^=]+)=(.+)$")
_BLANK = re.compile(r"\s*$")


def check_format(fmt: Any, value: str, path: str = "") -> Any:
    """``check_format``: a named format (``-list``/``-opt`` suffixes) or an inline format.

    Raises :class:`FormatError` with PVE's message. Format names without a checker here
    (see :data:`UNCHECKED_FORMATS`) pass unchecked.
    """
    if isinstance(fmt, Mapping):
        return parse_property_string(fmt, value, path)
    if fmt == "regex":
        return None
    match = _FORMAT_SUFFIX.match(str(fmt))
    assert match is not None  # the pattern matches every string
    name, kind = match.group(1), match.group(2)
    verifier = _CODE_FORMATS.get(name)
    if verifier is None:
        if name in _HASH_FORMATS and kind:
            raise _die(f"'-{kind}' format must have code ref, not hash")
        return parse_property_string(name, value, path) if name in _HASH_FORMATS else None
    if kind == "list":
        return [verifier(element) for element in split_list(value)]
    if kind == "opt":
        return verifier(value) if perl_truthy(value) else None
    return verifier(value)


def parse_property_string(
    fmt: Mapping[str, Any] | str, value: str, path: str = ""
) -> dict[str, Any]:
    """``parse_property_string``: ``key=value,...`` checked against a format.

    ``fmt`` is an inline format (a parameter's ``format`` dict) or the name of a registered
    property-string format (``pve-qm-hostpci``, ``pve-qm-ipconfig``, ...). The result maps
    canonical keys (aliases resolved; ``virtio=<mac>`` gives ``model`` and ``macaddr``) to
    the given strings, booleans as 1/0. Raises :class:`FormatError` as PVE dies.
    """
    schema, validator = _resolve_hash_format(fmt)
    parsed: dict[str, Any] = {}
    default_key: list[str] = []
    for part in value.split(","):
        if not _BLANK.match(part):
            _parse_part(schema, part, parsed, default_key)
    errors: Errors = {}
    check_object(path, schema, parsed, 0, errors)
    if errors:
        lines = "".join(f"{key}: {message}\n" for key, message in errors.items())
        raise FormatError("format error\n" + lines, errors)
    return validator(parsed) if validator else parsed


def _resolve_hash_format(fmt: Mapping[str, Any] | str) -> tuple[Schema, Validator | None]:
    if isinstance(fmt, Mapping):
        return fmt, None
    schema = named_property_format(fmt)
    if schema is not None:
        return schema, _HASH_FORMATS[fmt][1]
    if fmt in _CODE_FORMATS:
        raise _die("parse_property_string only accepts hash based named formats")
    raise _die(f"unknown format: {fmt}")


def _parse_part(schema: Schema, part: str, parsed: dict[str, Any], default: list[str]) -> None:
    match = _KEY_VALUE.match(part)
    if match is not None:
        _parse_keyed(schema, match.group(1), match.group(2), parsed)
    elif "=" not in part:
        _parse_default(schema, part, parsed, default)
    else:
        raise _die("missing key in comma-separated list property")


def _parse_keyed(schema: Schema, key: str, text: str, parsed: dict[str, Any]) -> None:
    if parsed.get(key) is not None:
        raise _die(f"duplicate key in comma-separated list property: {key}")
    sub = schema.get(key) or {}
    alias = sub.get("alias")
    if alias:
        key_alias = sub.get("keyAlias")
        if key_alias:
            if parsed.get(key_alias) is not None:
                raise _die(f"key alias '{key_alias}' is already defined")
            parsed[key_alias] = key
        key, sub = alias, schema.get(alias) or {}
        if parsed.get(key) is not None:
            raise _die(f"key '{key}' is already defined (via alias)")
    if not sub:
        raise _die(f"invalid key in comma-separated list property: {key}")
    parsed[key] = _maybe_boolean(sub, text)


def _parse_default(schema: Schema, part: str, parsed: dict[str, Any], default: list[str]) -> None:
    if default:
        raise _die(f"duplicate key in comma-separated list property: {default[0]}")
    for key, sub in schema.items():
        if not sub.get("default_key"):
            continue
        default.append(key)
        if perl_truthy(parsed.get(key)):
            raise _die(f"duplicate key in comma-separated list property: {key}")
        parsed[key] = _maybe_boolean(sub, part)
        return
    raise _die("value without key, but schema does not define a default key")


def _maybe_boolean(sub: Schema, text: str) -> Any:
    if sub.get("type") == "boolean":
        parsed = parse_boolean(text)
        return text if parsed is None else parsed
    return text


# --- Address and name patterns (pve-common src/PVE/ParseUtils.pm, JSONSchema.pm) --------

_IPV4_OCTET = r"(?:25[0-5]|(?:2[0-4]|1[0-9]|[1-9])?[0-9])"
IPV4_RE = rf"(?:(?:{_IPV4_OCTET}\.){{3}}{_IPV4_OCTET})"
_H16 = r"(?:[0-9a-fA-F]{1,4})"
_LS32 = rf"(?:(?:{IPV4_RE}|{_H16}:{_H16}))"


def _ipv6_pattern() -> str:
    """RFC 3986's IPv6address: up to eight groups, with at most one ``::``."""
    forms = [rf"(?:{_H16}:){{6}}{_LS32}", rf"::(?:{_H16}:){{5}}{_LS32}"]
    tails = [(4, _LS32), (3, _LS32), (2, _LS32), (1, _LS32), (0, _LS32), (0, _H16), (0, "")]
    for lead, (groups, tail) in enumerate(tails):
        head = f"(?:(?:{_H16}:){{0,{lead}}}{_H16})?"
        middle = f"(?:{_H16}:){{{groups}}}" if groups else ""
        forms.append(f"{head}::{middle}{tail}")
    return "(?:" + "|".join(f"(?:{form})" for form in forms) + ")"


IPV6_RE = _ipv6_pattern()
_EMAIL_USER = r"[\w\+\-\~]+(\.[\w\+\-\~]+)*"
_EMAIL = _EMAIL_USER + r"@[a-zA-Z0-9\-]+(\.[a-zA-Z0-9\-]+)*"
_DNS_LABEL = r"([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)"
_REALM = r"[A-Za-z][A-Za-z0-9\.\-_]+"
_USER = r"[^\s:/]+"


@functools.cache
def _regex(source: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(source, flags)


def _matches(source: str, text: str, flags: int = 0) -> bool:
    """Perl ``$text =~ m/source/`` (``$`` also before a final newline, as in Perl)."""
    return _regex(source, flags).search(text) is not None


def _regex_verifier(source: str, message: str, flags: int = 0) -> Verifier:
    """A verifier that dies with ``message`` (``{}`` is the value) unless the regex matches."""

    def verify(text: str) -> str:
        if not _matches(source, text, flags):
            raise _die(message.format(text))
        return text

    return verify


_IP = re.compile(rf"^(?:(?:{IPV4_RE})|(?:{IPV6_RE}))$")
_CIDR_V4 = re.compile(rf"^(?:{IPV4_RE})(?:/(\d+))$")
_CIDR_V6 = re.compile(rf"^(?:{IPV6_RE})(?:/(\d+))$")
_DNS_NAME = re.compile(rf"^({_DNS_LABEL}\.)*{_DNS_LABEL}$")


def _is_ip(text: str) -> bool:
    return _IP.search(text) is not None


def _is_cidr(text: str, address: re.Pattern[str], longest: int) -> bool:
    """pve-common ``pve_verify_cidrv4``/``v6``: the address, then a prefix of 8 or more."""
    match = address.search(text)
    return match is not None and 7 < int(match.group(1)) <= longest


def _is_cidr_v4(text: str) -> bool:
    return _is_cidr(text, _CIDR_V4, 32)


def _is_cidr_v6(text: str) -> bool:
    return _is_cidr(text, _CIDR_V6, 128)


def _is_dns_name(text: str) -> bool:
    return _DNS_NAME.search(text) is not None


def _verify_ip(text: str) -> str:
    if not _is_ip(text):
        raise _die("value does not look like a valid IP address")
    return text


def _verify_cidr(text: str) -> str:
    if not (_is_cidr_v4(text) or _is_cidr_v6(text)):
        raise _die("value does not look like a valid CIDR network")
    return text


def _condition_verifier(condition: Callable[[str], bool], message: str) -> Verifier:
    def verify(text: str) -> str:
        if not condition(text):
            raise _die(message.format(text))
        return text

    return verify


def _verify_id(kind: str) -> Verifier:
    """pve-common ``JSONSchema::parse_id`` (storage and ACME plugin IDs)."""

    def verify(text: str) -> str:
        if len(text) < 2:
            raise _die(f"{kind} ID '{text}' cannot be shorter than 2 characters")
        if not _matches(r"^[a-z][a-z0-9\-\_\.]*[a-z0-9]$", text, re.IGNORECASE):
            raise _die(f"{kind} ID '{text}' contains illegal characters")
        return text

    return verify


def _verify_vlan_id_or_range(text: str) -> str:
    """pve-common ``pve_verify_vlan_id_or_range``."""
    match = _regex(r"^(\d+)(?:-(\d+))?$").search(text)
    if match is None:
        raise _die(f"invalid VLAN configuration '{text}'")
    start, end = match.group(1), match.group(2)
    for tag in (start, end) if perl_truthy(end) else (start,):
        if not 2 <= int(tag) <= 4094:
            raise _die(f"invalid VLAN tag '{tag}'")
    if perl_truthy(end) and int(start) >= int(end):
        raise _die(f"VLAN range must go from lower to higher tag '{text}'")
    return text


_SIZE = re.compile(r"^(\d+(\.\d+)?)([KMGT](?:iB)?)?$")


def parse_size(text: str) -> int | None:
    """pve-common ``JSONSchema::parse_size``: bytes of ``32``, ``1.5G``, ``512MiB``."""
    match = _SIZE.search(text)
    if match is None:
        return None
    unit = (match.group(3) or "")[:1]
    factor = 1024 ** (" KMGT".index(unit) if unit else 0)
    return int(float(match.group(1)) * factor)


def _verify_disk_size(text: str) -> str:
    if parse_size(text) is None:
        raise _die(f"value does not look like a valid disk size: {text}")
    return text


def _verify_startup_order(text: str) -> str:
    """pve-common ``pve_parse_startup_order`` as the ``pve-startup-order`` format uses it."""
    valid = perl_truthy(text) and all(
        _matches(r"^\s*$", part)
        or _matches(r"^(order=)?(\d+)$", part)
        or _matches(r"^(up|down)=(\d+)$", part)
        for part in text.split(",")
    )
    if not valid:
        raise _die("unable to parse startup options")
    return text


def _verify_tfa_secret(text: str) -> str:
    if not (
        _matches(r"^v2-0x[0-9a-fA-F]{16,128}$", text)
        or _matches(r"^v2-[A-Z2-7=]{16,128}$", text)
        or _matches(r"^(?:[A-Z2-7=]{16}|[A-Fa-f0-9]{40})$", text)
    ):
        raise _die("unable to decode TFA secret")
    return text


def _verify_id_pair(id_format: str) -> Verifier:
    """pve-common ``verify_storagepair``/``verify_bridgepair``: one ``parse_idmap`` entry."""

    def verify(text: str) -> str:
        try:
            _parse_idmap(text, id_format)
        except FormatError as error:
            raise FormatError(error.text + "\n") from error
        return text

    return verify


def _parse_idmap(text: str, id_format: str) -> None:
    """pve-common ``JSONSchema::parse_idmap``: ``1``, ``source:target`` pairs, one default."""
    sources: set[str] = set()
    identity = default = False
    for entry in split_list(text):
        if entry == "1":
            identity = True
        elif (pair := _regex(r"^([^:]+):([^:]+)$").search(entry)) is not None:
            _check_id_entry(entry, id_format, pair.group(1), pair.group(2))
            if pair.group(1) in sources:
                raise _die(f"duplicate mapping for source '{pair.group(1)}'")
            sources.add(pair.group(1))
        else:
            _check_id_entry(entry, id_format, entry)
            if default:
                raise _die("default target ID can only be provided once")
            default = True
    if identity and (default or sources):
        raise _die("identity mapping cannot be combined with other mappings")


def _check_id_entry(entry: str, id_format: str, *ids: str) -> None:
    try:
        for value in ids:
            check_format(id_format, value)
    except FormatError as error:
        raise _die(f"entry '{entry}' contains invalid ID - {error.text}") from error


@functools.cache
def _zone_names() -> frozenset[str]:
    """The zones of ``/usr/share/zoneinfo/zone.tab`` (what PVE's check reads), else tzdata."""
    zone_tab = Path("/usr/share/zoneinfo/zone.tab")
    if zone_tab.is_file():
        rows = zone_tab.read_text(encoding="utf-8", errors="replace").splitlines()
        return frozenset(
            row.split("\t")[2]
            for row in rows
            if not row.lstrip().startswith("#") and row.count("\t") >= 2
        )
    import zoneinfo

    return frozenset(zoneinfo.available_timezones())


def _verify_timezone(text: str) -> str:
    """pve-common ``pve_verify_timezone``."""
    if text != "UTC" and text not in _zone_names():
        raise _die(f"invalid time zone '{text}'")
    return text


def _verify_ct_timezone(text: str) -> str | None:
    """pve-container ``PVE/LXC/Config.pm`` ``verify_ct_timezone``: ``host`` or a zone."""
    return None if text == "host" else _verify_timezone(text)


def _verify_ldap_attr(text: str) -> str:
    if not _matches(r"^[a-zA-Z0-9]+$", text):
        raise _die(f"value '{text}' does not look like a simple ldap attribute name")
    return text


_IPV4_MASKS = frozenset(
    ".".join(str((bits >> shift) & 0xFF) for shift in (24, 16, 8, 0))
    for bits in ((0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF for length in range(33))
)


def _pem_pattern(label: str, *, multiple: bool) -> str:
    """pve-common ``PVE/Certificate.pm`` ``$pem_re``: header, base64 lines, footer."""
    b64 = r"[0-9A-Za-z\+/]"
    header = rf"-----BEGIN\ {label}-----(?:\s|\n)*"
    footer = rf"-----END\ {label}-----(?:\s|\n)*"
    one = rf"(?:{header}(?:(?:{b64})+\s*\n)*(?:{b64})*(?:=\s*\n=|={{0,2}})?\s*\n{footer})"
    return rf"^(?:({one}\n+)*{one})$" if multiple else rf"^{one}$"


def _pem_verifier(label: str, *, multiple: bool = False) -> Verifier:
    def verify(text: str) -> str:
        content = re.sub(r"^.*?(?=-----BEGIN\ .*?-----)", "", text, count=1, flags=re.DOTALL)
        if not _matches(_pem_pattern(label, multiple=multiple), content):
            raise _die("not a valid PEM-formatted string.")
        return text

    return verify


def _verify_userid(text: str) -> str:
    """pve-access-control ``PVE/Auth/Plugin.pm`` ``verify_username``."""
    name = text if perl_truthy(text) else ""
    if len(name) < 3:
        raise _die(f"user name '{name}' is too short")
    if len(name) > 64:
        raise _die(f"user name '{name}' is too long ({len(name)} > 64)")
    if not _matches(rf"^({_USER})\@({_REALM})$", name):
        raise _die(f"value '{name}' does not look like a valid user name")
    return text


def _verify_poolid(text: str) -> str:
    """pve-access-control ``PVE/AccessControl.pm`` ``verify_poolname``."""
    if len(perl_split(text, "/")) > 3:
        raise _die(f"pool name '{text}' nested too deeply (max levels = 3)")
    if not _matches(r"^[A-Za-z0-9\.\-_]+(?:/[A-Za-z0-9\.\-_]+){0,2}$", text):
        raise _die(f"pool name '{text}' contains invalid characters")
    return text


# pve-access-control PVE/AccessControl.pm ($privgroups plus Permissions.Modify); VM.Monitor
# is the privilege Proxmox VE 8 still had (dropped for 9 in commit "privileges: drop
# VM.Monitor"), kept so both bundled API versions accept their own values.
_PRIVILEGES = _words(
    """
    VM.Config.Disk VM.Config.CPU VM.Config.Memory VM.Config.Network VM.Config.HWType
    VM.Config.Options VM.Allocate VM.Clone VM.GuestAgent.Unrestricted VM.Migrate
    VM.Replicate VM.Snapshot VM.Snapshot.Rollback VM.Config.CDROM VM.Config.Cloudinit
    VM.Console VM.Backup VM.GuestAgent.FileRead VM.GuestAgent.FileSystemMgmt
    VM.GuestAgent.FileWrite VM.PowerMgmt VM.Audit VM.GuestAgent.Audit VM.Monitor
    Sys.PowerMgmt Sys.Modify Sys.Incoming Sys.AccessNetwork Sys.Console Sys.Syslog Sys.Audit
    Datastore.Allocate Datastore.AllocateTemplate Datastore.AllocateSpace Datastore.Audit
    SDN.Allocate SDN.Audit SDN.Use Realm.Allocate User.Modify Group.Allocate
    Realm.AllocateUser Pool.Allocate Pool.Audit Mapping.Modify Mapping.Use Mapping.Audit
    Permissions.Modify
    """
)

# pve-storage PVE/Storage/DirPlugin.pm plugindata (the directory plugin has every type).
_CONTENT_TYPES = frozenset(
    ["images", "rootdir", "vztmpl", "iso", "backup", "snippets", "none", "import"]
)


def _verify_content(text: str) -> str:
    """pve-storage ``PVE/Storage/Plugin.pm`` ``verify_content``."""
    if text not in _CONTENT_TYPES:
        raise _die(f"invalid content type '{text}'")
    return text


def _verify_dir_override(text: str) -> str:
    """pve-storage ``PVE/Storage/Plugin.pm`` ``verify_dir_override``."""
    # PVE's ``([^.]*(?:\.?[^.]+)+)`` is: not empty, no "..", not ending in "."; checked
    # directly, since Python's engine backtracks exponentially on that nested quantifier.
    match = _regex(r"^([a-z]+)=(.*)\Z", re.DOTALL).search(text)
    relative = match.group(2) if match is not None else ""
    if match is None or not relative or ".." in relative or relative.endswith("."):
        raise _die(f"invalid override '{text}'")
    if match.group(1) not in _CONTENT_TYPES:
        raise _die(f"invalid content type '{match.group(1)}'")
    if len(relative) < 1023 and all(len(part) < 255 for part in perl_split(relative, "/")):
        return text
    raise _die(f"invalid override '{text}'")


def _is_host_and_port(text: str) -> bool:
    """pve-common ``PVE/Tools.pm`` ``parse_host_and_port``."""
    host = r"[a-zA-Z0-9\-.]+"
    return (
        _matches(rf"^({IPV4_RE}|{host})(?::(\d+))?$", text)
        or _matches(rf"^\[({IPV6_RE}|{IPV4_RE}|{host})\](?::(\d+))?$", text)
        or _matches(rf"^({IPV6_RE})(?:\.(\d+))?$", text)
    )


def _verify_volume_id(text: str) -> str:
    """pve-storage ``PVE/Storage/Plugin.pm`` ``parse_volume_id``: ``storage:volname``."""
    if not _matches(r"^([a-z][a-z0-9\-\_\.]*[a-z0-9]):(.+)$", text, re.IGNORECASE):
        raise _die(f"unable to parse volume ID '{text}'")
    return text


def _verify_volume_id_or_absolute_path(text: str) -> str:
    """qemu-server ``PVE/QemuServer.pm`` ``verify_volume_id_or_absolute_path``."""
    return text if text.startswith("/") else _verify_volume_id(text)


def _verify_volume_id_or_qm_path(text: str) -> str:
    """qemu-server ``verify_volume_id_or_qm_path``: also ``none`` and ``cdrom``."""
    return text if text in ("none", "cdrom") else _verify_volume_id_or_absolute_path(text)


def _verify_lxc_mp_string(text: str) -> str:
    """pve-container ``PVE/LXC/Config.pm`` ``verify_lxc_mp_string``: no ``.``/``..`` parts."""
    if _matches(r"/\.\.?/", text) or _matches(r"/\.\.?$", text) or _matches(r"^\.\./", text):
        raise _die(f"{text} contains illegal character sequences")
    return text


def _verify_lxc_dev_string(text: str) -> str:
    """pve-container ``PVE/LXC/Config.pm`` ``verify_lxc_dev_string``: under ``/dev/``."""
    if _matches(r"/\.\.?(?:/|$)", text) or not _matches(r"^/dev/", text):
        raise _die(f"{text} is not a valid device path")
    return text


def _verify_ip_with_ll_iface(text: str) -> str:
    """pve-container ``verify_ip_with_ll_iface``: an IP, or ``fe80::...%iface``."""
    match = _regex(r"^(fe80:[^%]+)%(.*)$").search(text)
    if match is not None and _is_ip(match.group(1)) and _is_iface(match.group(2)):
        return match.group(1)
    return _verify_ip(text)


def _is_iface(text: str) -> bool:
    return _matches(r"^[a-z][a-z0-9_]{1,20}([:\.]\d+)?$", text, re.IGNORECASE)


def _verify_cpuset(text: str) -> str:
    """qemu-server ``pve_verify_cpuset`` via pve-common ``PVE/CpuSet.pm`` ``parse_cpuset``."""
    for part in perl_split(text, ","):
        match = _regex(r"^\s*(\d+)(?:-(\d+))?\s*$").search(part)
        if match is None or int(match.group(2) or match.group(1)) < int(match.group(1)):
            raise _die("unable to parse cpuset option")
    return text


def _verify_hotplug(text: str) -> str:
    """qemu-server ``parse_hotplug_features`` (its die text reaches the client as is)."""
    if text in ("0", "1"):
        return text
    for feature in split_list(text):
        if not _matches(r"^(network|disk|cpu|memory|usb|cloudinit)$", feature):
            raise _die(f"invalid hotplug feature '{feature}'")
    return text


# qemu-server PVE/QemuServer/Drive.pm ($MAX_IDE_DISKS 4, $MAX_SCSI_DISKS 31,
# $MAX_VIRTIO_DISKS 16, $MAX_SATA_DISKS 6) and PVE/QemuServer.pm ($MAX_NETS 32), USB.pm
# ($MAX_USB_DEVICES 14), PCI.pm ($MAX_HOSTPCI_DEVICES 16).
_DRIVE_LIMITS = {"ide": 4, "scsi": 31, "virtio": 16, "sata": 6}
_BOOT_DEVICE_LIMITS = {**_DRIVE_LIMITS, "net": 32, "usb": 14, "hostpci": 16}


def _indexed_name(text: str, limits: Mapping[str, int]) -> bool:
    match = _regex(r"^([a-z]+)(0|[1-9]\d*)$").fullmatch(text)
    return match is not None and int(match.group(2)) < limits.get(match.group(1), 0)


def _verify_bootdisk(text: str) -> str:
    """qemu-server ``Drive.pm`` ``verify_bootdisk`` (``is_valid_drivename``)."""
    if not (_indexed_name(text, _DRIVE_LIMITS) or text in ("efidisk0", "tpmstate0")):
        raise _die(f"invalid boot disk '{text}'")
    return text


def _verify_bootdev(text: str) -> str:
    """qemu-server ``PVE/QemuServer.pm`` ``verify_bootdev``: drives, NICs, USB, PCI."""
    if not _indexed_name(text, _BOOT_DEVICE_LIMITS):
        raise _die(f"invalid boot device '{text}'")
    return text


def _verify_phys_bits(text: str) -> str:
    """qemu-server ``CPUConfig.pm`` ``parse_phys_bits``."""
    if not _matches(r"^(host|\d{1,2})$", text) or (text.isdigit() and not 8 <= int(text) <= 64):
        raise _die("value must be an integer between 8 and 64 or 'host'")
    return text


def _verify_replication_job_id(text: str) -> str:
    """pve-guest-common ``PVE/ReplicationConfig.pm`` ``parse_replication_job_id``."""
    match = _regex(r"^(\d+)-(\d+)$").search(text)
    if match is None:
        raise _die(f"invalid replication job id '{text}'")
    if int(match.group(1)) < 100:
        raise _die(f"invalid replication job id '{text}' (guest IDs < 100 are reserved)")
    return text


def _verify_day_of_week(text: str) -> str:
    """pve-manager ``PVE/API2/Backup.pm`` ``verify_day_of_week``."""
    if not _matches(r"^(mon|tue|wed|thu|fri|sat|sun)$", text):
        raise _die(f"invalid day '{text}'")
    return text


def _verify_subnet_id(text: str) -> str:
    """pve-network ``SDN/SubnetPlugin.pm`` ``parse_sdn_subnet_id``: CIDR or zone-ip-mask."""
    if "/" in text:
        cidr = text
    else:
        parts = [*text.split("-"), "", ""]
        cidr = f"{parts[1]}/{parts[2]}"
    if not (_is_cidr_v4(cidr) or _is_cidr_v6(cidr)):
        raise _die("value does not look like a valid CIDR network")
    return text


def _verify_bgp_rt(text: str) -> str:
    """pve-network ``SDN/Zones/EvpnPlugin.pm`` ``pve_verify_sdn_bgp_rt``."""
    match = _regex(r"^(\d+):(\d+)$").search(text)
    if match is None or max(int(match.group(1)), int(match.group(2))) > 4294967295:
        raise _die("value does not look like a valid bgp route-target")
    return text


# pve-network SDN ID formats as registered before commit "sdn: Remove unneeded registered
# formats" (2026), i.e. in the releases the bundled schemas describe.
_SDN_ID = r"^[a-z][a-z0-9]*[a-z0-9]$"


def _sdn_id_verifier(kind: str, longest: int | None = None, pattern: str = _SDN_ID) -> Verifier:
    def verify(text: str) -> str:
        if not _matches(pattern, text, re.IGNORECASE):
            raise _die(f"{kind} ID '{text}' contains illegal characters")
        if longest is not None and len(text) > longest:
            raise _die(f"{kind} ID '{text}' can't be more length than {longest} characters")
        return text

    return verify


def _verify_command_batch(text: str) -> Any:
    """pve-manager ``PVE/API2/Nodes.pm`` ``verify_command_batch``: a JSON list of calls."""
    try:
        commands = json.loads(text)
    except ValueError as error:
        raise FormatError(f"commands param did not contain valid JSON: {error}\n") from error
    errors: Errors = {}
    check_prop(commands, _COMMAND_BATCH_SCHEMA, "", errors)
    if errors:
        prefix = "commands is not a valid array of commands: 400 Parameter verification failed.\n"
        raise FormatError(prefix + "".join(f"{key}: {text}\n" for key, text in errors.items()))
    return commands


_COMMAND_BATCH_SCHEMA: Schema = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "path": {"type": "string", "optional": 0},
            "method": {"type": "string", "pattern": "(GET|POST|PUT|DELETE)", "optional": 0},
            "args": {"type": "object", "optional": 1},
        },
    },
}


def _verify_ha_resource_or_vm_id(text: str) -> str:
    if not _matches(r"^([a-z]+:\S+|\d+)$", text):
        raise _die("value does not look like a valid ha resource id")
    return text


# --- pve-firewall src/PVE/Firewall.pm -----------------------------------------------------

_ICMP_TYPES = _words(
    """
    any echo-reply destination-unreachable network-unreachable host-unreachable
    protocol-unreachable port-unreachable fragmentation-needed source-route-failed
    network-unknown host-unknown network-prohibited host-prohibited TOS-network-unreachable
    TOS-host-unreachable communication-prohibited host-precedence-violation
    precedence-cutoff source-quench redirect network-redirect host-redirect
    TOS-network-redirect TOS-host-redirect echo-request router-advertisement
    router-solicitation time-exceeded ttl-zero-during-transit ttl-zero-during-reassembly
    parameter-problem ip-header-bad required-option-missing timestamp-request
    timestamp-reply address-mask-request address-mask-reply
    """
)
_ICMPV6_TYPES = _words(
    """
    destination-unreachable no-route communication-prohibited beyond-scope
    address-unreachable port-unreachable failed-policy reject-route packet-too-big
    time-exceeded ttl-zero-during-transit ttl-zero-during-reassembly parameter-problem
    bad-header unknown-header-type unknown-option echo-request echo-reply
    router-solicitation router-advertisement neighbor-solicitation neighbour-solicitation
    neighbor-advertisement neighbour-advertisement redirect
    """
)
_CONNTRACK_HELPERS = frozenset(
    ["amanda", "ftp", "irc", "netbios-ns", "pptp", "sane", "sip", "snmp", "tftp"]
)
# A service or protocol name when the host has no /etc/services or /etc/protocols to ask.
_PLAUSIBLE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._+\-]*$"


@functools.cache
def _etc_names(path: str, line_pattern: str) -> frozenset[str] | None:
    """Names (and numbers) in an /etc table as ``get_etc_services``/``parse_protocol_file``
    read them; None when this host has no such file."""
    table = Path(path)
    if not table.is_file():
        return None
    names: set[str] = set()
    for line in table.read_text(encoding="utf-8", errors="replace").splitlines():
        match = re.match(line_pattern, line)
        if match is not None and not line.startswith("#"):
            names.update(match.groups())
    return frozenset(names)


def _known_service(name: str) -> bool:
    names = _etc_names("/etc/services", r"^(\S+)\s+\S+/(?:tcp|udp|sctp)")
    return _matches(_PLAUSIBLE_NAME, name) if names is None else name in names


def _known_protocol(name: str) -> bool:
    names = _etc_names("/etc/protocols", r"^(\S+)\s+(\d+)(?:\s+.*)?$")
    if name == "icmpv6":
        return True
    return _matches(_PLAUSIBLE_NAME, name) if names is None else name in names


def _fw_ports(text: str, *, dport: bool) -> str:
    """``parse_port_name_number_or_range``: ports, ``a:b`` ranges and service names."""
    elements = perl_split(text, ",")
    if text != ",".join(elements):
        raise _die("extraneous commas in list")
    count, icmp = 0, False
    for item in elements:
        numbers = _regex(r"^([0-9]+)(?::([0-9]+))?$").search(item)
        if numbers is not None:
            count += _fw_port_numbers(numbers.group(1), numbers.group(2))
        elif dport and (item in _ICMP_TYPES or item in _ICMPV6_TYPES):
            icmp = True
        elif not _known_service(item):
            raise _die(f"invalid port '{item}'")
    if icmp and count > 0:
        raise _die("ICMP ports not allowed in port range")
    if count > 15:
        raise _die("too many entries in port list (> 15 numbers)")
    return text


def _fw_port_numbers(first: str, second: str | None) -> int:
    for port in (first, second):
        if port is not None and int(port) > 65535:
            raise _die(f"invalid port '{port}'")
    if second is not None and int(first) > int(second):
        raise _die(
            f"backwards range '{first}:{second}' not allowed, did you mean '{second}:{first}'?"
        )
    return 1 if second is None else 2


def _net_ip_version(element: str) -> int:
    """What ``Net::IP->new`` accepts here: an address, ``address/prefix`` or ``a-b`` range.

    The error texts are Net::IP's in spirit; its exact wording is not reproduced.
    """
    if "-" in element:
        return _net_ip_range(element)
    address, _, prefix = element.partition("/")
    version = _ip_version(address, element)
    if prefix:
        try:
            ipaddress.ip_network(element, strict=True)
        except ValueError as error:
            raise _die(f"invalid IP address: Invalid prefix {element}") from error
    return version


def _net_ip_range(element: str) -> int:
    begin, _, end = (part.strip() for part in element.partition("-"))
    version = _ip_version(begin, element)
    if _ip_version(end, element) != version:
        raise _die(
            f"invalid IP address: Begin and End addresses have different IP versions - {element}"
        )
    if int(ipaddress.ip_address(begin)) > int(ipaddress.ip_address(end)):
        raise _die(f"invalid IP address: Begin address is greater than End address {element}")
    return version


def _ip_version(address: str, element: str) -> int:
    if "%" not in address and _is_ip(address):
        return ipaddress.ip_address(address).version
    raise _die(f"invalid IP address: Cannot determine IP version for {element}")


def _verify_fw_addr_spec(text: str) -> str:
    """``parse_address_list``: an ipset (``+name``), an alias, or a list of IPs/CIDRs."""
    if _matches(r"^(\+)(\S+)$", text):
        if len(text) > 65:
            raise _die("ipset name too long")
        return text
    if _matches(r"^(dc/|guest/)?[A-Za-z][A-Za-z0-9\-\_]+$", text):
        if len(text) > 64:
            raise _die("alias name too long")
        return text
    elements = perl_split(text, ",")
    if text != ",".join(elements):
        raise _die("extraneous commas in list")
    versions = {_net_ip_version(element) for element in elements}
    if len(versions) > 1:
        raise _die(f"detected mixed ipv4/ipv6 addresses in address list '{text}'")
    if len(elements) > 1 and any("-" in element for element in elements):
        raise _die("you can't use a range in a list")
    return text


def _verify_ip_or_cidr(text: str) -> str:
    """``pve_verify_ip_or_cidr``: the address pattern, then Net::IP on the cleaned network."""
    if not _matches(rf"^(?:{IPV6_RE}|{IPV4_RE})(?:/\d+)?$", text):
        raise _die("value does not look like a valid IP address or CIDR network")
    address, _, prefix = text.partition("/")
    if prefix:
        try:
            ipaddress.ip_network(f"{address}/{int(prefix)}", strict=False)
        except ValueError as error:
            raise _die(f"Invalid prefix length /{prefix}") from error
    return text


def _verify_ip_or_cidr_or_alias(text: str) -> str | None:
    if _matches(r"^(dc/|guest/)?(?:[A-Za-z][A-Za-z0-9\-\_]+)$", text):
        return None
    return _verify_ip_or_cidr(text)


def _verify_fw_protocol(text: str) -> str:
    if perl_truthy(text) and not _known_protocol(text):
        raise _die(f"unknown protocol '{text}'")
    return text


def _verify_fw_icmp_type(text: str) -> str:
    if text not in _ICMP_TYPES and text not in _ICMPV6_TYPES and text != "":
        raise _die(f"invalid icmp-type value '{text}'")
    return text


def _verify_conntrack_helpers(text: str) -> str:
    helpers = perl_split(text, ",")
    if text != ",".join(helpers):
        raise _die("extraneous commas in list")
    for helper in helpers:
        if helper not in _CONNTRACK_HELPERS:
            raise _die(f"unknown helper {helper}")
    return text


# --- Calendar events (pve-common src/PVE/CalendarEvent.pm -> Rust proxmox-time) -----------
#
# The parser itself is Rust (Proxmox::RS::CalendarEvent); this follows the grammar that
# pve-docs calendar-events.adoc documents: [WEEKDAY] [[YEARS-]MONTHS-DAYS]
# [HOURS:MINUTES[:SECONDS]], lists, ``..`` ranges, ``/`` repetitions, ``*``, and the special
# words. The Rust error texts are not reproduced.

_WEEKDAY_NAMES = {
    name: index
    for index, names in enumerate(
        [
            ("mon", "monday"),
            ("tue", "tuesday"),
            ("wed", "wednesday"),
            ("thu", "thursday"),
            ("fri", "friday"),
            ("sat", "saturday"),
            ("sun", "sunday"),
        ]
    )
    for name in names
}
_SPECIAL_EVENTS = _words(
    """
    minutely hourly daily weekly monthly yearly annually quarterly semiannually
    semi-annually
    """
)
_CALENDAR_ITEM = re.compile(r"(\*|\d+(?:\.\.\d+)?)(?:/(\d+))?")


def _verify_calendar_event(text: str) -> str:
    event = text.strip()
    if not event:
        message = "unable to parse calendar event - event is empty\n"
        raise _die(f"invalid calendar event '{text}' - {message}")
    if not _is_calendar_event(event):
        raise _die(f"invalid calendar event '{text}' - unable to parse calendar event")
    return text


def _is_calendar_event(event: str) -> bool:
    tokens = event.split()
    if len(tokens) == 1 and tokens[0].lower() in _SPECIAL_EVENTS:
        return True
    parsers = (_is_weekdays, _is_calendar_date, _is_calendar_time)
    position = 0
    for parser in parsers:
        if position < len(tokens) and parser(tokens[position]):
            position += 1
    return position == len(tokens)


def _is_weekdays(token: str) -> bool:
    for item in token.lower().split(","):
        days = item.split("..")
        if len(days) > 2 or any(day not in _WEEKDAY_NAMES for day in days):
            return False
    return True


def _is_calendar_values(text: str, lowest: int, highest: int) -> bool:
    for item in text.split(","):
        match = _CALENDAR_ITEM.fullmatch(item)
        if match is None or (match.group(2) is not None and int(match.group(2)) == 0):
            return False
        if match.group(1) != "*":
            bounds = [int(number) for number in match.group(1).split("..")]
            if not all(lowest <= number <= highest for number in bounds) or bounds != sorted(
                bounds
            ):
                return False
    return True


def _is_calendar_date(token: str) -> bool:
    parts = token.split("-")
    limits = [(0, 9999), (1, 12), (1, 31)][-len(parts) :] if len(parts) in (2, 3) else []
    return bool(limits) and all(
        _is_calendar_values(part, *bounds) for part, bounds in zip(parts, limits, strict=True)
    )


def _is_calendar_time(token: str) -> bool:
    parts = token.split(":")
    limits = {1: [(0, 59)], 2: [(0, 23), (0, 59)], 3: [(0, 23), (0, 59), (0, 59)]}.get(len(parts))
    return limits is not None and all(
        _is_calendar_values(part, *bounds) for part, bounds in zip(parts, limits, strict=True)
    )


# --- Property-string formats registered by name -------------------------------------------
#
# The API dump shows these formats only by name (and typetext); their keys are transcribed
# from the Perl source each comment names. Newer releases add keys, so the tables are the
# union over the bundled versions (a test checks each version's typetext keys against them).

_OPTIONAL_BOOLEAN: Schema = {"type": "boolean", "optional": 1}
_HEX_ID = {"type": "string", "pattern": "(?^:^0x[0-9a-fA-F]{4}$)", "optional": 1}
_PCI_ID = "(?^:(?:[a-f0-9]{4,}:)?[a-f0-9]{2}:[a-f0-9]{2}(?:\\.[a-f0-9])?)"
_BASE64 = {"type": "string", "pattern": "[A-Za-z0-9+\\/]+={0,2}", "optional": 1}
_VOLUME = {"type": "string", "format": "pve-volume-id", "optional": 1}
_KEEP = {"type": "integer", "minimum": 0, "optional": 1}

# qemu-server src/PVE/QemuServer/PCI.pm ($hostpci_fmt)
_HOSTPCI: Schema = {
    "host": {
        "type": "string",
        "default_key": 1,
        "optional": 1,
        "pattern": f"(?^:{_PCI_ID}(;{_PCI_ID})*)",
    },
    "mapping": {"type": "string", "format": "pve-configid", "optional": 1},
    "rombar": _OPTIONAL_BOOLEAN,
    "romfile": {"type": "string", "pattern": "[^,;]+", "optional": 1},
    "pcie": _OPTIONAL_BOOLEAN,
    "x-vga": _OPTIONAL_BOOLEAN,
    "legacy-igd": _OPTIONAL_BOOLEAN,
    "mdev": {"type": "string", "pattern": "[^/\\.:]+", "optional": 1},
    "vendor-id": _HEX_ID,
    "device-id": _HEX_ID,
    "sub-vendor-id": _HEX_ID,
    "sub-device-id": _HEX_ID,
    "driver": {"type": "string", "enum": ["vfio", "keep"], "optional": 1},
}


def _validate_hostpci(device: dict[str, Any]) -> dict[str, Any]:
    """Exactly one of ``host`` and ``mapping``, as qemu-server ``PCI.pm`` ``parse_hostpci``
    requires. PVE applies this when the VM starts; the simulator refuses such a value up front.
    """
    if device.get("host") is not None and device.get("mapping") is not None:
        raise _die("Cannot set both 'host' and 'mapping'.")
    if not (perl_truthy(device.get("host")) or perl_truthy(device.get("mapping"))):
        raise _die("Either 'host' or 'mapping' must be set.")
    return device


# qemu-server src/PVE/QemuServer/Network.pm ($ipconfig_fmt)
_IPCONFIG: Schema = {
    "ip": {"type": "string", "format": "pve-ipv4-config", "optional": 1},
    "gw": {"type": "string", "format": "ipv4", "optional": 1, "requires": "ip"},
    "ip6": {"type": "string", "format": "pve-ipv6-config", "optional": 1},
    "gw6": {"type": "string", "format": "ipv6", "optional": 1, "requires": "ip6"},
}

# qemu-server src/PVE/QemuServer/RNG.pm ($rng_fmt)
_RNG: Schema = {
    "source": {
        "type": "string",
        "enum": ["/dev/urandom", "/dev/random", "/dev/hwrng"],
        "default_key": 1,
    },
    "max_bytes": {"type": "integer", "optional": 1},
    "period": {"type": "integer", "optional": 1},
}

# qemu-server src/PVE/QemuServer.pm ($watchdog_fmt, $cicustom_fmt, $boot_fmt, $smbios1_fmt)
_WATCHDOG: Schema = {
    "model": {"type": "string", "enum": ["i6300esb", "ib700"], "default_key": 1, "optional": 1},
    "action": {
        "type": "string",
        "enum": ["reset", "shutdown", "poweroff", "pause", "debug", "none"],
        "optional": 1,
    },
}
_CICUSTOM: Schema = {"meta": _VOLUME, "network": _VOLUME, "user": _VOLUME, "vendor": _VOLUME}
_BOOT: Schema = {
    "legacy": {"type": "string", "pattern": "[acdn]{1,4}", "default_key": 1, "optional": 1},
    "order": {"type": "string", "format": "pve-qm-bootdev-list", "optional": 1},
}
_SMBIOS1: Schema = {
    "uuid": {
        "type": "string",
        "pattern": "[a-fA-F0-9]{8}(?:-[a-fA-F0-9]{4}){3}-[a-fA-F0-9]{12}",
        "optional": 1,
    },
    **dict.fromkeys(("version", "serial", "manufacturer", "product", "sku", "family"), _BASE64),
    "base64": _OPTIONAL_BOOLEAN,
}

# qemu-server src/PVE/QemuServer/CPUConfig.pm ($sev_fmt, $tdx_fmt, $cpu_fmt)
_SEV: Schema = {
    "type": {"type": "string", "default_key": 1, "enum": ["std", "es", "snp"], "maxLength": 3},
    "no-debug": _OPTIONAL_BOOLEAN,
    "no-key-sharing": _OPTIONAL_BOOLEAN,
    "allow-smt": _OPTIONAL_BOOLEAN,
    "kernel-hashes": _OPTIONAL_BOOLEAN,
}
_TDX: Schema = {
    "type": {"type": "string", "default_key": 1, "enum": ["tdx"]},
    "attestation": {"type": "boolean"},
    "vsock-cid": {"type": "integer", "minimum": 2, "optional": 1},
    "vsock-port": {"type": "integer", "minimum": 0, "optional": 1},
}
_CPU_FLAG = "([+-])([a-zA-Z0-9\\-_\\.]+)"
_CPU: Schema = {
    "cputype": {"type": "string", "default_key": 1, "optional": 1},
    # An enum of the QEMU binary's models on a real node; refused below for VM configs anyway.
    "reported-model": {"type": "string", "optional": 1},
    "hidden": _OPTIONAL_BOOLEAN,
    "hv-vendor-id": {"type": "string", "pattern": "(?^:[a-zA-Z0-9]{1,12})", "optional": 1},
    "flags": {"type": "string", "pattern": f"(?^:{_CPU_FLAG}(;{_CPU_FLAG})*)", "optional": 1},
    "guest-phys-bits": {"type": "integer", "minimum": 32, "maximum": 64, "optional": 1},
    "phys-bits": {"type": "string", "format": "pve-phys-bits", "optional": 1},
    "level": {"type": "integer", "minimum": 0, "maximum": 4294967295, "optional": 1},
}
# qemu-server CPUConfig.pm: the static $cpu_vendor_list of the 8.x/9.x releases and
# $builtin_models_by_arch. Newer releases read the list from QEMU; their "-vN" variants of
# these models are accepted as well.
_CPU_MODELS = _words(
    """
    486 pentium pentium2 pentium3 coreduo core2duo Conroe Penryn Nehalem Nehalem-IBRS
    Westmere Westmere-IBRS SandyBridge SandyBridge-IBRS IvyBridge IvyBridge-IBRS Haswell
    Haswell-IBRS Haswell-noTSX Haswell-noTSX-IBRS Broadwell Broadwell-IBRS Broadwell-noTSX
    Broadwell-noTSX-IBRS Skylake-Client Skylake-Client-IBRS Skylake-Client-noTSX-IBRS
    Skylake-Server Skylake-Server-IBRS Skylake-Server-noTSX-IBRS Cascadelake-Server
    Cascadelake-Server-noTSX Cooperlake KnightsMill Icelake-Client Icelake-Client-noTSX
    Icelake-Server Icelake-Server-noTSX SapphireRapids GraniteRapids SierraForest
    ClearwaterForest athlon phenom Opteron_G1 Opteron_G2 Opteron_G3 Opteron_G4 Opteron_G5
    EPYC EPYC-IBPB EPYC-Rome EPYC-Milan EPYC-Genoa EPYC-Turin host kvm32 kvm64 qemu32 qemu64
    max x86-64-v2 x86-64-v2-AES x86-64-v3 x86-64-v4
    """
)
# qemu-server src/PVE/QemuServer/CPUFlags.pm (VM-specific flags, x86_64)
_VM_CPU_FLAGS = sorted(
    _words(
        """
        aes amd-no-ssb amd-ssbd hv-evmcs hv-tlbflush ibpb md-clear nested-virt pcid pdpe1gb
        spec-ctrl ssbd virt-ssbd
        """
    )
)


def _validate_vm_cpu(cpu: dict[str, Any]) -> dict[str, Any]:
    """qemu-server ``CPUConfig.pm`` ``validate_vm_cpu_conf`` (custom models are not known
    here, so any ``custom-`` name passes)."""
    cputype = cpu.get("cputype")
    if not perl_truthy(cputype):
        raise _die("CPU is missing cputype")
    base = re.sub(r"-v\d+$", "", str(cputype))
    if not str(cputype).startswith("custom-") and base not in _CPU_MODELS:
        raise _die(f"Built-in cputype '{cputype}' is not defined (missing 'custom-' prefix?)")
    flag = f"([+-])({'|'.join(map(re.escape, _VM_CPU_FLAGS))})"
    if cpu.get("flags") and not _matches(f"^{flag}(;{flag})*$", str(cpu["flags"])):
        raise _die(f"VM-specific CPU flags must be a subset of: {', '.join(_VM_CPU_FLAGS)}")
    if cpu.get("reported-model") is not None:
        raise _die("Property 'reported-model' not allowed in VM-specific CPU config.")
    return cpu


# pve-guest-common src/PVE/VZDump/Common.pm
_FLEECING: Schema = {
    "enabled": {"type": "boolean", "default_key": 1, "optional": 1},
    "storage": {"type": "string", "format": "pve-storage-id", "optional": 1},
}
_PERFORMANCE: Schema = {
    "max-workers": {"type": "integer", "minimum": 1, "maximum": 256, "optional": 1},
    "pbs-entries-max": {"type": "integer", "minimum": 1, "optional": 1},
}


def _validate_fleecing(fleecing: dict[str, Any]) -> dict[str, Any]:
    """pve-guest-common ``verify_backup_fleecing``."""
    if not perl_truthy(fleecing.get("storage")) and perl_truthy(fleecing.get("enabled")):
        raise _die("'storage' parameter is required when 'enabled' is set")
    return fleecing


# pve-storage src/PVE/Storage/Plugin.pm ($prune_backups_format, validate_prune_backups)
_PRUNE: Schema = {
    "keep-all": _OPTIONAL_BOOLEAN,
    **{
        f"keep-{period}": _KEEP
        for period in ("last", "hourly", "daily", "weekly", "monthly", "yearly")
    },
}


def _validate_prune(options: dict[str, Any]) -> dict[str, Any]:
    keep = {key: value for key, value in options.items() if key != "keep-all"}
    if not any(to_number(str(value)) > 0 for value in keep.values() if is_number(str(value))):
        return {"keep-all": 1}
    if perl_truthy(options.get("keep-all")):
        raise _die("keep-all cannot be set together with other options.")
    return keep


# pve-access-control src/PVE/Auth/Plugin.pm ($realm_sync_options_desc, $tfa_format)
_REALM_SYNC: Schema = {
    "scope": {"type": "string", "enum": ["users", "groups", "both"], "optional": 1},
    "remove-vanished": {
        "type": "string",
        "pattern": "(?:(?:(?:acl|properties|entry);)*(?:acl|properties|entry))|none",
        "optional": 1,
    },
    "full": _OPTIONAL_BOOLEAN,
    "enable-new": _OPTIONAL_BOOLEAN,
    "purge": _OPTIONAL_BOOLEAN,
}
_TFA: Schema = {
    "type": {"type": "string", "enum": ["yubico", "oath"]},
    "id": {"type": "string", "optional": 1},
    "key": {"type": "string", "optional": 1},
    "url": {"type": "string", "optional": 1},
    "digits": {"type": "integer", "minimum": 6, "maximum": 8, "optional": 1},
    "step": {"type": "integer", "minimum": 10, "optional": 1},
}

# pve-common src/PVE/JSONSchema.pm ($remote_format, $bwlimit_format, pve-node-location)
_REMOTE: Schema = {
    "host": {"type": "string"},
    "port": {"type": "integer", "optional": 1},
    "apitoken": {"type": "string"},
    "fingerprint": {
        "type": "string",
        "pattern": "([A-Fa-f0-9]{2}:){31}[A-Fa-f0-9]{2}",
        "optional": 1,
    },
}
_BWLIMIT: Schema = {
    key: {"type": "number", "minimum": 0, "optional": 1}
    for key in ("default", "restore", "migration", "clone", "move")
}
_NODE_LOCATION: Schema = {
    "name": {"type": "string", "optional": 1, "maxLength": 128},
    "latitude": {"type": "number", "minimum": -90, "maximum": 90},
    "longitude": {"type": "number", "minimum": -180, "maximum": 180},
}

# pve-network src/PVE/Network/SDN/SubnetPlugin.pm ($dhcp_range_fmt: its 'ip' type is not a
# JSON schema type, so check_type lets any value through, as on a real node)
_DHCP_RANGE: Schema = {"start-address": {"type": "ip"}, "end-address": {"type": "ip"}}


@functools.cache
def _qemu_ide_format() -> Schema:
    """qemu-server registers ``pve-qm-ide`` from the very hash that is ``ide[n]``'s inline
    format (``Drive.pm``), so the bundled schema's ``ide[n]`` is its definition."""
    from labsmith.sim.schema import ApiSchema

    method = ApiSchema.bundled().method("/nodes/{node}/qemu", "POST")
    fmt = method.properties["ide[n]"]["format"]
    assert isinstance(fmt, Mapping)
    return fmt


_HASH_FORMATS: dict[str, tuple[Schema | Callable[[], Schema], Validator | None]] = {
    "pve-qm-hostpci": (_HOSTPCI, _validate_hostpci),
    "pve-qm-ipconfig": (_IPCONFIG, None),
    "pve-qm-rng": (_RNG, None),
    "pve-qm-watchdog": (_WATCHDOG, None),
    "pve-qm-cicustom": (_CICUSTOM, None),
    "pve-qm-boot": (_BOOT, None),
    "pve-qm-smbios1": (_SMBIOS1, None),
    "pve-qm-ide": (_qemu_ide_format, None),
    "pve-qemu-sev-fmt": (_SEV, None),
    "pve-qemu-tdx-fmt": (_TDX, None),
    "pve-vm-cpu-conf": (_CPU, _validate_vm_cpu),
    "backup-fleecing": (_FLEECING, _validate_fleecing),
    "backup-performance": (_PERFORMANCE, None),
    "prune-backups": (_PRUNE, _validate_prune),
    "realm-sync-options": (_REALM_SYNC, None),
    "pve-tfa-config": (_TFA, None),
    "proxmox-remote": (_REMOTE, None),
    "bwlimit": (_BWLIMIT, None),
    "pve-node-location": (_NODE_LOCATION, None),
    "pve-sdn-dhcp-range": (_DHCP_RANGE, None),
}


# --- Registry ------------------------------------------------------------------------------

_NODE_NAME = r"^([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)$"
_HA_NODE = r"^([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)(:\d+)?$"
_ACME_DOMAIN = r"^[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9][a-z0-9_-]*)+$"
_ACME_ALIAS = r"^[a-z0-9_][a-z0-9_-]*(?:\.[a-z0-9_][a-z0-9_-]*)+$"

_CODE_FORMATS: dict[str, Verifier] = {
    # pve-common src/PVE/JSONSchema.pm
    "string": lambda text: None,
    "urlencoded": _regex_verifier(r"^[-%a-zA-Z0-9_.!~*'()]*$", "invalid urlencoded string: {}"),
    "pve-configid": _regex_verifier(
        r"^[a-z][a-z0-9_-]+$", "invalid configuration ID '{}'", re.IGNORECASE
    ),
    "pve-storage-id": _verify_id("storage"),
    "acme-plugin-id": _verify_id("ACME plugin"),
    "pve-bridge-id": _regex_verifier(r"^[-_.\w\d]+$", "invalid bridge ID '{}'"),
    "pve-vmid": _regex_verifier(r"^[1-9][0-9]{2,8}$", "value does not look like a valid VM ID"),
    "pve-node": _regex_verifier(_NODE_NAME, "value does not look like a valid node name"),
    "storage-pair": _verify_id_pair("pve-storage-id"),
    "bridge-pair": _verify_id_pair("pve-bridge-id"),
    "mac-addr": _regex_verifier(
        r"^[a-f0-9][02468ace](?::[a-f0-9]{2}){5}$",
        "value does not look like a valid unicast MAC address",
        re.IGNORECASE,
    ),
    "ipv4": _regex_verifier(rf"^(?:{IPV4_RE})$", "value does not look like a valid IPv4 address"),
    "ipv6": _regex_verifier(rf"^(?:{IPV6_RE})$", "value does not look like a valid IPv6 address"),
    "ip": _verify_ip,
    "ldap-simple-attr": _verify_ldap_attr,
    "ipv4mask": _condition_verifier(
        lambda text: text in _IPV4_MASKS, "value does not look like a valid IP netmask"
    ),
    "CIDRv6": _condition_verifier(
        _is_cidr_v6, "value does not look like a valid IPv6 CIDR network"
    ),
    "CIDRv4": _condition_verifier(
        _is_cidr_v4, "value does not look like a valid IPv4 CIDR network"
    ),
    "CIDR": _verify_cidr,
    "pve-ipv4-config": _condition_verifier(
        lambda text: _matches(r"^(?:dhcp|manual)$", text) or _is_cidr_v4(text),
        "value does not look like a valid ipv4 network configuration",
    ),
    "pve-ipv6-config": _condition_verifier(
        lambda text: _matches(r"^(?:auto|dhcp|manual)$", text) or _is_cidr_v6(text),
        "value does not look like a valid ipv6 network configuration",
    ),
    "email": _regex_verifier(f"^{_EMAIL}$", "value does not look like a valid email address"),
    "email-or-username": _condition_verifier(
        lambda text: _matches(f"^{_EMAIL}$", text) or _matches(f"^{_EMAIL_USER}$", text),
        "value does not look like a valid email address or user name",
    ),
    "dns-name": _condition_verifier(_is_dns_name, "value does not look like a valid DNS name"),
    "timezone": _verify_timezone,
    "pve-iface": _condition_verifier(_is_iface, "invalid network interface name '{}'"),
    "pve-vlan-id-or-range": _verify_vlan_id_or_range,
    "address": _condition_verifier(
        lambda text: _is_ip(text) or _is_dns_name(text),
        "value does not look like a valid address: {}",
    ),
    "disk-size": _verify_disk_size,
    "pve-startup-order": _verify_startup_order,
    "pve-tag": _regex_verifier(
        r"^[a-z0-9_][a-z0-9_\-\+\.]*$", "invalid characters in tag", re.IGNORECASE
    ),
    "pve-tfa-secret": _verify_tfa_secret,
    "pve-task-status-type": _regex_verifier(
        r"^(ok|error|warning|unknown)$", "invalid status '{}'", re.IGNORECASE
    ),
    # pve-common src/PVE/CalendarEvent.pm, src/PVE/Certificate.pm
    "pve-calendar-event": _verify_calendar_event,
    "pem-certificate": _pem_verifier("CERTIFICATE"),
    "pem-certificate-chain": _pem_verifier("CERTIFICATE", multiple=True),
    "pem-string": _pem_verifier(".*?"),
    # pve-ha-manager src/PVE/HA/Tools.pm (pve-ha-group-node: releases before HA rules)
    "pve-ha-resource-id": _regex_verifier(
        r"^[a-z]+:\S+$", "value does not look like a valid ha resource id"
    ),
    "pve-ha-resource-or-vm-id": _verify_ha_resource_or_vm_id,
    "pve-ha-node": _regex_verifier(_HA_NODE, "value does not look like a valid ha node"),
    "pve-ha-group-node": _regex_verifier(
        _HA_NODE, "value does not look like a valid ha group node"
    ),
    # pve-guest-common src/PVE/Mapping/Dir.pm, src/PVE/ReplicationConfig.pm
    "pve-storage-path-in-property-string": _regex_verifier(
        r"^/[^;,=\(\)]+",
        "Value does not look like a valid absolute path."
        " These symbols are currently not allowed in path: ;,=()",
    ),
    "pve-replication-job-id": _verify_replication_job_id,
    # pve-manager PVE/Status/Graphite.pm, PVE/API2/Nodes.pm, PVE/API2/Backup.pm,
    # PVE/NodeConfig.pm; pve-cluster src/PVE/DataCenterConfig.pm
    "graphite-path": _condition_verifier(
        _is_dns_name, "value does not look like a valid graphite path"
    ),
    "pve-command-batch": _verify_command_batch,
    "pve-day-of-week": _verify_day_of_week,
    "pve-acme-domain": _regex_verifier(
        _ACME_DOMAIN, "value '{}' does not look like a valid domain name!", re.IGNORECASE
    ),
    "pve-acme-alias": _regex_verifier(
        _ACME_ALIAS, "value '{}' does not look like a valid alias name!", re.IGNORECASE
    ),
    "mac-prefix": _regex_verifier(
        r"^[a-f0-9][02468ace](?::[a-f0-9]{2}){0,2}(?::[a-f0-9]?)?$",
        "value is not a valid unicast MAC address prefix",
        re.IGNORECASE,
    ),
    # pve-storage src/PVE/Storage/Plugin.pm
    "pve-storage-path": _regex_verifier(
        r"^/[^;\(\)]+", "value does not look like a valid absolute path"
    ),
    "pve-storage-server": _condition_verifier(
        lambda text: _is_ip(text) or _is_dns_name(text),
        "value does not look like a valid server name or IP address",
    ),
    "pve-storage-vgname": _regex_verifier(
        r"^[a-z0-9][a-z0-9\-\_\.]*[a-z0-9]$",
        "lvm name '{}' contains illegal characters",
        re.IGNORECASE,
    ),
    "pve-storage-portal-dns": _condition_verifier(
        _is_host_and_port, "value does not look like a valid portal address"
    ),
    "pve-storage-content": _verify_content,
    "pve-storage-format": _regex_verifier(r"^(raw|qcow2|vmdk|subvol)$", "invalid format '{}'"),
    "pve-storage-options": _regex_verifier(r"^\S+$", "invalid options '{}'"),
    "pve-volume-id": _verify_volume_id,
    "pve-dir-override": _verify_dir_override,
    # pve-access-control src/PVE/AccessControl.pm, src/PVE/Auth/Plugin.pm
    "pve-tokenid": _regex_verifier(
        rf"^(({_USER})\@({_REALM}))!({_REALM})$", "value '{}' does not look like a valid token ID"
    ),
    "pve-groupid": _regex_verifier(
        r"^[A-Za-z0-9\.\-_]+$", "group name '{}' contains invalid characters"
    ),
    "pve-roleid": _regex_verifier(
        r"^[A-Za-z0-9\.\-_]+$", "role name '{}' contains invalid characters"
    ),
    "pve-poolid": _verify_poolid,
    "pve-priv": _condition_verifier(lambda text: text in _PRIVILEGES, "invalid privilege '{}'"),
    "pve-realm": _regex_verifier(f"^{_REALM}$", "value does not look like a valid realm"),
    "pve-userid": _verify_userid,
    # pve-firewall src/PVE/Firewall.pm
    "IPorCIDR": _verify_ip_or_cidr,
    "IPorCIDRorAlias": _verify_ip_or_cidr_or_alias,
    "pve-fw-conntrack-helper": _verify_conntrack_helpers,
    "pve-fw-sport-spec": lambda text: _fw_ports(text, dport=False),
    "pve-fw-dport-spec": lambda text: _fw_ports(text, dport=True),
    "pve-fw-addr-spec": _verify_fw_addr_spec,
    "pve-fw-protocol-spec": _verify_fw_protocol,
    "pve-fw-icmp-type-spec": _verify_fw_icmp_type,
    # pve-container src/PVE/LXC/Config.pm
    "lxc-ip-with-ll-iface": _verify_ip_with_ll_iface,
    "pve-ct-timezone": _verify_ct_timezone,
    "pve-lxc-mp-string": _verify_lxc_mp_string,
    "pve-lxc-dev-string": _verify_lxc_dev_string,
    # qemu-server src/PVE/QemuServer.pm, QemuServer/Drive.pm, QemuServer/CPUConfig.pm
    "pve-cpuset": _verify_cpuset,
    "pve-volume-id-or-qm-path": _verify_volume_id_or_qm_path,
    "pve-volume-id-or-absolute-path": _verify_volume_id_or_absolute_path,
    "pve-qm-bootdev": _verify_bootdev,
    "pve-qm-bootdisk": _verify_bootdisk,
    "pve-hotplug-features": _verify_hotplug,
    "pve-phys-bits": _verify_phys_bits,
    # pve-network src/PVE/Network/SDN/ (Controllers/IsisPlugin.pm, Zones/EvpnPlugin.pm,
    # SubnetPlugin.pm, Fabrics.pm; the *-id formats of Zones/, VnetPlugin.pm, Controllers/,
    # Dns/, Ipams/ as the bundled releases registered them)
    "pve-sdn-isis-net": _regex_verifier(
        r"^[a-fA-F0-9]{2}(\.[a-fA-F0-9]{4}){3,9}\.[a-fA-F0-9]{2}$",
        "value does not look like a valid isis net",
    ),
    "pve-sdn-bgp-rt": _verify_bgp_rt,
    "pve-sdn-subnet-id": _verify_subnet_id,
    "pve-sdn-fabric-id": _regex_verifier(
        r"^[a-zA-Z0-9][a-zA-Z0-9-]{0,6}[a-zA-Z0-9]?$",
        "Fabric ID '{}' contains illegal characters",
        re.IGNORECASE,
    ),
    "pve-sdn-zone-id": _sdn_id_verifier("zone", 8),
    "pve-sdn-vnet-id": _sdn_id_verifier("vnet", 8),
    "pve-sdn-controller-id": _sdn_id_verifier("controller", 64, r"^[a-z][a-z0-9_-]*[a-z0-9]$"),
    "pve-sdn-dns-id": _sdn_id_verifier("dns"),
    "pve-sdn-ipam-id": _sdn_id_verifier("ipam"),
}

# Formats Proxmox registers that are not checked here. None of them is named by a bundled
# schema: there each appears inline (as the parameter's own format dict), which is checked.
# A schema loaded from another release that names one of them gets it unchecked.
UNCHECKED_FORMATS: frozenset[str] = frozenset(
    {
        "pve-qm-usb",  # qemu-server QemuServer/USB.pm (inline as usb[n])
        "pve-qm-numanode",  # qemu-server QemuServer/Memory.pm (inline as numa[n])
        "pve-qm-virtiofs",  # qemu-server QemuServer/Virtiofs.pm (inline as virtiofs[n])
        "pve-qemu-machine-fmt",  # qemu-server QemuServer/Machine.pm (inline as machine)
        "pve-cpu-conf",  # qemu-server QemuServer/CPUConfig.pm (custom CPU model sections)
        "pve-ct-mountpoint",  # pve-container LXC/Config.pm (inline as mp[n])
        "pve-lxc-network",  # pve-container LXC/Config.pm (inline as net[n])
        "pve-sdn-vlanrange",  # pve-network SDN/Zones/VlanPlugin.pm
        "pve-sdn-vxlanrange",  # pve-network SDN/Zones/VxlanPlugin.pm
        "pve-storage-zfs-blocksize",  # pve-storage Storage/ZFSPoolPlugin.pm
    }
)


def named_property_format(name: str) -> Schema | None:
    """The keys of a property-string format registered by name (``pve-qm-hostpci``)."""
    entry = _HASH_FORMATS.get(name)
    if entry is None:
        return None
    schema = entry[0]
    return schema() if callable(schema) else schema


def format_names() -> frozenset[str]:
    """Every named format with a checker here (list suffixes not included)."""
    return frozenset(_CODE_FORMATS) | frozenset(_HASH_FORMATS)


def is_checked_format(fmt: Any) -> bool:
    """Whether :func:`check_format` really checks ``fmt`` (an inline format always is)."""
    if isinstance(fmt, Mapping):
        return True
    match = _FORMAT_SUFFIX.match(str(fmt))
    assert match is not None
    return match.group(1) in format_names() and match.group(1) != "string"
