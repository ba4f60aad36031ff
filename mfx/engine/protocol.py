"""The engine's socket protocol: JSON lines over a unix socket.

A request is ``{"id": 7, "method": "seek", "params": {"frame": 48000}}``; its reply is
``{"id": 7, "result": ...}`` or ``{"id": 7, "error": {"reason": "BadRequest", "message": ...}}``
(``id`` null when the request could not be read). The engine pushes events as
``{"event": "TrackStarted", "data": {...}}`` on every connection that said ``subscribe``.
Params and results are the api's dataclasses as ``wire`` encodes them; each method names
its params dataclass and its result type here, for both sides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from mfx.engine import wire
from mfx.engine.api import (
    EngineEvent,
    EngineInfo,
    ErrorReport,
    PlaybackChanged,
    PlaybackIdle,
    PlaybackReport,
    PluginLoad,
    SinkChanged,
    SinkConfig,
    SinkReport,
    TrackFailed,
    TrackInfo,
    TrackRequest,
    TrackStarted,
)
from mfx.engine.snapshot import EngineSnapshot
from mfx.errors import BadRequestError, MfxError, error_from_reason

MAX_LINE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class NoParams:
    pass


@dataclass(frozen=True)
class ConfigureSinkParams:
    config: SinkConfig


@dataclass(frozen=True)
class CloseSinkParams:
    name: str
    drain: bool = True
    drain_seconds: float = 10.0


@dataclass(frozen=True)
class SinkNameParams:
    name: str


@dataclass(frozen=True)
class LoadPluginsParams:
    plugins: Sequence[PluginLoad]


@dataclass(frozen=True)
class OpenTrackParams:
    request: TrackRequest


@dataclass(frozen=True)
class PlayParams:
    label: str
    sink: str | None = None
    paused: bool = False


@dataclass(frozen=True)
class LabelParams:
    label: str


@dataclass(frozen=True)
class SeekParams:
    frame: int


@dataclass(frozen=True)
class VolumeParams:
    volume: float
    muted: bool


@dataclass(frozen=True)
class ProcessorsParams:
    names: Sequence[str]


@dataclass(frozen=True)
class FadeParams:
    seconds: float


@dataclass(frozen=True)
class ShutdownParams:
    drain: bool = False
    drain_seconds: float = 10.0


@dataclass(frozen=True)
class Method:
    params: type
    result: Any  # a type hint; None: the method returns nothing


METHODS: dict[str, Method] = {
    "hello": Method(NoParams, EngineInfo),
    "subscribe": Method(NoParams, None),  # push every event on this connection from now on
    "configure_sink": Method(ConfigureSinkParams, SinkReport),
    "close_sink": Method(CloseSinkParams, None),
    "sink_report": Method(SinkNameParams, SinkReport),
    "sink_reports": Method(NoParams, list[SinkReport]),
    "load_plugins": Method(LoadPluginsParams, dict[str, ErrorReport | None]),
    "open_track": Method(OpenTrackParams, TrackInfo),
    "play": Method(PlayParams, None),
    "enqueue": Method(LabelParams, None),
    "drop_queued": Method(NoParams, list[str]),  # the labels dropped
    "pause": Method(NoParams, PlaybackReport),
    "resume": Method(NoParams, PlaybackReport),
    "seek": Method(SeekParams, PlaybackReport),
    "stop": Method(NoParams, None),
    "set_volume": Method(VolumeParams, None),
    "set_processors": Method(ProcessorsParams, None),
    "set_fade": Method(FadeParams, None),
    "playback": Method(NoParams, PlaybackReport),
    "snapshot": Method(NoParams, EngineSnapshot),
    "shutdown": Method(ShutdownParams, None),
}

EVENTS: dict[str, type] = {cls.__name__: cls for cls in
                           (TrackStarted, TrackFailed, PlaybackIdle, PlaybackChanged, SinkChanged)}


@dataclass(frozen=True)
class Request:
    id: int | str | None
    method: str
    params: Any  # the method's params dataclass


def parse_line(line: bytes) -> dict[str, Any]:
    try:
        message = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(f"not JSON: {exc}; send one JSON object per line") from None
    if not isinstance(message, dict):
        raise BadRequestError(f"expected a JSON object per line, got {type(message).__name__}")
    return message


def parse_request(message: dict[str, Any]) -> Request:
    ident = message.get("id")
    if ident is not None and (isinstance(ident, bool) or not isinstance(ident, int | str)):
        raise BadRequestError(f"id: expected an integer or a string, got {ident!r:.40}")
    method = message.get("method")
    if not isinstance(method, str):
        raise BadRequestError(f"method: expected a string, got {method!r:.40}")
    spec = METHODS.get(method)
    if spec is None:
        raise BadRequestError(f"unknown method {method!r}; methods: {', '.join(METHODS)}")
    params = message.get("params") or {}
    return Request(ident, method, wire.decode(spec.params, params, "params"))


def request_line(ident: int, method: str, params: Any) -> bytes:
    return _line({"id": ident, "method": method, "params": wire.encode(params)})


def reply_line(ident: int | str | None, result: Any) -> bytes:
    return _line({"id": ident, "result": wire.encode(result)})


def error_line(ident: int | str | None, error: MfxError) -> bytes:
    return _line({"id": ident, "error": {"reason": error.reason, "message": str(error)}})


def event_line(event: EngineEvent) -> bytes:
    return _line({"event": type(event).__name__, "data": wire.encode(event)})


def decode_result(method: str, value: Any) -> Any:
    kind = METHODS[method].result
    return None if kind is None else wire.decode(kind, value, "result")


def decode_error(error: Any) -> MfxError:
    if isinstance(error, dict) and isinstance(error.get("reason"), str):
        return error_from_reason(error["reason"], str(error.get("message", "")))
    return MfxError(f"the engine answered with a malformed error: {error!r:.200}")


def decode_event(name: str, data: Any) -> EngineEvent | None:
    """The event, or None for an event this side does not know (a newer engine)."""
    kind = EVENTS.get(name)
    return None if kind is None else wire.decode(kind, data, name)


def _line(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message) + b"\n"
