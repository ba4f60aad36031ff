"""The local music library: configuration, scanning, the catalogue and what it answers.

Thread-safe: scans are serialised by a lock and publish a new immutable ``Catalog``;
readers take whatever catalogue is current. ``wait_for`` lets a caller block until a
condition on the library holds (e.g. "this file has been indexed"), woken by every scan.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mfx.api.music import Lyrics, Playlist, SearchResult, SearchType, Song
from mfx.errors import BadRequestError, InvalidConfigError, NotFoundError
from mfx.sdk.lyrics import load_lrc

from .catalog import Catalog
from .index import INDEX_FILE, FileRecord, IndexStore
from .playlists import PLAYLIST_EXTENSIONS, PlaylistFile
from .scanner import DEFAULT_EXTENSIONS, ScanReport, scan
from .tags import TagReader
from .watcher import FolderWatcher

log = logging.getLogger("local_music")

STATE_DIR_ENV = "LOCAL_MUSIC_STATE_DIR"
MAX_LIMIT = 500


@dataclass(frozen=True)
class LibraryConfig:
    folders: tuple[str, ...]
    extensions: frozenset[str] = DEFAULT_EXTENSIONS
    state_dir: Path = Path(".")
    watch: bool = True
    debounce_seconds: float = 0.2

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any], *, cwd: Path | None = None) -> LibraryConfig:
        """Build from a plugin's ``spec.config``; raises InvalidConfigError naming the field.

        The index lives in ``stateDir``, else ``$LOCAL_MUSIC_STATE_DIR``, else the working
        directory (the runtime starts the plugin in its private state directory).
        """
        folders = config.get("folders")
        if not isinstance(folders, list) or not folders or not all(isinstance(f, str) and f for f in folders):
            raise InvalidConfigError(
                f"config.folders: expected a non-empty list of folder paths, got {folders!r}"
            )
        extensions = config.get("extensions", sorted(DEFAULT_EXTENSIONS))
        if not isinstance(extensions, list) or not all(isinstance(e, str) and e.strip(".") for e in extensions):
            raise InvalidConfigError(
                f"config.extensions: expected a list of file extensions like [flac, mp3], got {extensions!r}"
            )
        watch = config.get("watch", True)
        if not isinstance(watch, bool):
            raise InvalidConfigError(f"config.watch: expected true or false, got {watch!r}")
        debounce = config.get("debounceSeconds", 0.2)
        if not isinstance(debounce, int | float) or isinstance(debounce, bool) or not 0 <= debounce <= 60:
            raise InvalidConfigError(f"config.debounceSeconds: expected a number of seconds 0..60, got {debounce!r}")
        state = config.get("stateDir") or os.environ.get(STATE_DIR_ENV) or str(cwd or Path.cwd())
        return cls(
            folders=tuple(os.path.abspath(_expand_folder(f, i)) for i, f in enumerate(folders)),
            extensions=frozenset(e.strip().lstrip(".").lower() for e in extensions),
            state_dir=Path(state).expanduser(),
            watch=watch,
            debounce_seconds=float(debounce),
        )


_VARIABLE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")


def _expand_folder(folder: str, index: int) -> str:
    """``~`` and ``$NAME``/``${NAME}`` from the plugin's environment: the default folder is
    ``$MFX_HOME/music``, the daemon's home (which passes MFX_HOME to its plugins). An unset
    variable is an error, not a folder literally named ``$NAME``."""

    def value(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("plain")
        if name not in os.environ:
            raise InvalidConfigError(
                f"config.folders[{index}]: {folder!r} names ${name}, which is not set in the "
                "plugin's environment (the daemon passes MFX_HOME; others can be set in spec.env)")
        return os.environ[name]

    return os.path.expanduser(_VARIABLE.sub(value, folder))


class Library:
    def __init__(self, config: LibraryConfig, *, reader: TagReader | None = None) -> None:
        self.config = config
        self.reader = reader or TagReader()
        self._store = IndexStore(config.state_dir / INDEX_FILE)
        self._records: dict[str, FileRecord] = self._store.load()
        self._scan_lock = threading.Lock()
        self._changed = threading.Condition()
        self._catalog = Catalog.build(self._records.values(), [])
        self._playlists: list[PlaylistFile] = []
        self._scans = 0
        self._scanning = False
        self._last_report: ScanReport | None = None
        self._watcher: FolderWatcher | None = None

    # --- scanning ----------------------------------------------------------------------

    def scan(self) -> ScanReport:
        """Bring the index up to date; reads tags only of new or changed files."""
        with self._scan_lock:
            with self._changed:
                self._scanning = True
            try:
                result = scan(self.config.folders, self.config.extensions, self._records, self.reader)
                self._store.apply(result.upserts, result.deletes)
                records = self._records
                catalog = self._catalog
                if result.report.changed or result.playlists != self._playlists:
                    records = dict(records)
                    for record in result.upserts:
                        records[record.path] = record
                    for path in result.deletes:
                        records.pop(path, None)
                    catalog = Catalog.build(records.values(), result.playlists)
            finally:
                with self._changed:
                    self._scanning = False
            with self._changed:
                self._records = records
                self._catalog = catalog
                self._playlists = result.playlists
                self._scans += 1
                self._last_report = result.report
                self._changed.notify_all()
            report = result.report
            if report.changed or report.failed:
                log.info(
                    "scan: %d added, %d updated, %d removed, %d unreadable, %d tag reads in %.3fs",
                    report.added, report.updated, report.removed, report.failed,
                    report.tag_reads, report.seconds,
                )
            return report

    def start_watching(self) -> None:
        if self._watcher is not None:
            return
        watcher = FolderWatcher(
            self.config.folders,
            self._relevant,
            self.scan,
            debounce_seconds=self.config.debounce_seconds,
        )
        watcher.start()
        self._watcher = watcher

    def stop_watching(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()

    def close(self) -> None:
        self.stop_watching()

    def wait_for(self, predicate: Callable[[Library], bool], timeout: float | None = None) -> bool:
        """Block until ``predicate(self)`` holds (checked after every scan); False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)

    def _relevant(self, path: str) -> bool:
        ext = os.path.splitext(path)[1].lstrip(".").lower()
        return ext in self.config.extensions or ext in PLAYLIST_EXTENSIONS

    # --- reading -----------------------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    def __contains__(self, song_id: object) -> bool:
        return song_id in self._catalog.songs

    def songs(self) -> list[Song]:
        return list(self._catalog.song_list)

    def song(self, song_id: str) -> Song:
        song = self._catalog.songs.get(song_id)
        if song is None:
            raise NotFoundError(f"no song {song_id!r} in the local library (search again: files may have moved)")
        return song

    def song_by_path(self, path: str) -> Song:
        song_id = self._catalog.by_path.get(os.path.abspath(path))
        if song_id is None:
            raise NotFoundError(f"{path} is not in the local library")
        return self._catalog.songs[song_id]

    def playlists(self) -> list[Playlist]:
        return list(self._catalog.playlist_list)

    def playlist(self, playlist_id: str) -> Playlist:
        """The playlist with its songs resolved."""
        catalog = self._catalog
        playlist = catalog.playlists.get(playlist_id)
        if playlist is None:
            raise NotFoundError(f"no playlist {playlist_id!r} in the local library")
        return playlist.model_copy(update={"songs": [catalog.songs[i] for i in playlist.song_ids]})

    def album_songs(self, album_id: str) -> list[Song]:
        catalog = self._catalog
        if album_id not in catalog.albums:
            raise NotFoundError(f"no album {album_id!r} in the local library")
        return [catalog.songs[i] for i in catalog.album_songs[album_id]]

    def artist_songs(self, artist_id: str) -> list[Song]:
        catalog = self._catalog
        if artist_id not in catalog.artists:
            raise NotFoundError(f"no artist {artist_id!r} in the local library")
        return [catalog.songs[i] for i in catalog.artist_songs[artist_id]]

    def search(self, query: str, type: SearchType | str = SearchType.SONG, limit: int = 30, offset: int = 0) -> SearchResult:
        limit = max(0, min(int(limit), MAX_LIMIT))
        return self._catalog.search(query, _kind(type), limit, max(0, int(offset)))

    def browse(self, type: SearchType | str = SearchType.SONG, limit: int = 100, offset: int = 0) -> SearchResult:
        """Every song, album, artist or playlist of the library, in catalogue order."""
        limit = max(0, min(int(limit), MAX_LIMIT))
        return self._catalog.browse(_kind(type), limit, max(0, int(offset)))

    def lyrics(self, song_id: str) -> Lyrics | None:
        """Lyrics from the sidecar ``.lrc`` next to the file (same stem), or None."""
        song = self.song(song_id)
        assert song.path is not None  # every local song has a path
        sidecar = os.path.splitext(song.path)[0] + ".lrc"
        try:
            return load_lrc(sidecar)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read lyrics %s: %s", sidecar, exc)
            return None

    def stats(self) -> dict[str, Any]:
        with self._changed:
            catalog = self._catalog
            records = self._records
            failed = sorted(path for path, record in records.items() if record.song is None)
            return {
                "songs": len(catalog.songs),
                "albums": len(catalog.albums),
                "artists": len(catalog.artists),
                "playlists": len(catalog.playlists),
                "files": len(records),
                "failed": len(failed),
                "failedFiles": failed[:50],
                "tagReads": self.reader.reads,
                "scans": self._scans,
                "scanning": self._scanning,
                "watching": self._watcher is not None,
                "lastScan": self._last_report.as_dict() if self._last_report else None,
            }


def _kind(type: SearchType | str) -> SearchType:
    try:
        return SearchType(type)
    except ValueError:
        raise BadRequestError(
            f"unknown search type {type!r}: use one of {', '.join(t.value for t in SearchType)}"
        ) from None
