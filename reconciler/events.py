"""Kubernetes-style events about objects, recorded through ``Store.record_event``.

The store de-duplicates repeats (count + lastTimestamp). Recording an event is best effort:
a failure to record is logged, never turned into a reconcile failure.
"""

from __future__ import annotations

import enum
import logging

from mfx.api.objects import Obj
from mfx.errors import MfxError
from mfx.reconciler.conditions import Transition
from mfx.store.base import EventRecord, Store


class EventType(enum.StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


class EventRecorder:
    def __init__(self, store: Store, source: str, *, logger: logging.Logger | None = None) -> None:
        self._store = store
        self.source = source
        self._log = logger or logging.getLogger("mfx.reconciler.events")

    async def record(self, obj: Obj, type_: EventType | str, reason: str, message: str) -> None:
        meta = obj.get("metadata", {})
        record = EventRecord(
            involved_kind=str(obj.get("kind", "")),
            involved_name=str(meta.get("name", "")),
            involved_uid=str(meta.get("uid", "")),
            type=str(EventType(str(type_))),
            reason=str(reason),
            message=message,
            source=self.source,
            involved_api_version=str(obj.get("apiVersion", "")),
        )
        try:
            await self._store.record_event(record)
        except MfxError as exc:
            self._log.warning("could not record event %s on %s/%s: %s", reason,
                              record.involved_kind, record.involved_name, exc)

    async def normal(self, obj: Obj, reason: str, message: str) -> None:
        await self.record(obj, EventType.NORMAL, reason, message)

    async def warning(self, obj: Obj, reason: str, message: str) -> None:
        await self.record(obj, EventType.WARNING, reason, message)

    async def transition(self, obj: Obj, change: Transition) -> None:
        """One event per condition transition (status or reason changed)."""
        if change.new_status is None:
            return  # a kstatus condition that no longer applies: its removal is not news
        if not (change.status_changed or change.reason_changed):
            return
        text = f"{change.type}={change.new_status}"
        if change.message:
            text += f": {change.message}"
        await self.record(obj, EventType.WARNING if change.is_warning else EventType.NORMAL,
                          change.reason, text)
