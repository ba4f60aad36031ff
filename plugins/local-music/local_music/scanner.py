"""Walk the music folders and bring the file index up to date, reading only what changed."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

from .index import FileRecord
from .playlists import PLAYLIST_EXTENSIONS, PlaylistFile, read_playlist
from .tags import TagReader, UnreadableFileError

log = logging.getLogger("local_music")

DEFAULT_EXTENSIONS = frozenset(
    {"flac", "mp3", "ogg", "oga", "opus", "m4a", "mp4", "aac", "wav", "aif", "aiff", "wv", "ape", "wma"}
)


@dataclass
class ScanReport:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    failed: int = 0  # files read in this scan that could not be parsed
    tag_reads: int = 0
    playlists: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)  # folders that could not be walked

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class ScanResult:
    report: ScanReport
    upserts: list[FileRecord]
    deletes: list[str]
    playlists: list[PlaylistFile]


@dataclass(frozen=True)
class FoundFile:
    path: str
    mtime_ns: int
    size: int


def walk(folders: Iterable[str], extensions: frozenset[str], errors: list[str]) -> tuple[list[FoundFile], list[str]]:
    """Audio files and playlist files under ``folders`` (recursively, symlinked folders not
    followed so a link loop cannot hang the scan)."""
    audio: list[FoundFile] = []
    playlists: list[str] = []
    pending = [os.path.abspath(folder) for folder in folders]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            pending.append(entry.path)
                            continue
                        ext = os.path.splitext(entry.name)[1].lstrip(".").lower()
                        if ext in extensions:
                            stat = entry.stat()
                            audio.append(FoundFile(entry.path, stat.st_mtime_ns, stat.st_size))
                        elif ext in PLAYLIST_EXTENSIONS:
                            playlists.append(entry.path)
                    except OSError as exc:  # vanished mid-walk, broken link: skip it
                        log.debug("skipping %s: %s", entry.path, exc)
        except OSError as exc:
            errors.append(f"{folder}: {exc.strerror or exc}")
            log.warning("cannot read folder %s: %s (check that it exists and is readable)", folder, exc)
    return audio, playlists


def scan(
    folders: Iterable[str],
    extensions: frozenset[str],
    known: Mapping[str, FileRecord],
    reader: TagReader,
) -> ScanResult:
    started = time.perf_counter()
    report = ScanReport()
    found, playlist_paths = walk(folders, extensions, report.errors)
    reads_before = reader.reads
    upserts: list[FileRecord] = []
    seen: set[str] = set()
    for file in found:
        seen.add(file.path)
        previous = known.get(file.path)
        if previous is not None and previous.same_file(file.mtime_ns, file.size):
            report.unchanged += 1
            continue
        try:
            record = FileRecord(file.path, file.mtime_ns, file.size, reader.read(file.path))
        except UnreadableFileError as exc:
            report.failed += 1
            log.warning("skipping unreadable file %s: %s", file.path, exc)
            record = FileRecord(file.path, file.mtime_ns, file.size, None, str(exc))
        if previous is None:
            report.added += 1
        else:
            report.updated += 1
        upserts.append(record)
    deletes = [path for path in known if path not in seen]
    report.removed = len(deletes)

    playlists: list[PlaylistFile] = []
    for path in playlist_paths:
        try:
            playlists.append(read_playlist(path))
        except OSError as exc:
            log.warning("skipping unreadable playlist %s: %s", path, exc)
    report.playlists = len(playlists)
    report.tag_reads = reader.reads - reads_before
    report.seconds = round(time.perf_counter() - started, 6)
    return ScanResult(report, upserts, deletes, playlists)
