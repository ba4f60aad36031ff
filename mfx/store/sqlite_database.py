"""The SQLite file behind ``SQLiteStore``, used from the store's worker thread only.

``Database`` opens (and migrates) the file, runs a group-committed batch of writes in one
transaction, lists objects and reads the change log. ``Transaction`` is one batch's view:
it allocates resourceVersions and writes objects, the Event index and the log together.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio

from mfx.api.objects import Obj, now_rfc3339
from mfx.api.selectors import Selector
from mfx.errors import StoreError
from mfx.store import events as event_rules
from mfx.store import sqlite_events, strategy
from mfx.store.base import WatchEventType
from mfx.store.codec import dumps, loads
from mfx.store.sqlite_schema import migrate
from mfx.store.strategy import Write, WriteAction
from mfx.store.watch_hub import Change

_LIST_CHUNK = 256
WAL_CHECKPOINT_PAGES = 8192
_EVENT_KIND = event_rules.EVENT_KIND

T = TypeVar("T")

Bodies = Mapping[tuple[str, str], str]


class Transaction:
    """One write: allocates resourceVersions, writes objects and the log, collects changes.

    Objects are read from ``bodies`` (the store's in-memory copy of the file, which nothing
    changes while a batch runs) overlaid with what this batch wrote: no SELECT per op. The
    rows an op puts (its Events' index rows too) are inserted together when it ends
    (``flush``: one statement per table, not two per object), and before any other statement.
    The number of Events is counted once per batch and kept as it writes and removes them:
    the limit is checked after every new Event without a query each time.
    """

    def __init__(
        self, conn: sqlite3.Connection, history_limit: int, event_limit: int, bodies: Bodies, rv: int
    ) -> None:
        self.conn = conn
        self.history_limit = history_limit
        self.event_limit = event_limit
        self.changes: list[Change] = []
        self.writes = 0  # statements that changed the file (an op that failed after one needs a rollback)
        self._bodies = bodies
        self._written: dict[tuple[str, str], str | None] = {}  # this batch's bodies (None: deleted)
        self._start_rv = rv
        self._rv: int | None = None
        self._object_rows: list[tuple[str, str, int, str]] = []
        self._change_rows: list[tuple[int, str, str, str, str]] = []
        self._index_rows: list[sqlite_events.IndexRow] = []
        self._event_count: int | None = None  # Events stored, once counted in this batch
        self._now: str | None = None

    def now(self) -> str:
        """The transaction's time (RFC 3339, seconds): the creation time of what it creates,
        formatted once per batch, not once per object."""
        if self._now is None:
            self._now = now_rfc3339()
        return self._now

    def next_rv(self) -> int:
        self._rv = (self._start_rv if self._rv is None else self._rv) + 1
        return self._rv

    def _body(self, kind: str, name: str) -> str | None:
        key = (kind, name)
        if key in self._written:
            return self._written[key]
        return self._bodies.get(key)

    def load(self, kind: str, name: str) -> Obj | None:
        body = self._body(kind, name)
        return loads(body) if body is not None else None

    def put(self, kind: str, name: str, obj: Obj, type_: WatchEventType, *, watched_as_is: bool = False) -> None:
        """``watched_as_is``: watchers get ``obj`` itself, which nobody changes afterwards."""
        rv = self.next_rv()
        strategy.stamp_resource_version(obj, rv)
        body = dumps(obj)
        self.writes += 1
        self._written[(kind, name)] = body
        self._object_rows.append((kind, name, rv, body))
        self._log(rv, type_, kind, name, body, obj if watched_as_is else None)
        if kind == _EVENT_KIND:
            self._index_rows.append(sqlite_events.index_row(obj, rv))
            if type_ is WatchEventType.ADDED and self._event_count is not None:
                self._event_count += 1

    def remove(self, kind: str, name: str, obj: Obj) -> None:
        self.flush()
        rv = self.next_rv()
        strategy.stamp_resource_version(obj, rv)
        self.writes += 1
        self._written[(kind, name)] = None
        self.conn.execute("DELETE FROM objects WHERE kind = ? AND name = ?", (kind, name))
        if kind == _EVENT_KIND:
            self._unindex(name)
        self._log(rv, WatchEventType.DELETED, kind, name, dumps(obj))

    def _log(self, rv: int, type_: WatchEventType, kind: str, name: str, body: str,
             decoded: Obj | None = None) -> None:
        value = type_.value  # an enum property: read once, not once per list
        self._change_rows.append((rv, kind, name, value, body))
        self.changes.append(Change(rv, value, kind, name, body, decoded))

    def flush(self) -> None:
        """Insert the rows put so far (an op's end, or a statement of another kind next)."""
        objects, self._object_rows = self._object_rows, []
        changes, self._change_rows = self._change_rows, []
        indexed, self._index_rows = self._index_rows, []
        if objects:
            self.conn.executemany(
                "INSERT INTO objects (kind, name, resource_version, body) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (kind, name) DO UPDATE SET resource_version = excluded.resource_version,"
                " body = excluded.body",
                objects,
            )
        if changes:
            self.conn.executemany(
                "INSERT INTO changes (resource_version, kind, name, type, body) VALUES (?, ?, ?, ?, ?)", changes
            )
        if indexed:
            sqlite_events.index(self.conn, indexed)

    def mark(self) -> Mark:
        """Where the batch stands, to return to with ``undo`` if the next op fails."""
        return Mark(self._rv, len(self.changes), dict(self._written), self._event_count)

    def undo(self, mark: Mark) -> None:
        self._rv = mark.rv
        del self.changes[mark.changes:]
        self._written = mark.written
        self._event_count = mark.event_count
        self._object_rows.clear()  # an op starts with none: what is left is the failed op's
        self._change_rows.clear()
        self._index_rows.clear()

    def latest_event_with_key(self, dedup_key: str) -> str | None:
        """The name of the Event that last occurred with this de-duplication key, this
        batch's Events included."""
        if self._index_rows:
            self.flush()
        return sqlite_events.latest_with_key(self.conn, dedup_key)

    def trim_events(self) -> None:
        """Keep at most ``event_limit`` events: the ones that occurred last."""
        if self._event_count is None:
            self.flush()
            self._event_count = sqlite_events.count(self.conn)
        if self._event_count <= self.event_limit:
            return
        self.flush()
        for name in sqlite_events.oldest(self.conn, self._event_count - self.event_limit):
            obj = self.load(_EVENT_KIND, name)
            if obj is None:  # index row without object: repair quietly
                self.writes += 1
                self._unindex(name)
            else:
                self.remove(_EVENT_KIND, name, obj)

    def _unindex(self, name: str) -> None:
        if sqlite_events.unindex(self.conn, name) and self._event_count is not None:
            self._event_count -= 1

    def carry_out(self, kind: str, name: str, write: Write, *, watched_as_is: bool = False) -> Obj:
        """Store what the strategy decided; returns the object the caller is answered with.
        ``watched_as_is``: as for ``put``, when the caller only reads the answer."""
        if write.action is WriteAction.ADD:
            self.put(kind, name, write.obj, WatchEventType.ADDED, watched_as_is=watched_as_is)
        elif write.action is WriteAction.MODIFY:
            self.put(kind, name, write.obj, WatchEventType.MODIFIED, watched_as_is=watched_as_is)
        elif write.action is WriteAction.REMOVE:
            self.remove(kind, name, write.obj)
        return write.obj

    def finish(self) -> int | None:
        """Store the counter and trim the log; returns the new compaction point, if it moved."""
        self.flush()
        if self._rv is None or not self.changes:
            return None
        self.conn.execute("UPDATE meta SET resource_version = ? WHERE id = 1", (self._rv,))
        floor = self._rv - self.history_limit
        if floor <= 0:
            return None
        self.conn.execute("DELETE FROM changes WHERE resource_version <= ?", (floor,))
        return floor


@dataclass(frozen=True)
class Mark:
    """Where a batch stood before an op (``Transaction.mark``)."""

    rv: int | None
    changes: int
    written: dict[tuple[str, str], str | None]
    event_count: int | None


@dataclass
class Opened:
    db: Database
    resource_version: int
    compacted: int
    bodies: dict[tuple[str, str], str]


@dataclass(eq=False)
class PendingWrite:
    """One caller's write waiting for (or in) a group commit."""

    fn: Callable[[Transaction], Any]
    # Done, or promoted to leader; made only for a caller that waits (a leader never does).
    settled: anyio.Event | None = None
    leader: bool = False  # this caller runs the next batch
    done: bool = False
    value: Any = None
    error: BaseException | None = None


@dataclass
class BatchResult:
    changes: list[Change]
    compacted: int | None


class Database:
    def __init__(
        self, conn: sqlite3.Connection, path: Path, history_limit: int, event_limit: int
    ) -> None:
        self.conn = conn
        self.path = path
        self.history_limit = history_limit
        self.event_limit = event_limit

    @classmethod
    def open(cls, path: Path, history_limit: int, event_limit: int) -> Opened:
        """Open (creating or migrating) the file and read what the store keeps in memory."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as error:
            raise StoreError(
                f"cannot open the store {path}: {error}; check the path and its permissions"
            ) from error
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            # WAL with synchronous=NORMAL: a commit is in the WAL file (the OS page cache) before
            # COMMIT returns, so an acknowledged write survives the process being killed (SIGKILL,
            # OOM). It is fsynced at checkpoints, not per commit: a power cut or kernel crash may
            # lose the newest writes, never consistency. Process crashes are what mfx promises.
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            # The WAL is copied into the file (and the file fsynced) inside the commit that makes
            # it hold this many pages. While a daemon serves the store, its checkpointer does
            # that sooner and off the commit path (mfx.store.sqlite_checkpoint); this mark is for
            # a store used without one. SQLite's 1000 (4 MiB) made a bulk apply of 1000 objects
            # (about 2.6 MiB of objects and log) wait for that copy every other time: 8192 pages
            # (32 MiB) pay it once in a dozen such applies. Reads are served from memory or by
            # index, so a longer WAL does not slow them.
            conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
            # After a complete checkpoint the next commit truncates the WAL file to what it
            # holds: its size then tells the daemon's checkpointer when one is due.
            conn.execute("PRAGMA journal_size_limit = 0")
            migrate(conn, path)
            db = cls(conn, path, history_limit, event_limit)
            rv, compacted = db._counters()
            bodies = {
                (kind, name): body
                for kind, name, body in conn.execute("SELECT kind, name, body FROM objects")
            }
        except sqlite3.DatabaseError as error:
            conn.close()
            raise StoreError(
                f"cannot open the store {path}: {error}; if it is not an mfx store, move it away or choose another path"
            ) from error
        except BaseException:
            conn.close()
            raise
        return Opened(db, rv, compacted, bodies)

    def _counters(self) -> tuple[int, int]:
        rv = int(self.conn.execute("SELECT resource_version FROM meta WHERE id = 1").fetchone()[0])
        floor = rv - self.history_limit
        if floor > 0:  # the limit may have shrunk since the file was last written
            self.conn.execute("DELETE FROM changes WHERE resource_version <= ?", (floor,))
        oldest = self.conn.execute("SELECT MIN(resource_version) FROM changes").fetchone()[0]
        compacted = rv if oldest is None else int(oldest) - 1
        return rv, compacted

    def close(self) -> None:
        try:
            self.conn.execute("PRAGMA optimize")
        finally:
            self.conn.close()

    def write_batch(self, ops: list[PendingWrite], bodies: Bodies, rv: int) -> BatchResult:
        """The whole batch in one transaction (group commit); each op gets its own outcome.

        An op that fails (conflict, not found, a bad object, even an SQLite error) leaves no
        trace and gets its exception; the others commit. The usual failures (conflict, not
        found, already exists) are found before an op writes anything, so ops run without a
        savepoint each (every statement releases and re-takes the GIL, which the event loop
        then waits for); only when an op fails after writing is the batch rolled back and run
        again with a SAVEPOINT per op. Each op's outcome is stored on it; the changes come
        back in resourceVersion order for the fan-out. ``bodies`` and ``rv``: the store's
        in-memory copy of the objects and its resourceVersion, which match the file.
        """
        result = self._run_batch(ops, bodies, rv, savepoints=False)
        if result is None:
            for op in ops:
                op.value, op.error = None, None
            result = self._run_batch(ops, bodies, rv, savepoints=True)
            assert result is not None
        return result

    def _run_batch(
        self, ops: list[PendingWrite], bodies: Bodies, rv: int, *, savepoints: bool
    ) -> BatchResult | None:
        """One attempt; None (rolled back) when an op failed after writing without a savepoint."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            tx = Transaction(self.conn, self.history_limit, self.event_limit, bodies, rv)
            for op in ops:
                mark = tx.mark()
                writes = tx.writes
                if savepoints:
                    self.conn.execute("SAVEPOINT op")
                try:
                    op.value = op.fn(tx)
                    tx.flush()
                except Exception as error:
                    if savepoints:
                        self.conn.execute("ROLLBACK TO op")
                        self.conn.execute("RELEASE op")
                    elif tx.writes != writes:
                        self.conn.execute("ROLLBACK")
                        return None
                    tx.undo(mark)
                    op.error = translate(self.path, error)
                    continue
                if savepoints:
                    self.conn.execute("RELEASE op")
            compacted = tx.finish()
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        return BatchResult(tx.changes, compacted)

    def list_objects(
        self, kind: str, selector: Selector, limit: int | None, start: str
    ) -> tuple[list[Obj], bool]:
        """Objects of ``kind`` named after ``start``, by name; and whether more match beyond ``limit``."""
        if limit is None:
            everything = self.conn.execute(
                "SELECT body FROM objects WHERE kind = ? AND name > ? ORDER BY name", (kind, start)
            )
            items = [
                obj
                for obj in map(loads, (r[0] for r in everything))
                if selector.matches(_labels(obj))
            ]
            return items, False
        items = []
        cursor = start
        chunk = max(limit + 1, _LIST_CHUNK) if not selector.is_empty else limit + 1
        while True:
            rows = self.conn.execute(
                "SELECT name, body FROM objects WHERE kind = ? AND name > ? ORDER BY name LIMIT ?",
                (kind, cursor, chunk),
            ).fetchall()
            for name, body in rows:
                obj = loads(body)
                if selector.matches(_labels(obj)):
                    if len(items) == limit:
                        return items, True
                    items.append(obj)
                cursor = name
            if len(rows) < chunk:
                return items, False

    def changes_after(self, kind: str | None, after: int, limit: int) -> list[Change]:
        if kind is None:
            rows = self.conn.execute(
                "SELECT resource_version, type, kind, name, body FROM changes WHERE resource_version > ?"
                " ORDER BY resource_version LIMIT ?",
                (after, limit),
            )
        else:
            rows = self.conn.execute(
                "SELECT resource_version, type, kind, name, body FROM changes WHERE kind = ? AND resource_version > ?"
                " ORDER BY resource_version LIMIT ?",
                (kind, after, limit),
            )
        return [Change(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows]

    def events(self, involved_kind: str | None, involved_name: str | None) -> list[Obj]:
        return sqlite_events.query(self.conn, involved_kind, involved_name)


def _labels(obj: Obj) -> dict[str, str]:
    return obj.get("metadata", {}).get("labels") or {}


def translated(path: Path, fn: Callable[..., T], *args: Any) -> T:
    """Runs ``fn`` in the worker thread, turning sqlite3 failures into ``StoreError``."""
    try:
        return fn(*args)
    except sqlite3.Error as error:
        raise translate(path, error) from error


def translate(path: Path, error: Exception) -> Exception:
    if isinstance(error, sqlite3.Error):
        translated = StoreError(
            f"the store {path} failed: {error}; check free disk space and the file's permissions"
        )
        translated.__cause__ = error
        return translated
    return error
