"""HTTPS transport for the simulator: pveproxy's port, envelope and reason phrases on loopback."""

import contextlib
import http.server
import json
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from labsmith.sim.api import Request, Simulator
from labsmith.sim.tls import ServerCertificate

# pve-http-server AnyEvent.pm $limit_max_post (512 KiB since libpve-http-server-perl 5.2.1):
# a longer body is refused with 501 "for data too large" before it is read.
MAX_BODY = 512 * 1024
# A client that opens a connection and stays silent holds only its own thread, and only this
# long: the TLS handshake, then each request line and header block, must arrive in time.
HANDSHAKE_SECONDS = 10.0
IDLE_SECONDS = 60.0

_Connection = socket.socket | tuple[bytes, socket.socket]


class _BadRequestError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; with Nagle on, each answer on a kept-alive
    # connection would wait ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True
    server_version = "pve-api-daemon/3.0"
    sys_version = ""
    timeout = IDLE_SECONDS
    server: "SimulatorHttpServer"

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        try:
            length = self._content_length()
        except _BadRequestError as refused:
            # The body was not read, so what follows on the connection is not a request.
            self.send_error(refused.status, refused.message)
            return
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            self.close_connection = True
            return
        request = Request(
            method=self.command,
            path=self.path,
            headers=dict(self.headers.items()),
            body=body,
        )
        response = self.server.simulator.handle(request)
        if response.delay:
            time.sleep(response.delay)
        if response.drop_before or response.drop_after:
            self._drop()
            return
        self.send_response(response.status, response.reason)
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def _content_length(self) -> int:
        if self.headers.get("Transfer-Encoding"):
            raise _BadRequestError(
                400, "chunked request bodies are not supported; send Content-Length"
            )
        values = {value.strip() for value in self.headers.get_all("Content-Length") or []}
        if not values:
            return 0
        if len(values) > 1:
            raise _BadRequestError(400, "conflicting Content-Length headers")
        (text,) = values
        if not text.isascii() or not text.isdigit():
            raise _BadRequestError(400, f"invalid Content-Length '{text}'")
        length = int(text)
        if length > MAX_BODY:
            raise _BadRequestError(501, "for data too large")
        return length

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """PVE's error envelope (not http.server's HTML page), then close the connection."""
        reason = (message or self.responses.get(code, ("error",))[0]).split("\n")[0]
        body = json.dumps({"data": None, "message": reason + "\n"}).encode()
        self.close_connection = True
        self.send_response(code, reason)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _drop(self) -> None:
        """Close the connection without an answer, as a crashed proxy or a lost link does."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: object) -> None:
        """Requests are not logged: URLs can carry ticket cookies' neighbours and secrets."""


class SimulatorHttpServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    handshake_seconds = HANDSHAKE_SECONDS

    def __init__(
        self, address: tuple[str, int], simulator: Simulator, certificate: ServerCertificate
    ) -> None:
        super().__init__(address, _Handler)
        self.simulator = simulator
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.minimum_version = ssl.TLSVersion.TLSv1_2
        self.tls.load_cert_chain(certificate.cert_path, certificate.key_path)

    def finish_request(self, request: _Connection, client_address: Any) -> None:
        """Handshake in the connection's own thread: the accepting thread never waits on a
        client, so a silent one blocks neither other clients nor ``shutdown()``."""
        assert isinstance(request, socket.socket)  # a stream server's connection
        request.settimeout(self.handshake_seconds)
        try:
            connection = self.tls.wrap_socket(request, server_side=True)
        except OSError:
            request.close()
            return
        try:
            _Handler(connection, client_address, self)
        finally:
            connection.close()

    def handle_error(self, request: _Connection, client_address: Any) -> None:
        """A client that drops its connection is not the server's error; a bug still shows."""
        if not isinstance(sys.exception(), OSError):
            super().handle_error(request, client_address)


@dataclass
class RunningServer:
    server: SimulatorHttpServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"https://{host!s}:{port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_server(
    simulator: Simulator, certificate: ServerCertificate, host: str = "127.0.0.1", port: int = 0
) -> RunningServer:
    """Serve in a background thread; port 0 picks a free one (see ``RunningServer.url``)."""
    server = SimulatorHttpServer((host, port), simulator, certificate)
    thread = threading.Thread(target=server.serve_forever, name="labsmith-sim", daemon=True)
    thread.start()
    return RunningServer(server, thread)
