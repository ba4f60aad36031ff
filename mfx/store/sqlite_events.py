"""Where the SQLite store keeps its Event index: the statements on the ``event_index`` table.

The rules for what an Event looks like and when two are repeats live in ``mfx.store.events``.
"""

from __future__ import annotations

import sqlite3

from mfx.api.objects import Obj
from mfx.store import events as event_rules
from mfx.store.codec import loads

# (name, dedup_key, involved_kind, involved_name, last_seen): one row of ``event_index``.
IndexRow = tuple[str, str, str, str, int]


def index_row(event: Obj, resource_version: int) -> IndexRow:
    row = event_rules.index_row(event)
    return row.name, row.dedup_key, row.involved_kind, row.involved_name, resource_version


def index(conn: sqlite3.Connection, rows: list[IndexRow]) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO event_index (name, dedup_key, involved_kind, involved_name, last_seen)"
        " VALUES (?, ?, ?, ?, ?)",
        rows,
    )


def unindex(conn: sqlite3.Connection, name: str) -> bool:
    """Whether there was a row to remove."""
    return conn.execute("DELETE FROM event_index WHERE name = ?", (name,)).rowcount > 0


def count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM event_index").fetchone()[0])


def latest_with_key(conn: sqlite3.Connection, dedup_key: str) -> str | None:
    """The name of the Event that last occurred with this de-duplication key, if any."""
    row = conn.execute(
        "SELECT name FROM event_index WHERE dedup_key = ? ORDER BY last_seen DESC LIMIT 1",
        (dedup_key,),
    ).fetchone()
    return None if row is None else str(row[0])


def oldest(conn: sqlite3.Connection, how_many: int) -> list[str]:
    """Names of the ``how_many`` Events that occurred longest ago."""
    return [r[0] for r in conn.execute("SELECT name FROM event_index ORDER BY last_seen LIMIT ?", (how_many,))]


def query(conn: sqlite3.Connection, involved_kind: str | None, involved_name: str | None) -> list[Obj]:
    """Events about one object or kind (both optional), oldest last occurrence first."""
    where = []
    params: list[str] = []
    if involved_kind is not None:
        where.append("e.involved_kind = ?")
        params.append(involved_kind)
    if involved_name is not None:
        where.append("e.involved_name = ?")
        params.append(involved_name)
    sql = (
        "SELECT o.body FROM event_index e JOIN objects o ON o.kind = 'Event' AND o.name = e.name"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY e.last_seen"
    )
    return [loads(r[0]) for r in conn.execute(sql, params)]
