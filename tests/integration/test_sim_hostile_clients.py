"""Clients that misbehave on the wire: silent connections and malformed requests."""

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.simsupport.running import ROOT_SECRET, ROOT_TOKEN, LiveSim, live_sim

pytestmark = pytest.mark.integration

AUTHORIZATION = f"PVEAPIToken={ROOT_TOKEN}={ROOT_SECRET}"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[LiveSim]:
    with live_sim(tmp_path) as running:
        yield running


def _silent_client(port: int) -> socket.socket:
    """A TCP connection that never starts its TLS handshake."""
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def test_a_silent_client_does_not_block_the_others(sim: LiveSim) -> None:
    with _silent_client(sim.port), _silent_client(sim.port):
        assert sim.client().version.get()["version"] == "9.1.3"


def test_a_silent_client_is_cut_off_after_the_handshake_timeout(sim: LiveSim) -> None:
    sim.server.server.handshake_seconds = 0.2
    with _silent_client(sim.port) as silent:
        started = time.monotonic()
        assert silent.recv(1) == b""
        assert time.monotonic() - started < 3


def test_sim_serve_stops_on_sigterm_despite_a_silent_client(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "labsmith", "sim", "serve", "--port", "0",
        "--cert-dir", str(tmp_path / "tls"),
    ]  # fmt: skip
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ)
    ) as process:
        assert process.stdout is not None
        port = int(json.loads(process.stdout.readline())["url"].rsplit(":", 1)[1])
        with _silent_client(port):
            time.sleep(0.2)  # the server has accepted it
            process.send_signal(signal.SIGTERM)
            try:
                assert process.wait(timeout=5) == 0
            finally:
                process.kill()


def _exchange(sim: LiveSim, head: str, body: bytes = b"") -> tuple[int | None, bytes]:
    """Send one raw request over TLS; the status (None: no answer) and the body."""
    context = ssl.create_default_context(cafile=str(sim.ca))
    with (
        socket.create_connection(("127.0.0.1", sim.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    if not answer:
        return None, b""
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def _post(extra_headers: str, content_type: str = "application/x-www-form-urlencoded") -> str:
    return (
        "POST /api2/json/nodes/pve1/qemu HTTP/1.1\nHost: 127.0.0.1\n"
        f"Authorization: {AUTHORIZATION}\nConnection: close\nContent-Type: {content_type}\n"
        f"{extra_headers}"
    )


DEEP_JSON = b'{"vmid": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


@pytest.mark.parametrize(
    ("head", "body", "status", "message"),
    [
        pytest.param(
            _post("Content-Length: 0\n"),
            b"",
            400,
            "Parameter verification failed.",
            id="well-formed, missing vmid",
        ),
        pytest.param(
            "GET /api2/json/version HTTP/1.1\nHost: 127.0.0.1\n"
            f"Authorization: {AUTHORIZATION}\nConnection: close\n",
            b"",
            200,
            None,
            id="well-formed GET",
        ),
        pytest.param(
            _post("Content-Length: 15\n"),
            b"vmid=110&name=\xff",
            400,
            "invalid UTF-8 in the request body",
            id="form body not UTF-8",
        ),
        pytest.param(
            _post("Content-Length: 13\n", "application/json"),
            b'{"vmid": "\xff"}',
            400,
            "invalid JSON body",
            id="JSON body not UTF-8",
        ),
        pytest.param(
            _post(f"Content-Length: {len(DEEP_JSON)}\n", "application/json"),
            DEEP_JSON,
            400,
            "nested too deeply",
            id="JSON nested past the parser's depth",
        ),
        pytest.param(
            _post("Content-Length: ten\n"),
            b"vmid=110",
            400,
            "invalid Content-Length",
            id="Content-Length words",
        ),
        pytest.param(
            _post("Content-Length: -1\n"),
            b"vmid=110",
            400,
            "invalid Content-Length",
            id="negative Content-Length",
        ),
        pytest.param(
            _post("Content-Length: 8\nContent-Length: 3\n"),
            b"vmid=110",
            400,
            "conflicting Content-Length",
            id="conflicting Content-Length",
        ),
        pytest.param(
            _post("Transfer-Encoding: chunked\n"),
            b"8\r\nvmid=110\r\n0\r\n\r\n",
            400,
            "send Content-Length",
            id="chunked body without Content-Length",
        ),
        pytest.param(
            _post(f"Content-Length: {10**20}\n"),
            b"vmid=110",
            501,
            "for data too large",
            id="huge Content-Length",
        ),
    ],
)
def test_malformed_requests_get_pves_error_answer(
    sim: LiveSim, head: str, body: bytes, status: int, message: str | None
) -> None:
    answered, document = _exchange(sim, head, body)
    assert answered == status
    if message is not None:
        text = json.loads(document)["message"]
        assert message in text and text.endswith("\n")
