"""The plugin log endpoint, shaped like the Kubernetes pod log subresource.

``GET /apis/mfx.musicfox.io/v1alpha1/pluginmanifests/{name}/log``
    ``follow=true``   keep the response open and stream new records as they are written
    ``sinceSeconds=N`` only records from the last N seconds
    ``tailLines=N``    only the last N records (applied after ``sinceSeconds``)

Unlike the pod endpoint (plain text) the body is JSON lines, one ``PluginLogStore`` record per
line (``time``, ``level``, ``stream``, ``message``, ``fields``), so clients keep the level and
stream without parsing text; ``mfx logs`` formats them. A follow ends when the daemon shuts
down or the plugin's logs are forgotten (it was deleted).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from mfx.api.kinds import PLUGIN_MANIFEST
from mfx.errors import BadRequestError, MfxError
from mfx.server.api import error_response
from mfx.server.streams import until_shutdown
from mfx.store.base import Store
from mfx.store.plugin_logs import LogRecord, PluginLogStore

MEDIA_TYPE = "application/x-ndjson"


def log_routes(log_store: PluginLogStore, shutdown: anyio.Event, *, store: Store | None = None) -> list[Route]:
    """The routes to add to ``ApiServer.extra_routes``; with ``store``, unknown plugins get 404."""

    async def plugin_log(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            follow, since, tail = _options(request.query_params)
            log_store.path(name)  # validates the name
            if store is not None:
                await store.get(PLUGIN_MANIFEST.kind, name)
        except MfxError as error:
            return error_response(error, kind=PLUGIN_MANIFEST, name=name)
        if not follow:
            records = await anyio.to_thread.run_sync(lambda: log_store.read(name, since, tail))
            return Response(b"".join(_line(r) for r in records), media_type=MEDIA_TYPE)
        return StreamingResponse(_stream(log_store.follow(name, since, tail), shutdown), media_type=MEDIA_TYPE)

    return [Route(f"{PLUGIN_MANIFEST.resource_path}/{{name}}/log", plugin_log, methods=["GET"])]


def _options(params: Any) -> tuple[bool, float | None, int | None]:
    follow_text = params.get("follow", "false").lower()
    if follow_text not in ("true", "1", "false", "0", ""):
        raise BadRequestError(f'follow: invalid value "{follow_text}", expected true or false')
    return follow_text in ("true", "1"), _count(params, "sinceSeconds"), _count(params, "tailLines")


def _count(params: Any, key: str) -> int | None:
    text = params.get(key)
    if text in (None, ""):
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise BadRequestError(f'{key}: invalid value "{text}", expected a whole number of 0 or more')
    return value


def _line(record: LogRecord) -> bytes:
    return orjson.dumps(record, default=str) + b"\n"


async def _stream(records: AsyncIterator[LogRecord], shutdown: anyio.Event) -> AsyncIterator[bytes]:
    """Encode records until the follow ends or the daemon shuts down (so uvicorn can drain)."""
    async for record in until_shutdown(records, shutdown, buffer=64):
        yield _line(record)
