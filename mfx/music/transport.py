"""The transport: the play queue and the playback state machine (play, pause, resume, stop,
seek, next, previous, volume), driving the audio engine (``mfx.engine.api.AudioEngine``).

The engine plays; the transport decides what. It opens a song through the engine (which
decodes the first block ahead), plays it on the default sink, enqueues the song that follows
(gapless.py) and follows the engine's events: a track started, the engine ran out of audio,
a track failed, the engine was restarted. Positions come from the engine's reports, stamped
with the machine's monotonic clock and extrapolated here, so `mfx now` costs no round trip.

Failures: a source or codec that fails (breaker open, DecodeError, PluginError, timeout)
costs that song only: the transport records why (``lastError``, an event on the bus topic
``player``, ``mfx_player_track_failures_total{reason}``) and moves on to the next song.

The engine outlives the daemon when ``keep_playing`` is set (``mfx serve``): the daemon's
exit leaves the music playing, and the next daemon adopts it (``run`` reads what the engine
plays and finds the song in the restored queue). Every operation holds ``lock``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence

import anyio

from mfx.api.music import PlayerStatus, PlayMode, Song
from mfx.engine.api import (
    AudioEngine,
    EngineEvent,
    EngineRestarted,
    PlaybackChanged,
    PlaybackIdle,
    PlaybackReport,
    PlaybackState,
    TrackFailed,
    TrackStarted,
)
from mfx.errors import AudioError, BadRequestError, MfxError, NoSinkError, error_from_reason
from mfx.music.engine_plugins import EnginePlugins
from mfx.music.gapless import Lookahead
from mfx.music.player_changes import PlayerChanges
from mfx.music.player_config import PlayerConfig
from mfx.music.player_state import SavedPlayer
from mfx.music.player_view import SKIPPABLE, TrackFailure, failure_reason
from mfx.music.plugin_lookup import ServiceLookup
from mfx.music.queue import PlayQueue
from mfx.music.track_opener import OpenedTrack, TrackOpener
from observability.metrics import Metrics

log = logging.getLogger("mfx.player")

SinkLookup = Callable[[], str]  # the default sink's name; raises NoSinkError when none is Ready


class Transport:
    def __init__(self, *, config: PlayerConfig, services: ServiceLookup, sink: SinkLookup, metrics: Metrics,
                 changes: PlayerChanges, opener: TrackOpener, engine: AudioEngine, plugins: EnginePlugins,
                 rng: random.Random, keep_playing: bool = False) -> None:
        self.config = config
        self._services = services
        self._sink_lookup = sink
        self._metrics = metrics
        self._changes = changes
        self._opener = opener
        self._engine = engine
        self._plugins = plugins
        self._rng = rng
        self._keep_playing = keep_playing
        self.queue = PlayQueue(mode=config.default_mode, rng=rng)
        self.status = PlayerStatus.STOPPED
        self.volume = config.default_volume
        self.muted = False
        self.last_error: TrackFailure | None = None
        self.active_processors: list[str] = []
        self.tracks_started = 0  # songs started since the player started
        self.engine_restarts = 0
        self._settings_sent = False  # volume, mute and fade given to the engine there is now
        self.lock = anyio.Lock()
        self._lookahead = Lookahead(opener)
        self._label: str | None = None  # the engine's current track, as far as the transport knows
        self._rate = 0  # its sample rate
        self._report: PlaybackReport | None = None  # the engine's latest report
        self._position_base = 0.0  # seconds into the current song while no report applies

    # --- lifetime ------------------------------------------------------------------------------

    def restore(self, saved: SavedPlayer) -> None:
        """Take the saved queue, position, volume and mute; a restored song waits, paused at
        its position, for `resume` (unless ``run`` finds the engine still playing it)."""
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
        """Adopt what the engine plays, then follow its events until cancelled."""
        events = self._engine.events()
        await self._adopt()
        async for event in events:
            async with self.lock:
                await self._on_event(event)

    async def park(self) -> None:
        """The daemon stops: keep the position; stop the audio unless the engine outlives us."""
        async with self.lock:
            position = self.position()
            if not self._keep_playing:
                await self._stop_engine(quietly=True)
                self.status = PlayerStatus.STOPPED if self.queue.current is None else PlayerStatus.PAUSED
            self._position_base = position

    async def _adopt(self) -> None:
        """A daemon starting beside an engine that plays: take over what it plays."""
        try:
            report = await self._engine.playback()
        except MfxError as exc:
            log.warning("could not read the audio engine's playback: %s", exc)
            return
        async with self.lock:
            if report.state not in (PlaybackState.PLAYING, PlaybackState.PAUSED) or report.label is None:
                return
            await self._push_settings()
            index = self._index_of(report.tag.get("songId"))
            if index is None:
                log.warning("the audio engine plays %r, which is not in the queue; stopping it",
                            report.tag.get("title") or report.label)
                await self._stop_engine(quietly=True)
                return
            if index != self.queue.current_index:
                self.queue.play(index)
            self._label, self._rate, self._report = report.label, report.rate, report
            self.status = PlayerStatus.PLAYING if report.state is PlaybackState.PLAYING else PlayerStatus.PAUSED
            self._position_base = report.frame / report.rate if report.rate else 0.0
            current = self.queue.current
            log.info("adopted the audio engine's playback of %s at %.1fs",
                     current.title if current else report.label, self._position_base)
            self._changes.publish("PlaybackAdopted", {"song": current.wire() if current else None,
                                                      "positionSeconds": round(self._position_base, 3)})
            self._changes.changed()
            if report.queued:
                await self._engine.drop_queued()
            await self._prefetch()

    def _index_of(self, song_id: object) -> int | None:
        if not isinstance(song_id, str):
            return None
        current = self.queue.current_index
        if current is not None and self.queue.songs[current].id == song_id:
            return current
        return next((i for i, song in enumerate(self.queue.songs) if song.id == song_id), None)

    # --- reading -------------------------------------------------------------------------------

    def position(self) -> float:
        """Seconds into the current song: the engine's latest report of it, extrapolated on
        the monotonic clock the engine stamped it with."""
        position = self._position_base
        report = self._report
        if (self.status is PlayerStatus.PLAYING and report is not None and report.label == self._label
                and report.label is not None and report.rate):
            position = report.frame_at(time.monotonic()) / report.rate
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
            await self._stop_engine()
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
            self._position_base = self.position()
            if self._label is not None:
                report = await self._engine.pause()
                self._take(report)
                if report.label == self._label and report.rate:
                    self._position_base = report.frame / report.rate  # where the device stopped
            self.status = PlayerStatus.PAUSED
            self._changes.changed()

    async def resume(self) -> None:
        async with self.lock:
            await self._resume_locked()

    async def stop(self) -> None:
        async with self.lock:
            await self._stop_engine()
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
            await self._seek_locked(seconds)

    async def seek_by(self, offset: float) -> None:
        """Move ``offset`` seconds from where the song is now (negative: back), clamped to the
        song; read and moved under the lock so two quick steps add up."""
        async with self.lock:
            await self._seek_locked(max(0.0, self.position() + offset))

    async def _seek_locked(self, seconds: float) -> None:
        current = self.queue.current
        if current is None:
            raise BadRequestError("nothing to seek in: no current song")
        if current.duration_seconds:
            seconds = min(seconds, current.duration_seconds)
        if self._label is not None and self._rate and self.status is not PlayerStatus.STOPPED:
            self._take(await self._engine.seek(round(seconds * self._rate)))
        self._position_base = seconds
        self._changes.changed()

    async def set_volume(self, volume: int) -> None:
        async with self.lock:
            await self._set_volume_locked(volume)

    async def change_volume(self, change: int) -> None:
        """Raise (or, negative, lower) the volume by ``change``, kept within 0..100."""
        async with self.lock:
            await self._set_volume_locked(min(100, max(0, self.volume + change)))

    async def _set_volume_locked(self, volume: int) -> None:
        self.volume = volume
        await self._engine.set_volume(volume / 100, self.muted)
        self._changes.changed()

    async def set_mute(self, muted: bool) -> None:
        async with self.lock:
            self.muted = muted
            await self._engine.set_volume(self.volume / 100, muted)
            self._changes.changed()

    # --- playback internals (lock held) ---------------------------------------------------------

    def _stopped(self) -> None:
        self.status = PlayerStatus.STOPPED
        self._position_base = 0.0
        self._changes.changed()

    def _take(self, report: PlaybackReport) -> None:
        self._report = report

    async def _push_settings(self) -> None:
        """What the engine must know before it plays: volume, mute and fade (once per engine:
        later changes go to it as they are made) and the processors Ready now."""
        if not self._settings_sent:
            await self._engine.set_volume(self.volume / 100, self.muted)
            await self._engine.set_fade(self.config.fade_seconds)
            self.active_processors = []  # what this engine runs is unknown: tell it
            self._settings_sent = True
        await self._sync_processors()

    async def _sync_processors(self) -> None:
        await self._plugins.sync()
        active = self._plugins.loaded(self.config.processors)
        for name in self.config.processors:
            if name not in active:
                log.warning("AudioProcessor %s is not Ready in the audio engine; playing without it", name)
        if active != self.active_processors:
            await self._engine.set_processors(active)
        self.active_processors = active

    async def _resume_locked(self) -> None:
        if self.status is PlayerStatus.PLAYING:
            return
        if self.status is PlayerStatus.PAUSED and self._label is not None:
            try:
                self._take(await self._engine.resume())
            except BadRequestError:  # the engine no longer holds the song (it was replaced)
                self._label = None
            else:
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
        track = playable.track
        if track is None:
            await self._stop_engine()
            self._stopped()
            return
        if playable.failures:
            start_at = 0.0  # another song than the one asked for: from its start
        sink = self._sink_lookup()
        self._lookahead.forget()  # a play drops the engine's look-ahead
        await self._push_settings()
        await self._start(track, sink, start_at)

    async def _start(self, track: OpenedTrack, sink: str, start_at: float) -> None:
        self._label, self._rate = track.label, track.info.rate
        if start_at > 0:
            await self._engine.play(track.label, sink=sink, paused=True)
            self._take(await self._engine.seek(round(start_at * track.info.rate)))
            self._take(await self._engine.resume())
        else:
            await self._engine.play(track.label, sink=sink)
        self.status = PlayerStatus.PLAYING
        self._position_base = start_at
        self._changes.changed()

    async def _edited(self) -> None:
        self._changes.changed()
        if self._lookahead.pending is not None or self.status is PlayerStatus.PLAYING:
            await self._prefetch()

    async def _prefetch(self) -> None:
        if self._label is None or self.status is PlayerStatus.STOPPED or self.queue.current is None:
            return
        await self._lookahead.refresh(self._engine, self.queue, self._rng)

    async def _stop_engine(self, *, quietly: bool = False) -> None:
        self._lookahead.forget()
        self._label = None
        try:
            await self._engine.stop()
        except AudioError as exc:
            if not quietly:
                raise
            log.warning("could not stop the audio engine: %s", exc)

    def _record_failure(self, song: Song, error: BaseException, *, skipped: bool = True) -> None:
        reason = failure_reason(error)
        self.last_error = TrackFailure(song_id=song.id, title=song.title, reason=reason,
                                       message=str(error), time=time.time(), skipped=skipped)
        self._metrics.player_track_failures_total.labels(reason).inc()
        log.warning("%s %s: %s", "skipping" if skipped else "pausing", song.title, error)
        self._changes.publish("TrackFailed", {"song": song.wire(), "reason": reason, "message": str(error)})
        self._changes.changed()

    # --- the engine's events (lock held) ----------------------------------------------------------

    async def _on_event(self, event: EngineEvent) -> None:
        if isinstance(event, PlaybackChanged):
            if event.report.label == self._label:
                self._take(event.report)
        elif isinstance(event, TrackStarted):
            await self._started(event.label)
        elif isinstance(event, TrackFailed):
            current = self.queue.current
            if event.label == self._label and current is not None:
                self._record_failure(current, error_from_reason(event.error.reason, event.error.message))
        elif isinstance(event, PlaybackIdle):
            await self._idle(event)
        elif isinstance(event, EngineRestarted):
            await self._engine_restarted(event)

    async def _started(self, label: str) -> None:
        plan = self._lookahead.take(label)
        if plan is not None:
            for skip in plan.steps:
                self.queue.next(skip=skip)
            for song, error in plan.failures:
                self._record_failure(song, error)
            current = self.queue.current
            if plan.track is None or current is None or current.id != plan.track.song.id:
                # The queue changed while the next song was being swapped: play what it says now.
                await self._advance(lambda: self.queue.current)
                return
            self._label, self._rate = label, plan.track.info.rate
            self._position_base = 0.0
        elif label != self._label:
            return  # a superseded play
        if self.status is PlayerStatus.STOPPED:
            return
        self._metrics.player_tracks_played_total.inc()
        self.tracks_started += 1
        current = self.queue.current
        self._changes.publish("TrackStarted", {"song": current.wire() if current else None,
                                               "index": self.queue.current_index})
        self._changes.changed()
        await self._prefetch()

    async def _idle(self, event: PlaybackIdle) -> None:
        if self.status is not PlayerStatus.PLAYING or (event.label is not None and event.label != self._label):
            return  # stopped or paused here, or the end of a song already replaced
        error = event.error
        current = self.queue.current
        if error is not None:
            failure = error_from_reason(error.reason, error.message)
            if isinstance(failure, AudioError | NoSinkError):
                await self._sink_gone(failure)
                return
            if current is not None and isinstance(failure, SKIPPABLE):
                self._record_failure(current, failure)
                await self._advance(lambda: self.queue.next(skip=True))
                return
            log.error("playback stopped: %s", failure)
            await self._stop_engine(quietly=True)
            self.status = PlayerStatus.STOPPED
            if current is not None:
                self._record_failure(current, failure)
            return
        pending = self._lookahead.pending
        if pending is not None and pending.track is not None:
            # The song ended as the next one was handed over (a short song, or a slow open):
            # the engine plays what it is given when idle, so that song's start follows.
            return
        plan = self._lookahead.take_end()
        if plan is not None:
            for skip in plan.steps:
                self.queue.next(skip=skip)
            for song, failed in plan.failures:
                self._record_failure(song, failed)
        self._label = None
        self.status = PlayerStatus.STOPPED
        self._position_base = 0.0
        self._changes.publish("QueueEnded", {})
        self._changes.changed()

    async def _sink_gone(self, error: MfxError) -> None:
        """The engine lost the sink under the song (its AudioSink was deleted): go on with the
        song on the default sink there is now, or pause at the position and record why, so
        that `mfx now` says it and `mfx resume` continues once a sink is back."""
        position = self.position()
        await self._stop_engine(quietly=True)
        current = self.queue.current
        try:
            self._sink_lookup()
        except MfxError as exc:
            self.status = PlayerStatus.PAUSED if current is not None else PlayerStatus.STOPPED
            self._position_base = position
            if current is not None:
                self._record_failure(current, exc, skipped=False)
            self._changes.changed()
            return
        log.info("the sink went away (%s); going on with the default sink", error)
        await self._advance(lambda: self.queue.current, start_at=position)

    async def _engine_restarted(self, event: EngineRestarted) -> None:
        if event.reason == "Crashed":
            self.engine_restarts += 1
        self._settings_sent = False
        self._plugins.forget()
        self._changes.publish("EngineRestarted", {"reason": event.reason, "message": event.message,
                                                  "pid": event.info.pid})
        self._changes.changed()

