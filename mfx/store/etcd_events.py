"""Events on etcd: what a transaction must compare and put to record some ``EventRecord``s.

A repeat of an event (same involved object, type, reason, message) is counted on the Event
that reported it first, found through its de-duplication key ``PREFIX/e/DEDUP_KEY``. The
transaction compares that index key and the Event's key with the revisions read here, so
two daemons recording the same event at once cannot both create one: the loser decides again.
Both keys carry the events' lease: etcd removes them together when it runs out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aetcd import rpc

from mfx.api.objects import Obj
from mfx.store import events as event_rules
from mfx.store import strategy
from mfx.store.base import EventRecord
from mfx.store.codec import dumps, loads
from mfx.store.etcd_keys import Keys

EVENT_KIND = event_rules.EVENT_KIND

# A Txn call: request in, response out (the store's, with failover).
Txn = Callable[[Any], Awaitable[Any]]


def compare(key: bytes, mod_revision: int) -> Any:
    """The key is as it was read (mod_revision 0: it still does not exist)."""
    return rpc.Compare(key=key, target=rpc.Compare.MOD, result=rpc.Compare.EQUAL, mod_revision=mod_revision)


def put(key: bytes, value: bytes, lease: int = 0) -> Any:
    return rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=value, lease=lease))


@dataclass
class EventWrites:
    """The compares and puts that record the events, and the Events as they will be stored."""

    compares: list[Any] = field(default_factory=list)
    ops: list[Any] = field(default_factory=list)
    events: list[Obj] = field(default_factory=list)


async def plan_events(keys: Keys, txn: Txn, records: Sequence[EventRecord], lease: int,
                      timestamp: str) -> EventWrites:
    """Read the de-duplication index and the Events it names (one read each), then plan."""
    plan = EventWrites()
    if not records:
        return plan
    index_keys = list(dict.fromkeys(keys.event_index(event_rules.record_key(r)) for r in records))
    found = await txn(rpc.TxnRequest(success=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k))
                                              for k in index_keys]))
    names: dict[bytes, str] = {}
    for index_key, answer in zip(index_keys, found.responses, strict=True):
        kvs = answer.response_range.kvs
        plan.compares.append(compare(index_key, int(kvs[0].mod_revision) if kvs else 0))
        if kvs:
            names[index_key] = bytes(kvs[0].value).decode()
    stored: dict[bytes, Obj] = {}
    if names:
        event_keys = [keys.object(EVENT_KIND, name) for name in names.values()]
        read = await txn(rpc.TxnRequest(success=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k))
                                                 for k in event_keys]))
        for (index_key, _), event_key, answer in zip(names.items(), event_keys, read.responses, strict=True):
            kvs = answer.response_range.kvs
            plan.compares.append(compare(event_key, int(kvs[0].mod_revision) if kvs else 0))
            if kvs:  # an index entry whose Event is gone (deleted by hand) starts afresh
                stored[index_key] = loads(kvs[0].value)
    latest: dict[bytes, Obj] = {}
    for record in records:
        index_key = keys.event_index(event_rules.record_key(record))
        current = latest.get(index_key) or stored.get(index_key)
        if current is not None:
            new = event_rules.repeat(current, record, timestamp)
        else:
            new = event_rules.new_event(record, timestamp)
            strategy.stamp_new(new, timestamp)
            plan.compares.append(compare(keys.object(EVENT_KIND, new["metadata"]["name"]), 0))
        latest[index_key] = new
        plan.events.append(new)
    for index_key, event in latest.items():
        name = event["metadata"]["name"]
        plan.ops.append(put(keys.object(EVENT_KIND, name), dumps(event).encode(), lease))
        plan.ops.append(put(index_key, name.encode(), lease))
    return plan
