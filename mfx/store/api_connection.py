"""Where ``ApiStore`` sends its requests: one or more API servers, tried in turn.

Each server is a URL: ``https://HOST:PORT`` (certificate checked against ``ca_file``, or the
system's CAs), ``http://HOST:PORT`` (plain, for loopback and trusted networks) or
``unix:///PATH`` (a daemon's socket). Every request carries the bearer token, if any.

Failover: a request goes to the server that answered last; when it cannot be reached
(connection refused, timed out, reset) the next one is tried, and a server that failed is
skipped for a backoff delay (``mfx.backoff``, doubling per consecutive failure) while another
is available. When none answers the request fails with ``StoreUnavailableError`` naming each
server and what it said. The state (which server is in use, or none) is logged once per
change, not once per request or retry.
"""

from __future__ import annotations

import logging
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from mfx.backoff import Backoff
from mfx.errors import BadRequestError, StoreUnavailableError
from mfx.store.api_errors import error_from_status

log = logging.getLogger("mfx.store.api")

# A server that failed is skipped for this long (doubling per failure) while another answers.
SERVER_BACKOFF = Backoff(initial=0.5, cap=30.0)
# Connecting fails fast (a dead address should not hold a reconcile); answers may take longer.
CONNECT_TIMEOUT = 3.0
REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True)
class ApiConnection:
    """How to reach the API: servers in order of preference, and the credentials for all."""

    servers: tuple[str, ...]
    token: str | None = None
    ca_file: Path | None = None  # https: the CA that signed the servers' certificates
    client_cert: Path | None = None  # https: a client certificate (kubeconfig users), with its key
    client_key: Path | None = None
    insecure_skip_verify: bool = False

    def __post_init__(self) -> None:
        if not self.servers:
            raise BadRequestError("no API server given: pass --server URL[,URL...] or --kubeconfig FILE")
        for url in self.servers:
            if not url.startswith(("http://", "https://", "unix://")):
                raise BadRequestError(f"--server {url!r}: expected https://HOST:PORT, http://HOST:PORT "
                                      "or unix:///PATH/TO/mfx.sock")


@dataclass
class _Server:
    url: str
    client: httpx.AsyncClient
    failures: int = 0
    skip_until: float = 0.0  # monotonic time before which another server is tried first
    last_error: str = ""


def _tls(connection: ApiConnection) -> ssl.SSLContext | bool:
    if connection.insecure_skip_verify:
        return False
    context = ssl.create_default_context(cafile=str(connection.ca_file) if connection.ca_file else None)
    if connection.client_cert is not None:
        context.load_cert_chain(str(connection.client_cert),
                                str(connection.client_key) if connection.client_key else None)
    return context


def _client(url: str, connection: ApiConnection) -> httpx.AsyncClient:
    headers = {"User-Agent": "mfx-agent", "Accept": "application/json"}
    if connection.token:
        headers["Authorization"] = f"Bearer {connection.token}"
    timeout = httpx.Timeout(REQUEST_TIMEOUT, connect=CONNECT_TIMEOUT)
    if url.startswith("unix://"):
        transport = httpx.AsyncHTTPTransport(uds=url.removeprefix("unix://"))
        return httpx.AsyncClient(transport=transport, base_url="http://mfx", headers=headers, timeout=timeout)
    verify = _tls(connection) if url.startswith("https://") else True
    return httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=timeout, verify=verify)


def describe_transport_error(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectTimeout | httpx.ReadTimeout | httpx.PoolTimeout):
        return f"timed out ({text})"
    return text


@dataclass
class ApiServers:
    """The servers of one ``ApiConnection``, with the failover state; ``request`` sends."""

    connection: ApiConnection
    _servers: list[_Server] = field(default_factory=list, init=False)
    _current: int = field(default=0, init=False)
    _reachable: bool | None = field(default=None, init=False)  # None: not tried yet

    def __post_init__(self) -> None:
        self._servers = [_Server(url, _client(url, self.connection)) for url in self.connection.servers]

    @property
    def current_url(self) -> str:
        return self._servers[self._current].url

    def order(self) -> list[_Server]:
        """The servers to try: the one in use first, then the others; those backing off last."""
        n = len(self._servers)
        rotated = [self._servers[(self._current + i) % n] for i in range(n)]
        now = time.monotonic()
        return [s for s in rotated if s.skip_until <= now] + [s for s in rotated if s.skip_until > now]

    def succeeded(self, server: _Server) -> None:
        index = self._servers.index(server)
        switched = self._reachable is None or index != self._current
        if self._reachable is False and not switched:
            log.info("API server %s answers again: watches resume and pending writes go through", server.url)
        elif self._reachable is False:
            # Contact lost with one server, found again with another: say which one, as a
            # switch without an outage does.
            log.info("talking to the API server at %s; watches resume and pending writes go through", server.url)
        elif switched:
            log.info("talking to the API server at %s", server.url)
        self._current = index
        self._reachable = True
        server.failures = 0
        server.skip_until = 0.0
        server.last_error = ""

    def failed(self, server: _Server, exc: BaseException) -> None:
        server.failures += 1
        server.last_error = describe_transport_error(exc)
        server.skip_until = time.monotonic() + SERVER_BACKOFF.delay(server.failures)

    def unavailable(self) -> StoreUnavailableError:
        """The error for "no server answered"; logged once when contact is lost."""
        detail = "; ".join(f"{s.url}: {s.last_error or 'not tried'}" for s in self._servers)
        if self._reachable is not False:
            log.warning("no API server reachable (%s): what runs keeps running; retrying with backoff", detail)
        self._reachable = False
        return StoreUnavailableError(
            f"no API server reachable ({detail}); check that 'mfx serve' runs there, that --server "
            "names its address and port, and that the network between them is up", detail=detail)

    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                      body: Any = None, content_type: str = "application/json") -> Any:
        """The decoded JSON answer of the first server that takes the request.

        Only a request that never reached a server moves on to the next: one cut off after
        it was sent (a reset while waiting for the answer) may have been carried out, so
        repeating it elsewhere could do it twice; it fails with ``StoreUnavailableError``."""
        content = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": content_type} if content is not None else None
        for server in self.order():
            try:
                response = await server.client.request(method, path, params=params, content=content,
                                                        headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                self.failed(server, exc)
                continue
            except httpx.TransportError as exc:
                self.failed(server, exc)
                if method == "GET":
                    continue
                raise self.unavailable() from None
            self.succeeded(server)
            return decode(response, server.url)
        raise self.unavailable()

    def clients(self) -> list[tuple[str, httpx.AsyncClient]]:
        return [(s.url, s.client) for s in self.order()]

    def server_for(self, client: httpx.AsyncClient) -> _Server:
        return next(s for s in self._servers if s.client is client)

    async def aclose(self) -> None:
        for server in self._servers:
            await server.client.aclose()


def decode(response: httpx.Response, server: str) -> Any:
    """The JSON body of a successful answer; the mfx error of a failed one."""
    try:
        body = orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        body = None
    if response.status_code >= 400:
        if body is None:
            body = {"message": response.text.strip()[:300]}
        raise error_from_status(response.status_code, body, server=server)
    if body is None:
        raise StoreUnavailableError(f"the API server {server} answered {response.status_code} without "
                                    "a JSON body; check that --server names an mfx or Kubernetes API server")
    return body
