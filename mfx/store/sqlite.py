"""The default store: one SQLite file, Kubernetes API-server semantics (see ``mfx.store.base``).

Layout (see ``mfx.store.sqlite_schema``):

- ``meta``: one row holding the global resourceVersion counter.
- ``objects``: one row per object, keyed by (kind, name); the body is the object's JSON.
- ``changes``: the watch log (resourceVersion, kind, name, type, JSON of the object as of that
  change). Every write adds its rows in the same transaction as the object and the counter, so
  the log has exactly one row per resourceVersion; it keeps the ``history_limit`` newest rows.
- ``event_index``: for Event objects, the de-duplication key, the involved object and the
  resourceVersion of the last occurrence (to find repeats, filter, and drop the oldest).

One process owns the file (the daemon): reads of single objects are served from an in-memory
copy of every object's JSON that follows each commit, and the watch fan-out is in-process.

Concurrency: one connection, used from the store's own worker thread (``mfx.thread_calls``) one
call at a time under an ``anyio.Lock``; the event loop never waits on SQLite. Writes are group-committed:
every write queued while a batch runs goes into the next batch, each in its own SAVEPOINT (one
op's conflict does not touch the others), the batch in one transaction. Callers are answered
after that commit; the batch's watch fan-out happens under the lock right after it, so watchers
see changes in resourceVersion order and reads see every acknowledged write.
While a daemon serves the store (``maintain``), the write-ahead log is checkpointed on a
connection and thread of its own, so no commit waits for that copy: ``mfx.store.sqlite_checkpoint``.

Watch start: ``watch(kind, since)`` replays the log after ``since``, then follows live changes;
``since=0`` means "from now", as a Kubernetes watch without a resourceVersion (list first and
watch from the list's resourceVersion to see everything; a fresh store is at version 1, so even
the empty list returns a version to start from).

Watch fan-out and its bound are ``mfx.store.watch_hub``'s (``watch_buffer`` changes per
watcher, then it reads the ``changes`` log); only a watcher more than ``history_limit`` changes
behind (the log was trimmed past it) is ended with ``GoneError``, as Kubernetes answers 410.

What each write does to an object (uid, generation, finalizers, preconditions) is decided by
``mfx.store.strategy``; this module stores the outcome. The tables and their migrations are in
``mfx.store.sqlite_schema``, the Event index's statements in ``mfx.store.sqlite_events``.
"""

from __future__ import annotations

import builtins
import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack

import anyio
import anyio.lowlevel

from mfx.api.objects import Obj, now_rfc3339
from mfx.api.selectors import parse_selector
from mfx.errors import BadRequestError, GoneError, StoreError
from mfx.store import events as event_rules
from mfx.store import strategy
from mfx.store.base import (
    BatchAction,
    BatchWrite,
    EventRecord,
    ListOptions,
    ListResult,
    WatchEventType,
)
from mfx.store.codec import loads
from mfx.store.continue_token import decode_continue, encode_continue
from mfx.store.sqlite_checkpoint import CHECKPOINT_BYTES, LOOK_INTERVAL, Checkpoint, Checkpointer
from mfx.store.sqlite_database import (
    BatchResult,
    Database,
    PendingWrite,
    Transaction,
    translated,
)
from mfx.store.sqlite_schema import SCHEMA_VERSION
from mfx.store.watch_hub import Change, Subscription, Watch, WatchHub
from mfx.thread_calls import ThreadCalls

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

_CATCH_UP_PAGE = 500
_EVENT_KIND = event_rules.EVENT_KIND

T = TypeVar("T")


# --- writes (run inside a transaction) -----------------------------------------------------


def _create(tx: Transaction, obj: Obj, *, owned: bool = False) -> Obj:
    """``owned``: ``obj`` is handed over (``BatchWrite``), and so is the answer: watchers get it as it is."""
    kind, name = strategy.identity(obj)
    write = strategy.create(kind, name, obj, tx.load(kind, name), owned=owned, now=tx.now())
    new = tx.carry_out(kind, name, write, watched_as_is=owned)
    if kind == _EVENT_KIND:
        tx.trim_events()
    return new


def _update(tx: Transaction, obj: Obj, *, owned: bool = False, base: Obj | None = None) -> Obj:
    """``owned``: as for ``_create``; ``base``: as for ``BatchWrite``."""
    kind, name = strategy.identity(obj)
    return tx.carry_out(kind, name, strategy.update(kind, name, obj, tx.load(kind, name), owned=owned, base=base),
                        watched_as_is=owned)


def _update_status(tx: Transaction, obj: Obj) -> Obj:
    kind, name = strategy.identity(obj)
    return tx.carry_out(kind, name, strategy.update_status(kind, name, obj, tx.load(kind, name)))


def _write_status(tx: Transaction, obj: Obj, records: Sequence[EventRecord], with_metadata: bool) -> Obj:
    kind, name = strategy.identity(obj)
    decide = strategy.update_with_status if with_metadata else strategy.update_status
    new = tx.carry_out(kind, name, decide(kind, name, obj, tx.load(kind, name)))
    for record in records:
        _record_event(tx, record)
    return new


def _write_all(tx: Transaction, writes: Sequence[BatchWrite]) -> builtins.list[Obj]:
    # One op of the group commit: if any write fails after others wrote, the batch runs again
    # with a savepoint around this op, so it leaves no trace (see ``Database.write_batch``).
    # The objects are the store's (``BatchWrite``): stamped as they are, not copied first. A
    # second run stamps them again, the same way.
    return [_create(tx, w.obj, owned=True) if w.action is BatchAction.CREATE else _update(tx, w.obj, owned=True, base=w.base)
            for w in writes]


def _delete(tx: Transaction, kind: str, name: str, wanted: int | None) -> Obj:
    return tx.carry_out(kind, name, strategy.delete(kind, name, wanted, tx.load(kind, name)))


def _record_event(tx: Transaction, record: EventRecord) -> Obj:
    timestamp = now_rfc3339()
    name = tx.latest_event_with_key(event_rules.record_key(record))
    if name is not None:
        stored = tx.load(_EVENT_KIND, name)
        if stored is not None:
            updated = event_rules.repeat(stored, record, timestamp)
            tx.put(_EVENT_KIND, name, updated, WatchEventType.MODIFIED)
            return updated
    new = event_rules.new_event(record, timestamp)
    strategy.stamp_new(new)
    tx.put(_EVENT_KIND, new["metadata"]["name"], new, WatchEventType.ADDED)
    tx.trim_events()
    return new


# --- the store -------------------------------------------------------------------------------


class SQLiteStore:
    """The ``Store`` on one SQLite file. Use ``async with SQLiteStore(path) as store`` or open()/close().

    ``create`` keeps any ``status`` it is given (the API server strips client-sent status);
    ``update`` keeps the stored status and server-owned metadata; see ``mfx.store.base``.

    It keeps the ``event_limit`` Events that occurred last (etcd keeps them an hour, by lease).
    The limit is ten times what a few hundred plugins' starts record: a restarted daemon tells
    each start again, and a repeat is counted on the Event it repeats only while that Event is
    still kept. At a limit the size of one round of starts, the oldest Events, trimmed first,
    are the very ones the next starts repeat: each repeat was written anew and trimmed another.
    """

    def __init__(
        self,
        path: Path,
        *,
        history_limit: int = 10_000,
        event_limit: int = 10_000,
        watch_buffer: int = 1024,
        checkpoint_bytes: int = CHECKPOINT_BYTES,
    ) -> None:
        if history_limit < 1 or event_limit < 1 or watch_buffer < 1 or checkpoint_bytes < 1:
            raise ValueError("history_limit, event_limit, watch_buffer and checkpoint_bytes must be at least 1")
        self.path = Path(path)
        self.history_limit = history_limit
        self.event_limit = event_limit
        self.watch_buffer = watch_buffer
        self.checkpoint_bytes = checkpoint_bytes
        self._db: Database | None = None
        # Its own worker thread: the store's calls never queue behind other users of a shared
        # pool (plugins blocked in slow calls can fill one), and the one connection is used by
        # one thread, a call at a time, in the order the calls were made.
        self._calls: ThreadCalls | None = None
        self._lock = anyio.Lock(fast_acquire=True)
        # Group commit: writes wait here; the caller flagged leader runs the next batch.
        self._queued: list[PendingWrite] = []
        self._leading = False
        self._rv = 0
        self._compacted = 0
        self._hub = WatchHub(watch_buffer, self._read_log)
        # The JSON of every stored object, kept in step with the file after each commit, so a
        # get costs no trip to a worker thread (the API server's watch cache does the same).
        self._bodies: dict[tuple[str, str], str] = {}
        self._committed = anyio.Event()  # set by a commit, for ``maintain``

    @property
    def watchers(self) -> int:
        """How many watches are open (each holds a buffer of at most ``watch_buffer`` changes)."""
        return self._hub.watchers

    def _thread(self) -> ThreadCalls:
        if self._calls is None:
            self._calls = ThreadCalls(f"store:{self.path.name}", max_threads=1)
        return self._calls

    async def open(self) -> Self:
        if self._db is None:
            with anyio.CancelScope(shield=True):  # an open left running would never be closed
                opened = await self._thread().run(Database.open, self.path, self.history_limit, self.event_limit)
            self._db, self._rv, self._compacted = (
                opened.db,
                opened.resource_version,
                opened.compacted,
            )
            self._bodies = opened.bodies
        return self

    async def close(self) -> None:
        self._hub.close()
        async with self._lock:
            db, self._db = self._db, None
            self._bodies = {}
            if db is not None:
                with anyio.CancelScope(shield=True):
                    await self._thread().run(db.close)
            calls, self._calls = self._calls, None
            if calls is not None:
                calls.close()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def maintain(self, on_checkpoint: Callable[[Checkpoint], None] | None = None) -> None:
        """Checkpoint the write-ahead log off the commit path, until cancelled (see
        ``mfx.store.sqlite_checkpoint``); ``on_checkpoint`` hears of each checkpoint."""
        checkpointer = Checkpointer(self.path, self.checkpoint_bytes)
        try:
            while True:
                await self._committed.wait()
                self._committed = anyio.Event()
                done = await checkpointer.run_when_due()
                if done is not None and on_checkpoint is not None:
                    on_checkpoint(done)
                await anyio.sleep(LOOK_INTERVAL)
        finally:
            await checkpointer.close()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- plumbing ---

    def _database(self) -> Database:
        if self._db is None:
            raise StoreError(f"the store {self.path} is not open; call open() or use 'async with'")
        return self._db

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        async with self._lock:
            self._database()
            return await self._thread().run(translated, self.path, fn, *args)

    async def _write(self, fn: Callable[[Transaction], T]) -> T:
        """Group commit: queue the op; one caller at a time (the leader) commits the queue.

        The leader takes every op queued so far, runs them in one transaction on a worker
        thread, fans their changes out, settles each op, then hands the role to the first op
        queued meanwhile. A caller is answered only after the commit that holds its op.
        """
        self._database()
        op = PendingWrite(fn)
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
        result: BatchResult | None = None
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
                        result = await self._thread().run(
                            translated, self.path, db.write_batch, batch, self._bodies, self._rv)
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

    def _after_commit(self, result: BatchResult) -> None:
        if result.changes:
            self._rv = result.changes[-1].resource_version
            self._committed.set()
        if result.compacted is not None:
            self._compacted = max(self._compacted, result.compacted)
        for change in result.changes:
            if change.type == WatchEventType.DELETED:
                self._bodies.pop((change.kind, change.name), None)
            else:
                self._bodies[(change.kind, change.name)] = change.body
        self._hub.publish(result.changes)

    async def _read_log(self, sub: Subscription, after: int) -> list[Change] | None:
        """The next page of the log for a lagging watcher; None once the store is closed."""
        async with self._lock:
            if self._db is None:
                return None
            if after < self._compacted:
                raise self._gone(after)
            rows = await self._thread().run(translated, self.path, self._db.changes_after, sub.kind, after,
                                            _CATCH_UP_PAGE)
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
            raise strategy.not_found(kind, name)
        return loads(body)

    async def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Obj]:
        """The stored objects among ``(kind, name)`` ``keys`` (the missing ones are left out),
        as of one moment: no write lands between two of them."""
        await anyio.lowlevel.checkpoint()
        self._database()
        bodies = self._bodies
        return {key: loads(body) for key in keys if (body := bodies.get(key)) is not None}

    async def list(self, kind: str, **options: Unpack[ListOptions]) -> ListResult:
        selector = parse_selector(options.get("label_selector"))
        continue_token = options.get("continue_token")
        start = decode_continue(continue_token) if continue_token else ""
        # limit 0 means all, as in Kubernetes.
        limit = options.get("limit")
        wanted = limit if limit is not None and limit > 0 else None

        def run() -> tuple[list[Obj], bool, int]:
            items, more = self._database().list_objects(kind, selector, wanted, start)
            return items, more, self._rv

        items, more, rv = await self._read(run)
        token = encode_continue(items[-1]["metadata"]["name"], rv) if more and items else None
        return ListResult(items=items, resource_version=rv, continue_token=token)

    async def update(self, obj: Obj) -> Obj:
        return await self._write(lambda tx: _update(tx, obj))

    async def update_status(self, obj: Obj) -> Obj:
        return await self._write(lambda tx: _update_status(tx, obj))

    async def write_status(self, obj: Obj, events: Sequence[EventRecord] = (), *,
                           with_metadata: bool = False) -> Obj:
        """``update_status`` (``with_metadata``: an update taking the status too) and ``events``
        about the object, in one transaction; the answer is the object as written."""
        records = tuple(events)
        return await self._write(lambda tx: _write_status(tx, obj, records, with_metadata))

    async def write_all(self, writes: Sequence[BatchWrite]) -> builtins.list[Obj]:
        """Every create and update of ``writes``, in order, in one transaction: all or none.

        The objects answered are the ones watchers get (``BatchWrite`` hands them over): read them only."""
        return await self._write(lambda tx: _write_all(tx, writes))

    async def delete(self, kind: str, name: str, *, resource_version: int | None = None) -> Obj:
        return await self._write(lambda tx: _delete(tx, kind, name, resource_version))

    def watch(self, kind: str | None, since: int) -> Watch:
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
        return self._hub.open(kind, since, self._rv)

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


