"""The player service: queue, play modes, history, volume; search fan-out; the playback path.

Playback path, per song: the song's MusicSource answers ``song_url`` (a local path); the
Codec whose ``formats()`` holds the file's extension opens it, in process, and the first
block is decoded ahead (a file that cannot be decoded fails here, not on the audio
thread); the stream goes into a ``Pipeline`` with the AudioProcessors the configuration
names, in that order, which writes into the default sink's ring.

Gapless: when a song starts, the player works out which song follows (on a copy of the
queue with a copy of its random generator, so shuffle predicts exactly), opens and primes
it, and enqueues it in the pipeline, which runs straight into it. The enqueued stream sits
in a ``_Slot``: if the queue is edited before the slot starts, the player swaps what the
slot holds instead of tearing the pipeline down. When the slot starts, the same queue steps
are replayed on the real queue.

Failures: a source or codec that fails (breaker open, DecodeError, PluginError, timeout)
costs that song only: the player records why (``lastError``, an event on the bus topic
``player``, ``mfx_player_track_failures_total{reason}``) and moves on to the next song.

Threads: ``Pipeline.run`` blocks, so it runs through ``anyio.to_thread`` in a task of the
player's task group; its callbacks come back to the event loop through
``anyio.from_thread``. Every operation that changes the player holds one ``anyio.Lock``.
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio
import numpy as np
import yaml
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from mfx.api.music import (
    Lyrics,
    MusicModel,
    PlayerState,
    PlayerStatus,
    Playlist,
    PlayMode,
    SearchResult,
    SearchType,
    Song,
)
from mfx.audio.pipeline import Pipeline, PipelineState
from mfx.audio.sink import SinkEngine
from mfx.errors import (
    AudioError,
    BadRequestError,
    DecodeError,
    InvalidConfigError,
    MfxError,
    NoSourceAnsweredError,
    NotFoundError,
    PluginError,
    UnsupportedFormatError,
)
from mfx.music.player_state import STATE_FILE, PlayerStateFile, SavedPlayer
from mfx.music.queue import PlayQueue
from observability.metrics import Metrics
from reconciler.eventbus import EventBus

log = logging.getLogger("mfx.player")

PLAYER_TOPIC = "player"
CONFIG_FILE = "player.yaml"
MUSIC_SOURCE = "MusicSource"
CODEC = "Codec"
AUDIO_PROCESSOR = "AudioProcessor"


# --- what the player needs from the rest of the daemon -----------------------------------------


class ServiceHandle(Protocol):
    """A Ready plugin as the service registry hands it out (the controller's PluginHandle)."""

    name: str

    async def call(self, method: str, params: Any = None) -> Any: ...


class ProviderLike(Protocol):
    name: str
    priority: int
    instance: Any  # a ServiceHandle


class ServiceLookup(Protocol):
    """``reconciler.ServiceRegistry`` satisfies this."""

    def lookup(self, interface: str) -> list[Any]: ...


SinkLookup = Callable[[], SinkEngine]  # the sink to play on; raises NotFoundError when none is Ready


def local_object(handle: Any) -> Any:
    """The in-process object behind a handle: the plugin object of a Python plugin, the
    instance itself for a C library (which has ``process``), or the handle as given."""
    running = getattr(handle, "running", None)
    instance = getattr(running, "instance", None) if running is not None else None
    target = instance if instance is not None else handle
    plugin = getattr(target, "plugin", None)
    return plugin if plugin is not None else target


# --- configuration ---------------------------------------------------------------------------


@dataclass
class PlayerConfig:
    """``$MFX_HOME/player.yaml`` (every field optional)::

        processors: [effects]        # AudioProcessor plugins, in processing order
        searchTimeout: 3.0           # seconds a MusicSource gets to answer a search
        defaultMode: in-order        # used when there is no saved state
        defaultVolume: 100
        blockFrames: 4096
        saveDebounce: 0.2            # seconds between a change and its save
        positionSaveInterval: 5.0    # seconds between saves of the position while playing
    """

    processors: list[str] = field(default_factory=list)
    search_timeout: float = 3.0
    default_mode: PlayMode = PlayMode.IN_ORDER
    default_volume: int = 100
    block_frames: int = 4096
    save_debounce: float = 0.2
    position_save_interval: float = 5.0

    @classmethod
    def from_mapping(cls, data: Any, *, where: str = CONFIG_FILE) -> PlayerConfig:
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise InvalidConfigError(f"{where}: expected a mapping of player settings")
        known = {"processors", "searchTimeout", "defaultMode", "defaultVolume", "blockFrames",
                 "saveDebounce", "positionSaveInterval"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        config = cls()
        processors = data.get("processors", [])
        if not isinstance(processors, list) or not all(isinstance(p, str) and p for p in processors):
            raise InvalidConfigError(f"{where}: processors: expected a list of AudioProcessor plugin names")
        config.processors = list(processors)
        for key, attr, low in (("searchTimeout", "search_timeout", 0.01), ("saveDebounce", "save_debounce", 0.0),
                               ("positionSaveInterval", "position_save_interval", 0.1)):
            if key in data:
                value = data[key]
                if not isinstance(value, int | float) or isinstance(value, bool) or value < low:
                    raise InvalidConfigError(f"{where}: {key}: expected a number of seconds >= {low}, got {value!r}")
                setattr(config, attr, float(value))
        if "defaultMode" in data:
            try:
                config.default_mode = PlayMode(data["defaultMode"])
            except ValueError:
                raise InvalidConfigError(
                    f"{where}: defaultMode: expected one of {', '.join(m.value for m in PlayMode)}, "
                    f"got {data['defaultMode']!r}") from None
        if "defaultVolume" in data:
            volume = data["defaultVolume"]
            if not isinstance(volume, int) or isinstance(volume, bool) or not 0 <= volume <= 100:
                raise InvalidConfigError(f"{where}: defaultVolume: expected an integer 0..100, got {volume!r}")
            config.default_volume = volume
        if "blockFrames" in data:
            frames = data["blockFrames"]
            if not isinstance(frames, int) or isinstance(frames, bool) or not 64 <= frames <= 65536:
                raise InvalidConfigError(f"{where}: blockFrames: expected an integer 64..65536, got {frames!r}")
            config.block_frames = frames
        return config

    def to_mapping(self) -> dict[str, Any]:
        return {"processors": list(self.processors), "searchTimeout": self.search_timeout,
                "defaultMode": self.default_mode.value, "defaultVolume": self.default_volume,
                "blockFrames": self.block_frames, "saveDebounce": self.save_debounce,
                "positionSaveInterval": self.position_save_interval}

    @classmethod
    def load(cls, home: Path) -> PlayerConfig:
        path = home / CONFIG_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls()
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidConfigError(f"{path}: not valid YAML: {exc}") from None
        return cls.from_mapping(data, where=str(path))


# --- what the player reports -----------------------------------------------------------------


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
    version: int = 0  # increases on every change (for waiting on the next one)


# --- streams ---------------------------------------------------------------------------------


class _Primed:
    """A codec stream whose first block was decoded ahead."""

    def __init__(self, stream: Any, first: np.ndarray) -> None:
        self.inner = stream
        self.samplerate = int(stream.samplerate)
        self.channels = int(stream.channels)
        self.frames = int(getattr(stream, "frames", 0) or 0)
        self._head = first
        self._head_start = 0

    def read(self, frames: int) -> np.ndarray:
        if self._head is not None and self._head_start < len(self._head):
            out = self._head[self._head_start:self._head_start + frames]
            self._head_start += len(out)
            if len(out) < frames and self._head_start >= len(self._head):
                rest = self.inner.read(frames - len(out))
                if len(rest):
                    out = np.concatenate([out, rest])
            return out
        return self.inner.read(frames)

    def seek(self, frame: int) -> int:
        self._head = None
        return int(self.inner.seek(frame))

    def tell(self) -> int:
        tell = getattr(self.inner, "tell", None)
        position = int(tell()) if callable(tell) else 0
        if self._head is not None:
            position -= len(self._head) - self._head_start
        return max(0, position)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()


class _Empty:
    """A stream that ends at once: what a slot holds when no song follows any more."""

    def __init__(self, samplerate: int = 48000, channels: int = 2) -> None:
        self.samplerate = samplerate
        self.channels = channels
        self.frames = 0

    def read(self, frames: int) -> np.ndarray:
        return np.zeros((0, self.channels), dtype=np.float32)

    def seek(self, frame: int) -> int:
        return 0

    def tell(self) -> int:
        return 0

    def close(self) -> None:
        pass


class _Slot:
    """The enqueued next song; its stream can be swapped until the pipeline starts reading."""

    def __init__(self, stream: Any) -> None:
        self._lock = threading.Lock()
        self._stream = stream
        self.started = False

    @property
    def samplerate(self) -> int:
        return int(self._stream.samplerate)

    @property
    def channels(self) -> int:
        return int(self._stream.channels)

    def replace(self, stream: Any) -> Any | None:
        """Swap in ``stream``; returns the old stream, or None if the slot has started."""
        with self._lock:
            if self.started:
                return None
            old, self._stream = self._stream, stream
            return old

    def read(self, frames: int) -> np.ndarray:
        with self._lock:
            self.started = True
            stream = self._stream
        return stream.read(frames)

    def seek(self, frame: int) -> int:
        with self._lock:
            self.started = True
        return int(self._stream.seek(frame))

    def tell(self) -> int:
        tell = getattr(self._stream, "tell", None)
        return int(tell()) if callable(tell) else 0

    def close(self) -> None:
        self._stream.close()


@dataclass
class _Plan:
    """What follows the current song: the queue steps that reach it and its opened stream."""

    steps: list[bool]  # the ``skip`` argument of each queue.next() call
    song: Song | None
    index: int | None
    failures: list[tuple[Song, MfxError]]
    label: str = ""
    slot: _Slot | None = None


_SKIPPABLE = (PluginError, DecodeError, UnsupportedFormatError, NotFoundError, AudioError)


def failure_reason(error: BaseException) -> str:
    if isinstance(error, MfxError):
        return error.reason
    return type(error).__name__


_ALL = 100_000  # "every item" for a listing the player itself needs whole (playlist names)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _search_type(type: SearchType | str) -> SearchType:
    try:
        return SearchType(type)
    except ValueError:
        raise BadRequestError(f"type: expected one of {', '.join(t.value for t in SearchType)}, got {type!r}") from None


def _check_page(limit: int, offset: int) -> None:
    if limit < 1:
        raise BadRequestError(f"limit: expected at least 1, got {limit}")
    if offset < 0:
        raise BadRequestError(f"offset: expected 0 or more, got {offset}")


def _nobody_answered(result: SearchResult, deadline: float) -> str:
    """Why no MusicSource answered, and what to look at next."""
    parts = [f"{name} did not answer within {deadline:g}s" for name in result.timed_out]
    parts += [f"{name} failed: {why}" for name, why in result.failed.items()]
    names = result.timed_out + list(result.failed)
    hint = "; ".join(f"`mfx describe pm {name}`" for name in names)
    advice = f"see {hint} and `mfx logs pm/{names[0]}`" if names else "see `mfx get pm`"
    if result.timed_out:
        advice += "; a slow source may need a larger searchTimeout in player.yaml"
    return f"no MusicSource answered: {'; '.join(parts)}; {advice}"


# --- the player ------------------------------------------------------------------------------


class Player:
    def __init__(self, *, services: ServiceLookup, sink: SinkLookup, metrics: Metrics,
                 config: PlayerConfig | None = None, bus: EventBus | None = None,
                 state_file: PlayerStateFile | None = None, rng: random.Random | None = None) -> None:
        self.config = config or PlayerConfig()
        self._services = services
        self._sink_lookup = sink
        self._metrics = metrics
        self._bus = bus
        self._state_file = state_file
        self._rng = rng or random.Random()
        self._queue = PlayQueue(mode=self.config.default_mode, rng=self._rng)
        self._status = PlayerStatus.STOPPED
        self._volume = self.config.default_volume
        self._muted = False
        self._last_error: TrackFailure | None = None
        self._lock = anyio.Lock()
        self._pipeline: Pipeline | None = None
        self._pending: _Plan | None = None
        self._direct_label: str | None = None
        self._labels = 0
        self._position_base = 0.0  # seconds into the current song at ``_mark``
        self._mark: int | None = None  # ring frames written when the audio at base starts
        self._active_processors: list[str] = []
        self._source_of: dict[str, str] = {}  # Song.source -> the provider that answered for it
        self._formats: dict[int, frozenset[str]] = {}
        self._lyrics: dict[str, Lyrics | None] = {}
        self._version = 0
        self._tracks_started = 0
        self._changed = anyio.Event()
        self._dirty = anyio.Event()
        self._kick = anyio.Event()
        self._events_send: MemoryObjectSendStream[tuple[str, Any]] | None = None
        self._portal_ok = False

    # --- lifetime ------------------------------------------------------------------------------

    @classmethod
    def for_home(cls, home: Path, **kwargs: Any) -> Player:
        return cls(config=PlayerConfig.load(home), state_file=PlayerStateFile(home / STATE_FILE), **kwargs)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Player]:
        """Restore the saved state, run the playback tasks, save on the way out."""
        self._restore()
        send, receive = anyio.create_memory_object_stream[tuple[str, Any]](max_buffer_size=math.inf)
        self._events_send = send
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._run_pipeline)
                group.start_soon(self._handle_events, receive)
                group.start_soon(self._save_changes)
                group.start_soon(self._tick_position)
                try:
                    yield self
                finally:
                    with anyio.CancelScope(shield=True):
                        async with self._lock:
                            position = self.position()
                            if self._pipeline is not None:
                                self._pipeline.stop()
                            self._position_base, self._mark = position, None
                            self._status = PlayerStatus.STOPPED if self._queue.current is None else PlayerStatus.PAUSED
                        await self._save_now()
                    group.cancel_scope.cancel()
        finally:
            self._events_send = None
            send.close()

    def _restore(self) -> None:
        if self._state_file is None:
            return
        saved = self._state_file.load()
        if saved is None:
            return
        try:
            self._queue = PlayQueue.from_dict(saved.queue, rng=self._rng) if saved.queue else self._queue
        except BadRequestError as exc:
            log.warning("player state: %s; starting with an empty queue", exc)
            return
        self._position_base = saved.position_seconds if self._queue.current is not None else 0.0
        self._volume = saved.volume
        self._muted = saved.muted
        # A restored song waits, paused at its position, for `resume`.
        self._status = PlayerStatus.PAUSED if self._queue.current is not None else PlayerStatus.STOPPED

    # --- reading -------------------------------------------------------------------------------

    @property
    def queue(self) -> PlayQueue:
        return self._queue

    def position(self) -> float:
        position = self._position_base
        pipeline = self._pipeline
        if self._status is PlayerStatus.PLAYING and self._mark is not None and pipeline is not None:
            try:
                ring = pipeline.sink.ring
                consumed = ring.written_total - ring.fill
                position += max(0, consumed - self._mark) / pipeline.sink.params.rate
            except AudioError:
                pass
        current = self._queue.current
        if current is not None and current.duration_seconds:
            position = min(position, current.duration_seconds)
        return max(0.0, position)

    def state(self) -> PlayerView:
        current = self._queue.current
        return PlayerView(
            status=self._status, current=current, position_seconds=self.position(),
            queue=self._queue.songs, history=self._queue.history, mode=self._queue.mode,
            volume=self._volume, muted=self._muted, current_index=self._queue.current_index,
            duration_seconds=current.duration_seconds if current else None,
            last_error=self._last_error, processors=list(self._active_processors),
            tracks_started=self._tracks_started, version=self._version)

    async def wait_for(self, predicate: Callable[[PlayerView], bool]) -> PlayerView:
        """Wait until ``predicate(state)`` holds (checked at every change); bound it with
        ``anyio.fail_after`` where a deadline is needed."""
        while True:
            view = self.state()
            if predicate(view):
                return view
            await self._changed.wait()

    # --- queue -----------------------------------------------------------------------------------

    async def add(self, songs: Sequence[Song], *, next: bool = False) -> list[int]:
        async with self._lock:
            if next:
                indices = [self._queue.insert_next(song) for song in reversed(songs)][::-1]
            else:
                indices = [self._queue.add(song) for song in songs]
            await self._edited()
            return indices

    async def remove(self, index: int) -> Song:
        async with self._lock:
            was_current = index == self._queue.current_index
            song = self._queue.remove(index)
            if was_current and self._status is not PlayerStatus.STOPPED:
                await self._advance(lambda: self._queue.next(skip=True))
            else:
                await self._edited()
            return song

    async def move(self, source: int, target: int) -> None:
        async with self._lock:
            self._queue.move(source, target)
            await self._edited()

    async def clear(self) -> None:
        async with self._lock:
            self._stop_pipeline()
            self._queue.clear()
            self._status = PlayerStatus.STOPPED
            self._position_base, self._mark = 0.0, None
            self._changed_now()

    async def replace(self, songs: Sequence[Song]) -> None:
        async with self._lock:
            self._stop_pipeline()
            self._queue.clear()
            self._queue.extend(songs)
            self._status = PlayerStatus.STOPPED
            self._position_base, self._mark = 0.0, None
            self._changed_now()

    async def set_mode(self, mode: PlayMode | str) -> None:
        try:
            mode = PlayMode(mode)
        except ValueError:
            raise BadRequestError(f"mode: expected one of {', '.join(m.value for m in PlayMode)}, got {mode!r}") from None
        async with self._lock:
            self._queue.set_mode(mode)
            await self._edited()

    # --- transport -------------------------------------------------------------------------------

    async def play(self, index: int | None = None) -> None:
        """Play the song at ``index``; without one, resume (or start the current song, or the first)."""
        async with self._lock:
            if index is None:
                if self._status is PlayerStatus.PLAYING:
                    return
                if self._queue.current is not None:
                    await self._resume_locked()
                    return
                if not len(self._queue):
                    raise BadRequestError("the queue is empty: add songs first (mfx queue add QUERY)")
                await self._advance(lambda: self._queue.next(skip=True))
                return
            self._queue.play(index)  # checks the index first
            await self._advance(lambda: self._queue.current)

    async def pause(self) -> None:
        async with self._lock:
            if self._status is not PlayerStatus.PLAYING:
                return
            self._position_base, self._mark = self.position(), None
            if self._pipeline is not None:
                self._pipeline.pause()
            self._status = PlayerStatus.PAUSED
            self._changed_now()

    async def resume(self) -> None:
        async with self._lock:
            await self._resume_locked()

    async def stop(self) -> None:
        async with self._lock:
            self._stop_pipeline()
            self._status = PlayerStatus.STOPPED
            self._position_base, self._mark = 0.0, None
            self._changed_now()

    async def next(self) -> None:
        async with self._lock:
            await self._advance(lambda: self._queue.next(skip=True))

    async def previous(self) -> None:
        async with self._lock:
            if self._queue.previous() is None:
                raise BadRequestError("there is no previous song in this play mode")
            await self._advance(lambda: self._queue.current)

    async def seek(self, seconds: float) -> None:
        if not _is_number(seconds) or seconds < 0:
            raise BadRequestError(f"seek: expected a position in seconds >= 0, got {seconds!r}")
        async with self._lock:
            self._seek_locked(float(seconds))

    async def seek_by(self, offset: float) -> None:
        """Move ``offset`` seconds from where the song is now (negative: back), clamped to the
        song; read and moved under the lock so two quick steps add up."""
        if not _is_number(offset):
            raise BadRequestError(f"seek: expected an offset in seconds, got {offset!r}")
        async with self._lock:
            self._seek_locked(max(0.0, self.position() + float(offset)))

    def _seek_locked(self, seconds: float) -> None:
        current = self._queue.current
        if current is None:
            raise BadRequestError("nothing to seek in: no current song")
        if current.duration_seconds:
            seconds = min(seconds, current.duration_seconds)
        pipeline = self._pipeline
        if self._status is PlayerStatus.PLAYING and pipeline is not None:
            pipeline.seek(seconds)
            self._mark = pipeline.sink.ring.written_total
        elif self._status is PlayerStatus.PAUSED and pipeline is not None and pipeline.current is not None:
            pipeline.seek(seconds)
        self._position_base = seconds
        self._changed_now()

    async def set_volume(self, volume: int) -> None:
        if not isinstance(volume, int) or isinstance(volume, bool) or not 0 <= volume <= 100:
            raise BadRequestError(f"volume: expected an integer 0..100, got {volume!r}")
        async with self._lock:
            self._set_volume_locked(volume)

    async def change_volume(self, change: int) -> None:
        """Raise (or, negative, lower) the volume by ``change``, kept within 0..100."""
        if not isinstance(change, int) or isinstance(change, bool):
            raise BadRequestError(f"volume change: expected an integer, got {change!r}")
        async with self._lock:
            self._set_volume_locked(min(100, max(0, self._volume + change)))

    def _set_volume_locked(self, volume: int) -> None:
        self._volume = volume
        if self._pipeline is not None:
            self._pipeline.set_volume(volume / 100)
        self._changed_now()

    async def set_mute(self, muted: bool) -> None:
        async with self._lock:
            self._muted = bool(muted)
            if self._pipeline is not None:
                self._pipeline.set_mute(self._muted)
            self._changed_now()

    # --- catalogue -------------------------------------------------------------------------------

    def sources(self) -> list[Any]:
        return list(self._services.lookup(MUSIC_SOURCE))

    async def search(self, query: str, type: SearchType | str = SearchType.SONG, *, limit: int = 30,
                     offset: int = 0, source: str | None = None) -> SearchResult:
        """Ask every Ready MusicSource at once; each gets ``searchTimeout`` seconds. Raises
        ``NoSourceAnsweredError`` when none answered: an empty answer then would claim that
        nothing matches when nothing was searched."""
        kind = _search_type(type)
        if not query.strip():  # every source answers an empty query with nothing at all
            raise BadRequestError("q: the query is empty; to list everything a source holds, use the "
                                  "library (`mfx library`, `mfx playlists`)")
        _check_page(limit, offset)
        params = {"query": query, "type": kind.value, "limit": limit, "offset": offset}
        started = time.perf_counter()
        result = await self._ask_sources("search", params, source)
        self._metrics.player_search_duration_seconds.observe(time.perf_counter() - started)
        return result

    async def library(self, type: SearchType | str = SearchType.SONG, *, limit: int = 100, offset: int = 0,
                      source: str | None = None) -> SearchResult:
        """Every item of one type that the Ready MusicSources hold (their ``browse``), in
        each source's own order; sources are asked at once, as for a search."""
        kind = _search_type(type)
        _check_page(limit, offset)
        return await self._ask_sources("browse", {"type": kind.value, "limit": limit, "offset": offset}, source)

    async def _ask_sources(self, method: str, params: dict[str, Any], source: str | None) -> SearchResult:
        """Call ``method`` on every Ready MusicSource (or only ``source``) concurrently and merge
        the answers; a source that fails or misses the deadline is reported, never raised."""
        providers = self.sources()
        if source is not None:
            providers = [p for p in providers if p.name == source]
            if not providers:
                names = ", ".join(p.name for p in self.sources()) or "none"
                raise NotFoundError(f"no Ready MusicSource named {source!r} (Ready: {names})")
        if not providers:
            raise NoSourceAnsweredError(
                "no MusicSource is Ready, so there is nothing to ask: apply one (e.g. "
                "`mfx apply -f plugins/local-music/plugin.yaml`), wait for it with "
                "`mfx wait --for=condition=Ready pm --all`; `mfx get pm` shows what is not Ready")
        results: dict[str, SearchResult] = {}
        deadline = self.config.search_timeout

        async def ask(provider: Any) -> None:
            name = provider.name
            with anyio.move_on_after(deadline) as scope:
                try:
                    answer = await provider.instance.call(method, params)
                    result = SearchResult.from_wire(answer)
                except Exception as exc:  # one source's failure is reported, never raised
                    results[name] = SearchResult(failed={name: f"{failure_reason(exc)}: {exc}"})
                    return
                for song in result.songs:
                    self._source_of.setdefault(song.source, name)
                for playlist in result.playlists:
                    self._source_of.setdefault(playlist.source, name)
                result.answered, result.timed_out, result.failed = [name], [], {}
                results[name] = result
            if scope.cancelled_caught:
                self._metrics.player_source_timeouts_total.labels(name).inc()
                results[name] = SearchResult(timed_out=[name])

        async with anyio.create_task_group() as group:
            for provider in providers:
                group.start_soon(ask, provider)
        merged = SearchResult.merge(results[p.name] for p in providers)
        if not merged.answered:
            raise NoSourceAnsweredError(_nobody_answered(merged, deadline))
        return merged

    async def playlists(self, source: str | None = None) -> list[Playlist]:
        """The playlists of every Ready MusicSource (or of ``source``)."""
        return (await self.library(SearchType.PLAYLIST, limit=_ALL, source=source)).playlists

    async def playlist(self, name: str, source: str | None = None) -> Playlist:
        """The playlist called ``name`` (or with that id), with its songs resolved."""
        wanted = name.casefold()
        known = await self.playlists(source)
        for playlist in known:
            if playlist.id == name or playlist.name.casefold() == wanted:
                handle = self._handle_for_source(playlist.source)
                detail = Playlist.from_wire(await handle.call("playlist_detail", {"id": playlist.id}))
                for song in detail.songs or []:
                    self._source_of.setdefault(song.source, getattr(handle, "name", ""))
                return detail
        where = f" in {source}" if source else ""
        if not known:
            raise NotFoundError(f"no playlist named {name!r}: there are no playlists{where} "
                                "(`mfx library` lists what there is)")
        names = ", ".join(repr(p.name) for p in known)
        raise NotFoundError(f"no playlist named {name!r}; playlists{where}: {names} (`mfx playlists` lists them)")

    async def lyrics(self, song: Song | None = None) -> Lyrics | None:
        song = song or self._queue.current
        if song is None:
            raise BadRequestError("no current song: name one or start playing")
        if song.id not in self._lyrics:
            handle = await self._handle_for_song(song)
            answer = await handle.call("lyrics", {"id": song.id})
            self._lyrics[song.id] = Lyrics.from_wire(answer) if answer else None
        return self._lyrics[song.id]

    # --- playback internals (lock held) ---------------------------------------------------------

    async def _resume_locked(self) -> None:
        if self._status is PlayerStatus.PLAYING:
            return
        pipeline = self._pipeline
        if self._status is PlayerStatus.PAUSED and pipeline is not None and pipeline.current is not None:
            pipeline.resume()
            self._mark = pipeline.sink.ring.written_total
            self._status = PlayerStatus.PLAYING
            self._changed_now()
            return
        if self._queue.current is None:
            raise BadRequestError("nothing to resume: play a song first")
        await self._advance(lambda: self._queue.current, start_at=self._position_base)

    async def _advance(self, step: Callable[[], Song | None], *, start_at: float = 0.0) -> None:
        """Take ``step`` on the queue and start the song it lands on; a song that cannot be
        opened is recorded and skipped."""
        song = step()
        attempts = 0
        stream = None
        while song is not None:
            try:
                stream = await self._open(song)
                break
            except _SKIPPABLE as exc:
                self._record_failure(song, exc)
                attempts += 1
                if attempts >= len(self._queue):
                    song = None
                    break
                song = self._queue.next(skip=True)
                start_at = 0.0
        if song is None or stream is None:
            self._stop_pipeline()
            self._status = PlayerStatus.STOPPED
            self._position_base, self._mark = 0.0, None
            self._changed_now()
            return
        try:
            pipeline = self._ensure_pipeline()
        except MfxError:
            stream.close()  # opened for nothing: there is no sink to play it on
            raise
        self._drop_pending()
        if start_at > 0:
            stream.seek(round(start_at * stream.samplerate))
        label = self._new_label()
        self._direct_label = label
        pipeline.set_processors(self._processors())
        pipeline.play(stream, label)
        self._status = PlayerStatus.PLAYING
        self._position_base, self._mark = start_at, pipeline.sink.ring.written_total
        self._kick.set()
        self._changed_now()

    async def _edited(self) -> None:
        self._changed_now()
        if self._pending is not None or self._status is PlayerStatus.PLAYING:
            await self._prefetch()

    async def _prefetch(self) -> None:
        """Work out and open the song that follows the current one; enqueue it (or update the
        slot already enqueued)."""
        pipeline = self._pipeline
        if pipeline is None or self._status is PlayerStatus.STOPPED or self._queue.current is None:
            return
        clone = PlayQueue.from_dict(self._queue.to_dict(), rng=_copy_rng(self._rng))
        steps = [False]
        failures: list[tuple[Song, MfxError]] = []
        song = clone.next()
        stream: Any = None
        while song is not None:
            try:
                stream = await self._open(song)
                break
            except _SKIPPABLE as exc:
                failures.append((song, exc if isinstance(exc, MfxError) else MfxError(str(exc))))
                if len(failures) >= len(clone):
                    song = None
                    break
                song = clone.next(skip=True)
                steps.append(True)
        plan = _Plan(steps, song, clone.current_index if song is not None else None, failures)
        pending = self._pending
        if pending is not None and pending.slot is not None:
            if pending.song == plan.song and pending.steps == plan.steps and pending.index == plan.index:
                if stream is not None:
                    stream.close()
                return
            old = pending.slot.replace(stream if stream is not None else _Empty())
            if old is None:  # it started meanwhile: its start event will commit it
                if stream is not None:
                    stream.close()
                return
            old.close()
            plan.label, plan.slot = pending.label, pending.slot
            self._pending = plan
            return
        if stream is None:
            return
        plan.slot = _Slot(stream)
        plan.label = self._new_label()
        self._pending = plan
        pipeline.enqueue(plan.slot, plan.label)
        self._kick.set()

    def _drop_pending(self) -> None:
        if self._pending is not None and self._pending.slot is not None:
            self._pending.slot.replace(_Empty())
        self._pending = None

    def _stop_pipeline(self) -> None:
        self._drop_pending()
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
            self._pipeline.set_volume(self._volume / 100)
            self._pipeline.set_mute(self._muted)
        return self._pipeline

    def _processors(self) -> list[Any]:
        by_name = {p.name: p for p in self._services.lookup(AUDIO_PROCESSOR)}
        chosen: list[Any] = []
        active: list[str] = []
        for name in self.config.processors:
            provider = by_name.get(name)
            target = local_object(provider.instance) if provider is not None else None
            if target is None or not callable(getattr(target, "process", None)):
                log.warning("AudioProcessor %s is not Ready; playing without it", name)
                continue
            chosen.append(target)
            active.append(name)
        self._active_processors = active
        return chosen

    async def _open(self, song: Song) -> _Primed:
        """song_url -> codec by extension -> open -> decode the first block."""
        handle = await self._handle_for_song(song)
        location = await handle.call("song_url", {"id": song.id})
        if not isinstance(location, str) or not location:
            raise DecodeError(f"{getattr(handle, 'name', 'source')} answered song_url({song.id!r}) with "
                              f"{location!r}; expected a file path")
        if "://" in location and not location.startswith("file://"):
            raise UnsupportedFormatError(f"{song.title}: stream URLs are not played yet ({location})")
        path = location.removeprefix("file://")
        extension = os.path.splitext(path)[1].lstrip(".").lower() or (song.format or "")
        codec_handle, codec = self._codec_for(extension, path)
        block_frames = self.config.block_frames

        def open_and_prime() -> _Primed:
            stream = codec.open(path)
            try:
                first = np.asarray(stream.read(block_frames), dtype=np.float32)
            except BaseException:
                stream.close()
                raise
            return _Primed(stream, first)

        breaker = getattr(codec_handle, "breaker", None)
        if breaker is None:
            return await anyio.to_thread.run_sync(open_and_prime)
        async with breaker.guard():
            return await anyio.to_thread.run_sync(open_and_prime)

    def _codec_for(self, extension: str, path: str) -> tuple[Any, Any]:
        providers = self._services.lookup(CODEC)
        for provider in providers:
            codec = local_object(provider.instance)
            key = id(codec)
            if key not in self._formats:
                formats = getattr(codec, "formats", None)
                self._formats[key] = frozenset(formats()) if callable(formats) else frozenset()
            if extension in self._formats[key] and callable(getattr(codec, "open", None)):
                return provider.instance, codec
        names = ", ".join(p.name for p in providers) or "none Ready"
        raise UnsupportedFormatError(f"no Ready Codec decodes .{extension} files ({path}); codecs: {names}")

    async def _handle_for_song(self, song: Song) -> Any:
        providers = self.sources()
        if not providers:
            raise NotFoundError("no Ready MusicSource: apply one (e.g. plugins/local-music) and wait for Ready",
                                reason="NoProvider")
        wanted = self._source_of.get(song.source, song.source)
        for provider in providers:
            if provider.name == wanted:
                return provider.instance
        # Not learned yet (e.g. a queue restored after a restart): whoever knows the song.
        for provider in providers:
            try:
                with anyio.fail_after(self.config.search_timeout):
                    await provider.instance.call("song_detail", {"id": song.id})
            except (MfxError, TimeoutError):
                continue
            self._source_of[song.source] = provider.name
            return provider.instance
        raise NotFoundError(f"no Ready MusicSource knows song {song.id} ({song.title})")

    def _handle_for_source(self, source: str) -> Any:
        wanted = self._source_of.get(source, source)
        providers = self.sources()
        for provider in providers:
            if provider.name == wanted:
                return provider.instance
        if providers:
            return providers[0].instance
        raise NotFoundError("no Ready MusicSource", reason="NoProvider")

    def _record_failure(self, song: Song, error: BaseException, *, skipped: bool = True) -> None:
        reason = failure_reason(error)
        self._last_error = TrackFailure(song_id=song.id, title=song.title, reason=reason,
                                        message=str(error), time=time.time(), skipped=skipped)
        self._metrics.player_track_failures_total.labels(reason).inc()
        log.warning("%s %s: %s", "skipping" if skipped else "pausing", song.title, error)
        self._publish("TrackFailed", {"song": song.wire(), "reason": reason, "message": str(error)})
        self._changed_now()

    def _new_label(self) -> str:
        self._labels += 1
        return f"t{self._labels}"

    # --- tasks -----------------------------------------------------------------------------------

    def _track_start_from_thread(self, label: str) -> None:
        """Pipeline callback, on the pipeline's worker thread."""
        pipeline = self._pipeline
        mark = pipeline.sink.ring.written_total if pipeline is not None else 0
        send = self._events_send
        if send is not None:
            anyio.from_thread.run_sync(send.send_nowait, ("started", (label, mark)))

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

    async def _handle_events(self, receive: MemoryObjectReceiveStream[tuple[str, Any]]) -> None:
        async with receive:
            async for kind, payload in receive:
                async with self._lock:
                    if kind == "started":
                        await self._started(*payload)
                    else:
                        await self._idle(*payload)

    async def _started(self, label: str, mark: int) -> None:
        pending = self._pending
        if pending is not None and label == pending.label:
            self._pending = None
            for skip in pending.steps:
                self._queue.next(skip=skip)
            for song, error in pending.failures:
                self._record_failure(song, error)
            if pending.song is None:
                return  # the empty slot: the queue ended
            current = self._queue.current
            if current is None or current.id != pending.song.id:
                # The queue changed while the slot was being swapped: play what it says now.
                await self._advance(lambda: self._queue.current)
                return
        elif label != self._direct_label:
            return  # a replaced slot or a superseded play
        self._direct_label = None
        self._status = PlayerStatus.PLAYING
        if label == getattr(pending, "label", None):
            self._position_base = 0.0
        self._mark = mark
        self._metrics.player_tracks_played_total.inc()
        self._tracks_started += 1
        current = self._queue.current
        self._publish("TrackStarted", {"song": current.wire() if current else None,
                                       "index": self._queue.current_index})
        self._changed_now()
        await self._prefetch()

    async def _idle(self, pipeline: Pipeline, error: BaseException | None) -> None:
        if pipeline is not self._pipeline:
            return
        if error is not None:
            current = self._queue.current
            if current is not None and isinstance(error, _SKIPPABLE):
                self._record_failure(current, error)
                await self._advance(lambda: self._queue.next(skip=True))
                return
            log.error("playback stopped: %s", error)
            self._stop_pipeline()
            self._status = PlayerStatus.STOPPED
            if current is not None:
                self._record_failure(current, error)
            return
        if pipeline.state in (PipelineState.PLAYING, PipelineState.PAUSED):
            if not _ring_open(pipeline):
                await self._sink_gone()
                return
            self._kick.set()  # something was queued after the run ended: run again
            return
        if self._status is PlayerStatus.PLAYING:
            self._pending = None
            self._status = PlayerStatus.STOPPED
            self._position_base, self._mark = 0.0, None
            self._publish("QueueEnded", {})
            self._changed_now()

    async def _sink_gone(self) -> None:
        """The sink closed under the pipeline (its AudioSink was deleted): go on with the song
        on the default sink there is now, or pause at the position and record why, so that
        `mfx now` says it and `mfx resume` continues once a sink is back."""
        position = self.position()
        self._stop_pipeline()
        current = self._queue.current
        try:
            self._sink_lookup()
        except MfxError as exc:
            self._status = PlayerStatus.PAUSED if current is not None else PlayerStatus.STOPPED
            self._position_base, self._mark = position, None
            if current is not None:
                self._record_failure(current, exc, skipped=False)
            self._changed_now()
            return
        await self._advance(lambda: self._queue.current, start_at=position)

    async def _save_changes(self) -> None:
        if self._state_file is None:
            return
        while True:
            await self._dirty.wait()
            await anyio.sleep(self.config.save_debounce)  # debounce bursts of changes into one write
            self._dirty = anyio.Event()
            await self._save_now()

    async def _save_now(self) -> None:
        if self._state_file is None:
            return
        saved = SavedPlayer(queue=self._queue.to_dict(), position_seconds=self.position(),
                            volume=self._volume, muted=self._muted)
        try:
            await anyio.to_thread.run_sync(self._state_file.save, saved)
        except OSError as exc:
            log.error("cannot save the player state to %s: %s", self._state_file.path, exc)

    async def _tick_position(self) -> None:
        while True:
            await anyio.sleep(self.config.position_save_interval)
            if self._status is PlayerStatus.PLAYING:
                self._dirty.set()

    def _changed_now(self) -> None:
        self._version += 1
        self._changed.set()
        self._changed = anyio.Event()
        self._dirty.set()

    def _publish(self, type: str, payload: dict[str, Any]) -> None:
        if self._bus is not None:
            self._bus.publish(PLAYER_TOPIC, {"type": type, **payload})


def _ring_open(pipeline: Pipeline) -> bool:
    """False once the pipeline's sink is closed for good; a sink being reopened (its ring
    not there for a moment) counts as open, since its writer thread comes back by itself."""
    try:
        return not pipeline.sink.ring.closed
    except AudioError:
        return True


def _copy_rng(rng: random.Random) -> random.Random:
    copy = random.Random()
    copy.setstate(rng.getstate())
    return copy
