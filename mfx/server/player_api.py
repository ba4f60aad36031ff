"""The player's HTTP API, under ``/apis/player.mfx.musicfox.io/v1`` (JSON in, JSON out).

An API group of its own, beside the kinds' group, because these are actions on a running
service, not stored objects. Every error is a Kubernetes ``Status`` object.

    GET    /state                       PlayerView (+ ``lyric``: the line showing now)
    GET    /state?watch=true            the state now, then again at every change, one JSON
                                        line each ({"type": "STATE", "object": ...}); the
                                        position moves on between lines by the clock alone
    GET    /search?q=&type=&limit=&offset=&source=
    GET    /library?type=&limit=&offset=&source=
                                        every song | album | artist | playlist the sources hold
    GET    /playlists[?source=]         playlists of every source
    GET    /playlists/{name}            one playlist, songs resolved
    GET    /lyrics[?songId=]            Lyrics of the current song (or of a queued one)
    POST   /play      {index?} | {songs: [...]} | {playlist, source?}
    POST   /pause | /resume | /stop | /next | /previous
    POST   /seek      {seconds} | {offset}   (offset: seconds from the position now, may be < 0)
    GET    /queue                       {songs, currentIndex}
    POST   /queue     {songs: [...], next?: bool}
    DELETE /queue                       clear
    DELETE /queue/{index}
    POST   /queue/move {from, to}
    PUT    /mode      {mode}
    PUT    /volume    {volume} | {change}   (change: added to the volume now, kept within 0..100)
    PUT    /mute      {muted}
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import orjson
from anyio.abc import TaskGroup, TaskStatus
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from controllers.audiosink import elect_default
from mfx.api.music import Song
from mfx.api.objects import Obj, condition, is_deleting
from mfx.errors import BadRequestError, MfxError, NoSinkError
from mfx.music.player import Player
from mfx.music.transport import SinkLookup
from mfx.server.bodies import read_object
from mfx.server.daemon import DaemonContext, Service
from mfx.server.status import status_from_error, status_object
from mfx.server.streams import until_shutdown

log = logging.getLogger("mfx.server.player")

GROUP = "player.mfx.musicfox.io"
PREFIX = f"/apis/{GROUP}/v1"

Handler = Callable[[Request], Awaitable[Any]]


def _json(data: Any, code: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=code, media_type="application/json")


def _endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            answer = await handler(request)
            return answer if isinstance(answer, Response) else _json(answer)
        except MfxError as error:
            return _json(status_from_error(error), error.code)
        except Exception as error:  # never a bare 500 page: a Status the CLI can print
            log.exception("player: internal error answering %s %s", request.method, request.url.path)
            return _json(status_object(500, f"player: {type(error).__name__}: {error}"), 500)
    return endpoint


async def _body(request: Request) -> dict[str, Any]:
    # The hardened loader of every API body; no body at all means no arguments.
    return await read_object(request, default={})


def _int(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise BadRequestError(f"{field}: expected an integer, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequestError(f"{field}: expected an integer, got {value!r}") from None


def _text(value: Any, field: str, *, optional: bool = False) -> str | None:
    """A non-empty string (or, when ``optional``, absent/null): never ``str(None)`` as a name."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise BadRequestError(f"{field}: expected a non-empty string, got {value!r}")
    return value


def _number(value: Any, field: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise BadRequestError(f"{field}: expected a number of seconds, got {value!r}")
    return float(value)


def _songs(body: dict[str, Any]) -> list[Song]:
    items = body.get("songs")
    if not isinstance(items, list) or not items:
        raise BadRequestError("songs: expected a non-empty list of songs (as search answers them)")
    try:
        return [Song.from_wire(item) for item in items]
    except ValueError as exc:
        raise BadRequestError(f"songs: {exc}") from None


def player_routes(player: Player, shutdown: anyio.Event | None = None) -> list[Route]:
    """``shutdown`` ends the state watches (a never-set event when the caller has none)."""
    ending = shutdown if shutdown is not None else anyio.Event()

    async def current_state() -> dict[str, Any]:
        view = player.state().wire()
        lyric = None
        if player.queue.current is not None:
            try:
                lyrics = await player.lyrics()
            except MfxError:
                lyrics = None
            line = lyrics.line_at(player.position()) if lyrics is not None else None
            lyric = line.wire() if line is not None else None
        view["lyric"] = lyric
        return view

    async def changes() -> Any:
        while True:
            version = player.state().version  # taken first: a change while answering is seen
            yield orjson.dumps({"type": "STATE", "object": await current_state()}) + b"\n"
            await player.wait_for(lambda view, seen=version: view.version != seen)

    async def state(request: Request) -> Any:
        if request.query_params.get("watch") in ("true", "1"):
            return StreamingResponse(until_shutdown(changes(), ending, buffer=1),
                                     media_type="application/json;stream=watch")
        return await current_state()

    async def search(request: Request) -> Any:
        q = request.query_params
        result = await player.search(q.get("q", ""), q.get("type", "song"),
                                     limit=_int(q.get("limit", 30), "limit"),
                                     offset=_int(q.get("offset", 0), "offset"), source=q.get("source"))
        return result.wire() | {"answered": result.answered, "timedOut": result.timed_out,
                                "failed": result.failed}

    async def library(request: Request) -> Any:
        q = request.query_params
        result = await player.library(q.get("type", "song"), limit=_int(q.get("limit", 100), "limit"),
                                      offset=_int(q.get("offset", 0), "offset"), source=q.get("source"))
        return result.wire() | {"answered": result.answered, "timedOut": result.timed_out,
                                "failed": result.failed}

    async def playlists(request: Request) -> Any:
        return [p.wire() for p in await player.playlists(request.query_params.get("source"))]

    async def playlist(request: Request) -> Any:
        found = await player.playlist(request.path_params["name"], request.query_params.get("source"))
        return found.wire()

    async def lyrics(request: Request) -> Any:
        song_id = request.query_params.get("songId")
        song = None
        if song_id:
            song = next((s for s in player.queue.songs if s.id == song_id), None)
            if song is None:
                raise BadRequestError(f"songId {song_id!r} is not in the queue")
        found = await player.lyrics(song)
        return found.wire() if found is not None else None

    async def play(request: Request) -> Any:
        body = await _body(request)
        if "playlist" in body:
            found = await player.playlist(_text(body["playlist"], "playlist") or "",
                                          _text(body.get("source"), "source", optional=True))
            if not found.songs:
                raise BadRequestError(f"playlist {found.name!r} has no playable songs")
            await player.replace(found.songs)
            await player.play(0)
        elif "songs" in body:
            indices = await player.add(_songs(body), next=True)
            await player.play(indices[0])
        else:
            index = body.get("index")
            await player.play(None if index is None else _int(index, "index"))
        return player.state().wire()

    def simple(action: Callable[[], Awaitable[None]]) -> Handler:
        async def handler(request: Request) -> Any:
            await action()
            return player.state().wire()
        return handler

    async def seek(request: Request) -> Any:
        body = await _body(request)
        if "offset" in body:  # relative: resolved by the player against its position now
            await player.seek_by(_number(body["offset"], "offset"))
        else:
            await player.seek(_number(body.get("seconds"), "seconds"))
        return player.state().wire()

    async def queue(request: Request) -> Any:
        if request.method == "POST":
            body = await _body(request)
            await player.add(_songs(body), next=bool(body.get("next", False)))
        elif request.method == "DELETE":
            await player.clear()
        view = player.state()
        return {"songs": [s.wire() for s in view.queue], "currentIndex": view.current_index}

    async def queue_item(request: Request) -> Any:
        song = await player.remove(_int(request.path_params["index"], "index"))
        return song.wire()

    async def queue_move(request: Request) -> Any:
        body = await _body(request)
        await player.move(_int(body.get("from"), "from"), _int(body.get("to"), "to"))
        view = player.state()
        return {"songs": [s.wire() for s in view.queue], "currentIndex": view.current_index}

    async def mode(request: Request) -> Any:
        await player.set_mode((await _body(request)).get("mode", ""))
        return player.state().wire()

    async def volume(request: Request) -> Any:
        body = await _body(request)
        if "change" in body:  # relative: added under the player's lock, so steps never get lost
            await player.change_volume(_int(body["change"], "change"))
        else:
            await player.set_volume(body.get("volume"))
        return player.state().wire()

    async def mute(request: Request) -> Any:
        value = (await _body(request)).get("muted")
        if not isinstance(value, bool):
            raise BadRequestError(f"muted: expected true or false, got {value!r}")
        await player.set_mute(value)
        return player.state().wire()

    table: list[tuple[str, Handler, list[str]]] = [
        ("/state", state, ["GET"]),
        ("/search", search, ["GET"]),
        ("/library", library, ["GET"]),
        ("/playlists", playlists, ["GET"]),
        ("/playlists/{name}", playlist, ["GET"]),
        ("/lyrics", lyrics, ["GET"]),
        ("/play", play, ["POST"]),
        ("/pause", simple(player.pause), ["POST"]),
        ("/resume", simple(player.resume), ["POST"]),
        ("/stop", simple(player.stop), ["POST"]),
        ("/next", simple(player.next), ["POST"]),
        ("/previous", simple(player.previous), ["POST"]),
        ("/seek", seek, ["POST"]),
        ("/queue", queue, ["GET", "POST", "DELETE"]),
        ("/queue/move", queue_move, ["POST"]),
        ("/queue/{index}", queue_item, ["DELETE"]),
        ("/mode", mode, ["PUT"]),
        ("/volume", volume, ["PUT"]),
        ("/mute", mute, ["PUT"]),
    ]
    return [Route(PREFIX + path, _endpoint(handler), methods=methods) for path, handler, methods in table]


# --- the daemon service ------------------------------------------------------------------------


def make_player_service(sink: SinkLookup | None = None) -> Service:
    """The player as a daemon service, playing through the daemon's audio engine; ``sink``
    overrides which engine sink it plays on (default: the default sink of the AudioSink
    controller's ``SinkRegistry``)."""

    async def player_service(context: DaemonContext, group: TaskGroup) -> None:
        if context.service_registry is None or context.audio_engine is None:
            raise RuntimeError("the player service needs the controllers service to run first")
        player = Player.for_home(context.config.home, services=context.service_registry,
                                 sink=sink or (lambda: default_sink(context)), engine=context.audio_engine,
                                 metrics=context.metrics, bus=context.event_bus,
                                 keep_playing=context.config.engine_outlives_daemon)
        context.api.extra_routes.extend(player_routes(player, context.shutdown))
        context.player = player
        await group.start(_run_player, player, context.shutdown)

    return player_service


async def _run_player(player: Player, shutdown: anyio.Event, *,
                      task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
    async with player.running():
        task_status.started()
        await shutdown.wait()


def default_sink(context: DaemonContext) -> str:
    """The name of the sink the player plays on; NoSinkError says why there is none."""
    registry = context.sink_registry
    output = registry.default() if registry is not None else None
    if output is None:
        sinks = context.cache.snapshot().get("AudioSink", {})
        raise NoSinkError(why_no_sink(sinks, registry.default_name if registry is not None else None))
    return output.name


def why_no_sink(sinks: dict[str, Obj], default: str | None) -> str:
    """Why the player has no sink to play to, from the AudioSink objects as they stand, and
    what to do about it."""
    live = {name: obj for name, obj in sinks.items() if not is_deleting(obj)}
    if not live:
        being_deleted = f" (being deleted: {', '.join(sorted(sinks))})" if sinks else ""
        return (f"no AudioSink is applied{being_deleted}: apply one (e.g. `mfx apply -f manifests/`) "
                "and wait for `mfx get sink` to show it Ready")
    name = default if default in live else elect_default(list(live.values())).default
    if name is None:
        verdict = condition(next(iter(live.values())), "Default")
        detail = verdict.get("message") if verdict else f"AudioSinks {', '.join(sorted(live))}, none the default"
        return f"no AudioSink is the default: {detail}"
    ready = condition(live[name], "Ready")
    if ready is None:
        return f"AudioSink {name} is not Ready yet (nothing reported so far); see `mfx describe sink {name}`"
    if ready.get("status") != "True":
        return (f"AudioSink {name} is not Ready: {ready.get('reason')}: {ready.get('message')}; "
                f"see `mfx describe sink {name}`")
    return f"AudioSink {name} is Ready but not open for playing yet; try again, or see `mfx describe sink {name}`"


player_service = make_player_service()
