"""The default store: one SQLite file, Kubernetes API-server semantics (see ``mfx.store.base``).

Layout (schema version 1, kept in ``PRAGMA user_version`` so later versions can migrate):

- ``meta``: one row holding the global resourceVersion counter.
- ``objects``: one row per object, keyed by (kind, name); the body is the object's JSON.
- ``changes``: the watch log (resourceVersion, kind, name, type, JSON of the object as of that
  change). Every write adds its rows in the same transaction as the object and the counter, so
  the log has exactly one row per resourceVersion; it keeps the ``history_limit`` newest rows.
- ``event_index``: for Event objects, the de-duplication key, the involved object and the
  resourceVersion of the last occurrence (to find repeats, filter, and drop the oldest).

One process owns the file (the daemon): reads of single objects are served from an in-memory
copy of every object's JSON that follows each commit, and the watch fan-out is in-process.

Concurrency: one connection, used from worker threads (``anyio.to_thread``) one call at a time
under an ``anyio.Lock``; the event loop never waits on SQLite. Writes are group-committed:
every write queued while a batch runs goes into the next batch, each in its own SAVEPOINT (one
op's conflict does not touch the others), the batch in one transaction. Callers are answered
after that commit; the batch's watch fan-out happens under the lock right after it, so watchers
see changes in resourceVersion order and reads see every acknowledged write.

Watch start: ``watch(kind, since)`` replays the log after ``since``, then follows live changes;
``since=0`` means "from now", as a Kubernetes watch without a resourceVersion (list first and
watch from the list's resourceVersion to see everything; a fresh store is at version 1, so even
the empty list returns a version to start from).

Watch fan-out: a change is decoded once, and every watcher gets that same object: watchers
must treat it as read-only (copy it before changing it; ``get`` and ``list`` return copies).

Watch bound: every watcher has an in-memory buffer of ``watch_buffer`` changes. Writers never
wait for a watcher: when its buffer is full it stops receiving live changes, and once it has
drained the buffer it reads the missed changes from the ``changes`` log and rejoins the live
stream. Only a watcher more than ``history_limit`` changes behind (the log was trimmed past it)
is ended with ``GoneError``, as Kubernetes answers 410 Gone.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import collections
import copy
import sqlite3
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread
import orjson
from anyio.streams.memory import MemoryObjectSendStream

from mfx.api.kinds import ALL_KINDS
from mfx.api.objects import Obj, now_rfc3339
from mfx.api.selectors import Selector, parse_selector
from mfx.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    ErrorList,
    GoneError,
    NotFoundError,
    StoreError,
)
from mfx.store import events as event_rules
from mfx.store.base import EventRecord, ListResult, WatchEvent, WatchEventType

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
_SERVER_METADATA = (
    "uid",
    "creationTimestamp",
    "generation",
    "resourceVersion",
    "deletionTimestamp",
)
_CATCH_UP_PAGE = 500
_LIST_CHUNK = 256
_EVENT_KIND = event_rules.EVENT_KIND

T = TypeVar("T")


class _Change:
    """One row of the watch log; its object is decoded once, on first use, for every watcher.

    Watchers share that one decoded object: it is read-only by contract (``Store.watch``
    hands out objects nobody may mutate; copy before changing one, as ``get`` returns a copy).
    """

    __slots__ = ("resource_version", "type", "kind", "name", "body", "_event")

    def __init__(self, resource_version: int, type: str, kind: str, name: str, body: str) -> None:
        self.resource_version = resource_version
        self.type = type
        self.kind = kind
        self.name = name
        self.body = body  # JSON, as stored
        self._event: WatchEvent | None = None

    def event(self) -> WatchEvent:
        if self._event is None:
            self._event = WatchEvent(WatchEventType(self.type), _loads(self.body), self.resource_version)
        return self._event


def _plural(kind: str) -> str:
    for info in ALL_KINDS:
        if info.kind == kind:
            return info.plural
    return kind.lower() + "s"


def _dumps(obj: Any) -> str:
    try:
        return orjson.dumps(obj).decode()
    except TypeError as error:
        raise BadRequestError(f"the object is not JSON-serialisable: {error}") from error


def _copy(obj: Obj) -> Obj:
    return orjson.loads(_dumps(obj))  # type: ignore[no-any-return]


def _identity(obj: Any) -> tuple[str, str]:
    if not isinstance(obj, dict):
        raise BadRequestError(f"an object must be a JSON object, not {type(obj).__name__}")
    kind = obj.get("kind")
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(kind, str) or not kind:
        raise BadRequestError("kind: required, a non-empty string such as PluginManifest")
    if not isinstance(name, str) or not name:
        raise BadRequestError(f"metadata.name: required, a non-empty string (kind {kind})")
    return kind, name


def _requested_version(value: Any, field_path: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequestError(
            f'{field_path}: invalid value "{value}", expected the integer string the store returned'
        ) from None


def _conflict(kind: str, name: str) -> ConflictError:
    return ConflictError(
        f'Operation cannot be fulfilled on {_plural(kind)} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )


def _not_found(kind: str, name: str) -> NotFoundError:
    return NotFoundError(f'{_plural(kind)} "{name}" not found')


def _encode_continue(name: str, resource_version: int) -> str:
    raw = orjson.dumps({"v": 1, "rv": resource_version, "start": name})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(raw)
        start = data["start"]
        if data.get("v") != 1 or not isinstance(start, str):
            raise ValueError("unknown token version")
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise BadRequestError(
            'invalid continue token; use the "continue" value of the previous list, or list again without it'
        ) from None
    return start


# --- the database, used from worker threads only ------------------------------------------


Bodies = Mapping[tuple[str, str], str]


class _Transaction:
    """One write: allocates resourceVersions, writes objects and the log, collects changes.

    Objects are read from ``bodies`` (the store's in-memory copy of the file, which nothing
    changes while a batch runs) overlaid with what this batch wrote: no SELECT per op.
    """

    def __init__(
        self, conn: sqlite3.Connection, history_limit: int, event_limit: int, bodies: Bodies, rv: int
    ) -> None:
        self.conn = conn
        self.history_limit = history_limit
        self.event_limit = event_limit
        self.changes: list[_Change] = []
        self.writes = 0  # statements that changed the file (an op that failed after one needs a rollback)
        self._bodies = bodies
        self._written: dict[tuple[str, str], str | None] = {}  # this batch's bodies (None: deleted)
        self._start_rv = rv
        self._rv: int | None = None

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
        return orjson.loads(body) if body is not None else None  # type: ignore[no-any-return]

    def exists(self, kind: str, name: str) -> bool:
        return self._body(kind, name) is not None

    def put(self, kind: str, name: str, obj: Obj, type_: WatchEventType) -> None:
        rv = self.next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        body = _dumps(obj)
        self.writes += 1
        self._written[(kind, name)] = body
        self.conn.execute(
            "INSERT INTO objects (kind, name, resource_version, body) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (kind, name) DO UPDATE SET resource_version = excluded.resource_version,"
            " body = excluded.body",
            (kind, name, rv, body),
        )
        if kind == _EVENT_KIND:
            row = event_rules.index_row(obj)
            self.conn.execute(
                "INSERT OR REPLACE INTO event_index (name, dedup_key, involved_kind, involved_name, last_seen)"
                " VALUES (?, ?, ?, ?, ?)",
                (row.name, row.dedup_key, row.involved_kind, row.involved_name, rv),
            )
        self._log(rv, type_, kind, name, body)

    def remove(self, kind: str, name: str, obj: Obj) -> None:
        rv = self.next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        self.writes += 1
        self._written[(kind, name)] = None
        self.conn.execute("DELETE FROM objects WHERE kind = ? AND name = ?", (kind, name))
        if kind == _EVENT_KIND:
            self.conn.execute("DELETE FROM event_index WHERE name = ?", (name,))
        self._log(rv, WatchEventType.DELETED, kind, name, _dumps(obj))

    def _log(self, rv: int, type_: WatchEventType, kind: str, name: str, body: str) -> None:
        self.conn.execute(
            "INSERT INTO changes (resource_version, kind, name, type, body) VALUES (?, ?, ?, ?, ?)",
            (rv, kind, name, type_.value, body),
        )
        self.changes.append(_Change(rv, type_.value, kind, name, body))

    def mark(self) -> tuple[int | None, int, dict[tuple[str, str], str | None]]:
        """Where the batch stands, to return to with ``undo`` if the next op fails."""
        return self._rv, len(self.changes), dict(self._written)

    def undo(self, rv: int | None, count: int, written: dict[tuple[str, str], str | None]) -> None:
        self._rv = rv
        del self.changes[count:]
        self._written = written

    def trim_events(self) -> None:
        """Keep at most ``event_limit`` events: the ones that occurred last."""
        count = int(self.conn.execute("SELECT COUNT(*) FROM event_index").fetchone()[0])
        excess = count - self.event_limit
        if excess <= 0:
            return
        names = [
            r[0]
            for r in self.conn.execute(
                "SELECT name FROM event_index ORDER BY last_seen LIMIT ?", (excess,)
            )
        ]
        for name in names:
            obj = self.load(_EVENT_KIND, name)
            if obj is None:  # index row without object: repair quietly
                self.writes += 1
                self.conn.execute("DELETE FROM event_index WHERE name = ?", (name,))
            else:
                self.remove(_EVENT_KIND, name, obj)

    def finish(self) -> int | None:
        """Store the counter and trim the log; returns the new compaction point, if it moved."""
        if self._rv is None or not self.changes:
            return None
        self.conn.execute("UPDATE meta SET resource_version = ? WHERE id = 1", (self._rv,))
        floor = self._rv - self.history_limit
        if floor <= 0:
            return None
        self.conn.execute("DELETE FROM changes WHERE resource_version <= ?", (floor,))
        return floor


@dataclass
class _Opened:
    db: _Database
    resource_version: int
    compacted: int
    bodies: dict[tuple[str, str], str]


@dataclass(eq=False)
class _PendingWrite:
    """One caller's write waiting for (or in) a group commit."""

    fn: Callable[[_Transaction], Any]
    # Done, or promoted to leader; made only for a caller that waits (a leader never does).
    settled: anyio.Event | None = None
    leader: bool = False  # this caller runs the next batch
    done: bool = False
    value: Any = None
    error: BaseException | None = None


@dataclass
class _BatchResult:
    changes: list[_Change]
    compacted: int | None


class _Database:
    def __init__(
        self, conn: sqlite3.Connection, path: Path, history_limit: int, event_limit: int
    ) -> None:
        self.conn = conn
        self.path = path
        self.history_limit = history_limit
        self.event_limit = event_limit

    @classmethod
    def open(cls, path: Path, history_limit: int, event_limit: int) -> _Opened:
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
            cls._migrate(conn, path)
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
        return _Opened(db, rv, compacted, bodies)

    @staticmethod
    def _migrate(conn: sqlite3.Connection, path: Path) -> None:
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

    def write_batch(self, ops: list[_PendingWrite], bodies: Bodies, rv: int) -> _BatchResult:
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
        self, ops: list[_PendingWrite], bodies: Bodies, rv: int, *, savepoints: bool
    ) -> _BatchResult | None:
        """One attempt; None (rolled back) when an op failed after writing without a savepoint."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            tx = _Transaction(self.conn, self.history_limit, self.event_limit, bodies, rv)
            for op in ops:
                mark = tx.mark()
                writes = tx.writes
                if savepoints:
                    self.conn.execute("SAVEPOINT op")
                try:
                    op.value = op.fn(tx)
                except Exception as error:
                    if savepoints:
                        self.conn.execute("ROLLBACK TO op")
                        self.conn.execute("RELEASE op")
                    elif tx.writes != writes:
                        self.conn.execute("ROLLBACK")
                        return None
                    tx.undo(*mark)
                    op.error = _translate(self.path, error)
                    continue
                if savepoints:
                    self.conn.execute("RELEASE op")
            compacted = tx.finish()
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        return _BatchResult(tx.changes, compacted)

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
                for obj in map(_loads, (r[0] for r in everything))
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
                obj = _loads(body)
                if selector.matches(_labels(obj)):
                    if len(items) == limit:
                        return items, True
                    items.append(obj)
                cursor = name
            if len(rows) < chunk:
                return items, False

    def changes_after(self, kind: str | None, after: int, limit: int) -> list[_Change]:
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
        return [_Change(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows]

    def events(self, involved_kind: str | None, involved_name: str | None) -> list[Obj]:
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
        return [_loads(r[0]) for r in self.conn.execute(sql, params)]


def _loads(body: str) -> Obj:
    return orjson.loads(body)  # type: ignore[no-any-return]


def _labels(obj: Obj) -> dict[str, str]:
    return obj.get("metadata", {}).get("labels") or {}


# --- write rules (run inside a transaction) ------------------------------------------------


def _stamp_new(obj: Obj) -> None:
    metadata = obj["metadata"]
    metadata["uid"] = str(uuid.uuid4())
    metadata["creationTimestamp"] = now_rfc3339()
    metadata["generation"] = 1
    metadata.pop("deletionTimestamp", None)
    metadata.pop("resourceVersion", None)
    if not metadata.get("finalizers"):
        metadata.pop("finalizers", None)


def _check_precondition(kind: str, name: str, wanted: int | None, stored: Obj) -> None:
    if wanted is not None and wanted != int(stored["metadata"]["resourceVersion"]):
        raise _conflict(kind, name)


def _create(tx: _Transaction, obj: Obj) -> Obj:
    kind, name = _identity(obj)
    if tx.exists(kind, name):
        raise AlreadyExistsError(f'{_plural(kind)} "{name}" already exists')
    new = _copy(obj)
    _stamp_new(new)
    tx.put(kind, name, new, WatchEventType.ADDED)
    if kind == _EVENT_KIND:
        tx.trim_events()
    return new


def _update(tx: _Transaction, obj: Obj) -> Obj:
    kind, name = _identity(obj)
    wanted = _requested_version(obj["metadata"].get("resourceVersion"), "metadata.resourceVersion")
    stored = tx.load(kind, name)
    if stored is None:
        raise _not_found(kind, name)
    _check_precondition(kind, name, wanted, stored)
    new = _copy(obj)
    metadata = new["metadata"]
    old_metadata = stored["metadata"]
    for key in _SERVER_METADATA:
        if key in old_metadata:
            metadata[key] = old_metadata[key]
        else:
            metadata.pop(key, None)
    if not metadata.get("finalizers"):
        metadata.pop("finalizers", None)
    new["kind"] = stored["kind"]
    if "apiVersion" in stored:
        new["apiVersion"] = stored["apiVersion"]
    if "status" in stored:
        new["status"] = stored["status"]
    else:
        new.pop("status", None)
    deleting = bool(old_metadata.get("deletionTimestamp"))
    if deleting:
        added = set(metadata.get("finalizers") or ()) - set(old_metadata.get("finalizers") or ())
        if added:
            errors = ErrorList()
            errors.add(
                "metadata.finalizers",
                f"no new finalizers can be added while the object is being deleted (added {sorted(added)})",
            )
            errors.raise_if_any(kind=kind, name=name)
    if new.get("spec") != stored.get("spec"):
        metadata["generation"] = int(old_metadata.get("generation", 1)) + 1
    if new == stored:
        return stored  # a no-op write: no new resourceVersion, no watch event
    if deleting and not metadata.get("finalizers"):
        tx.remove(kind, name, new)
    else:
        tx.put(kind, name, new, WatchEventType.MODIFIED)
    return new


def _update_status(tx: _Transaction, obj: Obj) -> Obj:
    kind, name = _identity(obj)
    wanted = _requested_version(obj["metadata"].get("resourceVersion"), "metadata.resourceVersion")
    stored = tx.load(kind, name)
    if stored is None:
        raise _not_found(kind, name)
    _check_precondition(kind, name, wanted, stored)
    if obj.get("status") == stored.get("status"):
        return stored  # a no-op write: no new resourceVersion, no watch event
    new = dict(stored)  # stored was just decoded: only its status is replaced
    if "status" in obj:
        new["status"] = _copy(obj["status"])
    else:
        new.pop("status", None)
    new["metadata"] = dict(stored["metadata"])  # put stamps the resourceVersion on new's own copy
    tx.put(kind, name, new, WatchEventType.MODIFIED)
    return new


def _delete(tx: _Transaction, kind: str, name: str, wanted: int | None) -> Obj:
    stored = tx.load(kind, name)
    if stored is None:
        raise _not_found(kind, name)
    current = int(stored["metadata"]["resourceVersion"])
    if wanted is not None and wanted != current:
        raise ConflictError(
            f'Operation cannot be fulfilled on {_plural(kind)} "{name}": the ResourceVersion in the '
            f"precondition ({wanted}) does not match the ResourceVersion in record ({current}). "
            "The object might have been modified; get it again and retry"
        )
    metadata = stored["metadata"]
    if metadata.get("finalizers"):
        if metadata.get("deletionTimestamp"):
            return stored  # already being deleted: the finalizers' owners are at work
        metadata["deletionTimestamp"] = now_rfc3339()
        metadata["generation"] = int(metadata.get("generation", 1)) + 1
        tx.put(kind, name, stored, WatchEventType.MODIFIED)
        return stored
    tx.remove(kind, name, stored)
    return stored


def _record_event(tx: _Transaction, record: EventRecord) -> Obj:
    timestamp = now_rfc3339()
    row = tx.conn.execute(
        "SELECT name FROM event_index WHERE dedup_key = ? ORDER BY last_seen DESC LIMIT 1",
        (event_rules.record_key(record),),
    ).fetchone()
    if row is not None:
        stored = tx.load(_EVENT_KIND, row[0])
        if stored is not None:
            updated = event_rules.repeat(stored, record, timestamp)
            tx.put(_EVENT_KIND, row[0], updated, WatchEventType.MODIFIED)
            return updated
    new = event_rules.new_event(record, timestamp)
    _stamp_new(new)
    tx.put(_EVENT_KIND, new["metadata"]["name"], new, WatchEventType.ADDED)
    tx.trim_events()
    return new


# --- watchers --------------------------------------------------------------------------------


@dataclass(eq=False)
class _Subscription:
    kind: str | None
    send: MemoryObjectSendStream[_Change]
    # True while the watcher reads from the log instead of the live stream (it starts that way
    # when it has a backlog to replay, and turns so when its buffer overflowed).
    lagged: bool
    pending: collections.deque[_Change] = field(default_factory=collections.deque)


class _Watch:
    """An async iterator of ``WatchEvent``; ``aclose()`` (or leaving ``async with``) ends it."""

    def __init__(self, store: SQLiteStore, kind: str | None, since: int) -> None:
        self._store = store
        self._kind = kind
        send, self._receive = anyio.create_memory_object_stream[_Change](
            max_buffer_size=store.watch_buffer
        )
        # since=0 starts from now, as a Kubernetes watch without a resourceVersion does (minus
        # the synthetic ADDED events: list first, then watch from the list's resourceVersion).
        self._cursor = since if since else store._rv
        self._sub = _Subscription(kind, send, lagged=bool(since))
        self._closed = False
        store._subscriptions.add(self._sub)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> WatchEvent:
        while True:
            if self._sub.pending:
                change = self._sub.pending.popleft()
            elif self._closed:
                raise StopAsyncIteration
            else:
                try:
                    change = self._receive.receive_nowait()
                except anyio.WouldBlock:
                    if self._sub.lagged:
                        if not await self._catch_up():
                            self._release()
                            raise StopAsyncIteration from None
                        continue
                    try:
                        change = await self._receive.receive()
                    except (anyio.EndOfStream, anyio.ClosedResourceError):
                        self._release()
                        raise StopAsyncIteration from None
                except (anyio.EndOfStream, anyio.ClosedResourceError):
                    self._release()
                    raise StopAsyncIteration from None
            if change.resource_version <= self._cursor:
                continue
            self._cursor = change.resource_version
            return change.event()

    async def _catch_up(self) -> bool:
        try:
            rows = await self._store._read_log(self._sub, self._cursor)
        except GoneError:
            self._release()
            raise
        if rows is None:
            return False
        self._sub.pending.extend(rows)
        return True

    async def aclose(self) -> None:
        self._release()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._release()

    def _release(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._store._subscriptions.discard(self._sub)
        self._sub.send.close()
        self._receive.close()

    def __del__(self) -> None:
        # A caller that breaks out of "async for" drops its last reference here.
        self._release()


# --- the store -------------------------------------------------------------------------------


class SQLiteStore:
    """The ``Store`` on one SQLite file. Use ``async with SQLiteStore(path) as store`` or open()/close().

    ``create`` keeps any ``status`` it is given (the API server strips client-sent status);
    ``update`` keeps the stored status and server-owned metadata; see ``mfx.store.base``.
    """

    def __init__(
        self,
        path: Path,
        *,
        history_limit: int = 10_000,
        event_limit: int = 1000,
        watch_buffer: int = 1024,
    ) -> None:
        if history_limit < 1 or event_limit < 1 or watch_buffer < 1:
            raise ValueError("history_limit, event_limit and watch_buffer must be at least 1")
        self.path = Path(path)
        self.history_limit = history_limit
        self.event_limit = event_limit
        self.watch_buffer = watch_buffer
        self._db: _Database | None = None
        # Its own worker thread token: the store's calls never queue behind other users of
        # anyio's shared thread pool (plugins blocked in slow calls can fill all 40 tokens).
        self._threads: anyio.CapacityLimiter | None = None
        self._lock = anyio.Lock(fast_acquire=True)
        # Group commit: writes wait here; the caller flagged leader runs the next batch.
        self._queued: list[_PendingWrite] = []
        self._leading = False
        self._rv = 0
        self._compacted = 0
        self._subscriptions: set[_Subscription] = set()
        # The JSON of every stored object, kept in step with the file after each commit, so a
        # get costs no trip to a worker thread (the API server's watch cache does the same).
        self._bodies: dict[tuple[str, str], str] = {}

    @property
    def watchers(self) -> int:
        """How many watches are open (each holds a buffer of at most ``watch_buffer`` changes)."""
        return len(self._subscriptions)

    def _limiter(self) -> anyio.CapacityLimiter:
        if self._threads is None:
            self._threads = anyio.CapacityLimiter(1)  # one connection, used one call at a time
        return self._threads

    async def open(self) -> Self:
        if self._db is None:
            opened = await anyio.to_thread.run_sync(
                _Database.open, self.path, self.history_limit, self.event_limit,
                limiter=self._limiter(),
            )
            self._db, self._rv, self._compacted = (
                opened.db,
                opened.resource_version,
                opened.compacted,
            )
            self._bodies = opened.bodies
        return self

    async def close(self) -> None:
        for sub in list(self._subscriptions):
            sub.send.close()  # watchers drain what they hold, then end
        self._subscriptions.clear()
        async with self._lock:
            db, self._db = self._db, None
            self._bodies = {}
            if db is not None:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(db.close, limiter=self._limiter())

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- plumbing ---

    def _database(self) -> _Database:
        if self._db is None:
            raise StoreError(f"the store {self.path} is not open; call open() or use 'async with'")
        return self._db

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        async with self._lock:
            self._database()
            return await anyio.to_thread.run_sync(
                _translated, self.path, fn, *args, limiter=self._limiter()
            )

    async def _write(self, fn: Callable[[_Transaction], T]) -> T:
        """Group commit: queue the op; one caller at a time (the leader) commits the queue.

        The leader takes every op queued so far, runs them in one transaction on a worker
        thread, fans their changes out, settles each op, then hands the role to the first op
        queued meanwhile. A caller is answered only after the commit that holds its op.
        """
        self._database()
        op = _PendingWrite(fn)
        self._queued.append(op)
        if not self._leading:
            self._leading = True
            op.leader = True
        else:
            op.settled = anyio.Event()
        # Shielded: a queued write runs (batches take milliseconds) and its caller hears how it
        # went, as a caller of a single shielded commit did; a cancellation lands after that.
        with anyio.CancelScope(shield=True):
            if op.settled is not None:
                await op.settled.wait()  # settled: done, or promoted to lead the next batch
            if not op.done:
                await self._lead()
        if op.error is not None:
            raise op.error
        return op.value  # type: ignore[no-any-return]

    async def _lead(self) -> None:
        batch, self._queued = self._queued, []
        result: _BatchResult | None = None
        failure: BaseException | None = None
        try:
            async with self._lock:
                # Under the lock (a read that comes meanwhile still sees these writes), one
                # pass of the event loop: writes that tasks ready to run are about to make join
                # this batch instead of waiting for the next (a thread hop and a commit each).
                await anyio.lowlevel.cancel_shielded_checkpoint()
                batch.extend(self._queued)
                self._queued.clear()
                db = self._db
                if db is None:
                    failure = StoreError(
                        f"the store {self.path} is not open; call open() or use 'async with'"
                    )
                else:
                    try:
                        result = await anyio.to_thread.run_sync(
                            _translated, self.path, db.write_batch, batch, self._bodies, self._rv,
                            limiter=self._limiter(),
                        )
                    except Exception as error:  # the commit failed: nothing in the batch happened
                        failure = error
                if result is not None:
                    self._after_commit(result)
        finally:
            for op in batch:
                if result is None:  # each caller gets its own copy of the batch's failure
                    op.value = None
                    op.error = copy.copy(failure) if failure is not None else StoreError(
                        f"the store {self.path}: the write was interrupted; try again"
                    )
                op.done = True
                if op.settled is not None:
                    op.settled.set()
            self._hand_over()

    def _hand_over(self) -> None:
        """The next batch is led by the first op queued, if any."""
        if self._queued:
            successor = self._queued[0]
            successor.leader = True
            assert successor.settled is not None  # queued behind a leader: it waits
            successor.settled.set()  # it wakes and leads; ops queued behind it join its batch
        else:
            self._leading = False

    def _after_commit(self, result: _BatchResult) -> None:
        if result.changes:
            self._rv = result.changes[-1].resource_version
        if result.compacted is not None:
            self._compacted = max(self._compacted, result.compacted)
        for change in result.changes:
            if change.type == WatchEventType.DELETED:
                self._bodies.pop((change.kind, change.name), None)
            else:
                self._bodies[(change.kind, change.name)] = change.body
            for sub in list(self._subscriptions):
                if sub.lagged or (sub.kind is not None and sub.kind != change.kind):
                    continue
                try:
                    sub.send.send_nowait(change)
                except anyio.WouldBlock:
                    sub.lagged = True  # it re-reads the log once it has drained its buffer
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    self._subscriptions.discard(sub)

    async def _read_log(self, sub: _Subscription, after: int) -> list[_Change] | None:
        """The next page of the log for a lagging watcher; None once the store is closed."""
        async with self._lock:
            if self._db is None:
                return None
            if after < self._compacted:
                raise self._gone(after)
            rows = await anyio.to_thread.run_sync(
                _translated, self.path, self._db.changes_after, sub.kind, after, _CATCH_UP_PAGE,
                limiter=self._limiter(),
            )
            if len(rows) < _CATCH_UP_PAGE:
                # Caught up: under the lock no write can slip between this read and going live.
                sub.lagged = False
            return rows

    def _gone(self, since: int) -> GoneError:
        return GoneError(
            f"too old resource version: {since} ({self._compacted + 1}); the store keeps the last "
            f"{self.history_limit} changes: list again and watch from the list's resourceVersion"
        )

    # --- the Store protocol ---

    async def create(self, obj: Obj) -> Obj:
        return await self._write(lambda tx: _create(tx, obj))

    async def get(self, kind: str, name: str) -> Obj:
        await anyio.lowlevel.checkpoint()
        self._database()
        body = self._bodies.get((kind, name))
        if body is None:
            raise _not_found(kind, name)
        return _loads(body)

    async def list(
        self,
        kind: str,
        *,
        label_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> ListResult:
        selector = parse_selector(label_selector)
        start = _decode_continue(continue_token) if continue_token else ""
        # limit 0 means all, as in Kubernetes.
        wanted = limit if limit is not None and limit > 0 else None

        def run() -> tuple[list[Obj], bool, int]:
            items, more = self._database().list_objects(kind, selector, wanted, start)
            return items, more, self._rv

        items, more, rv = await self._read(run)
        token = _encode_continue(items[-1]["metadata"]["name"], rv) if more and items else None
        return ListResult(items=items, resource_version=rv, continue_token=token)

    async def update(self, obj: Obj) -> Obj:
        return await self._write(lambda tx: _update(tx, obj))

    async def update_status(self, obj: Obj) -> Obj:
        return await self._write(lambda tx: _update_status(tx, obj))

    async def delete(self, kind: str, name: str, *, resource_version: int | None = None) -> Obj:
        return await self._write(lambda tx: _delete(tx, kind, name, resource_version))

    def watch(self, kind: str | None, since: int) -> _Watch:
        """Changes with resourceVersion > ``since`` in order, then live ones; ``since=0``: from now.

        Raises ``GoneError`` when ``since`` is older than the retained history (here at once, or
        while iterating if the watcher later falls that far behind).
        """
        self._database()
        since = int(since)
        if since < 0:
            raise BadRequestError(f"resourceVersion: invalid value {since}, expected 0 or more")
        if since and since < self._compacted:
            raise self._gone(since)
        return _Watch(self, kind, since)

    async def current_resource_version(self) -> int:
        self._database()
        return self._rv

    async def record_event(self, event: EventRecord) -> Obj:
        return await self._write(lambda tx: _record_event(tx, event))

    async def list_events(
        self, involved_kind: str | None = None, involved_name: str | None = None
    ) -> builtins.list[Obj]:
        """Events about one object or kind (both optional), oldest last occurrence first."""
        return await self._read(lambda: self._database().events(involved_kind, involved_name))


def _translated(path: Path, fn: Callable[..., T], *args: Any) -> T:
    """Runs ``fn`` in the worker thread, turning sqlite3 failures into ``StoreError``."""
    try:
        return fn(*args)
    except sqlite3.Error as error:
        raise _translate(path, error) from error


def _translate(path: Path, error: Exception) -> Exception:
    if isinstance(error, sqlite3.Error):
        translated = StoreError(
            f"the store {path} failed: {error}; check free disk space and the file's permissions"
        )
        translated.__cause__ = error
        return translated
    return error
