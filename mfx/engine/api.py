"""The audio engine's interface: what the daemon asks of the engine process and what it reports.

The engine is a process of its own per node (``python -m mfx.engine``): it owns every open
PCM, decodes, runs the AudioProcessor chain, applies volume and fades and writes to the
devices from a real-time thread. The daemon drives it through :class:`AudioEngine` (the
client in ``mfx.engine.client``) over a unix socket under ``$MFX_HOME/engine``; nothing the
daemon does (its GIL, its garbage collector, a blocked event loop) reaches the audio.

The daemon keeps the queue, the play modes, history and persistence; the engine gets the
track to play and the one after it (the gapless look-ahead), by file path and the name of the
Codec plugin that decodes it, and reports position, state and errors back.

Positions are frames of the current track as played at the device, stamped with the
engine's ``time.monotonic()`` (CLOCK_MONOTONIC is one clock for every process on the
machine, so the daemon extrapolates a report exactly with its own ``time.monotonic()``).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mfx.audio.alsa_device import DeviceParams
from mfx.audio.paced_device import Pacing

PROTOCOL_VERSION = 1

__all__ = ["Pacing"]  # re-exported: the daemon names pacing through this interface


class EngineMode(enum.StrEnum):
    """Where a daemon runs its audio engine."""

    PROCESS = "process"  # a process of its own, supervised, outliving the daemon if asked (mfx serve)
    IN_PROCESS = "in-process"  # inside the daemon (tests that inject device faults, embedders)


class PlaybackState(enum.StrEnum):
    IDLE = "Idle"  # nothing to play
    PLAYING = "Playing"
    PAUSED = "Paused"
    STOPPED = "Stopped"


class PluginRole(enum.StrEnum):
    CODEC = "Codec"
    AUDIO_PROCESSOR = "AudioProcessor"


@dataclass(frozen=True)
class EngineInfo:
    """Who answered on the socket (the ``hello`` reply)."""

    pid: int
    version: str  # mfx's version
    protocol: int  # PROTOCOL_VERSION of the engine
    started_at: float  # wall clock (time.time()) of the engine's start
    realtime: str  # the writer threads' scheduling class, e.g. "SCHED_FIFO/70" or "SCHED_OTHER"
    home: str  # the $MFX_HOME it serves


@dataclass(frozen=True)
class SinkConfig:
    name: str  # the AudioSink's name
    params: DeviceParams
    pacing: Pacing = Pacing.AUTO
    default: bool = False  # the sink the player plays on


@dataclass(frozen=True)
class SinkReport:
    """A sink as the engine sees it; what `mfx get sink -o wide` and the metrics show."""

    name: str
    state: str  # mfx.audio.sink_status.SinkState value
    reason: str  # CamelCase, as in a condition
    message: str
    requested: DeviceParams
    actual: DeviceParams | None
    paced: bool  # the engine paces this device against its clock
    frames_written: int = 0
    silence_frames: int = 0
    xruns: int = 0
    xrun_causes: Mapping[str, int] = field(default_factory=dict)  # e.g. {"writerLate": 1, "deviceStall": 0}
    write_errors: Mapping[str, int] = field(default_factory=dict)
    reopens: int = 0
    buffer_fill: float = 0.0  # of the engine's ring, 0..1
    period_seconds: float = 0.0
    latency_seconds: float = 0.0  # device buffer + engine ring ahead of the device
    deadline_misses: int = 0  # writer wake-ups later than one period
    worst_lateness_seconds: float = 0.0


@dataclass(frozen=True)
class PluginLoad:
    """A plugin the engine loads into its own process (dynamic_library plugins only)."""

    name: str
    role: PluginRole
    directory: str
    entry_point: str
    config: Mapping[str, Any]
    generation: int  # the PluginManifest's generation: a new one reloads


@dataclass(frozen=True)
class TrackRequest:
    label: str  # the daemon's name for this play of a track, unique per engine life
    path: str
    codec: str  # the name of a loaded Codec plugin
    start_frame: int = 0
    tag: Mapping[str, Any] = field(default_factory=dict)  # opaque to the engine (song id, ...)


@dataclass(frozen=True)
class TrackInfo:
    label: str
    rate: int
    channels: int
    frames: int | None  # total frames, when the codec knows


@dataclass(frozen=True)
class PlaybackReport:
    state: PlaybackState
    label: str | None  # the current track
    tag: Mapping[str, Any]
    frame: int  # of the current track, played at the device at ``at``
    rate: int  # the current track's sample rate
    at: float  # the engine's time.monotonic() of ``frame``
    queued: Sequence[str] = ()  # labels after the current one (the look-ahead)
    sink: str | None = None
    volume: float = 1.0
    muted: bool = False
    processors: Sequence[str] = ()

    def frame_at(self, now: float) -> int:
        """The frame played at ``now`` (a time.monotonic() of any process on this machine)."""
        if self.state is not PlaybackState.PLAYING:
            return self.frame
        return self.frame + max(0, round((now - self.at) * self.rate))


@dataclass(frozen=True)
class ErrorReport:
    """An error as it crosses the socket: the mfx error class's reason and its message."""

    reason: str  # MfxError.reason, e.g. "DecodeFailed"
    message: str


# --- events the engine pushes -------------------------------------------------------------------

@dataclass(frozen=True)
class TrackStarted:
    label: str
    tag: Mapping[str, Any]


@dataclass(frozen=True)
class TrackFailed:
    """A track failed while playing (decode error mid-file); the engine goes on to the next."""

    label: str
    tag: Mapping[str, Any]
    error: ErrorReport


@dataclass(frozen=True)
class PlaybackIdle:
    """The engine ran out of audio: the last track ended (error None) or playback failed."""

    error: ErrorReport | None
    label: str | None = None  # the track that was playing


@dataclass(frozen=True)
class PlaybackChanged:
    report: PlaybackReport


@dataclass(frozen=True)
class SinkChanged:
    report: SinkReport


@dataclass(frozen=True)
class EngineRestarted:
    """The supervisor started a new engine after the old one exited (or adopted one)."""

    info: EngineInfo
    reason: str  # "Crashed", "Adopted", "Started"
    message: str


EngineEvent = TrackStarted | TrackFailed | PlaybackIdle | PlaybackChanged | SinkChanged | EngineRestarted


class AudioEngine(Protocol):
    """The daemon's handle on the engine process (``mfx.engine.client.EngineClient``).

    Errors come back as the mfx error they were in the engine (DecodeError,
    DeviceNotFoundError, UnsupportedFormatError, PluginLoadError, BadRequestError, ...);
    an engine that cannot be reached raises ``AudioError`` with what to do next.
    """

    @property
    def info(self) -> EngineInfo: ...

    # sinks (the AudioSink controller)
    async def configure_sink(self, config: SinkConfig) -> SinkReport:
        """Open the sink, or reopen it if its parameters changed; unchanged: no gap, no reopen."""
        ...

    async def close_sink(self, name: str, *, drain: bool = True, drain_seconds: float = 10.0) -> None: ...

    async def sink_report(self, name: str) -> SinkReport: ...

    async def sink_reports(self) -> list[SinkReport]: ...

    # plugins (the player, from the Ready Codec and AudioProcessor plugins)
    async def load_plugins(self, plugins: Sequence[PluginLoad]) -> dict[str, ErrorReport | None]:
        """Make the engine's plugin set exactly ``plugins``: loads new ones and new
        generations, unloads the rest; per name, None or why it failed to load."""
        ...

    # playback (the player)
    async def open_track(self, request: TrackRequest) -> TrackInfo:
        """Open and decode the first block ahead, so a file that cannot be decoded fails here."""
        ...

    async def play(self, label: str, *, sink: str | None = None, paused: bool = False) -> None:
        """Play an opened track now on ``sink`` (None: the default sink), dropping what played
        and the look-ahead."""
        ...

    async def enqueue(self, label: str) -> None:
        """Play an opened track right after the current one, gapless."""
        ...

    async def drop_queued(self) -> list[str]:
        """Forget the look-ahead; the labels dropped (one that started meanwhile is not among them)."""
        ...

    async def pause(self) -> PlaybackReport: ...

    async def resume(self) -> PlaybackReport: ...

    async def seek(self, frame: int) -> PlaybackReport: ...

    async def stop(self) -> None: ...

    async def set_volume(self, volume: float, muted: bool) -> None: ...

    async def set_processors(self, names: Sequence[str]) -> None: ...

    async def set_fade(self, seconds: float) -> None: ...

    async def playback(self) -> PlaybackReport: ...

    def events(self) -> AsyncIterator[EngineEvent]:
        """Every event from now on, across engine restarts (each restart is an event)."""
        ...
