"""The etcd store: Kubernetes API-server semantics on an etcd v3 cluster (see ``mfx.store.base``).

Several daemons can serve one etcd prefix at once: nothing is cached between requests, every
read goes to etcd, and every watch is an etcd watch (``mfx.store.etcd_watch``), so a write
through one daemon is seen by all. Layout: ``mfx.store.etcd_keys``.

- resourceVersion is etcd's revision: an object's is its key's mod_revision, a list's is the
  revision its read was taken at. The JSON stored does not need to hold it; reads stamp it.
- Every write reads the object, asks ``mfx.store.strategy`` what to write, and commits a
  transaction comparing the key's mod_revision with the one read. When another writer came
  first the write is decided again on the new state: a write carrying a stale
  resourceVersion is then refused (409), an unconditional one goes through.
- ``write_all`` is one transaction, up to ``max_txn_ops`` objects (etcd's ``--max-txn-ops``,
  128 by default); a larger batch commits in transactions of that size, each all or nothing.
- Events are stored like any object, with a lease of ``event_ttl`` seconds (an hour, as
  Kubernetes keeps them): etcd removes them when it runs out, and so trims them.
- History is compacted every ``compaction_interval`` seconds (five minutes, as kube-apiserver
  does; 0 turns it off) while a daemon serves the store (``maintain``), up to the revision of
  one interval before: ``mfx.store.etcd_compaction``.
- A lost quorum (or no member answering) is a ``StoreError`` (503) naming etcd; etcd itself
  keeps what it acknowledged (see ``mfx.store.etcd_client`` for failover between members).
"""

from __future__ import annotations

import builtins
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, Unpack

import anyio
from aetcd import rpc

from mfx.api.objects import Obj, now_rfc3339
from mfx.api.selectors import parse_selector
from mfx.errors import BadRequestError, StoreError, StoreUnavailableError
from mfx.store import events as event_rules
from mfx.store import strategy
from mfx.store.base import BatchAction, BatchWrite, EventRecord, ListOptions, ListResult
from mfx.store.codec import dumps, loads
from mfx.store.continue_token import decode_continue, encode_continue
from mfx.store.etcd_client import EtcdConnection
from mfx.store.etcd_compaction import run_compaction
from mfx.store.etcd_events import EventWrites, compare, plan_events, put
from mfx.store.etcd_keys import DEFAULT_COMPACTION_SECONDS, EtcdTarget, Keys, range_end
from mfx.store.etcd_watch import EtcdWatch
from mfx.store.strategy import Write, WriteAction

__all__ = ["EtcdStore"]

_EVENT_KIND = event_rules.EVENT_KIND
# How often a write is decided again when another writer changed the object in between.
_ATTEMPTS = 20
# A granted event lease is reused this long (at most a tenth of the TTL): events expire
# between 0.9 ttl and ttl after their last write, and a lease is never used near its end.
_LEASE_REUSE = 60.0
# get_many reads a whole kind in one range when it wants more of it than this.
_WHOLE_KIND = 32

Key = tuple[str, str]


@dataclass(frozen=True)
class _Stored:
    obj: Obj | None  # None: absent
    mod_revision: int  # 0 when absent (etcd compares a missing key's mod_revision as 0)


def _decode(kv: Any) -> Obj:
    obj = loads(kv.value)
    strategy.stamp_resource_version(obj, int(kv.mod_revision))
    return obj


class EtcdStore:
    """The ``Store`` on etcd. Use ``async with EtcdStore(target) as store`` or open()/close()."""

    def __init__(self, target: EtcdTarget, *, timeout: float = 5.0, event_ttl: int = 3600,
                 max_txn_ops: int = 128, compaction_interval: float = DEFAULT_COMPACTION_SECONDS) -> None:
        if timeout <= 0 or event_ttl < 1 or max_txn_ops < 1 or compaction_interval < 0:
            raise ValueError("timeout, event_ttl and max_txn_ops must be positive, compaction_interval not negative")
        self.compaction_interval = compaction_interval
        self.target = target
        self.keys = Keys(target.prefix)
        self.timeout = timeout
        self.event_ttl = event_ttl
        self.max_txn_ops = max_txn_ops
        self._connection: EtcdConnection | None = None
        self._rv = 0  # the newest revision any answer showed (where a watch "from now" starts)
        # Weak: a caller that breaks out of ``async for`` drops the watch, which then closes.
        self._watches: weakref.WeakSet[EtcdWatch] = weakref.WeakSet()
        self._lease: tuple[int, float] | None = None
        self._lease_lock = anyio.Lock()

    @property
    def watchers(self) -> int:
        """How many watches are open."""
        return len(self._watches)

    async def open(self) -> Self:
        if self._connection is None:
            connection = EtcdConnection(self.target, timeout=self.timeout)
            try:
                response = await connection.kv("Range", self._probe())
            except StoreUnavailableError as error:
                await connection.close()
                raise StoreUnavailableError(
                    f"cannot reach etcd at {connection.endpoints}: start it or check --store ({error.detail})",
                    detail=error.detail,
                ) from None
            self._connection = connection
            self._seen(response.header.revision)
        return self

    async def close(self) -> None:
        for watch in list(self._watches):
            watch.stop()
        self._watches.clear()
        connection, self._connection = self._connection, None
        if connection is not None:
            with anyio.CancelScope(shield=True):
                await connection.close()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def maintain(self) -> None:
        """Compact etcd's history every ``compaction_interval`` seconds, until cancelled."""
        if self.compaction_interval > 0:
            await run_compaction(self._kv, self.keys.compaction, self.compaction_interval,
                                 f"etcd at {self._conn().endpoints}")

    # --- plumbing ---

    def _conn(self) -> EtcdConnection:
        if self._connection is None:
            raise StoreError(f"the store {self.target.url} is not open; call open() or use 'async with'")
        return self._connection

    def _seen(self, revision: int) -> None:
        self._rv = max(self._rv, int(revision))

    def _probe(self) -> Any:
        return rpc.RangeRequest(key=self.keys.objects, range_end=range_end(self.keys.objects),
                                limit=1, keys_only=True)

    async def _kv(self, method: str, request: Any) -> Any:
        response = await self._conn().kv(method, request)
        self._seen(response.header.revision)
        return response

    async def _load(self, key: bytes) -> _Stored:
        response = await self._kv("Range", rpc.RangeRequest(key=key))
        if not response.kvs:
            return _Stored(None, 0)
        kv = response.kvs[0]
        return _Stored(_decode(kv), int(kv.mod_revision))

    async def _load_many(self, keys: Sequence[Key]) -> dict[Key, _Stored]:
        """The stored state of ``keys``, every one read at the same revision."""
        by_kind: dict[str, list[str]] = {}
        for kind, name in dict.fromkeys(keys):
            by_kind.setdefault(kind, []).append(name)
        found: dict[Key, _Stored] = {}
        revision = 0
        single: list[Key] = []
        for kind, names in by_kind.items():
            if len(names) <= _WHOLE_KIND:
                single.extend((kind, name) for name in names)
                continue
            prefix = self.keys.kind(kind)
            response = await self._kv("Range", rpc.RangeRequest(key=prefix, range_end=range_end(prefix),
                                                                 revision=revision))
            revision = revision or int(response.header.revision)
            wanted = set(names)
            for kv in response.kvs:
                key = self.keys.split(kv.key)
                if key[1] in wanted:
                    found[key] = _Stored(_decode(kv), int(kv.mod_revision))
        for start in range(0, len(single), self.max_txn_ops):
            chunk = single[start:start + self.max_txn_ops]
            ops = [rpc.RequestOp(request_range=rpc.RangeRequest(key=self.keys.object(*key), revision=revision))
                   for key in chunk]
            response = await self._kv("Txn", rpc.TxnRequest(success=ops))
            revision = revision or int(response.header.revision)
            for key, answer in zip(chunk, response.responses, strict=True):
                kvs = answer.response_range.kvs
                if kvs:
                    found[key] = _Stored(_decode(kvs[0]), int(kvs[0].mod_revision))
        return {key: found.get(key, _Stored(None, 0)) for key in keys}

    async def _event_lease(self) -> int:
        async with self._lease_lock:
            now = time.monotonic()
            if self._lease is None or now - self._lease[1] > min(_LEASE_REUSE, self.event_ttl / 10):
                self._lease = (await self._conn().lease_grant(self.event_ttl), now)
            return self._lease[0]

    async def _op(self, kind: str, name: str, write: Write) -> Any:
        key = self.keys.object(kind, name)
        if write.action is WriteAction.REMOVE:
            return rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=key))
        lease = await self._event_lease() if kind == _EVENT_KIND else 0
        return put(key, dumps(write.obj).encode(), lease)

    async def _write_one(self, kind: str, name: str, decide: Callable[[Obj | None], Write]) -> Obj:
        """Read, decide, commit if unchanged since the read; decided again when it changed."""
        key = self.keys.object(kind, name)
        for _ in range(_ATTEMPTS):
            stored = await self._load(key)
            write = decide(stored.obj)
            if write.action is WriteAction.NOTHING:
                return write.obj
            op = await self._op(kind, name, write)
            response = await self._kv("Txn", rpc.TxnRequest(compare=[compare(key, stored.mod_revision)],
                                                            success=[op]))
            if response.succeeded:
                strategy.stamp_resource_version(write.obj, response.header.revision)
                return write.obj
        raise strategy.conflict(kind, name)

    async def _commit(self, writes: dict[Key, Write], stored: dict[Key, _Stored]) -> dict[Key, int] | None:
        """The writes in transactions of ``max_txn_ops``; the revision of each key, or None when
        a transaction found a key changed (the ones before it are committed)."""
        revisions: dict[Key, int] = {}
        items = list(writes.items())
        for start in range(0, len(items), self.max_txn_ops):
            chunk = items[start:start + self.max_txn_ops]
            compares = [compare(self.keys.object(*key), stored[key].mod_revision) for key, _ in chunk]
            ops = [await self._op(key[0], key[1], write) for key, write in chunk]
            response = await self._kv("Txn", rpc.TxnRequest(compare=compares, success=ops))
            if not response.succeeded:
                return None
            revisions.update((key, int(response.header.revision)) for key, _ in chunk)
        return revisions

    # --- the Store protocol ---

    async def create(self, obj: Obj) -> Obj:
        kind, name = strategy.identity(obj)
        return await self._write_one(kind, name, lambda stored: strategy.create(kind, name, obj, stored))

    async def get(self, kind: str, name: str) -> Obj:
        stored = await self._load(self.keys.object(kind, name))
        if stored.obj is None:
            raise strategy.not_found(kind, name)
        return stored.obj

    async def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Obj]:
        loaded = await self._load_many(keys)
        return {key: stored.obj for key, stored in loaded.items() if stored.obj is not None}

    async def list(self, kind: str, **options: Unpack[ListOptions]) -> ListResult:
        selector = parse_selector(options.get("label_selector"))
        continue_token = options.get("continue_token")
        prefix = self.keys.kind(kind)
        start = prefix + decode_continue(continue_token).encode() + b"\0" if continue_token else prefix
        limit = options.get("limit")
        wanted = limit if limit is not None and limit > 0 else None
        items: list[Obj] = []
        revision = 0
        while True:
            page = 0 if wanted is None else max(wanted + 1, 64)
            response = await self._kv("Range", rpc.RangeRequest(key=start, range_end=range_end(prefix),
                                                                 revision=revision, limit=page))
            revision = revision or int(response.header.revision)
            for kv in response.kvs:
                obj = _decode(kv)
                if selector.matches((obj.get("metadata") or {}).get("labels")):
                    items.append(obj)
            if not response.more or not response.kvs or (wanted is not None and len(items) > wanted):
                break
            start = bytes(response.kvs[-1].key) + b"\0"
        more = wanted is not None and len(items) > wanted
        if wanted is not None:
            items = items[:wanted]
        token = encode_continue(items[-1]["metadata"]["name"], revision) if more and items else None
        return ListResult(items=items, resource_version=revision, continue_token=token)

    async def update(self, obj: Obj) -> Obj:
        kind, name = strategy.identity(obj)
        return await self._write_one(kind, name, lambda stored: strategy.update(kind, name, obj, stored))

    async def update_status(self, obj: Obj) -> Obj:
        kind, name = strategy.identity(obj)
        return await self._write_one(kind, name, lambda stored: strategy.update_status(kind, name, obj, stored))

    async def write_status(self, obj: Obj, events: Sequence[EventRecord] = (), *,
                           with_metadata: bool = False) -> Obj:
        """``update_status`` (``with_metadata``: an update taking the status too) and ``events``
        about the object, in one transaction; the answer is the object as written."""
        kind, name = strategy.identity(obj)
        decide = strategy.update_with_status if with_metadata else strategy.update_status
        key = self.keys.object(kind, name)
        records = tuple(events)
        for _ in range(_ATTEMPTS):
            stored = await self._load(key)
            write = decide(kind, name, obj, stored.obj)
            planned = await self._plan_events(records)
            compares = [compare(key, stored.mod_revision), *planned.compares]
            ops = planned.ops if write.action is WriteAction.NOTHING else [await self._op(kind, name, write),
                                                                            *planned.ops]
            if not ops:
                return write.obj
            response = await self._kv("Txn", rpc.TxnRequest(compare=compares, success=ops))
            if response.succeeded:
                if write.action is not WriteAction.NOTHING:
                    strategy.stamp_resource_version(write.obj, response.header.revision)
                return write.obj
        raise strategy.conflict(kind, name)

    async def write_all(self, writes: Sequence[BatchWrite]) -> builtins.list[Obj]:
        """Every create and update of ``writes``, in order; see the module docstring for size."""
        if not writes:
            return []
        keys = [strategy.identity(w.obj) for w in writes]
        for _ in range(_ATTEMPTS):
            stored = await self._load_many(keys)
            state = {key: s.obj for key, s in stored.items()}
            last: dict[Key, Write] = {}
            answers: builtins.list[tuple[Key, Obj]] = []
            for write_request, key in zip(writes, keys, strict=True):
                if write_request.action is BatchAction.CREATE:
                    write = strategy.create(key[0], key[1], write_request.obj, state[key], owned=True)
                else:
                    write = strategy.update(key[0], key[1], write_request.obj, state[key], owned=True,
                                            base=write_request.base)
                if write.action is not WriteAction.NOTHING:
                    state[key] = None if write.action is WriteAction.REMOVE else write.obj
                    last[key] = write
                answers.append((key, write.obj))
            revisions = await self._commit(last, stored)
            if revisions is None:
                continue
            for key, obj in answers:
                if key in revisions:
                    strategy.stamp_resource_version(obj, revisions[key])
            return [obj for _, obj in answers]
        raise strategy.conflict(*keys[0])

    async def delete(self, kind: str, name: str, *, resource_version: int | None = None) -> Obj:
        return await self._write_one(kind, name,
                                     lambda stored: strategy.delete(kind, name, resource_version, stored))

    def watch(self, kind: str | None, since: int) -> EtcdWatch:
        """Changes with resourceVersion > ``since`` in order, then live ones; ``since=0``: from the
        newest revision this store has seen. A compacted ``since`` raises ``GoneError`` on
        iteration."""
        self._conn()
        since = int(since)
        if since < 0:
            raise BadRequestError(f"resourceVersion: invalid value {since}, expected 0 or more")
        prefix = self.keys.kind(kind) if kind else self.keys.objects
        watch = EtcdWatch(self._conn(), prefix, since or self._rv, self._watches.discard)
        self._watches.add(watch)
        return watch

    async def current_resource_version(self) -> int:
        response = await self._kv("Range", self._probe())
        return int(response.header.revision)

    async def _plan_events(self, records: Sequence[EventRecord]) -> EventWrites:
        if not records:
            return EventWrites()
        lease = await self._event_lease()
        return await plan_events(self.keys, lambda request: self._kv("Txn", request), records, lease,
                                 now_rfc3339())

    async def record_event(self, event: EventRecord) -> Obj:
        for _ in range(_ATTEMPTS):
            planned = await self._plan_events((event,))
            response = await self._kv("Txn", rpc.TxnRequest(compare=planned.compares, success=planned.ops))
            if response.succeeded:
                (recorded,) = planned.events
                strategy.stamp_resource_version(recorded, response.header.revision)
                return recorded
        raise strategy.conflict(_EVENT_KIND, event.involved_name)

    async def list_events(self, involved_kind: str | None = None,
                          involved_name: str | None = None) -> builtins.list[Obj]:
        """Events about one object or kind (both optional), oldest last occurrence first."""
        prefix = self.keys.kind(_EVENT_KIND)
        response = await self._kv("Range", rpc.RangeRequest(key=prefix, range_end=range_end(prefix)))
        found: builtins.list[tuple[int, Obj]] = []
        for kv in response.kvs:
            obj = _decode(kv)
            involved = obj.get("involvedObject") or {}
            if involved_kind is not None and involved.get("kind") != involved_kind:
                continue
            if involved_name is not None and involved.get("name") != involved_name:
                continue
            found.append((int(kv.mod_revision), obj))
        return [obj for _, obj in sorted(found, key=lambda pair: pair[0])]
