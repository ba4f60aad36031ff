"""The player service the API calls: it checks arguments and composes the parts that do
the work.

- ``Transport`` (transport.py): the queue and the playback state machine, with gapless
  look-ahead (gapless.py) and songs opened by ``TrackOpener`` (track_opener.py);
- ``Catalogue`` (catalogue.py): search, browse, playlists and lyrics across the MusicSources;
- ``AutoSave`` (autosave.py) with ``PlayerStateFile`` (player_state.py): the saved state;
- ``PlayerConfig`` (player_config.py): ``player.yaml``;
- ``PlayerChanges`` (player_changes.py): versions, wake-ups and bus events.

Playback path, per song: the song's MusicSource answers ``song_url`` (a local path); the
audio engine (a process of its own, ``mfx.engine``) opens it with the Codec whose
``formats()`` holds the file's extension and decodes the first block ahead; it plays it
through the AudioProcessors the configuration names, in that order, into the default sink.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

from mfx.api.music import Lyrics, PlayerStatus, Playlist, PlayMode, SearchResult, SearchType, Song
from mfx.engine.api import AudioEngine
from mfx.errors import BadRequestError
from mfx.music.autosave import AutoSave
from mfx.music.catalogue import Catalogue
from mfx.music.engine_plugins import EnginePlugins
from mfx.music.player_changes import PLAYER_TOPIC, PlayerChanges
from mfx.music.player_config import CONFIG_FILE, PlayerConfig
from mfx.music.player_state import STATE_FILE, PlayerStateFile
from mfx.music.player_view import PlayerView, TrackFailure, failure_reason
from mfx.music.plugin_lookup import ServiceLookup
from mfx.music.queue import PlayQueue
from mfx.music.track_opener import TrackOpener
from mfx.music.transport import SinkLookup, Transport
from observability.metrics import Metrics
from reconciler.eventbus import EventBus

__all__ = ["CONFIG_FILE", "PLAYER_TOPIC", "Player", "PlayerConfig", "PlayerView", "SinkLookup", "TrackFailure",
           "failure_reason"]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_volume(volume: Any) -> int:
    if not isinstance(volume, int) or isinstance(volume, bool) or not 0 <= volume <= 100:
        raise BadRequestError(f"volume: expected an integer 0..100, got {volume!r}")
    return volume


class Player:
    def __init__(self, *, services: ServiceLookup, sink: SinkLookup, engine: AudioEngine, metrics: Metrics,
                 config: PlayerConfig | None = None, bus: EventBus | None = None,
                 state_file: PlayerStateFile | None = None, rng: random.Random | None = None,
                 keep_playing: bool = False) -> None:
        self.config = config or PlayerConfig()
        self._changes = PlayerChanges(bus)
        self._catalogue = Catalogue(services, metrics, search_timeout=self.config.search_timeout)
        plugins = EnginePlugins(services, engine)
        labels = itertools.count(1)
        # Labels name one play of a track in the engine; the start time keeps them apart from
        # those of an earlier daemon whose engine this one adopted.
        prefix = f"{time.time_ns():x}-"
        opener = TrackOpener(self._catalogue, services, engine, plugins, lambda: f"{prefix}{next(labels)}")
        self._transport = Transport(config=self.config, services=services, sink=sink, metrics=metrics,
                                    changes=self._changes, opener=opener, engine=engine, plugins=plugins,
                                    rng=rng or random.Random(), keep_playing=keep_playing)
        self._autosave = AutoSave(state_file, self._changes, snapshot=self._transport.saved, playing=self._playing,
                                  debounce=self.config.save_debounce, interval=self.config.position_save_interval)

    # --- lifetime ------------------------------------------------------------------------------

    @classmethod
    def for_home(cls, home: Path, **kwargs: Any) -> Player:
        return cls(config=PlayerConfig.load(home), state_file=PlayerStateFile(home / STATE_FILE), **kwargs)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Player]:
        """Restore the saved state, run the playback tasks, save on the way out."""
        saved = self._autosave.load()
        if saved is not None:
            self._transport.restore(saved)
        async with anyio.create_task_group() as group:
            group.start_soon(self._transport.run)
            group.start_soon(self._autosave.run)
            try:
                yield self
            finally:
                with anyio.CancelScope(shield=True):
                    await self._transport.park()
                    await self._autosave.save_now()
                group.cancel_scope.cancel()

    def _playing(self) -> bool:
        return self._transport.status is PlayerStatus.PLAYING

    # --- reading -------------------------------------------------------------------------------

    @property
    def queue(self) -> PlayQueue:
        return self._transport.queue

    def position(self) -> float:
        return self._transport.position()

    def state(self) -> PlayerView:
        transport = self._transport
        queue = transport.queue
        current = queue.current
        return PlayerView(
            status=transport.status, current=current, position_seconds=transport.position(),
            queue=queue.songs, history=queue.history, mode=queue.mode,
            volume=transport.volume, muted=transport.muted, current_index=queue.current_index,
            duration_seconds=current.duration_seconds if current else None,
            last_error=transport.last_error, processors=list(transport.active_processors),
            engine_restarts=transport.engine_restarts,
            tracks_started=transport.tracks_started, version=self._changes.version)

    async def wait_for(self, predicate: Callable[[PlayerView], bool]) -> PlayerView:
        """Wait until ``predicate(state)`` holds (checked at every change); bound it with
        ``anyio.fail_after`` where a deadline is needed."""
        while True:
            view = self.state()
            if predicate(view):
                return view
            await self._changes.wait_changed()

    # --- queue -----------------------------------------------------------------------------------

    async def add(self, songs: Sequence[Song], *, next: bool = False) -> list[int]:
        return await self._transport.add(songs, next=next)

    async def remove(self, index: int) -> Song:
        return await self._transport.remove(index)

    async def move(self, source: int, target: int) -> None:
        await self._transport.move(source, target)

    async def clear(self) -> None:
        await self._transport.replace([])

    async def replace(self, songs: Sequence[Song]) -> None:
        await self._transport.replace(songs)

    async def set_mode(self, mode: PlayMode | str) -> None:
        try:
            mode = PlayMode(mode)
        except ValueError:
            raise BadRequestError(f"mode: expected one of {', '.join(m.value for m in PlayMode)}, got {mode!r}") from None
        await self._transport.set_mode(mode)

    # --- transport -------------------------------------------------------------------------------

    async def play(self, index: int | None = None) -> None:
        """Play the song at ``index``; without one, resume (or start the current song, or the first)."""
        await self._transport.play(index)

    async def pause(self) -> None:
        await self._transport.pause()

    async def resume(self) -> None:
        await self._transport.resume()

    async def stop(self) -> None:
        await self._transport.stop()

    async def next(self) -> None:
        await self._transport.next()

    async def previous(self) -> None:
        await self._transport.previous()

    async def seek(self, seconds: float) -> None:
        if not _is_number(seconds) or seconds < 0:
            raise BadRequestError(f"seek: expected a position in seconds >= 0, got {seconds!r}")
        await self._transport.seek(float(seconds))

    async def seek_by(self, offset: float) -> None:
        """Move ``offset`` seconds from where the song is now (negative: back), clamped to the song."""
        if not _is_number(offset):
            raise BadRequestError(f"seek: expected an offset in seconds, got {offset!r}")
        await self._transport.seek_by(float(offset))

    async def set_volume(self, volume: int) -> None:
        await self._transport.set_volume(_check_volume(volume))

    async def change_volume(self, change: int) -> None:
        """Raise (or, negative, lower) the volume by ``change``, kept within 0..100."""
        if not isinstance(change, int) or isinstance(change, bool):
            raise BadRequestError(f"volume change: expected an integer, got {change!r}")
        await self._transport.change_volume(change)

    async def set_mute(self, muted: bool) -> None:
        await self._transport.set_mute(bool(muted))

    # --- catalogue -------------------------------------------------------------------------------

    def sources(self) -> list[Any]:
        return self._catalogue.sources()

    async def search(self, query: str, type: SearchType | str = SearchType.SONG, *, limit: int = 30,
                     offset: int = 0, source: str | None = None) -> SearchResult:
        return await self._catalogue.search(query, type, limit=limit, offset=offset, source=source)

    async def library(self, type: SearchType | str = SearchType.SONG, *, limit: int = 100, offset: int = 0,
                      source: str | None = None) -> SearchResult:
        return await self._catalogue.library(type, limit=limit, offset=offset, source=source)

    async def playlists(self, source: str | None = None) -> list[Playlist]:
        return await self._catalogue.playlists(source)

    async def playlist(self, name: str, source: str | None = None) -> Playlist:
        return await self._catalogue.playlist(name, source)

    async def lyrics(self, song: Song | None = None) -> Lyrics | None:
        song = song or self.queue.current
        if song is None:
            raise BadRequestError("no current song: name one or start playing")
        return await self._catalogue.lyrics(song)
