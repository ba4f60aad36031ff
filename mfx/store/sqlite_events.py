"""Where the SQLite store keeps its Event index: the statements on the ``event_index`` table.

The rules for what an Event looks like and when two are repeats live in ``mfx.store.events``.
"""

from __future__ import annotations

import sqlite3

from mfx.api.objects import Obj
from mfx.store import events as event_rules
from mfx.store.codec import loads


def index(conn: sqlite3.Connection, event: Obj, resource_version: int) -> None:
    row = event_rules.index_row(event)
    conn.execute(
        "INSERT OR REPLACE INTO event_index (name, dedup_key, involved_kind, involved_name, last_seen)"
        " VALUES (?, ?, ?, ?, ?)",
        (row.name, row.dedup_key, row.involved_kind, row.involved_name, resource_version),
    )


def unindex(conn: sqlite3.Connection, name: str) -> None:
    conn.execute("DELETE FROM event_index WHERE name = ?", (name,))


def latest_with_key(conn: sqlite3.Connection, dedup_key: str) -> str | None:
    """The name of the Event that last occurred with this de-duplication key, if any."""
    row = conn.execute(
        "SELECT name FROM event_index WHERE dedup_key = ? ORDER BY last_seen DESC LIMIT 1",
        (dedup_key,),
    ).fetchone()
    return None if row is None else str(row[0])


def oldest_beyond(conn: sqlite3.Connection, limit: int) -> list[str]:
    """Names of the Events that occurred longest ago, as many as exceed ``limit``."""
    count = int(conn.execute("SELECT COUNT(*) FROM event_index").fetchone()[0])
    excess = count - limit
    if excess <= 0:
        return []
    return [
        r[0]
        for r in conn.execute("SELECT name FROM event_index ORDER BY last_seen LIMIT ?", (excess,))
    ]


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
