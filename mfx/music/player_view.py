"""What the player reports: its state as the API shows it, and why a song was skipped."""

from __future__ import annotations

from mfx.api.music import MusicModel, PlayerState
from mfx.errors import (
    AudioError,
    DecodeError,
    MfxError,
    NotFoundError,
    PluginError,
    UnsupportedFormatError,
)


class TrackFailure(MusicModel):
    song_id: str
    title: str
    reason: str  # CamelCase: DecodeFailed, CircuitOpen, DeadlineExceeded, UnsupportedFormat...
    message: str
    time: float  # unix seconds
    skipped: bool = True  # False: playback paused on the song (e.g. its sink went away)


class PlayerView(PlayerState):
    """``PlayerState`` plus what only the running player knows."""

    current_index: int | None = None
    duration_seconds: float | None = None
    last_error: TrackFailure | None = None
    processors: list[str] = []
    tracks_started: int = 0  # songs started since the player started
    engine_restarts: int = 0  # times the audio engine was restarted under the player
    version: int = 0  # increases on every change (for waiting on the next one)


# Failures that cost one song only: the player records them and moves on to the next.
SKIPPABLE = (PluginError, DecodeError, UnsupportedFormatError, NotFoundError, AudioError)


def failure_reason(error: BaseException) -> str:
    if isinstance(error, MfxError):
        return error.reason
    return type(error).__name__
