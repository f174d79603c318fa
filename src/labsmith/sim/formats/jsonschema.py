"""pve-common ``src/PVE/JSONSchema.pm``: one value against one schema (``check_prop``,
``check_object``, ``check_type``), named formats (``check_format``) and property strings
(``parse_property_string``), with PVE's order of checks and message texts."""

import re
from collections.abc import Iterator, Mapping
from typing import Any

from labsmith.sim.formats.base import (
    MISSING,
    NOT_ALLOWED,
    Errors,
    FormatError,
    Schema,
    Validator,
    die,
    is_integer,
    is_number,
    parse_boolean,
    perl_number_text,
    perl_str,
    perl_truthy,
    split_list,
    to_number,
)
from labsmith.sim.formats.registry import (
    CODE_FORMATS,
    FORMAT_SUFFIX,
    HASH_FORMATS,
    named_property_format,
)
from labsmith.sim.perl_regex import compile_anchored


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
        return f"value must have a maximum value of {perl_number_text(highest)}"
    lowest = schema.get("minimum")
    if lowest is not None and number < to_number(str(lowest)):
        return f"value must have a minimum value of {perl_number_text(lowest)}"
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
    match = FORMAT_SUFFIX.match(str(fmt))
    assert match is not None  # the pattern matches every string
    name, kind = match.group(1), match.group(2)
    verifier = CODE_FORMATS.get(name)
    if verifier is None:
        if name in HASH_FORMATS and kind:
            raise die(f"'-{kind}' format must have code ref, not hash")
        return parse_property_string(name, value, path) if name in HASH_FORMATS else None
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
    for key, text in property_parts(value):
        if key is None:
            _parse_default(schema, text, parsed, default_key)
        else:
            _parse_keyed(schema, key, text, parsed)
    errors: Errors = {}
    check_object(path, schema, parsed, 0, errors)
    if errors:
        lines = "".join(f"{key}: {message}\n" for key, message in errors.items())
        raise FormatError("format error\n" + lines, errors)
    return validator(parsed) if validator else parsed


def property_parts(value: str) -> Iterator[tuple[str | None, str]]:
    """The ``key=text`` parts of a property string as ``parse_property_string`` splits it;
    a bare part (the default key's value) comes as ``(None, text)``."""
    for part in value.split(","):
        if _BLANK.match(part):
            continue
        match = _KEY_VALUE.match(part)
        if match is not None:
            yield match.group(1), match.group(2)
        elif "=" not in part:
            yield None, part
        else:
            raise die("missing key in comma-separated list property")


def property_values(value: str, default_key: str) -> dict[str, str]:
    """The texts of a property string the simulator wrote or already validated, by key,
    without a format to check them against."""
    return {default_key if key is None else key: text for key, text in property_parts(value)}


def _resolve_hash_format(fmt: Mapping[str, Any] | str) -> tuple[Schema, Validator | None]:
    if isinstance(fmt, Mapping):
        return fmt, None
    schema = named_property_format(fmt)
    if schema is not None:
        return schema, HASH_FORMATS[fmt][1]
    if fmt in CODE_FORMATS:
        raise die("parse_property_string only accepts hash based named formats")
    raise die(f"unknown format: {fmt}")


def _parse_keyed(schema: Schema, key: str, text: str, parsed: dict[str, Any]) -> None:
    if parsed.get(key) is not None:
        raise die(f"duplicate key in comma-separated list property: {key}")
    sub = schema.get(key) or {}
    alias = sub.get("alias")
    if alias:
        key_alias = sub.get("keyAlias")
        if key_alias:
            if parsed.get(key_alias) is not None:
                raise die(f"key alias '{key_alias}' is already defined")
            parsed[key_alias] = key
        key, sub = alias, schema.get(alias) or {}
        if parsed.get(key) is not None:
            raise die(f"key '{key}' is already defined (via alias)")
    if not sub:
        raise die(f"invalid key in comma-separated list property: {key}")
    parsed[key] = _maybe_boolean(sub, text)


def _parse_default(schema: Schema, part: str, parsed: dict[str, Any], default: list[str]) -> None:
    if default:
        raise die(f"duplicate key in comma-separated list property: {default[0]}")
    for key, sub in schema.items():
        if not sub.get("default_key"):
            continue
        default.append(key)
        if perl_truthy(parsed.get(key)):
            raise die(f"duplicate key in comma-separated list property: {key}")
        parsed[key] = _maybe_boolean(sub, part)
        return
    raise die("value without key, but schema does not define a default key")


def _maybe_boolean(sub: Schema, text: str) -> Any:
    if sub.get("type") == "boolean":
        parsed = parse_boolean(text)
        return text if parsed is None else parsed
    return text
