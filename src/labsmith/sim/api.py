"""One request in, one answer out: routing, auth, validation, permissions, then the handler.

Independent of the transport, so the HTTPS server, tests and benchmarks share it. The order
of checks is PVE's: route (501), authenticate (401), validate parameters (400), check the
schema's permissions (403), then run the method (200, or 500 with PVE's message).
"""

import dataclasses
import hashlib
import json
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labsmith.sim.acl_store import PVE8_ROLES, ROLES, AclStore
from labsmith.sim.auth import Authenticator
from labsmith.sim.faults import Fault, FaultInjector, FaultPlan
from labsmith.sim.handlers import register_all
from labsmith.sim.handlers.base import HANDLERS, ApiError, Call, Reply
from labsmith.sim.params import ParameterError, validate_parameters
from labsmith.sim.privileges import AccessControl, PermissionDenied, Principal
from labsmith.sim.schema import ApiSchema, NoRouteError, Route
from labsmith.sim.state import ClusterState, save_state
from labsmith.sim.tasks import TaskRunner

register_all()

API_PREFIX = "/api2/json"
# The caller of the login call and other ``world`` methods.
ANONYMOUS = Principal(userid="", token=None, privsep=False)


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # with the /api2/json prefix and query string, as sent
    headers: Mapping[str, str]
    body: bytes = b""


@dataclass
class Response:
    status: int
    reason: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    drop_before: bool = False
    drop_after: bool = False
    delay: float = 0.0


@dataclass
class Durations:
    """Seconds each task type runs; ``default`` for types not listed."""

    default: float = 0.5
    by_type: dict[str, float] = field(default_factory=dict)

    def of(self, task_type: str) -> float:
        return self.by_type.get(task_type, self.default)


class Simulator:
    def __init__(
        self,
        schema: ApiSchema,
        state: ClusterState,
        *,
        durations: Durations | None = None,
        faults: FaultPlan | None = None,
        state_file: Path | None = None,
        secret: bytes | None = None,
        auth_failure_delay: float = 3.0,
    ) -> None:
        self.schema = schema
        self.state = state
        self.durations = durations or Durations()
        self.faults = FaultInjector(faults or FaultPlan())
        self.tasks = TaskRunner()
        self.state_file = state_file
        self.auth_failure_delay = auth_failure_delay
        self.auth = Authenticator(state, secret=secret)
        self.access = AccessControl(AclStore(roles=self._roles()))
        self.reload_acl()
        self.lock = threading.RLock()

    def reload_acl(self) -> None:
        """Rebuild the privilege model from the ACL rules the state holds."""
        store = AclStore(roles=self._roles())
        for rule in self.state.acl:
            store.set_acl(
                rule.path, rule.role, user=rule.user, token=rule.token, propagate=rule.propagate
            )
        self.access = AccessControl(store)

    def _roles(self) -> Mapping[str, frozenset[str]]:
        """PVE 8 still has VM.Monitor among the built-in roles' privileges."""
        return PVE8_ROLES if self.schema.version.startswith("8.") else ROLES

    def handle(self, request: Request) -> Response:
        fate = self.faults.next_request()
        if fate.fault is Fault.DROP_BEFORE:
            return Response(0, "", b"", drop_before=True, delay=fate.delay)
        if fate.fault is Fault.ERROR:
            response = _error_response(ApiError(503, "Service Unavailable (simulated fault)"))
            response.delay = fate.delay
            return response
        try:
            response = self._answer(request)
        except ApiError as error:
            response = _error_response(error)
            if error.status == 401 and error.bare:
                # pveproxy answers failed authentication 3 s late, against password guessing.
                response.delay += self.auth_failure_delay
        response.delay += fate.delay
        response.drop_after = fate.fault is Fault.DROP_AFTER
        return response

    def _answer(self, request: Request) -> Response:
        url = urllib.parse.urlsplit(request.path)
        if not url.path.startswith(API_PREFIX + "/"):
            raise ApiError(501, f"Unknown API path '{url.path}' (use {API_PREFIX}/...)")
        # Path variables arrive percent-encoded ("root%40pam"); pveproxy decodes them.
        path = urllib.parse.unquote(url.path[len(API_PREFIX) :]).rstrip("/") or "/"
        try:
            route: Route | None = self.schema.route(path, request.method)
        except NoRouteError as error:
            route, no_route = None, error
        params = _request_params(url.query, request)
        with self.lock:
            self._lose_nodes()
            self.tasks.advance()
            # pveproxy authenticates before it looks the path up: 401 beats 501.
            world = route is not None and route.method.permissions.get("user") == "world"
            principal = (
                ANONYMOUS if world else self.auth.authenticate(request.method, request.headers)
            )
            if route is None:
                raise ApiError(501, str(no_route))
            method = route.method
            try:
                # Permissions are checked by the proxy, parameters inside the handler.
                self.access.require_method(principal, method, route.path_params, params)
                try:
                    values = validate_parameters(method, params, route.path_params)
                except ParameterError as error:
                    raise ApiError(400, "Parameter verification failed.", error.errors) from error
                handler = HANDLERS.get((method.path, method.http_method))
                if handler is None:
                    raise ApiError(
                        501,
                        f"Method '{request.method} {path}' is in the Proxmox VE "
                        f"{self.schema.version} API but not implemented by labsmith sim",
                    )
                result = handler(Call(self, method, values, route.path_params, principal))
            except PermissionDenied as denied:
                raise ApiError(denied.status, denied.message) from denied
            if request.method != "GET":
                self.state.generation += 1
                if self.state_file is not None:
                    save_state(self.state, self.state_file)
        return _data_response(result)

    def start_task(
        self,
        call: Call,
        task_type: str,
        task_id: str,
        effect: Callable[[], list[str]],
        *,
        cleanup: Callable[[], None] | None = None,
    ) -> str:
        """Start a worker on the call's node; returns its UPID, the async methods' answer."""
        node = call.path_params.get("node") or next(iter(self.state.nodes))
        task = self.tasks.start(
            node=node,
            task_type=task_type,
            task_id=task_id,
            user=call.principal.authid,
            duration=self.durations.of(task_type),
            effect=effect,
            cleanup=cleanup,
            failure=self.faults.task_failure(task_type),
        )
        return task.upid

    def mapping_digest(self) -> str:
        """Digest of ``/etc/pve/mapping/pci.cfg`` as the mappings stand."""
        text = json.dumps(
            [
                dataclasses.asdict(m)
                for m in sorted(self.state.mappings.values(), key=lambda m: m.id)
            ]
        )
        return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()

    def _lose_nodes(self) -> None:
        for name in self.faults.nodes_lost_now():
            node = self.state.nodes.get(name)
            if node is not None and node.online:
                node.online = False
                self.tasks.freeze_node(name)


def _request_params(query: str, request: Request) -> dict[str, str | list[str]]:
    """Query string and body together, repeated keys as lists (PVE merges both)."""
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if request.body and content_type == "application/json":
        try:
            document = json.loads(request.body)
        except RecursionError as error:
            raise ApiError(400, "invalid JSON body: nested too deeply") from error
        except ValueError as error:
            raise ApiError(400, f"invalid JSON body: {error}") from error
        if not isinstance(document, dict):
            raise ApiError(400, "invalid JSON body: expected an object")
        pairs.extend(_json_pairs(document))
    elif request.body:
        try:
            text = request.body.decode()
        except UnicodeDecodeError as error:
            raise ApiError(
                400, f"invalid UTF-8 in the request body at byte {error.start}"
            ) from error
        pairs.extend(urllib.parse.parse_qsl(text, keep_blank_values=True))
    params: dict[str, str | list[str]] = {}
    for key, value in pairs:
        previous = params.get(key)
        if previous is None:
            params[key] = value
        elif isinstance(previous, list):
            previous.append(value)
        else:
            params[key] = [previous, value]
    return params


def _json_pairs(document: dict[str, Any]) -> list[tuple[str, str]]:
    pairs = []
    for key, value in document.items():
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, bool):
                pairs.append((key, "1" if item else "0"))
            else:
                pairs.append((key, str(item)))
    return pairs


def _data_response(result: Any) -> Response:
    if isinstance(result, Reply):
        document = {"data": result.data, **result.extra}
    else:
        document = {"data": result}
    return Response(200, "OK", json.dumps(document).encode(), _json_headers())


def _error_response(error: ApiError) -> Response:
    """PVE's error answer: the message's first line as the reason phrase, and in the body
    (pve-http-server's Formatter/Standard.pm) ``message`` with its newline and ``errors``."""
    reason = error.message.strip().split("\n")[0]
    if error.bare:
        return Response(error.status, reason, b"")
    document: dict[str, Any] = {"data": None, "message": error.message.rstrip("\n") + "\n"}
    if error.errors:
        document["errors"] = error.errors
    return Response(error.status, reason, json.dumps(document).encode(), _json_headers())


def _json_headers() -> dict[str, str]:
    return {"Content-Type": "application/json;charset=UTF-8", "Cache-Control": "max-age=0"}
