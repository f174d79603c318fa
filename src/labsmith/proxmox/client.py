"""A typed adapter over proxmoxer: TLS verified, errors classified, tasks awaited, reads retried.

proxmoxer is untyped and its task helper returns None on a timeout; this module keeps
``Any`` at that boundary and gives callers plain data and exceptions from ``errors``.
Only reads (GET) are retried on transient failures: a write whose answer was lost may have
happened, so the caller looks again instead of repeating it.
"""

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from proxmoxer import ProxmoxAPI
from proxmoxer.core import AuthenticationError, ResourceException

from labsmith.proxmox.errors import (
    AuthenticationFailedError,
    NodeUnreachableError,
    ProxmoxApiError,
    ServerError,
    TaskAbandonedError,
    TaskFailedError,
    TaskTimeoutError,
    TlsFailureError,
    error_for_status,
)

KINDS = ("qemu", "lxc")
LOG_TAIL = 10


@dataclass(frozen=True)
class Endpoint:
    """One cluster's API. The secret is left out of ``repr`` so it never reaches a log."""

    url: str  # https://host:port
    token_id: str  # user@realm!name
    token_secret: str = field(repr=False)
    ca_file: Path | None = None
    verify_tls: bool = True
    # root@pam's password, for the few settings PVE refuses to every API token.
    root_password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter for reads; ``sleep`` is injectable for tests."""

    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 5.0
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int) -> float:
        ceiling = min(self.max_delay, self.base_delay * 2**attempt)
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret


@dataclass(frozen=True)
class TaskStatus:
    upid: str
    node: str
    task_type: str
    exitstatus: str


def _transient(error: ProxmoxApiError) -> bool:
    """5xx other than 501, and no answer at all: worth another try for a read."""
    return isinstance(error, NodeUnreachableError | ServerError)


class ProxmoxClient:
    def __init__(
        self,
        endpoint: Endpoint,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        as_root: bool = False,
    ) -> None:
        """``as_root``: log in as root@pam with the endpoint's root password (a ticket
        session) instead of using the token."""
        host, port = _host_and_port(endpoint.url)
        user, _, token_name = endpoint.token_id.partition("!")
        self.endpoint = endpoint
        # How messages name the API: scheme, host and port only.
        self.where = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
        self.retry = retry or RetryPolicy()
        self.as_root = as_root
        self._settings: dict[str, Any] = {
            "host": host,
            "port": port,
            "verify_ssl": str(endpoint.ca_file) if endpoint.ca_file else endpoint.verify_tls,
            "timeout": timeout,
        }
        if as_root:
            self._settings.update(user="root@pam", password=endpoint.root_password or "")
        else:
            self._settings.update(
                user=user, token_name=token_name, token_value=endpoint.token_secret
            )
        self._api: Any = None

    def _connection(self) -> Any:
        """The API handle, made on first use: for root@pam, proxmoxer logs in (fetches the
        ticket) in its constructor, so that call is a request like any other."""
        if self._api is None:
            self._api = ProxmoxAPI(**self._settings)
        return self._api

    # Transport ----------------------------------------------------------------------------

    def _once(self, verb: str, path: str, params: Mapping[str, Any]) -> Any:
        try:
            return getattr(self._connection()(path.lstrip("/")), verb.lower())(**params)
        except ResourceException as error:
            kind = error_for_status(int(error.status_code))
            errors = error.errors if isinstance(error.errors, dict) else None
            raise kind(str(error.content), method=verb, path=path, errors=errors) from None
        except AuthenticationError:
            raise AuthenticationFailedError(
                "root@pam could not log in", method="POST", path="access/ticket"
            ) from None
        except requests.exceptions.SSLError:
            raise TlsFailureError(
                f"TLS verification of {self.where} failed", method=verb, path=path
            ) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as error:
            raise NodeUnreachableError(
                f"no answer from {self.where} ({type(error).__name__})",
                method=verb,
                path=path,
            ) from None

    def get(self, path: str, **params: Any) -> Any:
        for attempt in range(self.retry.attempts):
            try:
                return self._once("GET", path, params)
            except ProxmoxApiError as error:
                if isinstance(error, TlsFailureError) or not _transient(error):
                    raise
                if attempt == self.retry.attempts - 1:
                    raise
                self.retry.sleep(self.retry.delay(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def write(self, verb: str, path: str, **params: Any) -> Any:
        """POST/PUT/DELETE exactly once: its effect may have landed even without an answer."""
        return self._once(verb, path, params)

    # Reads --------------------------------------------------------------------------------

    def version(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get("version")
        return result

    def nodes(self) -> list[dict[str, Any]]:
        return list(self.get("nodes"))

    def cluster_resources(self, kind: str | None = None) -> list[dict[str, Any]]:
        params = {"type": kind} if kind else {}
        return list(self.get("cluster/resources", **params))

    def next_vmid(self) -> int:
        return int(self.get("cluster/nextid"))

    def guests(self, node: str, kind: str) -> list[dict[str, Any]]:
        return list(self.get(_guests_path(node, kind)))

    def guest_config(
        self, node: str, kind: str, vmid: int, *, current: bool = False
    ) -> dict[str, Any]:
        params = {"current": 1} if current else {}
        return dict(self.get(f"{_guests_path(node, kind)}/{vmid}/config", **params))

    def guest_pending(self, node: str, kind: str, vmid: int) -> list[dict[str, Any]]:
        return list(self.get(f"{_guests_path(node, kind)}/{vmid}/pending"))

    def guest_status(self, node: str, kind: str, vmid: int) -> dict[str, Any]:
        return dict(self.get(f"{_guests_path(node, kind)}/{vmid}/status/current"))

    def pci_mappings(self) -> list[dict[str, Any]]:
        return list(self.get("cluster/mapping/pci"))

    def node_network(self, node: str) -> list[dict[str, Any]]:
        return list(self.get(f"nodes/{node}/network"))

    def storages(self, node: str) -> list[dict[str, Any]]:
        return list(self.get(f"nodes/{node}/storage"))

    # Writes -------------------------------------------------------------------------------

    def create_guest(self, node: str, kind: str, vmid: int, options: Mapping[str, Any]) -> str:
        return str(self.write("POST", _guests_path(node, kind), vmid=vmid, **options))

    def update_config(
        self,
        node: str,
        kind: str,
        vmid: int,
        options: Mapping[str, Any],
        *,
        delete: Sequence[str] = (),
        digest: str | None = None,
    ) -> str | None:
        """qemu: the async POST (a UPID to await); lxc has only the synchronous PUT."""
        params: dict[str, Any] = dict(options)
        if delete:
            params["delete"] = ",".join(delete)
        if digest:
            params["digest"] = digest
        path = f"{_guests_path(node, kind)}/{vmid}/config"
        if kind == "qemu":
            return str(self.write("POST", path, **params))
        self.write("PUT", path, **params)
        return None

    def power(self, node: str, kind: str, vmid: int, action: str) -> str:
        if action not in ("start", "stop", "shutdown", "reboot"):
            raise ValueError(f"unknown power action {action!r}")
        return str(self.write("POST", f"{_guests_path(node, kind)}/{vmid}/status/{action}"))

    def destroy_guest(self, node: str, kind: str, vmid: int) -> str:
        """Remove the guest and its disks; PVE refuses while it runs."""
        return str(self.write("DELETE", f"{_guests_path(node, kind)}/{vmid}"))

    def create_pci_mapping(
        self, mapping_id: str, entries: Sequence[str], description: str = ""
    ) -> None:
        params: dict[str, Any] = {"id": mapping_id, "map": list(entries)}
        if description:
            params["description"] = description
        self.write("POST", "cluster/mapping/pci", **params)

    def update_pci_mapping(
        self, mapping_id: str, entries: Sequence[str], description: str = ""
    ) -> None:
        params: dict[str, Any] = {"map": list(entries)}
        if description:
            params["description"] = description
        self.write("PUT", f"cluster/mapping/pci/{mapping_id}", **params)

    # Tasks --------------------------------------------------------------------------------

    def task_status(self, upid: str) -> dict[str, Any]:
        return dict(self.get(f"nodes/{_task_node(upid)}/tasks/{upid}/status"))

    def running_tasks(self, node: str, vmid: int) -> list[str]:
        """UPIDs of the node's tasks for this guest that have not ended yet."""
        rows = self.get(f"nodes/{node}/tasks", vmid=vmid, source="active")
        return [str(row["upid"]) for row in rows if row.get("upid")]

    def wait_task(
        self,
        upid: str,
        *,
        timeout: float = 600.0,
        poll_interval: float = 0.5,
        abandon: Callable[[], bool] | None = None,
    ) -> TaskStatus:
        """Poll until the task stops. TaskFailedError unless it ended OK; TaskTimeoutError if
        it does not end in time (proxmoxer's own helper returns None then);
        TaskAbandonedError as soon as ``abandon()`` is true while it still runs."""
        node = _task_node(upid)
        deadline = time.monotonic() + timeout
        while True:
            status = self.task_status(upid)
            if status.get("status") == "stopped":
                exitstatus = str(status.get("exitstatus", ""))
                if exitstatus != "OK":
                    raise TaskFailedError(upid, exitstatus, self._log_tail(node, upid))
                return TaskStatus(upid, node, str(status.get("type", "")), exitstatus)
            if abandon is not None and abandon():
                raise TaskAbandonedError(upid)
            if time.monotonic() >= deadline:
                raise TaskTimeoutError(upid, timeout)
            time.sleep(min(poll_interval, max(0.0, deadline - time.monotonic())))

    def _log_tail(self, node: str, upid: str) -> list[str]:
        try:
            lines = self.get(f"nodes/{node}/tasks/{upid}/log", start=0, limit=500)
        except ProxmoxApiError:
            return []
        return [str(line.get("t", "")) for line in lines][-LOG_TAIL:]


def _host_and_port(url: str) -> tuple[str, int]:
    """The API's host and port; the url itself is never repeated in the error, since
    whatever was written there may hold a credential."""
    problem = ProxmoxApiError(
        "the API url (--pve-url or labsmith_pve_api.url) must be https://host[:port]"
    )
    parts = urlsplit(url)
    try:
        port = parts.port or 8006
    except ValueError:
        raise problem from None
    if parts.scheme != "https" or not parts.hostname or parts.username is not None:
        raise problem
    return parts.hostname, port


def _task_node(upid: str) -> str:
    """The node a task runs on, from its UPID (``UPID:<node>:...``)."""
    node = upid.split(":")[1] if upid.startswith("UPID:") and upid.count(":") > 1 else ""
    if not node:
        raise ProxmoxApiError(f"{upid!r} is not a task id (UPID)")
    return node


def _guests_path(node: str, kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"guest kind must be qemu or lxc, not {kind!r}")
    return f"nodes/{node}/{kind}"
