"""API failures classified by HTTP status code (never by message text), each with the fix."""

from labsmith.errors import LabsmithError


class ProxmoxApiError(LabsmithError):
    """A call the API refused or could not answer."""

    status = 0
    hint = ""

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        path: str = "",
        errors: dict[str, str] | None = None,
    ) -> None:
        self.message = message
        self.method = method
        self.path = path
        self.errors = dict(errors or {})
        where = f"{method} {path}: " if method else ""
        detail = "".join(f"\n  {key}: {text.strip()}" for key, text in sorted(self.errors.items()))
        hint = f" ({self.hint})" if self.hint else ""
        super().__init__(f"{where}{message}{hint}{detail}")


class ParameterRejectedError(ProxmoxApiError):
    status = 400


class AuthenticationFailedError(ProxmoxApiError):
    status = 401
    exit_code = 3
    hint = "check the API token id and its secret"


class PermissionDeniedError(ProxmoxApiError):
    status = 403
    hint = "grant the named privilege on the named path to the token and its user"


class ServerError(ProxmoxApiError):
    status = 500


class NotImplementedByServerError(ProxmoxApiError):
    status = 501


class NodeUnreachableError(ProxmoxApiError):
    """No answer: connection refused or dropped, a timeout, or pveproxy's 595."""

    status = 595
    exit_code = 3


class TlsFailureError(NodeUnreachableError):
    hint = (
        "the server's certificate is not trusted: pass the node's /etc/pve/pve-root-ca.pem "
        "with --pve-ca or labsmith_pve_api.ca_file"
    )


class TaskFailedError(ProxmoxApiError):
    """A worker task ended with an exit status other than OK."""

    def __init__(self, upid: str, exitstatus: str, log_tail: list[str]) -> None:
        self.upid = upid
        self.exitstatus = exitstatus
        self.log_tail = log_tail
        super().__init__(f"task {upid} failed: {exitstatus}")


class TaskTimeoutError(ProxmoxApiError):
    """The task was still running when labsmith stopped waiting: it may yet do its work, so
    the write that started it must be awaited again, never sent again."""

    def __init__(self, upid: str, seconds: float) -> None:
        self.upid = upid
        super().__init__(f"task {upid} still running after {seconds:g} s")


class TaskAbandonedError(TaskTimeoutError):
    """The wait was given up (the run was interrupted) while the task still ran."""

    def __init__(self, upid: str) -> None:
        self.upid = upid
        ProxmoxApiError.__init__(self, f"task {upid} still running (no longer awaited)")


BY_STATUS: dict[int, type[ProxmoxApiError]] = {
    400: ParameterRejectedError,
    401: AuthenticationFailedError,
    403: PermissionDeniedError,
    501: NotImplementedByServerError,
    595: NodeUnreachableError,
}


def error_for_status(status: int) -> type[ProxmoxApiError]:
    return BY_STATUS.get(status, ServerError if status >= 500 else ProxmoxApiError)
