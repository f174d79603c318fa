"""Every method of both bundled schemas against the validator.

A valid sample request (path variables, every required parameter, then every optional one)
must pass; for every parameter with something to check (enum, limits, pattern, length, a
checked format, property-string sub-keys) a request with one bad value must be refused with
that parameter named. The assertion messages carry the counts.
"""

import re
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from labsmith.sim.formats import UNCHECKED_FORMATS, format_names, named_property_format
from labsmith.sim.params import ParameterError, validate_parameters
from labsmith.sim.schema import SCHEMA_VERSIONS, ApiSchema, Method
from tests.simsupport.samples import (
    checkable_parameters,
    concrete_names,
    full_request,
    invalid_property_strings,
    invalid_value,
    path_values,
    required_request,
)


def refusal(method: Method, params: Mapping[str, Any], path: Mapping[str, str]) -> dict[str, str]:
    try:
        validate_parameters(method, params, path)
    except ParameterError as error:
        return error.errors
    return {}


def names(parameter: str, errors: Mapping[str, str]) -> bool:
    """Whether an error is about ``parameter`` (itself, an array item, or a sub-key)."""
    return any(
        key == parameter or key.startswith((f"{parameter}[", f"{parameter}.")) for key in errors
    )


def invalid_requests(method: Method) -> Iterator[tuple[str, dict[str, Any], dict[str, str]]]:
    """(parameter, request, path values) with exactly one bad value each."""
    base, path = required_request(method), path_values(method)
    for name in checkable_parameters(method):
        for concrete in concrete_names(method, name):
            bad = invalid_value(concrete, method.properties[name])
            if concrete in path:
                yield concrete, base, {**path, concrete: str(bad)}
            else:
                yield concrete, {**base, concrete: bad}, path


def invalid_sub_keys(method: Method) -> Iterator[tuple[str, dict[str, Any]]]:
    base, path = required_request(method), path_values(method)
    for name, schema in method.properties.items():
        concrete = concrete_names(method, name)[0]
        if concrete not in path:
            for key, value in invalid_property_strings(concrete, schema):
                yield f"{concrete}.{key}", {**base, concrete: value}


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_sample_requests_of_every_method_are_accepted(version: str) -> None:
    methods = list(ApiSchema.bundled(version).methods())
    refused, checked = [], 0
    for method in methods:
        path = path_values(method)
        for request in (required_request(method), full_request(method)):
            checked += len(request) + len(path)
            errors = refusal(method, request, path)
            if errors:
                refused.append(f"{method.http_method} {method.path}: {errors}")

    summary = f"{version}: {len(methods)} methods, {checked} parameter values"
    assert not refused, f"{summary}; {len(refused)} refused:\n" + "\n".join(refused[:20])
    assert len(methods) > 600 and checked > 3500, summary


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_every_checked_parameter_refuses_a_bad_value(version: str) -> None:
    methods = list(ApiSchema.bundled(version).methods())
    accepted, checked = [], 0
    for method in methods:
        for name, request, path in invalid_requests(method):
            checked += 1
            errors = refusal(method, request, path)
            if not names(name, errors):
                accepted.append(
                    f"{method.http_method} {method.path} {name}={request.get(name)!r}: {errors}"
                )

    summary = f"{version}: {checked} bad values over {len(methods)} methods"
    assert not accepted, f"{summary}; {len(accepted)} not refused:\n" + "\n".join(accepted[:20])
    assert checked > 2000, summary


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_every_checked_sub_key_refuses_a_bad_value(version: str) -> None:
    accepted, checked = [], 0
    for method in ApiSchema.bundled(version).methods():
        path = path_values(method)
        for sub_key, request in invalid_sub_keys(method):
            checked += 1
            parameter = sub_key.split(".")[0]
            if not names(parameter, refusal(method, request, path)):
                accepted.append(
                    f"{method.http_method} {method.path} {sub_key}: {request[parameter]!r}"
                )

    summary = f"{version}: {checked} bad property-string sub-keys"
    assert not accepted, f"{summary}; {len(accepted)} not refused:\n" + "\n".join(accepted[:20])
    assert checked > 500, summary


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_every_named_format_of_the_schema_is_checked(version: str) -> None:
    used = {re.sub(r"-(list|opt)$", "", name) for name in ApiSchema.bundled(version).format_names()}

    unchecked = used - format_names()
    assert not unchecked, (
        f"{version}: {len(used)} named formats, no checker for {sorted(unchecked)}"
    )
    assert not used & UNCHECKED_FORMATS


def typetext_keys(typetext: str) -> set[str]:
    """The keys a property string's typetext lists (values in <...> may contain '=')."""
    return set(re.findall(r"([A-Za-z0-9_-]+)=", re.sub(r"<[^>]*>", "", typetext)))


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_named_property_string_formats_know_every_documented_key(version: str) -> None:
    missing, compared = [], 0
    for method in ApiSchema.bundled(version).methods():
        for name, schema in method.properties.items():
            fmt = named_property_format(str(schema.get("format")))
            if fmt is not None and schema.get("typetext"):
                compared += 1
                unknown = typetext_keys(str(schema["typetext"])) - set(fmt)
                if unknown:
                    missing.append(f"{method.path} {name} ({schema['format']}): {sorted(unknown)}")

    assert not missing, f"{version}: keys the transcribed formats lack: {missing[:10]}"
    assert compared > 20, f"{version}: only {compared} typetexts compared"
