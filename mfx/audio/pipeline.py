"""From decoded blocks to the sink's ring buffer: channels, rate, processors, volume, format.

Per block, in this order: channel mapping to the sink's count, resampling to the sink's rate,
every processor in list order (``process(block, sample_rate) -> block``, float32 frames x
channels), volume (ramped over one period) and mute, the fade of a pause/seek/track change,
then conversion to the sink format and a write into the ring.

``run()`` is the producer loop; it blocks (ring writes wait for room), so the player calls
it from a worker thread (``anyio.to_thread.run_sync``). Every other method is thread-safe
and takes effect at the next block: pause, seek, skip and stop fade out the audio already
in the ring (~5 ms) and drop the rest, so they are heard within the device latency, and the
audio that follows fades in. A track that ends is followed by the next queued one in the
same stream of blocks (gapless); when both share a sample rate they also share the
resampler's state, so there is no seam.

Position: each run of a track's audio (from its start, a seek or a resume) is written as a
stream of its own on the sink (``SinkEngine.open_stream``); the sink reports how much of it
has played. ``on_track_start`` hands over a track's first stream; ``seek`` and ``resume``
return the stream that follows them.

Positions in frames are exact: ``pause`` returns the track frame it took effect at (every
frame before it was or is being played, the fade-out included) and ``resume`` goes on with
exactly that frame; ``seek_frame`` lands on the frame asked; ``position_frame`` is the track
frame the device plays now. With ``fade_seconds=0`` there are no fades at all, so what the
device gets is the track's samples, cut and joined at those frames.

The sink is told when no audio is coming (``SinkEngine.set_feeding``): on pause, stop and at
the end of the queue it plays what it holds and then writes nothing, not silence.
"""

from __future__ import annotations

import collections
import enum
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from mfx.audio import dsp
from mfx.audio.alsa_device import DeviceParams
from mfx.audio.formats import TpdfDither, float_to_pcm, pcm_to_float
from mfx.audio.ring_buffer import FrameRingBuffer, StreamId
from mfx.audio.sink import SinkEngine
from mfx.errors import AudioError


class DecodedStream(Protocol):
    """What a codec's ``open(path)`` returns (see ``mfx.sdk``'s Codec)."""

    @property
    def samplerate(self) -> int: ...

    @property
    def channels(self) -> int: ...

    def read(self, frames: int) -> np.ndarray:
        """Up to ``frames`` float32 frames, shape (n, channels); fewer only at the end."""
        ...

    def seek(self, frame: int) -> object: ...


class Processor(Protocol):
    def process(self, block: np.ndarray, sample_rate: int) -> np.ndarray: ...


class PipelineState(enum.StrEnum):
    IDLE = "Idle"  # nothing to play
    PLAYING = "Playing"
    PAUSED = "Paused"
    STOPPED = "Stopped"


@dataclass
class Track:
    stream: DecodedStream
    label: str = ""


@dataclass(frozen=True)
class PlayedPosition:
    """Where the device is: the track it plays and the frame of it (at the track's rate)."""

    label: str
    frame: int
    rate: int
    at: float = 0.0  # time.monotonic() when the device was there


@dataclass(frozen=True)
class _Anchor:
    """A segment as written: its sink stream starts at ``start`` of track ``label``."""

    label: str
    stream: StreamId
    start: int
    rate: int

# Segments remembered for positions: the device plays at most a ring and a device buffer
# behind the producer, which is a few segments even with very short tracks.
KEEP_ANCHORS = 64


class Pipeline:
    def __init__(self, sink: SinkEngine, processors: Iterable[Processor] = (), *,
                 volume_db: float = 0.0, block_frames: int = 4096,
                 dither: TpdfDither | None = None, fade_seconds: float = dsp.FADE_SECONDS,
                 on_track_start: Callable[[str, StreamId], None] | None = None) -> None:
        self.sink = sink
        self.block_frames = int(block_frames)
        self.dither = dither
        self.fade_seconds = fade_seconds
        self.on_track_start = on_track_start
        self._processors: list[Processor] = list(processors)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: collections.deque[Track] = collections.deque()
        self._current: Track | None = None
        self._state = PipelineState.IDLE
        self._seek_to: int | None = None  # source frame of the current track
        self._fade_in_pending = False
        self._volume_db = volume_db
        self._muted = False
        # Producer-side state, rebuilt when the sink's parameters change.
        self._params: DeviceParams | None = None
        self._ring: FrameRingBuffer | None = None
        self._volume: dsp.Volume | None = None
        self._fader: dsp.Fader | None = None
        self._resampler: dsp.Resampler | None = None
        # Position bookkeeping of the current track (for pause/resume).
        self._segment_start = 0  # source frame where the current segment began
        self._segment: StreamId | None = None  # the sink stream the segment is written as
        self._paused_frame: int | None = None  # the track frame a pause took effect at
        # Segments written, newest last: the device may still play an older one (the end of
        # the previous track while the next one is produced, gapless).
        self._anchors: collections.deque[_Anchor] = collections.deque(maxlen=KEEP_ANCHORS)

    # --- controls (any thread) ------------------------------------------------------------

    @property
    def state(self) -> PipelineState:
        with self._lock:
            return self._state

    @property
    def current(self) -> str | None:
        with self._lock:
            return self._current.label if self._current is not None else None

    @property
    def processors(self) -> list[Processor]:
        with self._lock:
            return list(self._processors)

    def set_processors(self, processors: Sequence[Processor]) -> None:
        with self._lock:
            self._processors = list(processors)

    def enqueue(self, stream: DecodedStream, label: str = "") -> None:
        """Play ``stream`` after what is queued, without a gap."""
        with self._wake:
            self._queue.append(Track(stream, label))
            if self._state in (PipelineState.IDLE, PipelineState.STOPPED):
                self._state = PipelineState.PLAYING
            self._wake.notify_all()

    def play(self, stream: DecodedStream, label: str = "") -> None:
        """Replace the queue with ``stream`` and start it now (a faded track change)."""
        with self._wake:
            playing = self._current is not None
            self._queue.clear()
            self._queue.append(Track(stream, label))
            if playing:
                self._cut()
                self._current = None
            self._seek_to = self._paused_frame = None  # a pause's or seek's target was the old track's
            self._state = PipelineState.PLAYING
            self._wake.notify_all()

    def skip(self) -> None:
        """End the current track now (faded) and continue with the next one."""
        with self._wake:
            if self._current is None:
                return
            self._cut()
            self._current = None
            self._seek_to = self._paused_frame = None
            self._wake.notify_all()

    @property
    def paused_frame(self) -> int | None:
        """The frame of the current track a pause took effect at (resume plays it first);
        None unless paused."""
        with self._lock:
            return self._paused_frame if self._state is PipelineState.PAUSED else None

    def pause(self) -> int | None:
        """Fade out and hold; returns the track frame the pause took effect at (None when
        not playing, or no track is current)."""
        with self._wake:
            if self._state is not PipelineState.PLAYING:
                return None
            self._cut()
            # A seek or resume not applied yet: nothing of its segment was written, so the
            # pending target stands. Otherwise what of this segment played or is still
            # buffered (the cut's fade-out) was (or is about to be) heard: resume after it.
            if (self._seek_to is None and self._current is not None and self._params is not None
                    and self._segment is not None):
                heard = self.sink.stream_position(self._segment)
                self._seek_to = self._segment_start + self._to_source(heard.frames_played + heard.frames_buffered)
            self._paused_frame = self._seek_to if self._current is not None else None
            self._state = PipelineState.PAUSED
            self.sink.set_feeding(False)
            self._wake.notify_all()
            return self._paused_frame

    def position_frame(self) -> int | None:
        """The frame the device plays now of the track it plays (``played_position``)."""
        played = self.played_position()
        return played.frame if played is not None else None

    def played_position(self) -> PlayedPosition | None:
        """The track the device plays now and the frame of it: the pause's frame while
        paused, a seek's target until its audio plays, and after a track was produced to its
        end, that track until the next one reaches the device. None before any audio."""
        with self._lock:
            current = self._current
            if current is not None and (self._seek_to is not None or self._state is PipelineState.PAUSED):
                frame = self._paused_frame if self._state is PipelineState.PAUSED else self._seek_to
                if frame is not None:
                    return PlayedPosition(current.label, frame, current.stream.samplerate, time.monotonic())
            if not self._anchors or self._params is None:
                return None
            sink_rate = self._params.rate
            anchors = list(self._anchors)
            for index in range(len(anchors) - 1, -1, -1):
                anchor = anchors[index]
                heard = self.sink.stream_position(anchor.stream).frames_at_device
                if heard or index == 0:
                    for _ in range(index):  # older segments are all played
                        self._anchors.popleft()
                    frames = heard if anchor.rate == sink_rate else round(heard * anchor.rate / sink_rate)
                    return PlayedPosition(anchor.label, anchor.start + frames, anchor.rate, time.monotonic())
            return None

    def set_fade_seconds(self, seconds: float) -> None:
        """The length of the fades of pause, seek and track changes; 0 turns them off."""
        with self._lock:
            self.fade_seconds = max(0.0, float(seconds))
            if self._params is not None:
                self._fader = dsp.Fader(self._params.rate, self.fade_seconds)

    def resume(self) -> StreamId | None:
        """Go on from the pause; returns the sink stream the rest of the track is written as
        (None when not paused)."""
        with self._wake:
            if self._state is not PipelineState.PAUSED:
                return None
            self._state = PipelineState.PLAYING
            self._fade_in_pending = True
            self._wake.notify_all()
            return self._next_segment()

    def seek(self, seconds: float) -> StreamId | None:
        """Jump within the current track (faded); returns the sink stream the track is written
        as from there (None when no track is current)."""
        with self._wake:
            if self._current is None:
                return None
            return self._seek_locked(round(seconds * self._current.stream.samplerate))

    def seek_frame(self, frame: int) -> StreamId | None:
        """Jump to ``frame`` of the current track (at its own rate): the device plays that
        frame next after the cut's fade. Returns the sink stream the track is written as
        from there (None when no track is current). Paused, it is where resume goes on."""
        with self._wake:
            if self._current is None:
                return None
            return self._seek_locked(frame)

    def _seek_locked(self, frame: int) -> StreamId:
        """``seek_frame`` with the lock held and a track current."""
        self._cut()
        self._seek_to = max(0, int(frame))
        if self._state is PipelineState.PAUSED:
            self._paused_frame = self._seek_to
        self._wake.notify_all()
        return self._next_segment()

    def stop(self) -> None:
        """Fade out, drop everything queued, and make ``run()`` return."""
        with self._wake:
            self._cut()
            self._queue.clear()
            self._current = None
            self._seek_to = self._paused_frame = None
            self._end_segment()
            self._anchors.clear()
            self._state = PipelineState.STOPPED
            self.sink.set_feeding(False)
            self._wake.notify_all()

    def set_volume_db(self, db: float) -> None:
        with self._lock:
            self._volume_db = float(db)
            if self._volume is not None:
                self._volume.set_db(db)

    def set_volume(self, linear: float) -> None:
        self.set_volume_db(dsp.linear_to_db(linear))

    def set_mute(self, muted: bool) -> None:
        with self._lock:
            self._muted = bool(muted)
            if self._volume is not None:
                self._volume.set_mute(muted)

    # --- the producer loop (one worker thread) ------------------------------------------------

    def run(self, *, until_idle: bool = True) -> None:
        """Decode, process and write blocks until stopped, or (``until_idle``) until the queue
        runs out; then the last frames are in the ring (``sink.close(drain=True)`` plays them)."""
        while True:
            with self._wake:
                job = self._next_job(until_idle)
                if job is None:
                    return
                track, generation, new_track = job
                self.sink.set_feeding(True)
                segment = self._segment
                ring = self.sink.ring
                if ring is not self._ring or self.sink.params != self._params:
                    self._rebuild(ring, self.sink.params, track.stream.samplerate)
                self._prepare(track)
                if segment is not None and (not self._anchors or self._anchors[-1].stream != segment):
                    self._anchors.append(_Anchor(track.label, segment, self._segment_start,
                                                 track.stream.samplerate))
                processors = list(self._processors)
            if new_track and self.on_track_start is not None and segment is not None:
                self.on_track_start(track.label, segment)
            block = track.stream.read(self.block_frames)
            finished = len(block) < self.block_frames
            with self._lock:
                following = self._queue[0] if finished and self._queue else None
            # Flush the resampler only when the next track cannot continue its stream.
            assert self._params is not None and self._resampler is not None
            flush = finished and (following is None or following.stream.samplerate != track.stream.samplerate)
            out = self._render(block, track.stream.channels, processors, flush)
            if len(out):
                ring.write(out, generation=generation, stream=segment)
            if finished:
                with self._wake:
                    if self._current is track and ring.generation == generation:
                        self._current = None  # gapless: the loop takes the next track at once
                        self._end_segment()
                        if flush:
                            self._resampler = None

    # --- internals ---------------------------------------------------------------------------

    def _next_job(self, until_idle: bool) -> tuple[Track, int, bool] | None:
        """Wait for something to play (lock held): the track, the ring generation, and
        whether the track starts now; None when ``run`` should return."""
        new_track = False
        while True:
            if self._state is PipelineState.STOPPED:
                self._state = PipelineState.IDLE
                self.sink.set_feeding(False)
                return None
            if self._state is PipelineState.PAUSED:
                self.sink.set_feeding(False)
                self._wake.wait()
                continue
            if self.sink.ring.closed:
                return None
            if self._current is None and self._queue:
                self._current = self._queue.popleft()
                self._start_segment(self._current.stream)
                self._next_segment()
                new_track = True
            if self._current is not None:
                return self._current, self.sink.ring.generation, new_track
            self._state = PipelineState.IDLE
            self.sink.set_feeding(False)  # the queue ran out: nothing more is coming
            if until_idle:
                return None
            self._wake.wait()

    def _prepare(self, track: Track) -> None:
        """Apply a pending seek/resume and the fade-in after a cut (lock held)."""
        assert self._params is not None
        if self._seek_to is not None:
            landed = track.stream.seek(self._seek_to)
            # The frame the codec landed on (it clamps to the track); the target when it
            # does not say, rather than a tell() it may not have.
            self._segment_start = int(landed) if isinstance(landed, int) else self._seek_to
            self._seek_to = None
            self._resampler = None
        if self._resampler is None or self._resampler.in_rate != track.stream.samplerate:
            self._resampler = dsp.Resampler(track.stream.samplerate, self._params.rate, self._params.channels)
        if self._fade_in_pending and self._fader is not None:
            if self.fade_seconds > 0:
                self._fader.fade_in()
            self._fade_in_pending = False

    def _to_source(self, frames: int) -> int:
        """Frames at the sink's rate as frames of the current track (lock held)."""
        assert self._current is not None and self._params is not None
        rate = self._current.stream.samplerate
        return frames if rate == self._params.rate else round(frames * rate / self._params.rate)

    def _start_segment(self, stream: DecodedStream) -> None:
        tell = getattr(stream, "tell", None)
        self._segment_start = int(tell()) if callable(tell) else 0

    def _next_segment(self) -> StreamId:
        """End the sink stream of the segment so far and open the next one (lock held)."""
        self._end_segment()
        self._segment = self.sink.open_stream()
        return self._segment

    def _end_segment(self) -> None:
        if self._segment is not None:
            self.sink.end_stream(self._segment)
            self._segment = None

    def _rebuild(self, ring: FrameRingBuffer, params: DeviceParams, source_rate: int) -> None:
        self._ring = ring
        self._params = params
        self._volume = dsp.Volume(params.period_frames, self._volume_db)
        self._volume.set_mute(self._muted)
        self._volume = self._settled(self._volume, params.period_frames)
        self._fader = dsp.Fader(params.rate, self.fade_seconds)
        self._resampler = dsp.Resampler(source_rate, params.rate, params.channels)

    @staticmethod
    def _settled(volume: dsp.Volume, period: int) -> dsp.Volume:
        # A fresh pipeline starts at its volume, not ramping up to it.
        volume.apply(np.zeros((period, 1), dtype=np.float32))
        return volume

    def _render(self, block: np.ndarray, channels: int, processors: list[Processor],
                flush: bool) -> np.ndarray:
        params = self._params
        assert params is not None and self._resampler is not None
        assert self._volume is not None and self._fader is not None
        block = np.asarray(block, dtype=np.float32).reshape(-1, channels)
        block = dsp.map_channels(block, params.channels)
        block = self._resampler.process(block, last=flush)
        if not len(block):
            return np.zeros((0, params.channels), dtype=params.format.dtype)
        for processor in processors:
            block = np.ascontiguousarray(block, dtype=np.float32)
            result = processor.process(block, params.rate)
            out = np.asarray(result if result is not None else block, dtype=np.float32)
            if out.shape != block.shape:
                raise AudioError(
                    f"processor {type(processor).__name__} returned shape {out.shape} for a block "
                    f"of shape {block.shape}: process() must keep frames and channels")
            block = out
        with self._lock:
            block = self._volume.apply(block)
            block = self._fader.apply(block)
        return float_to_pcm(block, params.format, self.dither)

    def _cut(self) -> int:
        """Fade out what the ring holds over ~5 ms and drop the rest (lock held); the next
        block fades in. Returns the frames dropped."""
        self._fade_in_pending = True
        if self._params is None or self._ring is None:
            return 0
        fmt = self._params.format
        fade = max(1, round(self._params.rate * self.fade_seconds)) if self.fade_seconds > 0 else 0
        keep = min(fade, self._ring.fill)

        def fade_out(head: np.ndarray) -> np.ndarray:
            gains = dsp.fade_out_curve(len(head), len(head))
            return float_to_pcm(pcm_to_float(head, fmt) * gains[:, None], fmt)

        return self._ring.truncate(keep, fade_out)
