"""The music domain as typed, JSON-serialisable models.

These are the values that cross plugin boundaries: a ``MusicSource`` plugin answers with
them (in their wire form, see ``MusicModel.wire``), the player re-validates what it receives
with ``Model.model_validate`` and keeps them in its queue and state.

Wire form: camelCase keys (``trackNumber``, ``durationSeconds``), enums as their string
values, ``None`` fields left out. Validation accepts both camelCase and snake_case keys, so
plugin authors may build plain dicts either way.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Iterable
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel


class MusicModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",  # a newer plugin may send fields this player does not know yet
        frozen=False,
    )

    def wire(self) -> dict[str, Any]:
        """The JSON-ready dict a plugin returns over RPC."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @classmethod
    def from_wire(cls, data: Any) -> Self:
        """Validate what a plugin sent (a dict in wire or snake_case form, or a model)."""
        if isinstance(data, cls):
            return data
        return cls.model_validate(data)


# --- Enums -----------------------------------------------------------------------------


class Quality(enum.StrEnum):
    """Stream qualities, lowest first (the Netease levels go-musicfox users know)."""

    STANDARD = "standard"  # ~128 kbit/s
    HIGHER = "higher"  # ~192 kbit/s
    EXHIGH = "exhigh"  # ~320 kbit/s
    LOSSLESS = "lossless"  # CD quality FLAC
    HIRES = "hires"  # > 16 bit / 48 kHz


class PlayMode(enum.StrEnum):
    IN_ORDER = "in-order"  # stop after the last song
    LOOP_ALL = "loop-all"  # wrap around to the first song
    LOOP_ONE = "loop-one"  # repeat the current song when it ends
    SHUFFLE = "shuffle"  # every song once per cycle, in random order


class PlayerStatus(enum.StrEnum):
    STOPPED = "stopped"
    PLAYING = "playing"
    PAUSED = "paused"


class SearchType(enum.StrEnum):
    SONG = "song"
    ALBUM = "album"
    ARTIST = "artist"
    PLAYLIST = "playlist"


# --- Catalogue -------------------------------------------------------------------------


class Artist(MusicModel):
    id: str
    name: str
    source: str = ""


class Album(MusicModel):
    id: str
    name: str
    source: str = ""
    artists: list[Artist] = Field(default_factory=list)
    year: int | None = None
    song_count: int | None = None
    has_cover: bool = False


class Song(MusicModel):
    """One playable song. ``id`` is unique per source, e.g. ``local:<sha1 of path>``."""

    id: str
    source: str
    title: str
    artists: list[Artist] = Field(default_factory=list)
    album: Album | None = None
    track_number: int | None = Field(default=None, ge=0)
    disc_number: int | None = Field(default=None, ge=0)
    duration_seconds: float | None = Field(default=None, ge=0)
    path: str | None = None  # a local file the codec can open
    url: str | None = None  # or a stream URL
    has_cover: bool = False
    format: str | None = None  # container/codec, lower case: "flac", "mp3", "ogg"
    qualities: list[Quality] = Field(default_factory=list)

    @property
    def artist_names(self) -> list[str]:
        return [artist.name for artist in self.artists]

    @property
    def display_artist(self) -> str:
        return ", ".join(self.artist_names)


class Playlist(MusicModel):
    """A list of songs. ``song_ids`` is always set; ``songs`` only when resolved."""

    id: str
    name: str
    source: str = ""
    description: str = ""
    song_ids: list[str] = Field(default_factory=list)
    songs: list[Song] | None = None
    path: str | None = None  # where a file-based playlist lives

    @model_validator(mode="after")
    def _ids_follow_songs(self) -> Self:
        if self.songs is not None and not self.song_ids:
            self.song_ids = [song.id for song in self.songs]
        return self


# --- Lyrics ----------------------------------------------------------------------------


class LyricLine(MusicModel):
    time: float = Field(ge=0)  # seconds from the start of the song
    text: str
    translation: str | None = None


class Lyrics(MusicModel):
    """Timed lines, sorted by time; ``plain`` holds unsynchronised lyrics if that is all."""

    lines: list[LyricLine] = Field(default_factory=list)
    plain: str | None = None

    @model_validator(mode="after")
    def _sorted(self) -> Self:
        # sorted() is stable, so lines sharing a timestamp keep their file order
        self.lines = sorted(self.lines, key=lambda line: line.time)
        return self

    def index_at(self, position: float) -> int | None:
        """Index of the line showing at ``position`` seconds (None before the first)."""
        times = [line.time for line in self.lines]
        index = bisect.bisect_right(times, position) - 1
        return index if index >= 0 else None

    def line_at(self, position: float) -> LyricLine | None:
        index = self.index_at(position)
        return None if index is None else self.lines[index]


# --- Player ----------------------------------------------------------------------------


class PlayerState(MusicModel):
    status: PlayerStatus = PlayerStatus.STOPPED
    current: Song | None = None
    position_seconds: float = Field(default=0.0, ge=0)
    queue: list[Song] = Field(default_factory=list)
    history: list[Song] = Field(default_factory=list)
    mode: PlayMode = PlayMode.IN_ORDER
    volume: int = Field(default=100, ge=0, le=100)
    muted: bool = False


# --- Search ----------------------------------------------------------------------------


class SearchResult(MusicModel):
    """Items per type, plus which sources answered, timed out or failed (and why)."""

    songs: list[Song] = Field(default_factory=list)
    albums: list[Album] = Field(default_factory=list)
    artists: list[Artist] = Field(default_factory=list)
    playlists: list[Playlist] = Field(default_factory=list)
    total: int | None = None  # matches before limit/offset, when the source knows it
    answered: list[str] = Field(default_factory=list)
    timed_out: list[str] = Field(default_factory=list)
    failed: dict[str, str] = Field(default_factory=dict)

    def items(self, type: SearchType) -> list[Song] | list[Album] | list[Artist] | list[Playlist]:
        match type:
            case SearchType.SONG:
                return self.songs
            case SearchType.ALBUM:
                return self.albums
            case SearchType.ARTIST:
                return self.artists
            case SearchType.PLAYLIST:
                return self.playlists

    @classmethod
    def merge(cls, results: Iterable[SearchResult]) -> SearchResult:
        """Concatenate per-source results in the order given (the caller orders sources)."""
        merged = cls()
        total = 0
        known_total = True
        for result in results:
            merged.songs.extend(result.songs)
            merged.albums.extend(result.albums)
            merged.artists.extend(result.artists)
            merged.playlists.extend(result.playlists)
            merged.answered.extend(result.answered)
            merged.timed_out.extend(result.timed_out)
            merged.failed.update(result.failed)
            if result.total is None:
                known_total = False
            else:
                total += result.total
        merged.total = total if known_total else None
        return merged
