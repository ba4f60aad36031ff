"""How the web UI reaches the daemon: its HTTP API, over the unix socket or TCP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from mfx.errors import MfxError


class DaemonUnavailableError(MfxError):
    reason = "ServiceUnavailable"
    code = 503


@dataclass
class Answer:
    status: int
    body: bytes
    media_type: str


class DaemonClient:
    """An async client of the daemon's API; one connection pool for the UI server's life."""

    def __init__(self, *, socket: Path | None = None, base_url: str = "http://mfx",
                 token: str | None = None) -> None:
        transport = httpx.AsyncHTTPTransport(uds=str(socket)) if socket is not None else None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # No read timeout: watches and log follows stay open for as long as the page does.
        self._http = httpx.AsyncClient(transport=transport, base_url=base_url, headers=headers,
                                       timeout=httpx.Timeout(30.0, read=None))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                      body: bytes | None = None) -> Answer:
        try:
            response = await self._http.request(method, path, params=params, content=body,
                                                 headers={"Content-Type": "application/json"} if body else None)
        except httpx.TransportError as error:
            raise DaemonUnavailableError(f"the mfx daemon did not answer ({error}); is 'mfx serve' running?") from error
        return Answer(response.status_code, response.content,
                      response.headers.get("content-type", "application/json"))

    async def get_json(self, path: str, params: dict[str, str] | None = None) -> Any:
        answer = await self.request("GET", path, params=params)
        data = orjson.loads(answer.body) if answer.body else None
        if answer.status >= 400:
            message = data.get("message") if isinstance(data, dict) else answer.body.decode(errors="replace")
            raise DaemonUnavailableError(f"GET {path}: {message}")
        return data

    async def get_text(self, path: str) -> str:
        answer = await self.request("GET", path)
        return answer.body.decode(errors="replace")

    async def lines(self, path: str, params: dict[str, str] | None = None) -> AsyncIterator[dict[str, Any]]:
        """The JSON lines of a streaming answer (a watch, a log follow), as they come."""
        try:
            async with self._http.stream("GET", path, params=params) as response:
                if response.status_code >= 400:
                    body = await response.aread()
                    try:
                        status = orjson.loads(body)
                    except orjson.JSONDecodeError:  # a plain-text 404: no such API here
                        status = {"code": response.status_code, "message": body.decode(errors="replace")}
                    yield {"type": "ERROR", "object": status}
                    return
                async for line in response.aiter_lines():
                    if line.strip():
                        yield orjson.loads(line)
        except httpx.TransportError as error:
            raise DaemonUnavailableError(f"the mfx daemon closed the stream ({error})") from error
