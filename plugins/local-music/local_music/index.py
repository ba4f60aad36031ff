"""The persistent file index: one SQLite row per file with its mtime, size and tags.

A rescan compares each file's (mtime_ns, size) with its row and reads tags only when they
differ, so restarting the plugin over an unchanged library reads no tags at all. Files
that could not be read are kept too (with the error), so they are not re-read until they
change.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from mfx.api.music import Song

INDEX_FILE = "local-music-index.sqlite3"
_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class FileRecord:
    path: str
    mtime_ns: int
    size: int
    song: Song | None  # None: unreadable
    error: str | None = None

    def same_file(self, mtime_ns: int, size: int) -> bool:
        return self.mtime_ns == mtime_ns and self.size == size


class IndexStore:
    """A SQLite file; each method opens its own connection, so any thread may call it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, _SCHEMA_VERSION):
                # An index is a cache: rebuild rather than migrate.
                db.execute("DROP TABLE IF EXISTS files")
            db.execute(
                "CREATE TABLE IF NOT EXISTS files ("
                " path TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL,"
                " song TEXT, error TEXT)"
            )
            db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        return db

    def load(self) -> dict[str, FileRecord]:
        records: dict[str, FileRecord] = {}
        with closing(self._connect()) as db:
            rows = db.execute("SELECT path, mtime_ns, size, song, error FROM files").fetchall()
        for path, mtime_ns, size, song, error in rows:
            records[path] = FileRecord(
                path=path,
                mtime_ns=mtime_ns,
                size=size,
                song=Song.model_validate_json(song) if song else None,
                error=error,
            )
        return records

    def apply(self, upserts: Iterable[FileRecord], deletes: Iterable[str]) -> None:
        rows = [
            (r.path, r.mtime_ns, r.size, _song_json(r.song) if r.song else None, r.error)
            for r in upserts
        ]
        gone = [(path,) for path in deletes]
        if not rows and not gone:
            return
        with closing(self._connect()) as db, db:  # one transaction
            db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)", rows)
            db.executemany("DELETE FROM files WHERE path = ?", gone)


def _song_json(song: Song) -> str:
    return song.model_dump_json(by_alias=True, exclude_none=True)
