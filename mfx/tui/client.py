"""The terminal player's async client for the daemon's API: the same endpoints the CLI uses.

A unix socket (``$MFX_HOME/mfx.sock``) by default, or a TCP listener with a bearer token:
HTTPS verified against the daemon's CA, or plain HTTP for an explicit ``http://`` URL. Every
failure becomes an mfx error whose message says what to do next; watches are JSON lines.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from mfx.errors import (
    BadRequestError,
    ConflictError,
    DaemonUnavailableError,
    GoneError,
    MfxError,
    NotFoundError,
    UnauthorizedError,
)

PLAYER = "/apis/player.mfx.musicfox.io/v1"
PLUGINS = "/apis/mfx.musicfox.io/v1alpha1/pluginmanifests"
EVENTS = "/api/v1/events"
MERGE_PATCH = "application/merge-patch+json"
REQUEST_SECONDS = 15.0


@dataclass(frozen=True)
class Connection:
    """Where the daemon is: its unix socket, or a URL with a bearer token (and the CA file that
    verifies an ``https`` URL)."""

    socket: Path | None = None
    url: str | None = None
    token: str | None = None
    ca_file: Path | None = None
    ca_data: str | None = None  # PEM, as a kubeconfig carries it

    def describe(self) -> str:
        return str(self.socket) if self.socket is not None else str(self.url)


def _error(response: httpx.Response) -> MfxError:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("message") or response.text or f"HTTP {response.status_code}")
    by_code: dict[int, type[MfxError]] = {400: BadRequestError, 401: UnauthorizedError, 404: NotFoundError,
                                          409: ConflictError, 410: GoneError}
    kind = by_code.get(response.status_code)
    if kind is not None:
        return kind(message)
    error = MfxError(message, reason=str(body.get("reason") or "InternalError"))
    error.code = response.status_code
    return error


class ApiClient:
    """One ``httpx.AsyncClient`` for every request and watch of the TUI."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        headers = {"Accept": "application/json"}
        if connection.socket is not None:
            transport = httpx.AsyncHTTPTransport(uds=str(connection.socket))
            base_url = "http://mfx"
        else:
            assert connection.url is not None
            verify: ssl.SSLContext | bool = True
            if connection.ca_file is not None or connection.ca_data is not None:
                verify = ssl.create_default_context(
                    cafile=None if connection.ca_file is None else str(connection.ca_file),
                    cadata=connection.ca_data)
            transport = httpx.AsyncHTTPTransport(verify=verify)
            base_url = connection.url
            if connection.token:
                headers["Authorization"] = f"Bearer {connection.token}"
        self._http = httpx.AsyncClient(transport=transport, base_url=base_url, headers=headers,
                                       timeout=httpx.Timeout(REQUEST_SECONDS))

    async def aclose(self) -> None:
        await self._http.aclose()

    def _unreachable(self, error: Exception) -> DaemonUnavailableError:
        return DaemonUnavailableError(
            f"cannot reach the mfx daemon at {self.connection.describe()} ({type(error).__name__}: {error}); "
            "start it with `mfx serve`, or pass --home/--server for another one")

    async def request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                      body: Any = None, content_type: str = "application/json") -> Any:
        """Send one request; the decoded JSON answer (None for an empty one)."""
        content = None if body is None else orjson.dumps(body)
        headers = {"Content-Type": content_type} if content is not None else {}
        try:
            response = await self._http.request(method, path, params=params, content=content, headers=headers)
        except (httpx.TransportError, OSError) as error:
            raise self._unreachable(error) from None
        if response.status_code >= 400:
            raise _error(response)
        return orjson.loads(response.content) if response.content else None

    async def get(self, path: str, **params: str) -> Any:
        return await self.request("GET", path, params=params or None)

    async def lines(self, path: str, params: dict[str, str] | None = None) -> AsyncIterator[Any]:
        """The JSON lines of a watch or a followed log, as they arrive; ends when the server ends it."""
        try:
            async with self._http.stream("GET", path, params=params,
                                         timeout=httpx.Timeout(REQUEST_SECONDS, read=None)) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise _error(response)
                async for line in response.aiter_lines():
                    if line.strip():
                        yield orjson.loads(line)
        except (httpx.TransportError, OSError) as error:
            raise self._unreachable(error) from None

    # --- the player ----------------------------------------------------------------------

    async def player(self, method: str, action: str, body: Any = None) -> Any:
        return await self.request(method, f"{PLAYER}/{action}", body=body)

    async def call_plugin(self, name: str, method: str, *params: Any) -> Any:
        answer = await self.request("POST", f"{PLUGINS}/{name}/call", body={"method": method, "params": list(params)})
        return answer.get("result") if isinstance(answer, dict) else None

    async def patch_plugin(self, name: str, patch: dict[str, Any]) -> Any:
        return await self.request("PATCH", f"{PLUGINS}/{name}", body=patch, content_type=MERGE_PATCH)
