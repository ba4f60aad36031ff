"""The TCP listeners (HTTPS and plain HTTP) stay good neighbours to hostile clients:
connections are capped per listener, a connection that never completes a request head (idle,
a slow trickle, a TLS handshake that stops) is closed, and the owner's unix socket keeps
answering throughout."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from mfx.server.listeners import ConnectionLimits
from tests.daemon_harness import ThreadDaemon, run_cli

LISTENERS = ["https", "http"]


def tcp_address(home: Path, scheme: str = "https") -> tuple[str, int]:
    name = "listen-address" if scheme == "https" else "listen-http-address"
    host, _, port = (home / name).read_text().strip().rpartition(":")
    return host, int(port)


def client_tls(home: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=home / "tls" / "ca.crt")


@contextmanager
def connect(home: Path, scheme: str) -> Iterator[socket.socket]:
    """A connection to one of the listeners; over TLS (handshake done) for https."""
    with socket.create_connection(tcp_address(home, scheme)) as sock:
        if scheme == "http":
            yield sock
            return
        with client_tls(home).wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            yield tls


def closed_by_server(sock: socket.socket) -> bool:
    """Block until the server closes ``sock`` (True) or sends something (False)."""
    sock.settimeout(60)  # an upper bound for a hung server, not a synchronisation
    try:
        return sock.recv(4096) == b""
    except (ConnectionResetError, ssl.SSLEOFError):
        return True


def healthz(sock: socket.socket) -> bool:
    """Ask for /healthz on an open connection; True when it is answered."""
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: mfx\r\n\r\n")
        sock.settimeout(60)
        return sock.recv(4096).startswith(b"HTTP/1.1 200")
    except OSError:  # reset, broken pipe, a TLS error, or a TLS socket never opened
        return False


@pytest.fixture
def capped(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    limits = ConnectionLimits(max_connections=20, request_head_timeout=600)
    with ThreadDaemon(home, listen="127.0.0.1:0", listen_http="127.0.0.1:0", connection_limits=limits).running():
        yield home


@pytest.mark.parametrize("scheme", LISTENERS)
def test_connections_over_the_cap_are_refused_and_the_unix_socket_still_answers(capped: Path, scheme: str) -> None:
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.create_connection(tcp_address(capped, scheme))) for _ in range(25)]
        if scheme == "https":
            # The gate counts a connection from accept, before its handshake: the first twenty
            # connected hold the places, whatever order their handshakes end in.
            socks = [stack.enter_context(open_tls(capped, sock)) for sock in socks]
        answered = [healthz(sock) for sock in socks]
        assert answered.count(True) == 20 and answered[:20] == [True] * 20, answered
        # Twenty connections held open on TCP; the owner's commands still get through.
        result = run_cli(capped, "get", "pm")
        assert result.exit_code == 0, result.output
        # Each listener has its own gate: the other one still answers.
        other = "http" if scheme == "https" else "https"
        with connect(capped, other) as sock:
            assert healthz(sock)
    # The held connections are closed: their places are free again.
    deadline = time.monotonic() + 60
    while True:
        try:
            with connect(capped, scheme) as sock:
                if healthz(sock):
                    break
        except (ssl.SSLError, ConnectionResetError):
            pass
        assert time.monotonic() < deadline, "the listener never freed its places"


def open_tls(home: Path, sock: socket.socket) -> socket.socket:
    """``sock`` over TLS; a connection refused at accept stays a plain socket the server closed."""
    try:
        return client_tls(home).wrap_socket(sock, server_hostname="127.0.0.1")
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return sock


@pytest.fixture
def quick(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    limits = ConnectionLimits(max_connections=256, request_head_timeout=0.4)
    with ThreadDaemon(home, listen="127.0.0.1:0", listen_http="127.0.0.1:0", connection_limits=limits).running():
        yield home


@pytest.mark.parametrize(("scheme", "tls", "opening"), [
    ("http", False, b""),  # connects and says nothing
    ("http", False, b"GET /api/v1 HTTP/1.1\r\nHost: mfx\r\nX-Slow: "),  # a request head that never ends
    ("https", False, b""),  # connects and never starts a TLS handshake
    ("https", False, b"\x16\x03\x01\x00\xc8\x01"),  # a TLS handshake that stops after a few bytes
    ("https", True, b""),  # a TLS handshake, then nothing
    ("https", True, b"GET /api/v1 HTTP/1.1\r\nHost: mfx\r\nX-Slow: "),  # a request head that never ends
], ids=["idle", "slow-head", "tls-idle", "stalled-tls", "tls-then-idle", "tls-slow-head"])
def test_a_connection_without_a_request_head_in_time_is_closed(quick: Path, scheme: str, tls: bool,
                                                                 opening: bytes) -> None:
    with socket.create_connection(tcp_address(quick, scheme)) as sock:
        conn = client_tls(quick).wrap_socket(sock, server_hostname="127.0.0.1") if tls else sock
        if opening:
            conn.sendall(opening)
        assert closed_by_server(conn)


def test_plain_http_on_the_https_listener_is_closed(quick: Path) -> None:
    with socket.create_connection(tcp_address(quick, "https")) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: mfx\r\n\r\n")
        sock.settimeout(60)
        try:
            answer = sock.recv(4096)
        except ConnectionResetError:
            answer = b""
        assert not answer.startswith(b"HTTP/")  # never served: at most a TLS alert, then closed


@pytest.mark.parametrize("scheme", LISTENERS)
def test_a_long_request_is_not_cut_by_the_head_timeout(quick: Path, scheme: str) -> None:
    """A watch lasts far longer than the head timeout: only missing request heads count."""
    token = (quick / "token").read_text().strip()
    host, port = tcp_address(quick, scheme)
    headers = {"Authorization": f"Bearer {token}"}
    verify = client_tls(quick) if scheme == "https" else True
    seen = 0
    with httpx.Client(base_url=f"{scheme}://{host}:{port}", headers=headers, timeout=60, verify=verify) as http:
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


def test_a_tls_client_silent_at_close_does_not_keep_its_place(tmp_path: Path) -> None:
    """The server closes an idle kept-alive connection; a TLS client that never answers the
    close (no close_notify) loses its place after tls_close_timeout, not asyncio's 30 s."""
    home = tmp_path / "home"
    limits = ConnectionLimits(max_connections=1, request_head_timeout=600, tls_close_timeout=0.2)
    with ThreadDaemon(home, listen="127.0.0.1:0", connection_limits=limits).running():
        with connect(home, "https") as silent:
            assert healthz(silent)  # then never reads nor closes while the server closes it
            started = time.monotonic()
            while True:
                with socket.create_connection(tcp_address(home)) as sock:
                    if healthz(open_tls(home, sock)):
                        break
                assert time.monotonic() - started < 20, "the silent client kept its place"
                time.sleep(0.2)
