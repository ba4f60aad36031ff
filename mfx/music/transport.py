"""The transport: the play queue and the playback state machine (play, pause, resume, stop,
seek, next, previous, volume), driving one ``Pipeline`` into the default sink.

Failures: a source or codec that fails (breaker open, DecodeError, PluginError, timeout)
costs that song only: the transport records why (``lastError``, an event on the bus topic
``player``, ``mfx_player_track_failures_total{reason}``) and moves on to the next song.

Threads: ``Pipeline.run`` blocks, so it runs through ``anyio.to_thread`` in a task of the
player's task group; its callbacks come back to the event loop through
``anyio.from_thread``. Every operation that changes the transport holds ``lock``.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from mfx.api.music import PlayerStatus, PlayMode, Song
from mfx.audio.pipeline import Pipeline, PipelineState
from mfx.audio.ring_buffer import StreamId
from mfx.audio.sink import SinkEngine
from mfx.errors import AudioError, BadRequestError, MfxError
from mfx.music.gapless import Lookahead
from mfx.music.player_changes import PlayerChanges
from mfx.music.player_config import PlayerConfig
from mfx.music.player_state import SavedPlayer
from mfx.music.player_view import SKIPPABLE, TrackFailure, failure_reason
from mfx.music.plugin_lookup import ServiceLookup, ready_processors
from mfx.music.queue import PlayQueue
from mfx.music.track_opener import TrackOpener
from observability.metrics import Metrics

log = logging.getLogger("mfx.player")

SinkLookup = Callable[[], SinkEngine]  # the sink to play on; raises NotFoundError when none is Ready
Event = tuple[str, Any]  # ("started", (label, stream)) or ("idle", (pipeline, error)), from the pipeline


class Transport:
    def __init__(self, *, config: PlayerConfig, services: ServiceLookup, sink: SinkLookup, metrics: Metrics,
                 changes: PlayerChanges, opener: TrackOpener, rng: random.Random) -> None:
        self.config = config
        self._services = services
        self._sink_lookup = sink
        self._metrics = metrics
        self._changes = changes
        self._opener = opener
        self._rng = rng
        self.queue = PlayQueue(mode=config.default_mode, rng=rng)
        self.status = PlayerStatus.STOPPED
        self.volume = config.default_volume
        self.muted = False
        self.last_error: TrackFailure | None = None
        self.active_processors: list[str] = []
        self.tracks_started = 0  # songs started since the player started
        self.lock = anyio.Lock()
        self._pipeline: Pipeline | None = None
        self._labels = itertools.count(1)
        self._lookahead = Lookahead(opener, self._new_label)
        self._direct_label: str | None = None
        self._position_base = 0.0  # seconds into the current song where ``_stream`` begins
        self._stream: StreamId | None = None  # the sink stream playing the song from there
        self._kick = anyio.Event()
        self._events_send: MemoryObjectSendStream[Event] | None = None

    # --- lifetime ------------------------------------------------------------------------------

    def restore(self, saved: SavedPlayer) -> None:
        """Take the saved queue, position, volume and mute; a restored song waits, paused at
        its position, for `resume`."""
        try:
            self.queue = PlayQueue.from_dict(saved.queue, rng=self._rng) if saved.queue else self.queue
        except BadRequestError as exc:
            log.warning("player state: %s; starting with an empty queue", exc)
            return
        self._position_base = saved.position_seconds if self.queue.current is not None else 0.0
        self.volume = saved.volume
        self.muted = saved.muted
        self.status = PlayerStatus.PAUSED if self.queue.current is not None else PlayerStatus.STOPPED

    def saved(self) -> SavedPlayer:
        return SavedPlayer(queue=self.queue.to_dict(), position_seconds=self.position(),
                           volume=self.volume, muted=self.muted)

    async def run(self) -> None:
        """Run the pipeline and handle its events until cancelled."""
        send, receive = anyio.create_memory_object_stream[Event](max_buffer_size=math.inf)
        self._events_send = send
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._run_pipeline)
                group.start_soon(self._handle_events, receive)
        finally:
            self._events_send = None
            send.close()

    async def park(self) -> None:
        """Stop the audio and keep the song paused at its position (the daemon stops)."""
        async with self.lock:
            position = self.position()
            if self._pipeline is not None:
                self._pipeline.stop()
            self._position_base, self._stream = position, None
            self.status = PlayerStatus.STOPPED if self.queue.current is None else PlayerStatus.PAUSED

    # --- reading -------------------------------------------------------------------------------

    def position(self) -> float:
        """Seconds into the current song: where its sink stream began plus what of it the
        sink reports played."""
        position = self._position_base
        pipeline = self._pipeline
        if self.status is PlayerStatus.PLAYING and self._stream is not None and pipeline is not None:
            position += pipeline.sink.stream_position(self._stream).seconds_played
        current = self.queue.current
        if current is not None and current.duration_seconds:
            position = min(position, current.duration_seconds)
        return max(0.0, position)

    # --- queue -----------------------------------------------------------------------------------

    async def add(self, songs: Sequence[Song], *, next: bool = False) -> list[int]:
        async with self.lock:
            if next:
                indices = [self.queue.insert_next(song) for song in reversed(songs)][::-1]
            else:
                indices = [self.queue.add(song) for song in songs]
            await self._edited()
            return indices

    async def remove(self, index: int) -> Song:
        async with self.lock:
            was_current = index == self.queue.current_index
            song = self.queue.remove(index)
            if was_current and self.status is not PlayerStatus.STOPPED:
                await self._advance(lambda: self.queue.next(skip=True))
            else:
                await self._edited()
            return song

    async def move(self, source: int, target: int) -> None:
        async with self.lock:
            self.queue.move(source, target)
            await self._edited()

    async def replace(self, songs: Sequence[Song]) -> None:
        """Empty the queue and fill it with ``songs`` (none: just empty it), stopped."""
        async with self.lock:
            self._stop_pipeline()
            self.queue.clear()
            self.queue.extend(songs)
            self._stopped()

    async def set_mode(self, mode: PlayMode) -> None:
        async with self.lock:
            self.queue.set_mode(mode)
            await self._edited()

    # --- transport -------------------------------------------------------------------------------

    async def play(self, index: int | None = None) -> None:
        """Play the song at ``index``; without one, resume (or start the current song, or the first)."""
        async with self.lock:
            if index is None:
                if self.status is PlayerStatus.PLAYING:
                    return
                if self.queue.current is not None:
                    await self._resume_locked()
                    return
                if not len(self.queue):
                    raise BadRequestError("the queue is empty: add songs first (mfx queue add QUERY)")
                await self._advance(lambda: self.queue.next(skip=True))
                return
            self.queue.play(index)  # checks the index first
            await self._advance(lambda: self.queue.current)

    async def pause(self) -> None:
        async with self.lock:
            if self.status is not PlayerStatus.PLAYING:
                return
            self._position_base, self._stream = self.position(), None
            if self._pipeline is not None:
                self._pipeline.pause()
            self.status = PlayerStatus.PAUSED
            self._changes.changed()

    async def resume(self) -> None:
        async with self.lock:
            await self._resume_locked()

    async def stop(self) -> None:
        async with self.lock:
            self._stop_pipeline()
            self._stopped()

    async def next(self) -> None:
        async with self.lock:
            await self._advance(lambda: self.queue.next(skip=True))

    async def previous(self) -> None:
        async with self.lock:
            if self.queue.previous() is None:
                raise BadRequestError("there is no previous song in this play mode")
            await self._advance(lambda: self.queue.current)

    async def seek(self, seconds: float) -> None:
        async with self.lock:
            self._seek_locked(seconds)

    async def seek_by(self, offset: float) -> None:
        """Move ``offset`` seconds from where the song is now (negative: back), clamped to the
        song; read and moved under the lock so two quick steps add up."""
        async with self.lock:
            self._seek_locked(max(0.0, self.position() + offset))

    def _seek_locked(self, seconds: float) -> None:
        current = self.queue.current
        if current is None:
            raise BadRequestError("nothing to seek in: no current song")
        if current.duration_seconds:
            seconds = min(seconds, current.duration_seconds)
        pipeline = self._pipeline
        if self.status is PlayerStatus.PLAYING and pipeline is not None:
            self._stream = pipeline.seek(seconds)
        elif self.status is PlayerStatus.PAUSED and pipeline is not None and pipeline.current is not None:
            pipeline.seek(seconds)
        self._position_base = seconds
        self._changes.changed()

    async def set_volume(self, volume: int) -> None:
        async with self.lock:
            self._set_volume_locked(volume)

    async def change_volume(self, change: int) -> None:
        """Raise (or, negative, lower) the volume by ``change``, kept within 0..100."""
        async with self.lock:
            self._set_volume_locked(min(100, max(0, self.volume + change)))

    def _set_volume_locked(self, volume: int) -> None:
        self.volume = volume
        if self._pipeline is not None:
            self._pipeline.set_volume(volume / 100)
        self._changes.changed()

    async def set_mute(self, muted: bool) -> None:
        async with self.lock:
            self.muted = muted
            if self._pipeline is not None:
                self._pipeline.set_mute(muted)
            self._changes.changed()

    # --- playback internals (lock held) ---------------------------------------------------------

    def _stopped(self) -> None:
        self.status = PlayerStatus.STOPPED
        self._position_base, self._stream = 0.0, None
        self._changes.changed()

    async def _resume_locked(self) -> None:
        if self.status is PlayerStatus.PLAYING:
            return
        pipeline = self._pipeline
        if self.status is PlayerStatus.PAUSED and pipeline is not None and pipeline.current is not None:
            self._stream = pipeline.resume()
            self.status = PlayerStatus.PLAYING
            self._changes.changed()
            return
        if self.queue.current is None:
            raise BadRequestError("nothing to resume: play a song first")
        await self._advance(lambda: self.queue.current, start_at=self._position_base)

    async def _advance(self, step: Callable[[], Song | None], *, start_at: float = 0.0) -> None:
        """Take ``step`` on the queue and start the song it lands on; a song that cannot be
        opened is recorded and skipped."""
        playable = await self._opener.open_playable(self.queue, step())
        for song, error in playable.failures:
            self._record_failure(song, error)
        stream = playable.stream
        if stream is None:
            self._stop_pipeline()
            self._stopped()
            return
        if playable.failures:
            start_at = 0.0  # another song than the one asked for: from its start
        try:
            pipeline = self._ensure_pipeline()
        except MfxError:
            stream.close()  # opened for nothing: there is no sink to play it on
            raise
        self._lookahead.drop()
        if start_at > 0:
            stream.seek(round(start_at * stream.samplerate))
        label = self._new_label()
        self._direct_label = label
        pipeline.set_processors(self._processors())
        pipeline.play(stream, label)
        self.status = PlayerStatus.PLAYING
        self._position_base, self._stream = start_at, None  # until the pipeline starts the song
        self._kick.set()
        self._changes.changed()

    async def _edited(self) -> None:
        self._changes.changed()
        if self._lookahead.pending is not None or self.status is PlayerStatus.PLAYING:
            await self._prefetch()

    async def _prefetch(self) -> None:
        pipeline = self._pipeline
        if pipeline is None or self.status is PlayerStatus.STOPPED or self.queue.current is None:
            return
        if await self._lookahead.refresh(pipeline, self.queue, self._rng):
            self._kick.set()

    def _stop_pipeline(self) -> None:
        self._lookahead.drop()
        self._direct_label = None
        if self._pipeline is not None:
            self._pipeline.stop()

    def _ensure_pipeline(self) -> Pipeline:
        sink = self._sink_lookup()
        if self._pipeline is None or self._pipeline.sink is not sink:
            if self._pipeline is not None:
                self._pipeline.stop()
            self._pipeline = Pipeline(sink, self._processors(), block_frames=self.config.block_frames,
                                      on_track_start=self._track_start_from_thread)
            self._pipeline.set_volume(self.volume / 100)
            self._pipeline.set_mute(self.muted)
        return self._pipeline

    def _processors(self) -> list[Any]:
        chosen, self.active_processors = ready_processors(self._services, self.config.processors)
        return chosen

    def _record_failure(self, song: Song, error: BaseException, *, skipped: bool = True) -> None:
        reason = failure_reason(error)
        self.last_error = TrackFailure(song_id=song.id, title=song.title, reason=reason,
                                       message=str(error), time=time.time(), skipped=skipped)
        self._metrics.player_track_failures_total.labels(reason).inc()
        log.warning("%s %s: %s", "skipping" if skipped else "pausing", song.title, error)
        self._changes.publish("TrackFailed", {"song": song.wire(), "reason": reason, "message": str(error)})
        self._changes.changed()

    def _new_label(self) -> str:
        return f"t{next(self._labels)}"

    # --- tasks -----------------------------------------------------------------------------------

    def _track_start_from_thread(self, label: str, stream: StreamId) -> None:
        """Pipeline callback, on the pipeline's worker thread."""
        send = self._events_send
        if send is not None:
            anyio.from_thread.run_sync(send.send_nowait, ("started", (label, stream)))

    async def _run_pipeline(self) -> None:
        while True:
            await self._kick.wait()
            self._kick = anyio.Event()
            pipeline = self._pipeline
            if pipeline is None:
                continue
            error: BaseException | None = None
            try:
                await anyio.to_thread.run_sync(pipeline.run)
            except Exception as exc:  # a decode or processor failure inside the audio loop
                error = exc
            if self._events_send is not None:
                await self._events_send.send(("idle", (pipeline, error)))

    async def _handle_events(self, receive: MemoryObjectReceiveStream[Event]) -> None:
        async with receive:
            async for kind, payload in receive:
                async with self.lock:
                    if kind == "started":
                        await self._started(*payload)
                    else:
                        await self._idle(*payload)

    async def _started(self, label: str, stream: StreamId) -> None:
        plan = self._lookahead.take(label)
        if plan is not None:
            for skip in plan.steps:
                self.queue.next(skip=skip)
            for song, error in plan.failures:
                self._record_failure(song, error)
            if plan.song is None:
                return  # the empty slot: the queue ended
            current = self.queue.current
            if current is None or current.id != plan.song.id:
                # The queue changed while the slot was being swapped: play what it says now.
                await self._advance(lambda: self.queue.current)
                return
            self._position_base = 0.0
        elif label != self._direct_label:
            return  # a replaced slot or a superseded play
        self._direct_label = None
        self.status = PlayerStatus.PLAYING
        self._stream = stream
        self._metrics.player_tracks_played_total.inc()
        self.tracks_started += 1
        current = self.queue.current
        self._changes.publish("TrackStarted", {"song": current.wire() if current else None,
                                               "index": self.queue.current_index})
        self._changes.changed()
        await self._prefetch()

    async def _idle(self, pipeline: Pipeline, error: BaseException | None) -> None:
        if pipeline is not self._pipeline:
            return
        if error is not None:
            current = self.queue.current
            if current is not None and isinstance(error, SKIPPABLE):
                self._record_failure(current, error)
                await self._advance(lambda: self.queue.next(skip=True))
                return
            log.error("playback stopped: %s", error)
            self._stop_pipeline()
            self.status = PlayerStatus.STOPPED
            if current is not None:
                self._record_failure(current, error)
            return
        if pipeline.state in (PipelineState.PLAYING, PipelineState.PAUSED):
            if not _ring_open(pipeline):
                await self._sink_gone()
                return
            self._kick.set()  # something was queued after the run ended: run again
            return
        if self.status is PlayerStatus.PLAYING:
            self._lookahead.pending = None
            self.status = PlayerStatus.STOPPED
            self._position_base, self._stream = 0.0, None
            self._changes.publish("QueueEnded", {})
            self._changes.changed()

    async def _sink_gone(self) -> None:
        """The sink closed under the pipeline (its AudioSink was deleted): go on with the song
        on the default sink there is now, or pause at the position and record why, so that
        `mfx now` says it and `mfx resume` continues once a sink is back."""
        position = self.position()
        self._stop_pipeline()
        current = self.queue.current
        try:
            self._sink_lookup()
        except MfxError as exc:
            self.status = PlayerStatus.PAUSED if current is not None else PlayerStatus.STOPPED
            self._position_base, self._stream = position, None
            if current is not None:
                self._record_failure(current, exc, skipped=False)
            self._changes.changed()
            return
        await self._advance(lambda: self.queue.current, start_at=position)


def _ring_open(pipeline: Pipeline) -> bool:
    """False once the pipeline's sink is closed for good; a sink being reopened (its ring
    not there for a moment) counts as open, since its writer thread comes back by itself."""
    try:
        return not pipeline.sink.ring.closed
    except AudioError:
        return True
