"""Kubernetes core/v1 Events: how a reported ``EventRecord`` becomes an ``Event`` object.

Kubernetes aggregates repeats of the same event (same involved object, type, reason and
message) into one object whose ``count`` grows and whose ``lastTimestamp`` moves; the store
does the same, keyed by ``dedup_key``. These helpers are pure: the store backend decides where
the index lives.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from mfx.api.kinds import ALL_KINDS, EVENT
from mfx.api.objects import Obj
from mfx.store.base import EventRecord

EVENT_KIND = EVENT.kind


@dataclass(frozen=True)
class EventIndexRow:
    """What the store indexes about one Event object, to find repeats and filter cheaply."""

    name: str
    dedup_key: str
    involved_kind: str
    involved_name: str


def dedup_key(
    involved_kind: str, involved_name: str, involved_uid: str, type_: str, reason: str, message: str
) -> str:
    # A digest keeps the index narrow however long the message is.
    parts = "\x00".join((involved_kind, involved_name, involved_uid, type_, reason, message))
    return hashlib.sha256(parts.encode()).hexdigest()


def record_key(record: EventRecord) -> str:
    return dedup_key(
        record.involved_kind,
        record.involved_name,
        record.involved_uid,
        record.type,
        record.reason,
        record.message,
    )


def index_row(event: Obj) -> EventIndexRow:
    involved: dict[str, Any] = event.get("involvedObject") or {}
    return EventIndexRow(
        name=event["metadata"]["name"],
        dedup_key=dedup_key(
            str(involved.get("kind", "")),
            str(involved.get("name", "")),
            str(involved.get("uid", "")),
            str(event.get("type", "")),
            str(event.get("reason", "")),
            str(event.get("message", "")),
        ),
        involved_kind=str(involved.get("kind", "")),
        involved_name=str(involved.get("name", "")),
    )


def involved_api_version(record: EventRecord) -> str:
    if record.involved_api_version:
        return record.involved_api_version
    for info in ALL_KINDS:
        if info.kind == record.involved_kind:
            return info.api_version
    return ""


def new_event(record: EventRecord, timestamp: str) -> Obj:
    """A fresh Event (count 1) for ``record``; the store adds uid, resourceVersion and so on."""
    # Kubernetes names events "<involved name>.<16 hex digits>" so they sort next to their object.
    name = f"{record.involved_name}.{uuid.uuid4().hex[:16]}"
    return {
        "apiVersion": EVENT.api_version,
        "kind": EVENT_KIND,
        "metadata": {"name": name},
        "involvedObject": {
            "kind": record.involved_kind,
            "name": record.involved_name,
            "uid": record.involved_uid,
            "apiVersion": involved_api_version(record),
        },
        "reason": record.reason,
        "message": record.message,
        "type": record.type,
        "count": 1,
        "firstTimestamp": timestamp,
        "lastTimestamp": timestamp,
        "source": {"component": record.source},
    }


def repeat(event: Obj, record: EventRecord, timestamp: str) -> Obj:
    """``event`` seen once more: count + 1, lastTimestamp moved, reporter updated."""
    updated = dict(event)
    updated["count"] = int(event.get("count", 1)) + 1
    updated["lastTimestamp"] = timestamp
    updated["source"] = {"component": record.source}
    return updated
