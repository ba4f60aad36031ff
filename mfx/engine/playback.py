"""What the engine plays: one ``Pipeline`` on the chosen sink, the tracks the daemon opened,
and where the current one is, as frames played at the device.

Position: the pipeline writes each run of a track's audio (from its start, a seek, a resume)
as a stream of its own on the sink and the sink counts what of it was played. The track's
frame is the frame the run began at plus what of the run played (and, while paused, the
faded tail still buffered: the pipeline resumes after it, so the report does not jump).
Stream ids only grow, so of two runs the newer one is the one with the larger id.

Threads: controls come from the event loop; the pipeline's producer thread calls back
``_on_track_start``. One lock guards the bookkeeping; it is taken before the pipeline's own,
never after. A stream is closed only where no thread can be reading it: at the next track's
start on the pipeline's own thread, or after its run has returned.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial

import anyio

from mfx.audio import dsp
from mfx.audio.pipeline import Pipeline, PipelineState, Processor
from mfx.audio.ring_buffer import StreamId
from mfx.audio.sink import SinkEngine
from mfx.audio.sink_status import SinkState, SinkStatus
from mfx.audio.stream_clock import StreamState
from mfx.engine.api import (
    EngineEvent,
    ErrorReport,
    PlaybackChanged,
    PlaybackIdle,
    PlaybackReport,
    PlaybackState,
    TrackFailed,
    TrackInfo,
    TrackRequest,
    TrackStarted,
)
from mfx.engine.plugins import EnginePlugins
from mfx.engine.sinks import EngineSinks
from mfx.engine.tracks import OpenedTrack, open_track
from mfx.errors import AudioError, BadRequestError, MfxError, NotFoundError

log = logging.getLogger("mfx.engine.playback")

BLOCK_FRAMES = 4096
MAX_OPENED = 16  # opened tracks not handed to the pipeline yet; older ones are closed
PLAY_OUT_MARGIN_SECONDS = 5.0


class Playback:
    def __init__(self, sinks: EngineSinks, plugins: EnginePlugins, emit: Callable[[EngineEvent], None],
                 *, block_frames: int = BLOCK_FRAMES) -> None:
        self._sinks = sinks
        self._plugins = plugins
        self._emit = emit
        self.block_frames = block_frames
        self._lock = threading.Lock()
        self._pipeline: Pipeline | None = None
        self._opened: dict[str, OpenedTrack] = {}
        self._current: OpenedTrack | None = None
        self._queued: list[OpenedTrack] = []
        self._retired: list[tuple[OpenedTrack, Pipeline | None]] = []
        self._state = PlaybackState.IDLE
        self._segment: StreamId | None = None  # the sink stream of the current run, once started
        self._segment_start = 0  # the track's frame where that run began
        self._volume = 1.0
        self._muted = False
        self._processors: list[str] = []  # as asked
        self._active: list[str] = []  # those loaded, in the pipeline
        self._fade = dsp.FADE_SECONDS
        self._kick = anyio.Event()

    # --- reading --------------------------------------------------------------------------

    @property
    def state(self) -> PlaybackState:
        with self._lock:
            return self._state

    def report(self) -> PlaybackReport:
        with self._lock:
            return self._report_locked()

    def requests(self) -> tuple[TrackRequest | None, list[TrackRequest]]:
        """The current track's request and the look-ahead's (what a new engine reopens)."""
        with self._lock:
            current = self._current.request if self._current is not None else None
            return current, [t.request for t in self._queued if not t.slot.dropped]

    @property
    def fade_seconds(self) -> float:
        return self._fade

    @property
    def processor_names(self) -> list[str]:
        return list(self._processors)

    # --- tracks ---------------------------------------------------------------------------

    async def open(self, request: TrackRequest) -> TrackInfo:
        codec = self._plugins.codec(request.codec)
        track = await anyio.to_thread.run_sync(open_track, codec, request, self.block_frames)
        closing: list[OpenedTrack] = []
        with self._lock:
            replaced = self._opened.pop(request.label, None)
            if replaced is not None:
                closing.append(replaced)
            self._opened[request.label] = track
            while len(self._opened) > MAX_OPENED:
                closing.append(self._opened.pop(next(iter(self._opened))))
        for old in closing:  # never handed to a pipeline: no thread reads them
            old.close()
        return track.info()

    def play(self, label: str, *, sink: str | None = None, paused: bool = False) -> None:
        with self._lock:
            if label not in self._opened:
                raise _not_opened(label)
        engine = self._sinks.get(sink or self._sinks.default_name())
        engine.ring  # noqa: B018 - raises AudioError now for a sink whose device is not open
        with self._lock:
            track = self._take_opened(label)
            pipeline = self._pipeline_for(engine)
            self._retire_playing()
            self._current = track
            self._segment, self._segment_start = None, track.slot.tell()
            pipeline.play(track.slot, label)
            if paused:
                pipeline.pause()
            self._state = PlaybackState.PAUSED if paused else PlaybackState.PLAYING
            report = self._report_locked()
        self._kick.set()
        self._emit(PlaybackChanged(report))

    def enqueue(self, label: str) -> None:
        with self._lock:
            pipeline = self._pipeline
            playing = pipeline is not None and self._current is not None
        if not playing:
            self.play(label)  # nothing to follow: it plays now
            return
        with self._lock:
            assert self._pipeline is not None
            track = self._take_opened(label)
            self._queued.append(track)
            self._pipeline.enqueue(track.slot, label)
            report = self._report_locked()
        self._kick.set()
        self._emit(PlaybackChanged(report))

    def drop_queued(self) -> list[str]:
        """Drop the look-ahead; the labels dropped (one the pipeline started is kept)."""
        dropped: list[str] = []
        with self._lock:
            kept = []
            for track in self._queued:
                if track.slot.drop():
                    self._retired.append((track, self._pipeline))
                    dropped.append(track.label)
                else:
                    kept.append(track)  # the pipeline started it: it is about to be current
            self._queued = kept
            report = self._report_locked()
        self._emit(PlaybackChanged(report))
        return dropped

    # --- transport ------------------------------------------------------------------------

    def pause(self) -> PlaybackReport:
        with self._lock:
            if self._state is PlaybackState.PLAYING and self._pipeline is not None:
                self._pipeline.pause()
                self._state = PlaybackState.PAUSED
            report = self._report_locked()
        self._emit(PlaybackChanged(report))
        return report

    def resume(self) -> PlaybackReport:
        with self._lock:
            if self._state is PlaybackState.PAUSED and self._pipeline is not None:
                start = self._frame_locked()
                segment = self._pipeline.resume()
                if segment is not None:
                    self._segment, self._segment_start = segment, start
                self._state = PlaybackState.PLAYING
            report = self._report_locked()
        self._kick.set()
        self._emit(PlaybackChanged(report))
        return report

    def seek(self, frame: int) -> PlaybackReport:
        with self._lock:
            track, pipeline = self._current, self._pipeline
            if track is None or pipeline is None:
                raise BadRequestError("nothing to seek in: no track is playing")
            frame = max(0, int(frame))
            if track.stream.frames is not None:
                frame = min(frame, track.stream.frames)
            segment = pipeline.seek_frame(frame) if self._segment is not None else None
            if segment is not None:
                self._segment, self._segment_start = segment, frame
            elif track.slot.seek_unstarted(frame):
                self._segment_start = frame
            report = self._report_locked()
        self._emit(PlaybackChanged(report))
        return report

    def stop(self) -> None:
        with self._lock:
            if self._pipeline is not None:
                self._pipeline.stop()
            self._retire_playing()
            self._state = PlaybackState.STOPPED
            report = self._report_locked()
        self._emit(PlaybackChanged(report))

    def detach(self, sink: str) -> None:
        """The sink ``sink`` closes: stop playing on it and let its pipeline go."""
        with self._lock:
            pipeline = self._pipeline
            if pipeline is None or pipeline.sink.name != sink:
                return
            was_playing = self._state in (PlaybackState.PLAYING, PlaybackState.PAUSED)
            label = self._current.label if self._current is not None else None
        self.stop()
        with self._lock:
            if self._pipeline is pipeline:
                self._pipeline = None
        if was_playing:  # the player goes on elsewhere or pauses, and says why
            self._emit(PlaybackIdle(ErrorReport("NoSink", f"sink {sink} closed under the track"), label))

    def set_volume(self, volume: float, muted: bool) -> None:
        if volume < 0:
            raise BadRequestError(f"volume {volume} is negative: use a linear gain >= 0 (1.0 is unchanged)")
        with self._lock:
            self._volume, self._muted = float(volume), bool(muted)
            if self._pipeline is not None:
                self._pipeline.set_volume(self._volume)
                self._pipeline.set_mute(self._muted)
            report = self._report_locked()
        self._emit(PlaybackChanged(report))

    def set_processors(self, names: Sequence[str]) -> None:
        with self._lock:
            self._processors = list(names)
            objects = self._resolve_processors()
            if self._pipeline is not None:
                self._pipeline.set_processors(objects)
            report = self._report_locked()
        self._emit(PlaybackChanged(report))

    def plugins_changed(self) -> None:
        """Plugins were loaded or unloaded: take the processors anew (a new generation is a
        new object)."""
        self.set_processors(self._processors)

    def set_fade(self, seconds: float) -> None:
        if not 0 <= seconds <= 10:
            raise BadRequestError(f"fade of {seconds} s is out of range: use 0..10 seconds")
        with self._lock:
            self._fade = float(seconds)
            if self._pipeline is not None:
                self._pipeline.set_fade_seconds(self._fade)  # the pipeline's fader follows at once
        self._emit(PlaybackChanged(self.report()))

    def changed(self) -> None:
        """Something behind the report changed (a sink's xruns): tell the subscribers."""
        self._emit(PlaybackChanged(self.report()))

    # --- the producer loop (a task of the engine) -------------------------------------------

    async def run(self) -> None:
        """Run the pipeline whenever there is something to play, until cancelled (stop the
        pipeline first: a producer thread in its run is waited for)."""
        while True:
            await self._kick.wait()
            self._kick = anyio.Event()
            pipeline = self._pipeline
            if pipeline is None:
                continue
            error: Exception | None = None
            try:
                await anyio.to_thread.run_sync(pipeline.run)
            except Exception as exc:  # a decode or processor failure inside the audio loop
                error = exc
            if error is None:
                await self._played_out(pipeline)
            self._after_run(pipeline, error)

    async def _played_out(self, pipeline: Pipeline) -> None:
        """Wait until the sink has played the last run of a pipeline that ran out, so that
        "idle" means the audio ended at the device, not in the ring."""
        with self._lock:
            segment = self._segment
            if pipeline is not self._pipeline or pipeline.state is not PipelineState.IDLE or segment is None:
                return
        sink = pipeline.sink
        buffered = sink.stream_position(segment).frames_buffered
        # A lost device may never play it: give up after what it holds, and then some.
        timeout = buffered / sink.params.rate + PLAY_OUT_MARGIN_SECONDS

        def played(status: SinkStatus) -> bool:
            # A sink that closes or loses its device will not play the rest: stop waiting.
            return status.state is not SinkState.OPEN or sink.stream_position(segment).state is not StreamState.PLAYING

        await anyio.to_thread.run_sync(partial(sink.wait_until, played, timeout))

    def close(self) -> None:
        """Stop for good (the engine exits)."""
        self.stop()
        with self._lock:
            closing = [t for t, _ in self._retired] + list(self._opened.values())
            self._retired, self._opened = [], {}
            self._pipeline = None
        for track in closing:
            track.close()

    def _after_run(self, pipeline: Pipeline, error: Exception | None) -> None:
        events: list[EngineEvent] = []
        with self._lock:
            closing = self._take_retired(pipeline)
            if pipeline is not self._pipeline:
                pass  # replaced while it ran: what it played is no longer reported
            elif error is not None:
                self._failed(pipeline, error, events)
            elif pipeline.state in (PipelineState.PLAYING, PipelineState.PAUSED):
                if _sink_closed(pipeline.sink):
                    label = self._current.label if self._current is not None else None
                    pipeline.stop()
                    self._retire_playing()
                    self._state = PlaybackState.STOPPED
                    events.append(PlaybackIdle(ErrorReport("NoSink", f"sink {pipeline.sink.name} closed"), label))
                else:
                    self._kick.set()  # queued after the run ended: run again
            elif self._state in (PlaybackState.PLAYING, PlaybackState.PAUSED):
                label = self._current.label if self._current is not None else None
                self._retire_playing()
                closing += self._take_retired(pipeline)
                self._state = PlaybackState.IDLE
                events.append(PlaybackIdle(None, label))
            report = self._report_locked()
        for track in closing:
            track.close()
        for event in events:
            self._emit(event)
        if events:
            self._emit(PlaybackChanged(report))

    def _failed(self, pipeline: Pipeline, error: Exception, events: list[EngineEvent]) -> None:
        """The producer raised (lock held): a track that cannot be decoded is skipped; any
        other failure ends playback."""
        track = self._current
        if isinstance(error, MfxError) and track is not None:
            log.warning("track %s failed: %s", track.label, error)
            events.append(TrackFailed(track.label, dict(track.request.tag), ErrorReport(error.reason, str(error))))
            self._retired.append((track, pipeline))
            self._current, self._segment = None, None
            pipeline.skip()
            self._kick.set()
            return
        log.error("playback failed: %r", error, exc_info=error)
        label = track.label if track is not None else None
        pipeline.stop()
        self._retire_playing()
        self._state = PlaybackState.IDLE
        reason = error.reason if isinstance(error, MfxError) else "InternalError"
        events.append(PlaybackIdle(ErrorReport(reason, f"playback failed: {error!r}"), label))

    def _on_track_start(self, pipeline: Pipeline, label: str, segment: StreamId) -> None:
        """Pipeline callback, on its producer thread, before it reads the track."""
        with self._lock:
            if pipeline is not self._pipeline:
                return
            track = self._current if self._current is not None and self._current.label == label else None
            if track is None:
                track = next((t for t in self._queued if t.label == label), None)
            if track is None or track.slot.dropped:
                return  # a dropped look-ahead: it ends at once
            if track is not self._current:  # gapless: the look-ahead becomes current
                if self._current is not None:
                    self._retired.append((self._current, pipeline))
                self._current = track
                self._queued.remove(track)
                self._segment = None
            if self._segment is None or segment > self._segment:
                self._segment, self._segment_start = segment, track.slot.tell()
            closing = self._take_retired(pipeline)
            report = self._report_locked()
        for old in closing:
            old.close()
        self._emit(TrackStarted(label, dict(track.request.tag)))
        self._emit(PlaybackChanged(report))

    # --- internals (lock held) --------------------------------------------------------------

    def _take_opened(self, label: str) -> OpenedTrack:
        track = self._opened.pop(label, None)
        if track is None:
            raise _not_opened(label)
        return track

    def _pipeline_for(self, sink: SinkEngine) -> Pipeline:
        if self._pipeline is not None and self._pipeline.sink is sink:
            return self._pipeline
        if self._pipeline is not None:
            self._pipeline.stop()
            self._retire_playing()
        pipeline = Pipeline(sink, self._resolve_processors(), block_frames=self.block_frames,
                            fade_seconds=self._fade)
        pipeline.on_track_start = partial(self._on_track_start, pipeline)
        pipeline.set_volume(self._volume)
        pipeline.set_mute(self._muted)
        self._pipeline = pipeline
        return pipeline

    def _resolve_processors(self) -> list[Processor]:
        objects: list[Processor] = []
        active: list[str] = []
        for name in self._processors:
            try:
                objects.append(self._plugins.processor(name))
                active.append(name)
            except MfxError as exc:
                log.warning("processor %s left out: %s", name, exc)
        self._active = active
        return objects

    def _retire_playing(self) -> None:
        for track in ([self._current] if self._current is not None else []) + self._queued:
            self._retired.append((track, self._pipeline))
        self._current, self._queued, self._segment = None, [], None

    def _take_retired(self, pipeline: Pipeline) -> list[OpenedTrack]:
        taken = [t for t, p in self._retired if p is pipeline or p is None]
        self._retired = [(t, p) for t, p in self._retired if not (p is pipeline or p is None)]
        return taken

    def _frame_locked(self) -> int:
        track, pipeline = self._current, self._pipeline
        if track is None:
            return 0
        played = pipeline.played_position() if pipeline is not None else None
        if played is None or played.label != track.label:
            return self._segment_start  # none of it has reached the device yet
        frame = played.frame
        return min(frame, track.stream.frames) if track.stream.frames is not None else frame

    def _report_locked(self) -> PlaybackReport:
        track, pipeline = self._current, self._pipeline
        frame = self._frame_locked()
        return PlaybackReport(
            state=self._state, label=track.label if track is not None else None,
            tag=dict(track.request.tag) if track is not None else {}, frame=frame,
            rate=track.rate if track is not None else 0, at=time.monotonic(),
            queued=tuple(t.label for t in self._queued if not t.slot.dropped),
            sink=pipeline.sink.name if pipeline is not None else None, volume=self._volume,
            muted=self._muted, processors=tuple(self._active))


def _not_opened(label: str) -> NotFoundError:
    return NotFoundError(f"no opened track {label!r}: open_track it first (a label plays once)")


def _sink_closed(sink: SinkEngine) -> bool:
    try:
        return sink.ring.closed
    except AudioError:
        return False  # being reopened: its writer comes back by itself
