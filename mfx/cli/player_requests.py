"""Requests to the daemon's player API (``/apis/player.mfx.musicfox.io/v1``, see
``mfx.server.player_api``); sources that failed or timed out are reported as warnings."""

from __future__ import annotations

from mfx.cli import output
from mfx.cli.session import CliContext

# Not typing's: mypy reads the name alone, and importing typing costs a hot ``mfx`` call time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

PLAYER_PATH = "/apis/player.mfx.musicfox.io/v1"


def call(ctx: CliContext, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
    return ctx.client.request(method, PLAYER_PATH + path, body=body, params=params)


def report_sources(result: dict[str, Any]) -> None:
    for name in result.get("timedOut") or []:
        output.warn(f"source {name} did not answer in time")
    for name, why in (result.get("failed") or {}).items():
        output.warn(f"source {name} failed: {why}")


def search(ctx: CliContext, query: str, type_: str = "song", source: str | None = None,
           limit: int = 30) -> dict[str, Any]:
    params = {"q": query, "type": type_, "limit": limit}
    if source:
        params["source"] = source
    result = call(ctx, "GET", "/search", params=params)
    report_sources(result)
    return result  # type: ignore[no-any-return]


def library(ctx: CliContext, type_: str, source: str | None, limit: int, offset: int) -> dict[str, Any]:
    params: dict[str, Any] = {"type": type_, "limit": limit, "offset": offset}
    if source:
        params["source"] = source
    result = call(ctx, "GET", "/library", params=params)
    report_sources(result)
    return result  # type: ignore[no-any-return]
