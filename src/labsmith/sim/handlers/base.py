"""What every endpoint handler receives and may raise; the registry of implemented methods."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labsmith.sim.privileges import Principal
from labsmith.sim.schema import Method
from labsmith.sim.state import ClusterState, Guest, Node

if TYPE_CHECKING:
    from labsmith.sim.api import Simulator


class ApiError(Exception):
    """An answer other than 200: PVE puts ``message`` in the HTTP reason phrase."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: Mapping[str, str] | None = None,
        *,
        bare: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = dict(errors) if errors else None
        # Answered by pveproxy itself (authentication, proxying): no JSON body.
        self.bare = bare


def fail(message: str) -> ApiError:
    """A plain ``die`` in PVE's API code: HTTP 500 with the message."""
    return ApiError(500, message)


@dataclass
class Reply:
    """A result with keys beside ``data`` in the envelope (the task log's ``total``)."""

    data: Any
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Call:
    sim: "Simulator"
    method: Method
    params: dict[str, Any]
    path_params: dict[str, str]
    principal: Principal

    @property
    def state(self) -> ClusterState:
        return self.sim.state

    def node(self) -> Node:
        """The ``{node}`` of the path; an unknown or lost one answers as pveproxy does."""
        name = self.path_params["node"]
        node = self.state.nodes.get(name)
        if node is None:
            raise fail(
                f"hostname lookup '{name}' failed - failed to get address info for: "
                f"{name}: Name or service not known"
            )
        if not node.online:
            # pveproxy proxies the call to the node and relays the connection error.
            raise ApiError(595, "No route to host", bare=True)
        return node

    def guest(self, kind: str) -> Guest:
        """The ``{vmid}`` of the path, which must live on ``{node}`` with this type."""
        node = self.node()
        vmid = int(self.path_params["vmid"])
        guest = self.state.guests.get(vmid)
        if guest is None or guest.kind != kind or guest.node != node.name:
            directory = "qemu-server" if kind == "qemu" else "lxc"
            raise fail(
                f"Configuration file 'nodes/{node.name}/{directory}/{vmid}.conf' does not exist"
            )
        return guest

    def require(self, path: str, *privileges: str, any_of: bool = False) -> None:
        """A permission check PVE makes in code rather than in the schema."""
        self.sim.access.require(self.principal, path, privileges, any_of=any_of)


Handler = Callable[[Call], Any]
HANDLERS: dict[tuple[str, str], Handler] = {}


def handles(path: str, http_method: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        HANDLERS[(path, http_method)] = handler
        return handler

    return register
