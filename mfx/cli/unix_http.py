"""HTTP/1.1 to the daemon's unix socket on the standard library alone.

Every ``mfx`` call that talks to the local daemon goes through here, so it must start fast: no
httpx, no TLS stack, no email parser (``http.client``). One connection per request, closed by
the daemon after its answer (``Connection: close``): on a unix socket a connection costs less
than the bookkeeping keep-alive would need.
"""

from __future__ import annotations

# The C module, not ``socket``: that wrapper imports enum, selectors and array, a quarter of
# the time a ``mfx version`` takes; a unix socket needs none of them.
import _socket

TYPE_CHECKING = False  # not typing's, nor collections.abc at run time: see above
if TYPE_CHECKING:
    from collections.abc import Iterator

READ_SIZE = 65536


class Reply:
    """A response read whole; header names in lower case."""

    __slots__ = ("content", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], content: bytes) -> None:
        self.status = status
        self.headers = headers
        self.content = content

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


class _Closing:
    """``with _Closing(sock):`` closes the socket on the way out: contextlib's ``closing``
    without contextlib's import."""

    __slots__ = ("_sock",)

    def __init__(self, sock: _socket.socket) -> None:
        self._sock = sock

    def __enter__(self) -> _socket.socket:
        return self._sock

    def __exit__(self, *exc_info: object) -> None:
        self._sock.close()


class ProtocolFailure(ConnectionError):
    """The peer's answer was no HTTP/1.1 response, or it stopped in the middle of one."""


class _Reader:
    """Buffered reads from a socket: lines for the head and the chunk sizes, exact counts for bodies."""

    def __init__(self, sock: _socket.socket) -> None:
        self._sock = sock
        self._buffer = b""

    def _fill(self) -> bool:
        data = self._sock.recv(READ_SIZE)
        self._buffer += data
        return bool(data)

    def line(self) -> bytes:
        while (end := self._buffer.find(b"\r\n")) < 0:
            if not self._fill():
                raise ProtocolFailure("the daemon closed the connection mid-answer")
        line, self._buffer = self._buffer[:end], self._buffer[end + 2:]
        return line

    def exactly(self, count: int) -> bytes:
        while len(self._buffer) < count:
            if not self._fill():
                raise ProtocolFailure("the daemon closed the connection mid-answer")
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    def rest(self) -> bytes:
        parts = [self._buffer]
        while data := self._sock.recv(READ_SIZE):
            parts.append(data)
        self._buffer = b""
        return b"".join(parts)


def _head(reader: _Reader) -> tuple[int, dict[str, str]]:
    status_line = reader.line()
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise ProtocolFailure(f"not an HTTP response: {status_line[:80]!r}")
    headers: dict[str, str] = {}
    while line := reader.line():
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


def _chunks(reader: _Reader) -> Iterator[bytes]:
    while True:
        size_text = reader.line().split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProtocolFailure(f"not a chunk size: {size_text[:20]!r}") from None
        if size == 0:
            while reader.line():  # trailers, then the blank line
                pass
            return
        yield reader.exactly(size)
        if reader.line():
            raise ProtocolFailure("a chunk longer than its size says")


def _body(reader: _Reader, headers: dict[str, str]) -> Iterator[bytes]:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        yield from _chunks(reader)
    elif "content-length" in headers:
        yield reader.exactly(int(headers["content-length"]))
    else:
        yield reader.rest()


class UnixHttp:
    """Requests to one unix socket; ``host`` only fills the Host header HTTP/1.1 requires."""

    def __init__(self, path: str, *, headers: dict[str, str], timeout: float, host: str = "mfx") -> None:
        self.path = path
        self.timeout = timeout
        self._fixed = {"Host": host, **headers, "Connection": "close"}

    def close(self) -> None:
        """Nothing stays open between requests."""

    def _open(self, method: str, target: str, headers: dict[str, str], body: bytes | None,
              timeout: float | None) -> tuple[_socket.socket, _Reader]:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.path)
            fields = {**self._fixed, **headers}
            if body is not None:
                fields["Content-Length"] = str(len(body))
            head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
            sock.sendall(head.encode("latin-1") + (body or b""))
            sock.settimeout(timeout)
        except BaseException:
            sock.close()
            raise
        return sock, _Reader(sock)

    def send(self, method: str, target: str, headers: dict[str, str], body: bytes | None = None) -> Reply:
        sock, reader = self._open(method, target, headers, body, self.timeout)
        with _Closing(sock):
            status, reply_headers = _head(reader)
            content = b"" if method == "HEAD" else b"".join(_body(reader, reply_headers))
        return Reply(status, reply_headers, content)

    def send_streamed(self, method: str, target: str, headers: dict[str, str], pieces: Iterator[bytes]) -> Reply:
        """A request whose body is sent chunked as ``pieces`` makes it, once the daemon asks for
        it (``Expect: 100-continue``): a daemon without the path answers at once, before any of
        the body is made. An exception from ``pieces`` closes the connection before the body's
        end, so the daemon acts on none of it, and propagates."""
        fields = {**headers, "Transfer-Encoding": "chunked", "Expect": "100-continue"}
        sock, reader = self._open(method, target, fields, None, self.timeout)
        with _Closing(sock):
            status, reply_headers = _head(reader)
            if status == 100:
                try:
                    for piece in pieces:
                        if piece:
                            sock.sendall(b"%x\r\n%b\r\n" % (len(piece), piece))
                    sock.sendall(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the daemon answered before the body's end: its answer says why
                status, reply_headers = _head(reader)
            content = b"".join(_body(reader, reply_headers))
        return Reply(status, reply_headers, content)

    def stream(self, target: str, headers: dict[str, str]) -> tuple[Reply, Iterator[bytes]]:
        """A GET whose body is read as it comes (no read timeout): the head, and the body's lines.

        For an error status the body is read whole into the reply and the lines are empty."""
        sock, reader = self._open("GET", target, headers, None, None)
        try:
            status, reply_headers = _head(reader)
            if status >= 400:
                with _Closing(sock):
                    return Reply(status, reply_headers, b"".join(_body(reader, reply_headers))), iter(())
        except BaseException:
            sock.close()
            raise
        return Reply(status, reply_headers, b""), _lines(sock, _body(reader, reply_headers))


def _lines(sock: _socket.socket, body: Iterator[bytes]) -> Iterator[bytes]:
    with _Closing(sock):
        pending = b""
        for data in body:
            pending += data
            *complete, pending = pending.split(b"\n")
            yield from complete
        if pending:
            yield pending
