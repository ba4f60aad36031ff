"""Tagged music made at test time: short tones written with soundfile, tagged with mutagen.

Nothing is downloaded. ``write_song`` writes one file; ``build_library`` writes a small
library with accented names, sidecar ``.lrc`` lyrics, ``.m3u``/``.m3u8`` playlists and
one corrupt file.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from pathlib import Path

import mutagen.flac
import mutagen.id3
import mutagen.oggvorbis
import numpy as np
import soundfile as sf
from mutagen.easyid3 import EasyID3

SAMPLE_RATE = 44100
_VORBIS_CHUNK = 65536  # libvorbis crashes on very large single writes
_FORMATS = {"flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS"), "mp3": ("MP3", "MPEG_LAYER_III")}
# A 1x1 PNG: enough for a picture frame/block.
_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@dataclass(frozen=True)
class Track:
    path: str  # relative to the library root; the suffix picks the format
    title: str | None
    artists: tuple[str, ...] = ()
    album: str | None = None
    track: int | None = None
    album_artist: str | None = None
    cover: bool = False
    seconds: float = 0.1
    frequency: float = 440.0


def tone(seconds: float, frequency: float = 440.0, channels: int = 2) -> np.ndarray:
    frames = max(1, int(seconds * SAMPLE_RATE))
    t = np.arange(frames, dtype=np.float32) / SAMPLE_RATE
    mono = 0.2 * np.sin(2 * np.pi * frequency * t).astype(np.float32)
    return np.repeat(mono[:, None], channels, axis=1)


def write_audio(path: Path, seconds: float = 0.1, frequency: float = 440.0) -> None:
    fmt, subtype = _FORMATS[path.suffix.lstrip(".").lower()]
    data = tone(seconds, frequency)
    path.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(path, "w", SAMPLE_RATE, data.shape[1], subtype=subtype, format=fmt) as out:
        for start in range(0, len(data), _VORBIS_CHUNK):
            out.write(data[start : start + _VORBIS_CHUNK])


def tag(path: Path, track: Track) -> None:
    values: dict[str, list[str]] = {}
    if track.title is not None:
        values["title"] = [track.title]
    if track.artists:
        values["artist"] = list(track.artists)
    if track.album is not None:
        values["album"] = [track.album]
    if track.album_artist is not None:
        values["albumartist"] = [track.album_artist]
    if track.track is not None:
        values["tracknumber"] = [str(track.track)]
    suffix = path.suffix.lower()
    if suffix == ".mp3":
        try:
            tags = EasyID3(path)
        except mutagen.id3.ID3NoHeaderError:  # libsndfile's MP3 has no ID3 header
            mutagen.id3.ID3().save(path)
            tags = EasyID3(path)
        for key, value in values.items():
            tags[key] = value
        tags.save(path)
        if track.cover:
            id3 = mutagen.id3.ID3(path)
            id3.add(mutagen.id3.APIC(encoding=3, mime="image/png", type=3, desc="cover", data=_PNG))
            id3.save(path)
        return
    audio = mutagen.flac.FLAC(path) if suffix == ".flac" else mutagen.oggvorbis.OggVorbis(path)
    for key, value in values.items():
        audio[key] = value
    if track.cover:
        picture = mutagen.flac.Picture()
        picture.type, picture.mime, picture.width, picture.height, picture.depth = 3, "image/png", 1, 1, 24
        picture.data = _PNG
        if isinstance(audio, mutagen.flac.FLAC):
            audio.add_picture(picture)
        else:
            audio["metadata_block_picture"] = [base64.b64encode(picture.write()).decode("ascii")]
    audio.save()


def write_song(root: Path, track: Track) -> Path:
    path = root / track.path
    write_audio(path, track.seconds, track.frequency)
    tag(path, track)
    return path


def write_corrupt(path: Path, size: int = 4096, seed: int = 7) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(seed).bytes(size))
    return path


LRC_CAFE = """[ti:Café Del Mar]
[ar:Energy 52]
[offset:+0]
[00:00.00]Intro
[00:01.50]First line
[00:01.50]第一行
[00:03.00][00:05.00]Chorus
"""


@dataclass
class LibraryLayout:
    root: Path
    tracks: list[Track] = field(default_factory=list)
    corrupt: list[Path] = field(default_factory=list)
    playlists: list[Path] = field(default_factory=list)

    def path(self, relative: str) -> str:
        return os.path.abspath(self.root / relative)


TRACKS = [
    Track("Energy 52/Café Del Mar/01 Café Del Mar.flac", "Café Del Mar", ("Energy 52",), "Café Del Mar", 1, cover=True),
    Track("Energy 52/Café Del Mar/02 Del Mar Dub.flac", "Del Mar Dub", ("Energy 52",), "Café Del Mar", 2),
    Track("Beyoncé/Dangerously/01 Crazy.mp3", "Crazy in Love", ("Beyoncé", "Jay-Z"), "Dangerously in Love", 1, cover=True),
    Track("Beyoncé/Dangerously/02 Naughty.mp3", "Naughty Girl", ("Beyoncé",), "Dangerously in Love", 2),
    Track("Various/Mar.ogg", "Mar", ("Orquesta Marítima",), "Olas", 3),
    Track("Various/Marbles.ogg", "Marbles", ("The Cafe Band",), "Olas", 1, cover=True),
    Track("Various/Submarine.ogg", "Yellow Submarine", ("Beatles Tribute",), "Olas", 2),
    Track("Various/untagged.flac", None),
]


def build_library(root: Path) -> LibraryLayout:
    layout = LibraryLayout(root=root)
    for track in TRACKS:
        write_song(root, track)
        layout.tracks.append(track)
    (root / "Energy 52/Café Del Mar/01 Café Del Mar.lrc").write_text(LRC_CAFE, encoding="utf-8")
    layout.corrupt.append(write_corrupt(root / "Broken/corrupt.flac"))
    (root / "notes.txt").write_text("not music")
    m3u = root / "Playlists/Evening.m3u"
    m3u.parent.mkdir(parents=True, exist_ok=True)
    m3u.write_text(
        "#EXTM3U\n"
        "#EXTINF:1,Energy 52 - Café Del Mar\n"
        "../Energy 52/Café Del Mar/01 Café Del Mar.flac\n"
        "#EXTINF:1,Beyoncé - Naughty Girl\n"
        "..\\Beyoncé\\Dangerously\\02 Naughty.mp3\n"
        "http://radio.example/stream\n"
        "../missing.flac\n",
        encoding="utf-8",
    )
    m3u8 = root / "Mañana.m3u8"
    m3u8.write_text(
        f"#EXTM3U\n#PLAYLIST:Mañana Mix\n{layout.path('Various/Mar.ogg')}\nVarious/Marbles.ogg\n",
        encoding="utf-8",
    )
    layout.playlists += [m3u, m3u8]
    return layout
