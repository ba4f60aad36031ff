"""Opening a song for playback: the source's ``song_url``, the Codec for the file's
extension, and the audio engine opening the file and decoding its first block ahead, so that
a file that cannot be decoded fails here and not on the audio thread."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mfx.api.music import Song
from mfx.engine.api import AudioEngine, TrackInfo, TrackRequest
from mfx.errors import DecodeError, MfxError, UnsupportedFormatError
from mfx.music.catalogue import Catalogue
from mfx.music.engine_plugins import EnginePlugins
from mfx.music.player_view import SKIPPABLE
from mfx.music.plugin_lookup import CODEC, ServiceLookup, local_object
from mfx.music.queue import PlayQueue


@dataclass(frozen=True)
class OpenedTrack:
    """A song the engine has opened, under the label the player gave this play of it."""

    song: Song
    label: str
    info: TrackInfo


@dataclass
class Playable:
    """The first song that opened (None: none did), the queue steps taken past songs that
    failed (each a ``skip=True`` call of ``queue.next``), and why they failed."""

    track: OpenedTrack | None = None
    steps: list[bool] = field(default_factory=list)
    failures: list[tuple[Song, MfxError]] = field(default_factory=list)

    @property
    def song(self) -> Song | None:
        return self.track.song if self.track is not None else None


def song_tag(song: Song) -> dict[str, Any]:
    """What the engine carries with a track for the player: enough for a new daemon to find
    the song in its queue when it adopts a playing engine."""
    return {"songId": song.id, "title": song.title}


class TrackOpener:
    def __init__(self, catalogue: Catalogue, services: ServiceLookup, engine: AudioEngine,
                 plugins: EnginePlugins, new_label: Callable[[], str]) -> None:
        self._catalogue = catalogue
        self._services = services
        self._engine = engine
        self._plugins = plugins
        self._new_label = new_label
        self._formats: dict[int, frozenset[str]] = {}  # id(codec) -> the extensions it decodes

    async def open(self, song: Song) -> OpenedTrack:
        """song_url -> codec by extension -> the engine opens it and decodes the first block."""
        handle = await self._catalogue.handle_for_song(song)
        location = await handle.call("song_url", {"id": song.id})
        if not isinstance(location, str) or not location:
            raise DecodeError(f"{getattr(handle, 'name', 'source')} answered song_url({song.id!r}) with "
                              f"{location!r}; expected a file path")
        if "://" in location and not location.startswith("file://"):
            raise UnsupportedFormatError(f"{song.title}: stream URLs are not played yet ({location})")
        path = location.removeprefix("file://")
        extension = os.path.splitext(path)[1].lstrip(".").lower() or (song.format or "")
        codec_name, breaker = self._codec_for(extension, path)
        await self._plugins.sync()
        self._plugins.check_loaded(codec_name)
        request = TrackRequest(label=self._new_label(), path=path, codec=codec_name, tag=song_tag(song))
        if breaker is None:
            info = await self._engine.open_track(request)
        else:
            async with breaker.guard():
                info = await self._engine.open_track(request)
        return OpenedTrack(song, request.label, info)

    def _codec_for(self, extension: str, path: str) -> tuple[str, Any]:
        providers = self._services.lookup(CODEC)
        for provider in providers:
            codec = local_object(provider.instance)
            key = id(codec)
            if key not in self._formats:
                formats = getattr(codec, "formats", None)
                self._formats[key] = frozenset(formats()) if callable(formats) else frozenset()
            if extension in self._formats[key]:
                return provider.name, getattr(provider.instance, "breaker", None)
        names = ", ".join(p.name for p in providers) or "none Ready"
        raise UnsupportedFormatError(f"no Ready Codec decodes .{extension} files ({path}); codecs: {names}")

    async def open_playable(self, queue: PlayQueue, song: Song | None) -> Playable:
        """Open ``song``, or while songs fail to open, the ones after it (``queue.next(skip=True)``),
        trying each entry of the queue at most once."""
        playable = Playable()
        while song is not None:
            try:
                playable.track = await self.open(song)
                return playable
            except SKIPPABLE as exc:
                playable.failures.append((song, exc if isinstance(exc, MfxError) else MfxError(str(exc))))
                if len(playable.failures) >= len(queue):
                    return playable
                song = queue.next(skip=True)
                playable.steps.append(True)
        return playable
