"""Kubernetes-style events about objects, recorded through ``Store.record_event``.

The store de-duplicates repeats (count + lastTimestamp). Recording an event is best effort:
a failure to record is logged, never turned into a reconcile failure.

Condition transitions become events only where a user learns something: the summary and
health conditions (Ready, Stalled, Healthy, DependenciesReady, and any kind-specific ones)
changing status or reason, and every warning. ``Reconciling`` flips on nearly every reconcile
(kstatus "work in progress") and says nothing the Ready event does not; it is left out. The
transitions of one status write that share reason and message are recorded once, and a
condition turning True in the same write as a Ready transition (DependenciesReady and
Healthy as a plugin starts) is told by Ready's event.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable

import anyio

from mfx.api.objects import Obj
from mfx.errors import MfxError
from mfx.store.base import EventRecord, Store
from reconciler.conditions import ABNORMAL_TRUE, ConditionType, Transition


class EventType(enum.StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


class EventRecorder:
    def __init__(self, store: Store, source: str, *, logger: logging.Logger | None = None) -> None:
        self._store = store
        self.source = source
        self._log = logger or logging.getLogger("mfx.reconciler.events")

    def record_of(self, obj: Obj, type_: EventType | str, reason: str, message: str) -> EventRecord:
        """The record of one event about ``obj``, to write now (``record``) or with a status
        write (``Store.write_status``)."""
        meta = obj.get("metadata", {})
        return EventRecord(
            involved_kind=str(obj.get("kind", "")),
            involved_name=str(meta.get("name", "")),
            involved_uid=str(meta.get("uid", "")),
            type=str(EventType(str(type_))),
            reason=str(reason),
            message=message,
            source=self.source,
            involved_api_version=str(obj.get("apiVersion", "")),
        )

    async def record(self, obj: Obj, type_: EventType | str, reason: str, message: str) -> None:
        await self._record(self.record_of(obj, type_, reason, message))

    async def normal(self, obj: Obj, reason: str, message: str) -> None:
        await self.record(obj, EventType.NORMAL, reason, message)

    async def warning(self, obj: Obj, reason: str, message: str) -> None:
        await self.record(obj, EventType.WARNING, reason, message)

    async def transition(self, obj: Obj, change: Transition) -> None:
        """One event per newsworthy condition transition (see ``newsworthy``)."""
        await self.transitions(obj, [change])

    async def transitions(self, obj: Obj, changes: Iterable[Transition]) -> None:
        """The events of one status write, recorded together (the store commits them as one)."""
        news = self.transition_records(obj, changes)
        if len(news) == 1:
            await self._record(news[0])
        elif news:
            async with anyio.create_task_group() as group:
                for record in news:
                    group.start_soon(self._record, record)

    def transition_records(self, obj: Obj, changes: Iterable[Transition]) -> list[EventRecord]:
        """The events a status write's condition transitions are told by."""
        news: list[EventRecord] = []
        told: set[tuple[str, str, bool]] = set()
        changes = list(changes)
        summary = any(c.type == ConditionType.READY and newsworthy(c) for c in changes)
        for change in changes:
            if summary and _told_by_summary(change):
                continue
            # Conditions that change together for one cause (DependenciesReady=False and
            # Ready=False, both "waiting for x") are one piece of news: recorded once.
            said = (change.reason, change.message, change.is_warning)
            if newsworthy(change) and said not in told:
                told.add(said)
                news.append(self._transition_record(obj, change))
        return news

    async def _record(self, record: EventRecord) -> None:
        try:
            await self._store.record_event(record)
        except MfxError as exc:
            self._log.warning("could not record event %s on %s/%s: %s", record.reason,
                              record.involved_kind, record.involved_name, exc)

    def _transition_record(self, obj: Obj, change: Transition) -> EventRecord:
        text = f"{change.type}={change.new_status}"
        if change.message:
            text += f": {change.message}"
        return self.record_of(obj, EventType.WARNING if change.is_warning else EventType.NORMAL,
                              change.reason, text)


def _told_by_summary(change: Transition) -> bool:
    """A condition other than Ready turning True beside a Ready transition (DependenciesReady
    or Healthy as a plugin starts): the Ready event already tells that news."""
    return (change.type != ConditionType.READY and change.new_status == "True"
            and change.type not in ABNORMAL_TRUE)


def newsworthy(change: Transition) -> bool:
    """A status or reason change of a condition other than Reconciling, or any warning."""
    if change.new_status is None:
        return False  # a kstatus condition that no longer applies: its removal is not news
    if not (change.status_changed or change.reason_changed):
        return False
    return change.type != ConditionType.RECONCILING or change.is_warning
