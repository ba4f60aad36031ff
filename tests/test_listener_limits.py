"""The TCP listener stays a good neighbour to hostile clients: connections are capped per
listener, a connection that never completes a request head (idle, a slow trickle, a TLS
handshake that stops) is closed, and the owner's unix socket keeps answering throughout."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from mfx.server.listeners import ConnectionLimits
from tests.daemon_harness import ThreadDaemon, run_cli


def tcp_address(home: Path) -> tuple[str, int]:
    host, _, port = (home / "listen-address").read_text().strip().rpartition(":")
    return host, int(port)


def closed_by_server(sock: socket.socket) -> bool:
    """Block until the server closes ``sock`` (True) or sends something (False)."""
    sock.settimeout(60)  # an upper bound for a hung server, not a synchronisation
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True


def healthz(sock: socket.socket) -> bool:
    """Ask for /healthz on an open connection; True when it is answered."""
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: mfx\r\n\r\n")
        sock.settimeout(60)
        return sock.recv(4096).startswith(b"HTTP/1.1 200")
    except (ConnectionResetError, BrokenPipeError):
        return False


@pytest.fixture
def capped(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    limits = ConnectionLimits(max_connections=20, request_head_timeout=600)
    with ThreadDaemon(home, listen="127.0.0.1:0", connection_limits=limits).running():
        yield home


def test_connections_over_the_cap_are_refused_and_the_unix_socket_still_answers(capped: Path) -> None:
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.create_connection(tcp_address(capped))) for _ in range(25)]
        answered = [healthz(sock) for sock in socks]
        assert answered.count(True) == 20 and answered[:20] == [True] * 20, answered
        # Twenty connections held open on TCP; the owner's commands still get through.
        result = run_cli(capped, "get", "pm")
        assert result.exit_code == 0, result.output
    # The held connections are closed: their places are free again.
    deadline = time.monotonic() + 60
    while True:
        with socket.create_connection(tcp_address(capped)) as sock:
            if healthz(sock):
                break
        assert time.monotonic() < deadline, "the listener never freed its places"


@pytest.fixture
def quick(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    limits = ConnectionLimits(max_connections=256, request_head_timeout=0.4)
    with ThreadDaemon(home, listen="127.0.0.1:0", connection_limits=limits).running():
        yield home


@pytest.mark.parametrize("opening", [
    b"",  # connects and says nothing
    b"GET /api/v1 HTTP/1.1\r\nHost: mfx\r\nX-Slow: ",  # a request head that never ends
    b"\x16\x03\x01\x00\xc8\x01",  # a TLS handshake that stops after a few bytes
], ids=["idle", "slow-head", "stalled-tls"])
def test_a_connection_without_a_request_head_in_time_is_closed(quick: Path, opening: bytes) -> None:
    with socket.create_connection(tcp_address(quick)) as sock:
        if opening:
            sock.sendall(opening)
        assert closed_by_server(sock)


def test_a_long_request_is_not_cut_by_the_head_timeout(quick: Path) -> None:
    """A watch lasts far longer than the head timeout: only missing request heads count."""
    token = (quick / "token").read_text().strip()
    host, port = tcp_address(quick)
    headers = {"Authorization": f"Bearer {token}"}
    seen = 0
    with httpx.Client(base_url=f"http://{host}:{port}", headers=headers, timeout=60) as http:
        with http.stream("GET", "/apis/mfx.musicfox.io/v1alpha1/audiosinks?watch=true") as stream:
            started = time.monotonic()
            lines = (line for line in stream.iter_lines() if line.strip())
            # Keep the watch going for several head timeouts: each sink created is one event on it.
            while time.monotonic() - started < 4 * 0.4:
                result = run_cli(quick, "apply", "-f", "-", input=(
                    "apiVersion: mfx.musicfox.io/v1alpha1\nkind: AudioSink\n"
                    f"metadata: {{name: s{seen}}}\nspec: {{device: 'null', default: false}}\n"))
                assert result.exit_code == 0, result.output
                assert f'"s{seen}"' in next(lines)  # the stream is still open and delivering
                seen += 1
        # The same client's next request reuses or reopens a connection and is answered.
        assert http.get("/api/v1/namespaces").status_code in (200, 404)
