"""The web UI's HTTP app: the page, its static files, and the live streams it reads.

Routes (all behind ``auth.Guard``):

    GET  /                          the page (static/index.html)
    GET  /static/...                scripts, styles, vendored libraries
    GET  /ui/stream/plugins         SSE: list, then changes of PluginManifests, + critical chain
    GET  /ui/stream/sinks           SSE: list, then changes of AudioSinks
    GET  /ui/stream/player          SSE: the player's state now and at every change
    GET  /ui/stream/health          SSE: health samples per plugin, from /metrics
    GET  /ui/stream/panels          SSE: UIExtension panels, re-rendered at every change
    GET  /ui/stream/plugin/{name}   SSE: one plugin's events and a live tail of its log
    GET  /ui/theme/{plugin}/{name}  a UIExtension theme's palette
    *    /apis/player.mfx.musicfox.io/v1/...   the player API, passed through
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

import anyio
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mfx.errors import MfxError
from mfx.webui import extensions
from mfx.webui.auth import Guard
from mfx.webui.daemon_client import DaemonClient
from mfx.webui.graph_model import critical_chain
from mfx.webui.health import HealthSampler
from mfx.webui.sse import HEADERS, KEEPALIVE, MEDIA_TYPE, Mirror, frame, watch_stream

GROUP = "/apis/mfx.musicfox.io/v1alpha1"
PLAYER = "/apis/player.mfx.musicfox.io/v1"
EVENTS = "/api/v1/events"


def static_dir() -> Path:
    return Path(str(resources.files("mfx.webui") / "static"))


def _chain(mirror: Mirror) -> list[bytes]:
    return [frame("chain", {"nodes": critical_chain(mirror.objects.values())})]


async def _guarded(items: AsyncIterator[bytes], shutdown: anyio.Event) -> AsyncIterator[bytes]:
    """End with the daemon, and turn a failure into a message the page shows."""
    from mfx.server.streams import until_shutdown

    try:
        async for item in until_shutdown(items, shutdown):
            yield item
    except MfxError as error:
        yield frame("problem", {"message": str(error)})


def create_app(client: DaemonClient, *, shutdown: anyio.Event, token: str | None,
               health: HealthSampler) -> Any:
    """The web UI; ``token`` set (a non-loopback address): sign-in required."""
    static = static_dir()

    def sse(items: AsyncIterator[bytes]) -> StreamingResponse:
        return StreamingResponse(_guarded(items, shutdown), media_type=MEDIA_TYPE, headers=HEADERS)

    async def index(request: Request) -> Response:
        return FileResponse(static / "index.html", headers={"Cache-Control": "no-store"})

    async def plugins(request: Request) -> Response:
        return sse(watch_stream(client, f"{GROUP}/pluginmanifests",
                                last_event_id=request.headers.get("last-event-id"), extra=_chain))

    async def sinks(request: Request) -> Response:
        return sse(watch_stream(client, f"{GROUP}/audiosinks", last_event_id=request.headers.get("last-event-id")))

    async def player(request: Request) -> Response:
        async def states() -> AsyncIterator[bytes]:
            yield KEEPALIVE
            async for event in client.lines(f"{PLAYER}/state", {"watch": "true"}):
                if event.get("type") == "STATE":
                    yield frame("state", event.get("object") or {})
                elif event.get("type") == "ERROR":
                    yield frame("problem", {"message": (event.get("object") or {}).get("message")
                                            or "this daemon runs no player"})
                    return
        return sse(states())

    async def health_stream(request: Request) -> Response:
        async def samples() -> AsyncIterator[bytes]:
            receive = health.subscribe()
            try:
                yield frame("history", {"interval": health.interval, "rings": health.snapshot()})
                async with receive:
                    async for points in receive:
                        yield frame("sample", points)
            finally:
                health.unsubscribe(receive)
        return sse(samples())

    async def panels(request: Request) -> Response:
        return sse(extensions.panel_stream(client))

    async def plugin_detail(request: Request) -> Response:
        name = request.path_params["name"]
        return sse(_plugin_detail(client, name))

    async def theme(request: Request) -> Response:
        try:
            palette = await extensions.theme(client, request.path_params["plugin"], request.path_params["name"])
        except MfxError as error:
            return Response(orjson.dumps({"message": str(error)}), status_code=error.code if error.code >= 400 else 502,
                            media_type="application/json")
        return Response(orjson.dumps(palette), media_type="application/json")

    async def player_api(request: Request) -> Response:
        body = await request.body()
        try:
            answer = await client.request(request.method, f"{PLAYER}/{request.path_params['path']}",
                                          params=dict(request.query_params), body=body or None)
        except MfxError as error:
            return Response(orjson.dumps({"message": str(error)}), status_code=503, media_type="application/json")
        return Response(answer.body, status_code=answer.status, media_type=answer.media_type)

    app = Starlette(routes=[
        Route("/", index),
        Route("/ui/stream/plugins", plugins),
        Route("/ui/stream/sinks", sinks),
        Route("/ui/stream/player", player),
        Route("/ui/stream/health", health_stream),
        Route("/ui/stream/panels", panels),
        Route("/ui/stream/plugin/{name}", plugin_detail),
        Route("/ui/theme/{plugin}/{name}", theme),
        Route(PLAYER + "/{path:path}", player_api, methods=["GET", "POST", "PUT", "DELETE"]),
        Mount("/static", StaticFiles(directory=static), name="static"),
    ])
    return Guard(app, token=token)


async def _plugin_detail(client: DaemonClient, name: str) -> AsyncIterator[bytes]:
    """``event: events`` (the list, then each new one) and ``event: log`` (the last lines,
    then each line as the plugin writes it), from two streams of the API at once."""
    selector = f"involvedObject.kind=PluginManifest,involvedObject.name={name}"
    send, receive = anyio.create_memory_object_stream[bytes](32)

    async def events() -> None:
        page = await client.get_json(EVENTS, {"fieldSelector": selector})
        await send.send(frame("events", {"items": page.get("items") or [], "replace": True}))
        watch = {"fieldSelector": selector, "watch": "true", "resourceVersion": str(page["metadata"]["resourceVersion"])}
        async for event in client.lines(EVENTS, watch):
            if event.get("type") in ("ADDED", "MODIFIED"):
                await send.send(frame("events", {"items": [event["object"]]}))

    async def log() -> None:
        async for line in client.lines(f"{GROUP}/pluginmanifests/{name}/log", {"follow": "true", "tailLines": "50"}):
            await send.send(frame("log", line))

    async def guard(part: Any) -> None:
        try:
            await part()
        except MfxError as error:
            await send.send(frame("problem", {"message": str(error)}))

    async with anyio.create_task_group() as group:
        group.start_soon(guard, events)
        group.start_soon(guard, log)
        yield KEEPALIVE
        async with receive:
            async for message in receive:
                yield message
