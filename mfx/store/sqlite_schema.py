"""The SQLite store's tables, and how a file is taken from an older schema version to ours.

The schema version lives in ``PRAGMA user_version``; a file at version 0 with no tables of its
own is new, and one with foreign tables is refused rather than written into.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from mfx.errors import StoreError

SCHEMA_VERSION = 1

_SCHEMA_V1 = (
    "CREATE TABLE meta (id INTEGER PRIMARY KEY CHECK (id = 1), resource_version INTEGER NOT NULL)",
    # A fresh store is at resourceVersion 1, as a fresh etcd is at revision 1: a list of the
    # empty store then returns a version a watch can start from (0 would mean "from now").
    "INSERT INTO meta (id, resource_version) VALUES (1, 1)",
    # A rowid table: bodies can be kilobytes, which WITHOUT ROWID tables handle poorly.
    "CREATE TABLE objects (kind TEXT NOT NULL, name TEXT NOT NULL,"
    " resource_version INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, name))",
    "CREATE TABLE changes (resource_version INTEGER PRIMARY KEY, kind TEXT NOT NULL,"
    " name TEXT NOT NULL, type TEXT NOT NULL, body TEXT NOT NULL)",
    "CREATE TABLE event_index (name TEXT PRIMARY KEY, dedup_key TEXT NOT NULL,"
    " involved_kind TEXT NOT NULL, involved_name TEXT NOT NULL, last_seen INTEGER NOT NULL)",
    "CREATE INDEX event_index_by_key ON event_index (dedup_key)",
    "CREATE INDEX event_index_by_object ON event_index (involved_kind, involved_name, last_seen)",
    "CREATE INDEX event_index_by_age ON event_index (last_seen)",
)

# Index i holds the statements that take a file from schema version i to i + 1.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (_SCHEMA_V1,)

_OUR_TABLES = {"meta", "objects", "changes", "event_index"}


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the file to ``SCHEMA_VERSION`` in one transaction, or refuse it with ``StoreError``."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the store {path} has schema version {version}, newer than this mfx understands "
            f"({SCHEMA_VERSION}); upgrade mfx, or use another store file"
        )
    if version == 0:
        tables = {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if tables - _OUR_TABLES:
            raise StoreError(
                f"{path} is an SQLite file that mfx did not create (tables: {', '.join(sorted(tables))}); "
                "choose another store path"
            )
    if version == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for step in range(version, SCHEMA_VERSION):
            for statement in _MIGRATIONS[step]:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
