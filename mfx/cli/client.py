"""The CLI's client for the daemon's Kubernetes-style HTTP API.

It talks over the unix socket by default (``$MFX_HOME/mfx.sock``) or to a TCP listener with
a bearer token: HTTPS for ``HOST:PORT`` and ``https://HOST:PORT`` (the daemon's ``--listen``,
its certificate verified against the daemon's CA in ``$MFX_HOME/tls/ca.crt``), plain HTTP only
for an explicit ``http://HOST:PORT`` (``--listen-http``). Every failure becomes an mfx error
with a message a user can act on.
"""

from __future__ import annotations

import os

from mfx.cli import json_reader
from mfx.home import default_home_dir

# Not typing's: mypy reads the name alone, and importing typing (or pathlib, or urllib.parse)
# costs a hot ``mfx`` call time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path
    from typing import Any, Protocol

    from mfx.api.kinds import KindInfo
    from mfx.api.objects import Obj
    from mfx.cli.unix_http import Reply
    from mfx.errors import DaemonUnavailableError, MfxError

    class Transport(Protocol):
        """How requests reach the daemon: ``unix_http`` for the socket, ``tcp_http`` for a listener."""

        def send(self, method: str, target: str, headers: dict[str, str], body: bytes | None = None) -> Reply: ...

        def send_streamed(self, method: str, target: str, headers: dict[str, str],
                          pieces: Iterator[bytes]) -> Reply:
            """A request whose body goes as ``pieces`` makes it; an exception from ``pieces``
            aborts the request (the daemon acts on no body cut short) and propagates."""

        def stream(self, target: str, headers: dict[str, str]) -> tuple[Reply, Iterator[bytes]]: ...

        def close(self) -> None: ...


TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


class Endpoint:
    """Where the daemon is: a unix socket, or a URL plus its bearer token (and, for https, the
    CA certificate its serving certificate is checked against).

    A plain class, not a dataclass: every ``mfx`` call makes one, and the dataclass machinery
    costs more to import than the rest of a ``mfx now``."""

    __slots__ = ("ca_file", "socket", "token", "url")

    def __init__(self, socket: str | os.PathLike[str] | None = None, url: str | None = None,
                 token: str | None = None, ca_file: Path | None = None) -> None:
        self.socket = socket
        self.url = url
        self.token = token
        self.ca_file = ca_file

    def _fields(self) -> tuple[str | None, str | None, str | None, Path | None]:
        return (None if self.socket is None else os.fspath(self.socket)), self.url, self.token, self.ca_file

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Endpoint) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return f"Endpoint(socket={self.socket!r}, url={self.url!r}, token={self.token!r}, ca_file={self.ca_file!r})"

    @classmethod
    def from_env(cls, home: str | os.PathLike[str] | None = None, server: str | None = None,
                 token: str | None = None) -> Endpoint:
        home_dir = os.fspath(home) if home else default_home_dir()
        server = server or os.environ.get("MFX_SERVER")
        if not server:
            return cls(socket=os.path.join(home_dir, "mfx.sock"))
        from pathlib import Path  # a TCP listener's request loads ssl: pathlib is nothing beside it

        token = token or os.environ.get("MFX_TOKEN")
        if token is None:
            token_file = Path(home_dir, "token")
            if token_file.exists():
                token = token_file.read_text().strip()
        url = (server if "://" in server else f"https://{server}").rstrip("/")
        if url.startswith("http://"):
            return cls(url=url, token=token)
        if not url.startswith("https://"):
            from mfx.errors import MfxError

            raise MfxError(f"--server {server!r}: give HOST:PORT or https://HOST:PORT (the daemon's "
                           "--listen), or http://HOST:PORT (its --listen-http)")
        ca_file = tls_ca_file(Path(home_dir))
        if not ca_file.exists():
            from mfx.errors import MfxError

            raise MfxError(
                f"no CA certificate in {ca_file} to verify {url} with: copy the daemon's "
                f"HOME/tls/ca.crt there (or pass --home with the daemon's home), or talk plain HTTP "
                f"to a daemon started with --listen-http: --server http://HOST:PORT")
        return cls(url=url, token=token, ca_file=ca_file)

    def describe(self) -> str:
        return str(self.socket) if self.socket is not None else str(self.url)


def tls_ca_file(home: Path) -> Path:
    """The daemon's CA certificate, as the daemon of ``home`` writes it."""
    return home / "tls" / "ca.crt"


def _error_from_status(reply: Reply) -> MfxError:
    from mfx.errors import error_from_status

    try:
        body = json_reader.loads(reply.content)
    except ValueError:
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    message = message or reply.content.decode(errors="replace") or f"HTTP {reply.status}"
    return error_from_status(reply.status, body, message)


def _query_value(value: Any) -> str:
    # As httpx writes query values: booleans in lower case, None empty.
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "" if value is None else str(value)


# What a path keeps as it is; anything else is percent-encoded (urllib.parse loaded for it).
_PATH_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._/%:@!$&'()*+,;=~")


def _target(path: str, params: dict[str, Any] | None) -> str:
    """The request target: the path percent-encoded where it must be (a name typed with a space
    or a non-ASCII letter), then the query."""
    if not _PATH_SAFE.issuperset(path):
        from urllib.parse import quote

        path = quote(path, safe="/%:@!$&'()*+,;=~")
    if not params:
        return path
    query = {k: _query_value(v) for k, v in params.items()}
    if all(_QUERY_SAFE.issuperset(text) for pair in query.items() for text in pair):
        return f"{path}?{'&'.join(f'{k}={v}' for k, v in query.items())}"  # as urlencode writes them
    from urllib.parse import urlencode

    return f"{path}?{urlencode(query)}"


# What urlencode leaves as it is in a query's names and values (``mfx apply``'s dryRun=All,
# fieldManager=mfx): those queries are written without loading urllib.parse.
_QUERY_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")


def encode_json(body: Any) -> bytes:
    """A request body as compact JSON: the standard library's C encoder, as orjson's import
    (which loads dataclasses, uuid and datetime) costs an ``mfx`` start more than it saves.
    Non-ASCII text goes as UTF-8, and NaN or infinity, which JSON cannot carry, are refused."""
    import json

    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


class Client:
    def __init__(self, endpoint: Endpoint, *, timeout: float = 30.0) -> None:
        self.endpoint = endpoint
        headers = {"User-Agent": "mfx-cli"}
        if endpoint.token:
            headers["Authorization"] = f"Bearer {endpoint.token}"
        self._transport: Transport
        if endpoint.socket is not None:
            from mfx.cli.unix_http import UnixHttp

            self._transport = UnixHttp(str(endpoint.socket), headers=headers, timeout=timeout)
        else:
            from mfx.cli.tcp_http import TcpHttp  # httpx and the TLS stack: for TCP listeners only

            self._transport = TcpHttp(str(endpoint.url), ca_file=endpoint.ca_file, headers=headers,
                                      timeout=timeout)

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- raw ----------------------------------------------------------------------------------

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                body: Any = None, content_type: str = "application/json",
                accept: str = "application/json") -> Any:
        """The decoded answer: a JSON one as its value, any other as text."""
        headers = {"Accept": accept}
        content = None
        if body is not None:
            content = body if isinstance(body, bytes) else encode_json(body)
            headers["Content-Type"] = content_type
        return self._answer(lambda: self._transport.send(method, _target(path, params), headers, content))

    def request_streamed(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                         pieces: Iterator[bytes], content_type: str) -> Any:
        """As ``request``, with a body sent as ``pieces`` makes it (see ``Transport.send_streamed``)."""
        headers = {"Accept": "application/json", "Content-Type": content_type}
        return self._answer(lambda: self._transport.send_streamed(method, _target(path, params), headers, pieces))

    def _answer(self, send: Callable[[], Reply]) -> Any:
        try:
            reply = send()
        except TimeoutError:
            from mfx.errors import DaemonUnavailableError

            raise DaemonUnavailableError(
                f"the mfx daemon at {self.endpoint.describe()} did not answer in time; "
                "check it with 'mfx version' or its logs") from None
        except OSError:  # no socket, nobody listening, or an answer cut short
            raise self._unreachable() from None
        if reply.status >= 400:
            raise _error_from_status(reply)
        if not reply.content:
            return None
        if reply.content_type.startswith("application/json"):
            return json_reader.loads(reply.content)
        return reply.content.decode()

    def _unreachable(self) -> DaemonUnavailableError:
        # A TCP listener's failures arrive as DaemonUnavailableError already, saying what to check.
        from mfx.errors import DaemonUnavailableError

        return DaemonUnavailableError(
            f"cannot reach the mfx daemon at {self.endpoint.describe()}: start it with 'mfx serve'")

    def stream_lines(self, path: str, *, params: dict[str, Any] | None = None,
                     accept: str = "application/json") -> Iterator[dict[str, Any]]:
        """A streaming GET (watch, log -f): yields one decoded JSON object per line."""
        try:
            reply, lines = self._transport.stream(_target(path, params), {"Accept": accept})
        except OSError:
            raise self._unreachable() from None
        if reply.status >= 400:
            raise _error_from_status(reply)
        try:
            for line in lines:
                if line.strip():
                    yield json_reader.loads(line)
        except OSError:
            return  # the daemon went away mid-stream: the stream simply ends

    # --- typed helpers -------------------------------------------------------------------

    def get(self, kind: KindInfo, name: str) -> Obj:
        return self.request("GET", f"{kind.resource_path}/{name}")  # type: ignore[no-any-return]

    def list(self, kind: KindInfo, *, label_selector: str | None = None,
             field_selector: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        return self.request("GET", kind.resource_path, params=params)  # type: ignore[no-any-return]

    def table(self, kind: KindInfo, name: str | None = None, *, label_selector: str | None = None,
              include_object: str = "Metadata") -> dict[str, Any]:
        """A metav1.Table; ``include_object="None"`` leaves out each row's object metadata, a
        good part of the answer, which only a watch needs (for the rows' resourceVersions)."""
        path = kind.resource_path + (f"/{name}" if name else "")
        params = {"labelSelector": label_selector} if label_selector else {}
        if include_object != "Metadata":
            params["includeObject"] = include_object
        return self.request("GET", path, params=params, accept=TABLE_ACCEPT)  # type: ignore[no-any-return]

    def create(self, obj: Obj, kind: KindInfo, *, dry_run: bool = False) -> Obj:
        params = {"dryRun": "All"} if dry_run else None
        return self.request("POST", kind.resource_path, params=params, body=obj)  # type: ignore[no-any-return]

    def replace(self, obj: Obj, kind: KindInfo, *, dry_run: bool = False) -> Obj:
        params = {"dryRun": "All"} if dry_run else None
        name = obj["metadata"]["name"]
        return self.request("PUT", f"{kind.resource_path}/{name}", params=params, body=obj)  # type: ignore[no-any-return]

    def patch(self, kind: KindInfo, name: str, patch: Any, *, subresource: str = "",
              patch_type: str = "application/merge-patch+json", dry_run: bool = False) -> Obj:
        path = f"{kind.resource_path}/{name}" + (f"/{subresource}" if subresource else "")
        params = {"dryRun": "All"} if dry_run else None
        return self.request("PATCH", path, params=params, body=patch,  # type: ignore[no-any-return]
                            content_type=patch_type)

    def delete(self, kind: KindInfo, name: str, *, dry_run: bool = False) -> Obj:
        params = {"dryRun": "All"} if dry_run else None
        return self.request("DELETE", f"{kind.resource_path}/{name}", params=params)  # type: ignore[no-any-return]

    def watch(self, kind: KindInfo, *, resource_version: str | None = None, field_selector: str | None = None,
              label_selector: str | None = None, as_table: bool = False) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"watch": "true"}
        if resource_version:
            params["resourceVersion"] = resource_version
        if field_selector:
            params["fieldSelector"] = field_selector
        if label_selector:
            params["labelSelector"] = label_selector
        accept = TABLE_ACCEPT if as_table else "application/json"
        for event in self.stream_lines(kind.resource_path, params=params, accept=accept):
            if event.get("type") == "ERROR":
                from mfx.errors import GoneError, MfxError

                status = event.get("object") or {}
                if status.get("code") == 410:
                    raise GoneError(status.get("message", "watch expired"))
                raise MfxError(status.get("message", "watch failed"))
            yield event
