"""The web UI's HTTP app: the page, its static files, and the live streams it reads.

Routes (all behind ``auth.Guard``):

    GET  /                          the page (static/index.html)
    GET  /static/...                scripts, styles, vendored libraries
    GET  /ui/stream?topics=...      SSE, one stream for the page's topics (``sse.merge``); it
                                    resumes from Last-Event-ID (header, or ``lastEventId=``):
         plugins   list, then changes of PluginManifests, and the critical chain
         sinks     list, then changes of AudioSinks
         player    the player's state now and at every change
         health    health samples per plugin, from /metrics
         panels    UIExtension panels, rendered again at every change
    GET  /ui/stream/plugin/{name}   SSE: one plugin's events and a live tail of its log
    GET  /ui/theme/{plugin}/{name}  a UIExtension theme's palette
    POST /ui/keys/{plugin}          {"key": K}: the extension's action for key K, performed
    *    /apis/player.mfx.musicfox.io/v1/...   the player API, passed through
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
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

from mfx.api.object_mirror import ObjectMirror
from mfx.errors import MfxError
from mfx.server.streams import until_shutdown
from mfx.webui import extensions, keys
from mfx.webui.auth import Guard
from mfx.webui.daemon_client import DaemonClient
from mfx.webui.graph_model import critical_chain
from mfx.webui.health import HealthSampler
from mfx.webui.sse import (
    HEADERS,
    MEDIA_TYPE,
    Message,
    merge,
    parse_last_event_id,
    watch_topic,
)

log = logging.getLogger("mfx.webui")

GROUP = "/apis/mfx.musicfox.io/v1alpha1"
PLAYER = "/apis/player.mfx.musicfox.io/v1"
EVENTS = "/api/v1/events"
TOPICS = ("plugins", "sinks", "player", "health", "panels")


def static_dir() -> Path:
    return Path(str(resources.files("mfx.webui") / "static"))


def _chain_inputs(obj: dict[str, Any]) -> tuple[Any, ...]:
    status = obj.get("status") or {}
    deps = tuple((d.get("name"), bool(d.get("optional"))) for d in (obj.get("spec") or {}).get("dependencies") or [])
    return deps, status.get("startedAt"), status.get("readyAt")


class ChainFeed:
    """The critical chain, sent when it changes. Only dependencies and start/ready times go
    into it: a change is compared on those of the one object that changed, so most changes
    (a probe, a restart count, a spec edit) cost no graph work, however many plugins there are."""

    def __init__(self) -> None:
        self._inputs: dict[str, tuple[Any, ...]] = {}
        self._sent: list[str] | None = None

    def __call__(self, mirror: ObjectMirror, changed: str | None) -> list[Message]:
        if changed is None:
            inputs = {name: _chain_inputs(obj) for name, obj in mirror.objects.items()}
            if inputs == self._inputs and self._sent is not None:
                return []
            self._inputs = inputs
        else:
            obj = mirror.objects.get(changed)
            now = None if obj is None else _chain_inputs(obj)
            if self._inputs.get(changed) == now:
                return []
            if now is None:
                self._inputs.pop(changed, None)
            else:
                self._inputs[changed] = now
        nodes = critical_chain(mirror.objects.values())
        if nodes == self._sent:
            return []
        self._sent = nodes
        return [Message("chain", {"nodes": nodes})]


def _problem(topic: str, error: Exception) -> Message | None:
    if isinstance(error, MfxError):
        return Message("problem", {"message": f"{topic}: {error}"})
    log.exception("web UI: the %s stream failed", topic, exc_info=error)
    return Message("problem", {"message": f"{topic}: {type(error).__name__}: {error}"})


async def _player(client: DaemonClient) -> AsyncIterator[Message]:
    async for event in client.lines(f"{PLAYER}/state", {"watch": "true"}):
        if event.get("type") == "STATE":
            yield Message("state", event.get("object") or {})
        elif event.get("type") == "ERROR":
            status = event.get("object") or {}
            if status.get("code") == 404:
                # Not a problem: a daemon serving plugins only. The player page says so.
                yield Message("absent", {"message": "This daemon runs no player: the other pages work as usual."})
            else:
                yield Message("problem", {"message": f"player: {status.get('message') or 'the state watch failed'}"})
            return


async def _health(health: HealthSampler) -> AsyncIterator[Message]:
    receive = health.subscribe()
    try:
        yield Message("history", {"interval": health.interval, "rings": health.snapshot()})
        async with receive:
            async for points in receive:
                yield Message("sample", points)
    finally:
        health.unsubscribe(receive)


def create_app(client: DaemonClient, *, shutdown: anyio.Event, token: str | None,
               health: HealthSampler) -> Any:
    """The web UI; ``token`` set (a non-loopback address): sign-in required."""
    static = static_dir()

    def sse(items: AsyncIterator[bytes]) -> StreamingResponse:
        return StreamingResponse(until_shutdown(items, shutdown), media_type=MEDIA_TYPE, headers=HEADERS)

    async def index(request: Request) -> Response:
        return FileResponse(static / "index.html", headers={"Cache-Control": "no-store"})

    async def stream(request: Request) -> Response:
        wanted = [t for t in request.query_params.get("topics", ",".join(TOPICS)).split(",") if t in TOPICS]
        # A browser's own reconnection sends the header; a page that had to open a new stream
        # puts the same id in the query.
        positions = parse_last_event_id(request.headers.get("last-event-id") or request.query_params.get("lastEventId"))
        makers: dict[str, Callable[[], AsyncIterator[Message]]] = {
            "plugins": lambda: watch_topic(client, f"{GROUP}/pluginmanifests", resume=positions.get("plugins"),
                                           derived=ChainFeed()),
            "sinks": lambda: watch_topic(client, f"{GROUP}/audiosinks", resume=positions.get("sinks")),
            "player": lambda: _player(client),
            "health": lambda: _health(health),
            "panels": lambda: extensions.panel_stream(client),
        }
        return sse(merge({t: makers[t]() for t in wanted}, positions, _problem))

    async def plugin_detail(request: Request) -> Response:
        name = request.path_params["name"]
        return sse(merge({"events": _events(client, name), "log": _log(client, name)}, {}, _problem))

    async def theme(request: Request) -> Response:
        try:
            palette = await extensions.theme(client, request.path_params["plugin"], request.path_params["name"])
        except MfxError as error:
            return _error(str(error), error.code if 400 <= error.code < 500 else 502)
        return Response(orjson.dumps(palette), media_type="application/json")

    async def key(request: Request) -> Response:
        try:
            body = orjson.loads(await request.body() or b"{}")
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("key"), str):
            return _error('send {"key": NAME}, NAME one of the keys the extension binds', 400)
        try:
            done = await keys.press(client, request.path_params["plugin"], body["key"])
        except MfxError as error:
            return _error(str(error), error.code if 400 <= error.code < 500 else 502)
        return Response(orjson.dumps(done), media_type="application/json")

    async def player_api(request: Request) -> Response:
        body = await request.body()
        try:
            answer = await client.request(request.method, f"{PLAYER}/{request.path_params['path']}",
                                          params=dict(request.query_params), body=body or None)
        except MfxError as error:
            return _error(str(error), 503)
        return Response(answer.body, status_code=answer.status, media_type=answer.media_type)

    app = Starlette(routes=[
        Route("/", index),
        Route("/ui/stream", stream),
        Route("/ui/stream/plugin/{name}", plugin_detail),
        Route("/ui/theme/{plugin}/{name}", theme),
        Route("/ui/keys/{plugin}", key, methods=["POST"]),
        Route(PLAYER + "/{path:path}", player_api, methods=["GET", "POST", "PUT", "DELETE"]),
        Mount("/static", StaticFiles(directory=static), name="static"),
    ])
    return Guard(app, token=token)


def _error(message: str, code: int) -> Response:
    return Response(orjson.dumps({"message": message}), status_code=code, media_type="application/json")


async def _events(client: DaemonClient, name: str) -> AsyncIterator[Message]:
    """The plugin's events: the list, then each new one."""
    selector = f"involvedObject.kind=PluginManifest,involvedObject.name={name}"
    page = await client.get_json(EVENTS, {"fieldSelector": selector})
    yield Message("items", {"items": page.get("items") or [], "replace": True})
    watch = {"fieldSelector": selector, "watch": "true", "resourceVersion": str(page["metadata"]["resourceVersion"])}
    async for event in client.lines(EVENTS, watch):
        if event.get("type") in ("ADDED", "MODIFIED"):
            yield Message("items", {"items": [event["object"]]})


async def _log(client: DaemonClient, name: str) -> AsyncIterator[Message]:
    """The last lines of the plugin's log, then each line as the plugin writes it."""
    async for line in client.lines(f"{GROUP}/pluginmanifests/{name}/log", {"follow": "true", "tailLines": "50"}):
        yield Message("line", line)
