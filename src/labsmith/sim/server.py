"""HTTPS transport for the simulator: pveproxy's port, envelope and reason phrases on loopback."""

import contextlib
import http.server
import socket
import ssl
import threading
import time
from dataclasses import dataclass

from labsmith.sim.api import Request, Simulator
from labsmith.sim.tls import ServerCertificate

MAX_BODY = 16 * 1024 * 1024


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; with Nagle on, each answer on a kept-alive
    # connection would wait ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True
    server_version = "pve-api-daemon/3.0"
    sys_version = ""
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
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.send_error(413, "request too large")
            return
        body = self.rfile.read(length) if length else b""
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

    def _drop(self) -> None:
        """Close the connection without an answer, as a crashed proxy or a lost link does."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: object) -> None:
        """Requests are not logged: URLs can carry ticket cookies' neighbours and secrets."""


class SimulatorHttpServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], simulator: Simulator, certificate: ServerCertificate
    ) -> None:
        super().__init__(address, _Handler)
        self.simulator = simulator
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(certificate.cert_path, certificate.key_path)
        self.socket = context.wrap_socket(self.socket, server_side=True)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that drops its connection mid-handshake is not the server's error."""


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
