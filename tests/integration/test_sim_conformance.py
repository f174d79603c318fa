"""Every method the simulator serves, on both schema versions, through its whole request path.

A sample request built from the schema (path variables, required parameters; then every
optional one) must not be refused as invalid, must not crash a handler, and a 200 answer
must have the shape the schema's ``returns`` declares. A request with one bad value must be
answered 400 with that parameter named. Requests go to ``Simulator.handle`` — the code the
HTTPS server runs per request, without the socket — so the walk covers ~2,000 requests fast.
"""

import json
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from labsmith.sim.api import Durations, Request, Response, Simulator
from labsmith.sim.auth import add_token
from labsmith.sim.handlers.base import HANDLERS
from labsmith.sim.params import ParameterError, validate_parameters
from labsmith.sim.schema import SCHEMA_VERSIONS, ApiSchema, Method
from labsmith.sim.state import (
    Guest,
    Interface,
    Node,
    PciMapping,
    Snapshot,
    Storage,
    Volume,
    add_node,
    default_state,
)
from tests.simsupport.samples import (
    checkable_parameters,
    concrete_names,
    full_request,
    invalid_value,
    path_values,
    required_request,
)

pytestmark = pytest.mark.integration

TOKEN = "root@pam!conformance"
SECRET = "c0nf0rmance"
# Bad path values tried in turn: the first the validator refuses is used. pveproxy checks
# permissions on the ACL path before the handler validates, and an ACL path may hold only
# [[:alnum:].-_/] (AccessControl.pm normalize_path), so a value outside that set would be
# refused with a 403 that names no parameter; these stay inside it.
PATH_CANDIDATES = ("-bad-", "99", "0", "BAD", "bad.", "a" * 300)
JSON_TYPES: dict[str, tuple[type, ...]] = {
    "array": (list,),
    "object": (dict,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (int, bool),
    "null": (type(None),),
}


def served_methods(schema: ApiSchema) -> list[Method]:
    served = []
    for template, verb in sorted(HANDLERS):
        served.append(schema.method(template, verb))
    return served


def fresh_simulator(schema: ApiSchema, method: Method | None = None) -> Simulator:
    """A cluster holding the objects the sample path values name (guest 100 of the path's
    type, snapshot, mapping, interface, volume and task "sample"), unless the method
    creates guest 100 itself."""
    state = default_state()
    add_node(state, Node(name="pve2"))
    state.storages["local-zfs"].nodes = None
    for storage_id in ("backup", "sample"):
        state.storages[storage_id] = Storage(
            storage=storage_id, type="zfspool", content=["backup", "images", "rootdir"]
        )
    add_token(state, TOKEN, SECRET, privsep=False)
    simulator = Simulator(schema, state, durations=Durations(default=0.0), auth_failure_delay=0.0)
    if method is not None and "{vmid}" in method.path:
        kind = "lxc" if "/lxc/" in method.path else "qemu"
        guest = Guest(vmid=100, kind=kind, node="pve1", config={"cores": 1})
        guest.snapshots["sample"] = Snapshot(name="sample", config={"cores": 1}, snaptime=1)
        state.guests[100] = guest
    state.mappings["sample"] = PciMapping(id="sample", map=["node=pve1,path=0000:01:00"])
    state.nodes["pve1"].interfaces["eth0"] = Interface(iface="eth0", type="eth")
    volume = "local-zfs:sample"
    state.storages["local-zfs"].on("pve1")[volume] = Volume(volid=volume, content="images", size=1)
    simulator.tasks.start(
        node="pve1", task_type="qmstart", task_id="100", user=TOKEN, duration=0, effect=None
    )
    task = simulator.tasks.tasks.popitem()[1]
    task.upid = "sample"
    simulator.tasks.tasks["sample"] = task
    return simulator


def request_for(method: Method, params: Mapping[str, Any], path: Mapping[str, str]) -> Request:
    concrete = method.path
    for name, value in path.items():
        concrete = concrete.replace("{" + name + "}", urllib.parse.quote(value, safe=""))
    pairs = []
    for key, value in params.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((key, "1" if item is True else "0" if item is False else str(item)))
    encoded = urllib.parse.urlencode(pairs)
    headers = {
        "Authorization": f"PVEAPIToken={TOKEN}={SECRET}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    if method.http_method == "GET":
        return Request("GET", f"/api2/json{concrete}?{encoded}", headers)
    return Request(method.http_method, f"/api2/json{concrete}", headers, encoded.encode())


def shape_problem(returns: Mapping[str, Any], data: Any) -> str | None:
    """Whether ``data`` has the top-level type the schema's ``returns`` declares."""
    declared = returns.get("type")
    if declared is None or (data is None and returns.get("optional")):
        return None
    types = declared if isinstance(declared, list) else [declared]
    allowed = tuple(kind for name in types for kind in JSON_TYPES.get(str(name), (object,)))
    if not isinstance(data, allowed):
        return f"returns {declared}, answered {type(data).__name__}"
    if isinstance(data, list) and data and isinstance(returns.get("items"), Mapping):
        return shape_problem(returns["items"], data[0])
    return None


def path_safe_invalid(method: Method, name: str, fallback: Any, path: Mapping[str, str]) -> str:
    for candidate in PATH_CANDIDATES:
        try:
            validate_parameters(method, {}, {**path, name: candidate})
        except ParameterError as error:
            if name in error.errors:
                return candidate
    return str(fallback).replace(" ", "-")


def refused_by_permission_stage(method: Method, name: str, response: Response) -> bool:
    """A user id is checked by the method's ``userid-param``/``userid-group`` permission
    check (verify_username dies, HTTP 500) before the handler validates it."""
    check = json.dumps(method.permissions.get("check"))
    return name == "userid" and "userid" in check and response.status == 500


def answer(simulator: Simulator, request: Request) -> tuple[Response, Any]:
    response = simulator.handle(request)
    document = json.loads(response.body) if response.body else {}
    return response, document


def valid_requests(method: Method) -> Iterator[dict[str, Any]]:
    yield required_request(method)
    yield full_request(method)


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_valid_requests_to_every_served_method_are_accepted(version: str) -> None:
    schema = ApiSchema.bundled(version)
    methods = served_methods(schema)
    refused, wrong_shape, answered = [], [], {200: 0}
    for method in methods:
        path = path_values(method)
        for params in valid_requests(method):
            # A fresh cluster per request: an earlier one must not decide this one's fate.
            simulator = fresh_simulator(schema, method)
            response, document = answer(simulator, request_for(method, params, path))
            answered[response.status] = answered.get(response.status, 0) + 1
            if response.status in (400, 501):
                refused.append(f"{method.http_method} {method.path}: {response.status} {document}")
            elif response.status == 200:
                problem = shape_problem(method.returns, document.get("data"))
                if problem:
                    wrong_shape.append(f"{method.http_method} {method.path}: {problem}")
    summary = f"{version}: {len(methods)} served methods, answers by status {answered}"
    assert not refused, summary + "\n" + "\n".join(refused[:15])
    assert not wrong_shape, summary + "\n" + "\n".join(wrong_shape[:15])
    assert len(methods) > 60 and answered[200] > len(methods) // 2, summary


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_bad_values_to_every_served_method_are_refused_by_name(version: str) -> None:
    schema = ApiSchema.bundled(version)
    accepted, checked = [], 0
    for method in served_methods(schema):
        simulator = fresh_simulator(schema, method)
        base, path = required_request(method), path_values(method)
        for name in checkable_parameters(method):
            concrete = concrete_names(method, name)[0]
            bad = invalid_value(concrete, method.properties[name])
            if concrete in path:
                bad = path_safe_invalid(method, concrete, bad, path)
                request = request_for(method, base, {**path, concrete: bad})
            else:
                request = request_for(method, {**base, concrete: bad}, path)
            checked += 1
            response, document = answer(simulator, request)
            errors = document.get("errors") or {}
            named = any(key == concrete or key.startswith(f"{concrete}[") for key in errors)
            if refused_by_permission_stage(method, concrete, response):
                continue
            if response.status != 400 or not named:
                accepted.append(
                    f"{method.http_method} {method.path} {concrete}={bad!r}: "
                    f"{response.status} {response.reason} {errors}"
                )
    summary = f"{version}: {checked} bad values"
    assert not accepted, summary + "\n" + "\n".join(accepted[:15])
    assert checked > 300, summary
