"""How far each stream a sink plays has got: the sink's own account of playback position.

A producer opens a stream on the sink (a ``StreamId``) for each run of audio it plays (a
track from its start, or from a seek or a resume) and tags the frames it writes with it.
The writer thread credits a stream with the frames it takes for the device. The account
lives in the sink, not in its ring buffer, so a reconfigure (which replaces the ring) does
not reset it; frames the reconfigure drops count as passed, since the producer goes on
after them. When the audio path moves into an engine process, this is what it reports.

Frames taken are not yet heard: a device holds up to a buffer of them. When the writer says
at which device frame (the count of frames written to the device, silence included) what it
takes will be written, the clock keeps the stream's recent runs in those terms, and a
position asked with the device frame playing now also says how much of the stream the
device has actually played (``frames_at_device``).
"""

from __future__ import annotations

import collections
import enum
import itertools
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from mfx.audio.ring_buffer import FrameRingBuffer, StreamId

# Streams kept after they were opened; older ones are forgotten (reported UNKNOWN). A player
# asks about its current stream only, so this bounds memory without losing anything it needs.
KEEP_STREAMS = 256
# Runs of a stream kept in device frames: more than any device buffer holds periods.
KEEP_RUNS = 256


class StreamState(enum.StrEnum):
    STARTING = "Starting"  # opened; none of its audio played yet
    PLAYING = "Playing"  # audio of it is buffered in the sink
    IDLE = "Idle"  # some played, none buffered now (paused, cut, or the producer is behind)
    ENDED = "Ended"  # its producer ended it and all of it has played
    UNKNOWN = "Unknown"  # not opened on this sink, or forgotten


@dataclass(frozen=True)
class StreamPosition:
    """One stream's progress, consistent with the sink's buffer at one instant."""

    stream: StreamId
    state: StreamState
    frames_played: int = 0  # frames (at the sink's rate) the writer took for the device
    seconds_played: float = 0.0  # the same in seconds, at the rate each frame played
    frames_buffered: int = 0  # in the sink's ring, not played yet
    frames_at_device: int = 0  # of frames_played, those the device has played (as asked)


@dataclass
class _Progress:
    frames: int = 0
    seconds: float = 0.0
    ended: bool = False
    runs: collections.deque[tuple[int, int]] = field(  # (first device frame, frames), oldest first
        default_factory=lambda: collections.deque(maxlen=KEEP_RUNS))

    def not_heard(self, played: int) -> int:
        """Frames of the recent runs at or after device frame ``played``."""
        return sum(max(0, start + frames - max(start, played)) for start, frames in self.runs)


class StreamClock:
    """Thread-safe. Its lock also makes taking frames from a ring and crediting them one
    step, so a reader never sees frames that are neither buffered nor played."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._streams: collections.OrderedDict[StreamId, _Progress] = collections.OrderedDict()

    def open(self) -> StreamId:
        with self._lock:
            stream = next(self._ids)
            self._streams[stream] = _Progress()
            while len(self._streams) > KEEP_STREAMS:
                self._streams.popitem(last=False)
            return stream

    def end(self, stream: StreamId) -> None:
        """Its producer writes no more of it."""
        with self._lock:
            progress = self._streams.get(stream)
            if progress is not None:
                progress.ended = True

    def take(self, ring: FrameRingBuffer, frames: int, rate: int, at: int | None = None) -> np.ndarray:
        """Read up to ``frames`` from ``ring`` and credit them to their streams as played;
        ``at``: the device frame the first of them will be written as."""
        with self._lock:
            out, owners = ring.read_owned(frames)
            self._credit(owners, rate, at)
            return out

    def pass_over(self, ring: FrameRingBuffer, rate: int) -> None:
        """Credit everything ``ring`` still holds as played and empty it: a reconfigure drops
        it, and the producer carries on after it."""
        with self._lock:
            _, owners = ring.read_owned(ring.fill)
            self._credit(owners, rate)

    def position(self, stream: StreamId, ring: FrameRingBuffer | None,
                 played: int | None = None) -> StreamPosition:
        """``played``: the device frame playing now (None: count frames taken as heard)."""
        with self._lock:
            progress = self._streams.get(stream)
            if progress is None:
                return StreamPosition(stream, StreamState.UNKNOWN)
            buffered = ring.buffered_of(stream) if ring is not None else 0
            if buffered:
                state = StreamState.PLAYING
            elif progress.ended:
                state = StreamState.ENDED
            elif progress.frames:
                state = StreamState.IDLE
            else:
                state = StreamState.STARTING
            heard = progress.frames - (progress.not_heard(played) if played is not None else 0)
            return StreamPosition(stream, state, progress.frames, progress.seconds, buffered, heard)

    def _credit(self, owners: Iterable[tuple[StreamId | None, int]], rate: int,
                at: int | None = None) -> None:
        for stream, frames in owners:
            progress = self._streams.get(stream) if stream is not None else None
            if progress is not None:
                progress.frames += frames
                progress.seconds += frames / rate
                if at is not None:
                    last = progress.runs[-1] if progress.runs else None
                    if last is not None and last[0] + last[1] == at:
                        progress.runs[-1] = (last[0], last[1] + frames)
                    else:
                        progress.runs.append((at, frames))
            if at is not None:
                at += frames
