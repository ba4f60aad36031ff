"""Read one audio file's tags with mutagen and turn them into a ``Song``."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from typing import Any

import mutagen
from mutagen._vorbis import VComment
from mutagen.easymp4 import EasyMP4
from mutagen.flac import FLAC
from mutagen.mp3 import EasyMP3
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis

from mfx.api.music import Album, Artist, Quality, Song

log = logging.getLogger("local_music")

SOURCE = "local"
LOSSLESS_FORMATS = frozenset({"flac", "wav", "aiff", "aif", "ape", "wv", "alac"})
_BY_EXTENSION: dict[str, Any] = {
    "flac": FLAC, "mp3": EasyMP3, "ogg": OggVorbis, "oga": OggVorbis, "opus": OggOpus,
    "m4a": EasyMP4, "mp4": EasyMP4,
}
_PICTURE_KEYS = ("apic", "covr", "metadata_block_picture", "wm/picture", "cover art")


class UnreadableFileError(Exception):
    """mutagen could not make sense of a file (corrupt, truncated, not audio)."""


def digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()


def song_id(path: str) -> str:
    return f"{SOURCE}:{digest(path)}"


def artist_id(name: str) -> str:
    return f"{SOURCE}:artist:{digest(name.casefold())}"


def album_id(name: str, album_artist: str | None, folder: str) -> str:
    # Without an album artist, the folder tells two albums called "Greatest Hits" apart.
    owner = album_artist.casefold() if album_artist else folder
    return f"{SOURCE}:album:{digest(name.casefold() + chr(0) + owner)}"


class TagReader:
    """Reads tags; ``reads`` counts mutagen parses, so callers can see what a scan did."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reads = 0

    def read(self, path: str) -> Song:
        with self._lock:
            self.reads += 1
        # The extension names the likely format: opening with that class skips mutagen's
        # sniffing of every format's header (a third of its time on small files). If the
        # extension lies, mutagen.File sniffs as usual.
        kind = _BY_EXTENSION.get(os.path.splitext(path)[1].lstrip(".").lower())
        audio = None
        if kind is not None:
            try:
                audio = kind(path)
            except Exception:  # noqa: BLE001 - any failure here just means "sniff instead"
                audio = None
        if audio is None:
            try:
                audio = mutagen.File(path, easy=True)
            except Exception as exc:  # mutagen raises many types on corrupt input; all mean "skip"
                raise UnreadableFileError(f"{type(exc).__name__}: {exc}") from exc
        if audio is None:
            raise UnreadableFileError("not a recognised audio format")
        return song_from_audio(path, audio)


def song_from_audio(path: str, audio: Any) -> Song:
    tags = _tag_dict(audio.tags)
    stem = os.path.splitext(os.path.basename(path))[0]
    title = _first(tags, "title") or stem
    artists = [Artist(id=artist_id(name), name=name, source=SOURCE) for name in _all(tags, "artist")]
    album_name = _first(tags, "album")
    album_artist = _first(tags, "albumartist")
    album = None
    cover = has_cover(audio, tags)
    if album_name:
        owners = (
            [Artist(id=artist_id(album_artist), name=album_artist, source=SOURCE)] if album_artist else artists
        )
        album = Album(
            id=album_id(album_name, album_artist, os.path.dirname(path)),
            name=album_name,
            source=SOURCE,
            artists=owners,
            year=_year(_first(tags, "date")),
            has_cover=cover,
        )
    info = getattr(audio, "info", None)
    length = getattr(info, "length", None)
    fmt = os.path.splitext(path)[1].lstrip(".").lower() or None
    return Song(
        id=song_id(path),
        source=SOURCE,
        title=title,
        artists=artists,
        album=album,
        track_number=_number(_first(tags, "tracknumber")),
        disc_number=_number(_first(tags, "discnumber")),
        duration_seconds=round(float(length), 3) if length else None,
        path=path,
        has_cover=cover,
        format=fmt,
        qualities=[quality_of(fmt, info)],
    )


def has_cover(audio: Any, tags: dict[str, list[str]]) -> bool:
    if getattr(audio, "pictures", None):  # FLAC picture blocks
        return True
    if "metadata_block_picture" in tags:  # Ogg
        return True
    raw = audio.tags
    if raw is None:
        return False
    # The easy wrappers hide picture frames; reach the wrapped tags so one parse is enough.
    inner = getattr(raw, "_EasyID3__id3", None) or getattr(raw, "_EasyMP4Tags__mp4", None)
    if inner is None:
        inner = raw
    return any(str(key).lower().startswith(_PICTURE_KEYS) for key in inner.keys())


_WANTED = ("title", "artist", "album", "albumartist", "tracknumber", "discnumber", "date")


def _tag_dict(tags: Any) -> dict[str, list[str]]:
    """The tags this library uses, keys lower-cased, read in one pass where possible."""
    if tags is None:
        return {}
    result: dict[str, list[str]] = {}
    if isinstance(tags, VComment):
        # Vorbis comments (FLAC, Ogg, Opus) are a list of pairs; keyed lookups rescan it.
        for key, value in tags:
            result.setdefault(key.lower(), []).append(value)
        return result
    for key in _WANTED:  # easy ID3/MP4 wrappers: listing all keys probes every known frame
        try:
            values = tags.get(key)
        except (KeyError, ValueError):
            continue
        if isinstance(values, str):
            values = [values]
        if isinstance(values, list):
            result[key] = [str(v) for v in values]
    return result


def quality_of(fmt: str | None, info: Any) -> Quality:
    bits = getattr(info, "bits_per_sample", 0) or 0
    rate = getattr(info, "sample_rate", 0) or 0
    if fmt in LOSSLESS_FORMATS:
        return Quality.HIRES if bits > 16 or rate > 48000 else Quality.LOSSLESS
    bitrate = getattr(info, "bitrate", 0) or 0
    if bitrate >= 320_000:
        return Quality.EXHIGH
    if bitrate >= 192_000:
        return Quality.HIGHER
    return Quality.STANDARD


def _all(tags: dict[str, list[str]], key: str) -> list[str]:
    return [v.strip() for v in tags.get(key, ()) if v.strip()]


def _first(tags: dict[str, list[str]], key: str) -> str | None:
    values = _all(tags, key)
    return values[0] if values else None


def _number(text: str | None) -> int | None:
    # "3", "03", "3/12"
    if not text:
        return None
    head = text.split("/", 1)[0].strip()
    return int(head) if head.isdigit() else None


def _year(text: str | None) -> int | None:
    if text and len(text) >= 4 and text[:4].isdigit():
        return int(text[:4])
    return None
