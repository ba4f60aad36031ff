"""Opening a song for playback: the source's ``song_url``, the Codec for the file's
extension, and the first block decoded ahead, so that a file that cannot be decoded fails
here and not on the audio thread."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import anyio
import numpy as np

from mfx.api.music import Song
from mfx.errors import DecodeError, MfxError, UnsupportedFormatError
from mfx.music.catalogue import Catalogue
from mfx.music.decoded_streams import PrimedStream
from mfx.music.player_view import SKIPPABLE
from mfx.music.plugin_lookup import CODEC, ServiceLookup, local_object
from mfx.music.queue import PlayQueue


@dataclass
class Playable:
    """The first song that opened (None: none did), its stream, the queue steps taken past
    songs that failed (each a ``skip=True`` call of ``queue.next``), and why they failed."""

    song: Song | None = None
    stream: PrimedStream | None = None
    steps: list[bool] = field(default_factory=list)
    failures: list[tuple[Song, MfxError]] = field(default_factory=list)


class TrackOpener:
    def __init__(self, catalogue: Catalogue, services: ServiceLookup, *, block_frames: int) -> None:
        self._catalogue = catalogue
        self._services = services
        self._block_frames = block_frames
        self._formats: dict[int, frozenset[str]] = {}  # id(codec) -> the extensions it decodes

    async def open(self, song: Song) -> PrimedStream:
        """song_url -> codec by extension -> open -> decode the first block."""
        handle = await self._catalogue.handle_for_song(song)
        location = await handle.call("song_url", {"id": song.id})
        if not isinstance(location, str) or not location:
            raise DecodeError(f"{getattr(handle, 'name', 'source')} answered song_url({song.id!r}) with "
                              f"{location!r}; expected a file path")
        if "://" in location and not location.startswith("file://"):
            raise UnsupportedFormatError(f"{song.title}: stream URLs are not played yet ({location})")
        path = location.removeprefix("file://")
        extension = os.path.splitext(path)[1].lstrip(".").lower() or (song.format or "")
        codec_handle, codec = self._codec_for(extension, path)
        block_frames = self._block_frames

        def open_and_prime() -> PrimedStream:
            stream = codec.open(path)
            try:
                first = np.asarray(stream.read(block_frames), dtype=np.float32)
            except BaseException:
                stream.close()
                raise
            return PrimedStream(stream, first)

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

    async def open_playable(self, queue: PlayQueue, song: Song | None) -> Playable:
        """Open ``song``, or while songs fail to open, the ones after it (``queue.next(skip=True)``),
        trying each entry of the queue at most once."""
        playable = Playable()
        while song is not None:
            try:
                playable.stream = await self.open(song)
                playable.song = song
                return playable
            except SKIPPABLE as exc:
                playable.failures.append((song, exc if isinstance(exc, MfxError) else MfxError(str(exc))))
                if len(playable.failures) >= len(queue):
                    return playable
                song = queue.next(skip=True)
                playable.steps.append(True)
        return playable
