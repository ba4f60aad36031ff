"""What an engine holds, as a controller that adopts it needs to know."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mfx.engine.api import PlaybackReport, PluginLoad, SinkConfig, TrackRequest


@dataclass(frozen=True)
class EngineSnapshot:
    """What the engine was asked for and holds now: a controller that adopts a running engine
    mirrors it, so that it can bring a new engine back to it after a crash."""

    sinks: Sequence[SinkConfig] = ()
    plugins: Sequence[PluginLoad] = ()
    current: TrackRequest | None = None  # the current track as it was opened
    queued: Sequence[TrackRequest] = ()  # the look-ahead
    processors: Sequence[str] = ()
    fade_seconds: float = 0.005
    playback: PlaybackReport | None = None
