"""The CLI's HTTP/1.1 over the unix socket reads every framing a server may answer with, and
says "unreachable" (never hangs or returns half an answer) when the answer is cut short."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mfx.cli.client import Client, Endpoint
from mfx.cli.unix_http import ProtocolFailure, UnixHttp
from mfx.errors import DaemonUnavailableError, NotFoundError


def serve_once(path: Path, answer: bytes) -> Iterator[list[bytes]]:
    """A server on ``path`` that reads one request, sends ``answer`` and closes; yields the requests."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    requests: list[bytes] = []

    def run() -> None:
        connection, _ = server.accept()
        with connection:
            data = b""
            while b"\r\n\r\n" not in data:
                data += connection.recv(65536)
            requests.append(data)
            connection.sendall(answer)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield requests
    thread.join(timeout=10)
    server.close()


@pytest.fixture
def sock(tmp_path: Path) -> Path:
    return tmp_path / "mfx.sock"


def http(sock: Path) -> UnixHttp:
    return UnixHttp(str(sock), headers={"User-Agent": "test"}, timeout=10)


def test_a_body_of_known_length(sock: Path) -> None:
    for requests in serve_once(sock, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
                                     b'{"a": "b"}\n'):
        reply = http(sock).send("GET", "/x?y=1", {"Accept": "application/json"})
        assert (reply.status, reply.content_type, reply.content) == (200, "application/json", b'{"a": "b"}\n')
        head = requests[0].decode()
        assert head.startswith("GET /x?y=1 HTTP/1.1\r\n")
        assert "Host: mfx\r\n" in head and "Connection: close\r\n" in head and "Accept: application/json\r\n" in head


def test_a_chunked_body(sock: Path) -> None:
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{\"a\"\r\n6\r\n: 1}\n{\r\n0\r\n\r\n"
    for _ in serve_once(sock, answer):
        assert http(sock).send("GET", "/", {}).content == b'{"a": 1}\n{'


def test_a_body_up_to_the_end_of_the_connection(sock: Path) -> None:
    for _ in serve_once(sock, b"HTTP/1.1 200 OK\r\n\r\nall of it"):
        assert http(sock).send("GET", "/", {}).content == b"all of it"


def test_a_stream_yields_its_lines_as_they_come(sock: Path) -> None:
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\none\ntw\r\n3\r\no\nt\r\n0\r\n\r\n"
    for _ in serve_once(sock, answer):
        reply, lines = http(sock).stream("/watch", {})
        assert reply.status == 200 and list(lines) == [b"one", b"two", b"t"]


@pytest.mark.parametrize("answer", [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
                                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\none\ntw\r\n0\r\n\r\n",
                                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"])
def test_an_answer_cut_short_or_misframed_is_a_protocol_failure(sock: Path, answer: bytes) -> None:
    for _ in serve_once(sock, answer):
        with pytest.raises(ProtocolFailure):
            http(sock).send("GET", "/", {})


def test_the_client_maps_statuses_and_failures_to_mfx_errors(sock: Path) -> None:
    client = Client(Endpoint(socket=sock))
    with pytest.raises(DaemonUnavailableError, match="start it with 'mfx serve'"):
        client.request("GET", "/")
    body = b'{"kind": "Status", "message": "pm \\"x\\" not found", "reason": "NotFound", "code": 404}'
    answer = b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body), body)
    for _ in serve_once(sock, answer):
        with pytest.raises(NotFoundError, match='pm "x" not found'):
            client.request("GET", "/")
    sock.unlink()
    for _ in serve_once(sock, b"not http at all\r\n\r\n"):
        with pytest.raises(DaemonUnavailableError):
            client.request("GET", "/")
