"""What a sink reports about itself: its state, and a snapshot of its counters that is
safe to hand to another thread."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from mfx.audio.alsa_device import DeviceParams
from mfx.errors import DeviceBusyError, DeviceLostError, MfxError, UnsupportedFormatError


class SinkState(enum.StrEnum):
    NEW = "New"  # constructed, device not opened yet
    OPEN = "Open"
    DEVICE_LOST = "DeviceLost"
    DEVICE_BUSY = "DeviceBusy"
    CLOSED = "Closed"
    ERROR = "Error"


@dataclass(frozen=True)
class SinkStatus:
    """A consistent snapshot of a sink, safe to hand to another thread."""

    name: str
    state: SinkState
    reason: str  # CamelCase, as in a condition: Opened, DeviceLost, DeviceNotFound, ...
    message: str
    requested: DeviceParams
    actual: DeviceParams | None
    frames_written: int = 0  # frames the device accepted, silence included
    xruns: int = 0
    silence_frames: int = 0
    write_errors: dict[str, int] = field(default_factory=dict)  # errno name -> count
    reopens: int = 0
    buffer_fill: float = 0.0  # of the ring buffer, 0..1
    latency_seconds: float = 0.0  # device buffer + what waits in the ring: how far output lags a write
    # Pacing and idling.
    paced: bool = False  # the sink paces a device that does not pace itself (null, file tap)
    idle: bool = True  # the writer writes nothing: no audio since the open, or the producer stopped
    idles: int = 0  # times the writer went idle after playing (pause, stop, end of the queue)
    idle_restarts: int = 0  # device ran dry while idle and was restarted: expected, not an xrun
    played_frames: int = 0  # frames the device has played (paced: by its clock; else as written)
    device_delay_frames: int = 0  # frames the device holds, not played yet (paced devices)
    playing_since: float | None = None  # time.monotonic() the first frame since the open played (paced)
    at: float = 0.0  # time.monotonic() of this snapshot
    # Timing, for a person tuning periods.
    xrun_causes: dict[str, int] = field(default_factory=dict)  # XrunCause value -> count
    deadline_misses: int = 0  # periods the writer took longer than a period to come back
    worst_lateness_seconds: float = 0.0
    worst_lateness_periods: float = 0.0  # the same as a share of a period
    period_seconds: float = 0.0
    device_latency_seconds: float = 0.0  # the device buffer's length


StateCallback = Callable[[SinkStatus], None]

_STATE_FOR_ERROR: list[tuple[type[MfxError], SinkState]] = [
    (DeviceBusyError, SinkState.DEVICE_BUSY),
    (DeviceLostError, SinkState.DEVICE_LOST),
    (UnsupportedFormatError, SinkState.ERROR),
]


def state_for(error: MfxError) -> SinkState:
    """The state a failure to open or write puts the sink in."""
    for kind, state in _STATE_FOR_ERROR:
        if isinstance(error, kind):
            return state
    return SinkState.ERROR
