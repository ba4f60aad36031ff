"""What a handler gets besides the object: ``Context`` and its ``StatusPatcher``.

Handlers change status through ``ctx.status`` (fields and conditions, and events to record);
the engine writes the patch once after the handler (or when the handler calls ``await
ctx.status.flush()``), via ``Store.write_status``: the status, the events of its condition
transitions and the events the handler queued go in one commit. On a conflict it re-reads the object and re-applies the patch, so
handlers never see a 409. Conditions are patched by type, so a condition set by one writer
never erases another's. A patch that tells of a moment most often over within milliseconds
(a quick start's "Starting") may be held (``StatusPatcher.hold``): the key's next reconcile
writes the state of then, and the held patch's events with it.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson

from mfx.api.objects import (
    Obj,
    ObjectKey,
    generation,
    is_deleting,
    key_of,
    now_rfc3339,
    resource_version,
)
from mfx.errors import ConflictError
from mfx.store.base import EventRecord, Store
from observability.metrics import Metrics
from reconciler.clock import Clock
from reconciler.conditions import (
    Transition,
    condition_unchanged,
    get_condition,
    remove_condition,
    set_condition,
)
from reconciler.events import EventRecorder, EventType
from reconciler.supervisor import TaskSupervisor

_DELETE = object()
_SCALARS = (str, int, float, bool, type(None))  # immutable: shared, never copied


def _clone(value: Any) -> Any:
    """A deep copy; objects from the store are JSON, which orjson copies many times faster."""
    try:
        return orjson.loads(orjson.dumps(value))
    except TypeError:
        return copy.deepcopy(value)


def _with_status_copy(obj: Obj) -> Obj:
    """``obj`` to apply a patch to: its status copied, the rest shared (the store copies what it keeps)."""
    new = dict(obj)
    if "status" in obj:
        new["status"] = _clone(obj["status"])
    return new


@dataclass(frozen=True)
class HeldPatch:
    """A held status patch (``StatusPatcher.hold``), as the key's next write needs it: the
    events it would have recorded, and the conditions it would have written over the object
    at ``resource_version``."""

    records: list[EventRecord]
    resource_version: int
    conditions: list[Obj]


class StatusPatcher:
    """A pending change to one object's status: top-level fields and conditions by type."""

    def __init__(self, store: Store, obj: Obj, events: EventRecorder, *, max_attempts: int = 20,
                 settle: Callable[[StatusPatcher], None] | None = None) -> None:
        self._store = store
        self._events = events
        self._settle = settle  # the engine's part of a successful reconcile's status (see ``flush``)
        self._base: Obj = _clone(obj)
        self._observed_generation = generation(obj)
        self._fields: dict[str, Any] = {}
        self._conditions: dict[str, tuple[str, str, str] | None] = {}
        self._set_by_handler: set[str] = set()
        self._max_attempts = max_attempts
        self._status_view: Obj | None = None  # the status as it will be written; None: stale
        self._now: str | None = None  # lastTransitionTime of the pending patch's changes
        self._records: list[tuple[str, str, str]] = []  # (type, reason, message) to record with the write
        self._finalizer: str | None = None  # to add with the next write
        self._carried: HeldPatch | None = None  # an earlier reconcile's held patch (``hold``)
        self.held_for: float | None = None  # see ``hold``

    # --- building the patch -------------------------------------------------------------------

    def __setitem__(self, field: str, value: Any) -> None:
        self.set(field, value)

    def __getitem__(self, field: str) -> Any:
        return self.view().get("status", {})[field]

    def get(self, field: str, default: Any = None) -> Any:
        return self.view().get("status", {}).get(field, default)

    def set(self, field: str, value: Any) -> None:
        if field == "conditions":
            raise ValueError("set conditions with ctx.status.condition(type, status, reason, message)")
        self._fields[field] = value if isinstance(value, _SCALARS) else _clone(value)
        self._status_view = None

    def delete(self, field: str) -> None:
        self._fields[field] = _DELETE
        self._status_view = None

    def condition(self, type_: str, status: str | bool, reason: str, message: str = "") -> None:
        """Set condition ``type_`` (``status``: True/False/"Unknown")."""
        if isinstance(status, bool):
            status = "True" if status else "False"
        self._conditions[str(type_)] = (str(status), str(reason), message)
        self._set_by_handler.add(str(type_))
        self._status_view = None

    def remove_condition(self, type_: str) -> None:
        self._conditions[str(type_)] = None
        self._set_by_handler.add(str(type_))
        self._status_view = None

    def set_by_handler(self, type_: str) -> bool:
        """Whether the handler decided this condition in this reconcile (engine defaults yield)."""
        return str(type_) in self._set_by_handler

    def default_condition(self, type_: str, status: str | bool | None, reason: str = "", message: str = "") -> None:
        """The engine's choice for a condition the handler left alone (None: remove it)."""
        if self.set_by_handler(type_):
            return
        if status is None:
            self._conditions[str(type_)] = None
        else:
            if isinstance(status, bool):
                status = "True" if status else "False"
            self._conditions[str(type_)] = (str(status), str(reason), message)
        self._status_view = None

    def record_event(self, type_: EventType | str, reason: str, message: str) -> None:
        """An event about the object, recorded with the next write (in its commit)."""
        self._records.append((str(type_), str(reason), message))

    def add_finalizer(self, finalizer: str) -> None:
        """Add ``finalizer`` with the next write (metadata and status in one update)."""
        self._finalizer = finalizer

    @property
    def finalizer_pending(self) -> bool:
        return self._finalizer is not None

    def hold(self, seconds: float) -> None:
        """The patch tells of a moment that most often passes within milliseconds (a quick
        start's "Starting"): unless the handler writes it itself, the engine writes nothing
        after this reconcile and looks at the object again after ``seconds``. Whichever
        reconcile of the key comes first then writes the status as it is by then, with the
        events this patch would have recorded ahead of its own, so the object's event list
        still tells the moment. One write instead of two for a start that ends in time.
        A finalizer to add goes with that write (the kind's ``gone`` function releases what
        was started if the object is deleted before it); a patch that records events of its
        own is written as usual."""
        self.held_for = seconds

    @property
    def holdable(self) -> bool:
        return self.held_for is not None and not self._records and self._carried is None

    def held(self) -> HeldPatch:
        """What the engine keeps of a held patch (``hold``) for the key's next write."""
        new = _with_status_copy(self._base)
        records = self._events.transition_records(new, self._apply(new))
        return HeldPatch(records, resource_version(self._base), list(new.get("status", {}).get("conditions") or []))

    def discard(self) -> None:
        """Forget the pending patch and events (the engine, for a held patch: ``hold``)."""
        self._clear()

    def carry(self, held: HeldPatch) -> None:
        """An earlier reconcile's held patch (``hold``): this patch is written even if it
        changes nothing else, with the held events ahead of its own (one it tells again, of the
        same type, reason and message, is recorded once), and its conditions change from the
        held ones (so a "Starting" never written still makes the Ready that follows a
        transition), unless the object was written meanwhile."""
        self._carried = held

    def observe_generation(self, gen: int) -> None:
        self._observed_generation = gen
        self._status_view = None

    def view(self) -> Obj:
        """The object as it will look once the patch is written (a copy the caller may change)."""
        obj: Obj = _clone({key: value for key, value in self._base.items() if key != "status"})
        status = self._pending_status().get("status")
        if status is not None:
            obj["status"] = _clone(status)
        return obj

    def condition_view(self, type_: str) -> dict[str, Any] | None:
        """One condition as it will be written; built from the stored one and the pending
        change alone (asked several times per reconcile: the whole status is not copied)."""
        type_ = str(type_)
        current = get_condition(self._base, type_)
        if type_ not in self._conditions:
            return dict(current) if current is not None else None
        want = self._conditions[type_]
        if want is None:
            return None
        status, reason, message = want
        view = dict(current) if current is not None else {}
        # as set_condition writes it: lastTransitionTime moves only when the status does
        if current is None or current.get("status") != status or "lastTransitionTime" not in current:
            view["lastTransitionTime"] = self._stamp()
        view.update(type=type_, status=status, reason=reason, message=message,
                    observedGeneration=self._observed_generation)
        return view

    def _pending_status(self) -> Obj:
        """``{"status": ...}`` as it will be written; computed once per change of the patch."""
        if self._status_view is None:
            view: Obj = {"metadata": self._base.get("metadata", {})}
            if "status" in self._base:
                view["status"] = _clone(self._base["status"])
            self._apply(view)
            self._status_view = view
        return self._status_view

    @property
    def pending(self) -> bool:
        return bool(self._fields or self._conditions or self._records or self._finalizer or self._carried is not None)

    @property
    def stored(self) -> Obj:
        """The object as last read or written."""
        return self._base

    # --- writing ----------------------------------------------------------------------------------

    async def flush(self, *, settled: bool = False) -> Obj:
        """Write the pending patch and events (nothing if they change nothing); returns the
        stored object.

        ``settled``: with what the engine adds once the handler returns successfully (its
        default conditions, observedGeneration), for a handler that must write before it
        acts, e.g. store the finalizer before it starts what the finalizer guards: unless
        the handler changes more, that write is the reconcile's only one.
        """
        if settled and self._settle is not None:
            self._settle(self)
        if not self.pending:
            return self._base
        if self._changes_nothing():
            self._clear()
            return self._base
        base = self._base
        for attempt in range(self._max_attempts):
            new = _with_status_copy(base)  # only the status changes
            held = self._carried
            if held is not None and resource_version(base) == held.resource_version:
                new.setdefault("status", {})["conditions"] = _clone(held.conditions)
            transitions = self._apply(new)
            adding = self._with_finalizer(base, new)
            if new.get("status") == base.get("status") and not adding and not self._records and self._carried is None:
                self._base = base
                break
            records = self._event_records(base, new, transitions)
            try:
                written = await self._store.write_status(new, records, with_metadata=adding)
            except ConflictError:
                if attempt + 1 >= self._max_attempts:
                    raise
                key = key_of(base)
                base = await self._store.get(key.kind, key.name)  # NotFoundError propagates: it's gone
                continue
            self._base = written
            break
        self._clear()
        return self._base

    def _clear(self) -> None:
        self._fields.clear()
        self._conditions.clear()
        self._records.clear()
        self._carried = None
        self.held_for = None
        self._finalizer = None
        self._status_view = None
        self._now = None

    def _changes_nothing(self) -> bool:
        """The pending patch leaves the stored object as it is, decided without copying it: the
        engine's defaults after a reconcile that wrote its own status are most often that."""
        if self._records or self._carried is not None or self._finalizer is not None:
            return False
        status = self._base.get("status") or {}
        for field, value in self._fields.items():
            if value is _DELETE:
                if field in status:
                    return False
            elif field not in status or status[field] != value:
                return False
        for type_, want in self._conditions.items():
            current = get_condition(self._base, type_)
            if want is None:
                if current is not None:
                    return False
            elif current is None or not condition_unchanged(current, *want, self._observed_generation):
                return False
        return True

    def _with_finalizer(self, base: Obj, new: Obj) -> bool:
        """Put the pending finalizer in ``new``'s metadata; whether the write adds it."""
        finalizer = self._finalizer
        if finalizer is None or is_deleting(base):  # no new finalizer on an object being deleted
            return False
        meta = base.get("metadata", {})
        finalizers = list(meta.get("finalizers") or [])
        if finalizer in finalizers:
            return False
        new["metadata"] = {**meta, "finalizers": [*finalizers, finalizer]}
        return True

    def _event_records(self, base: Obj, new: Obj, transitions: list[Transition]) -> list[EventRecord]:
        events = self._events
        queued = [events.record_of(base, *record) for record in self._records]
        own = queued + events.transition_records(new, transitions)
        if self._carried is None:
            return own
        told = {(record.type, record.reason, record.message) for record in own}
        return [r for r in self._carried.records if (r.type, r.reason, r.message) not in told] + own

    def _stamp(self) -> str:
        """One timestamp for a pending patch (its views and its write), taken when first needed."""
        if self._now is None:
            self._now = now_rfc3339()
        return self._now

    def _apply(self, obj: Obj) -> list[Transition]:
        status = obj.setdefault("status", {})
        for field, value in self._fields.items():
            if value is _DELETE:
                status.pop(field, None)
            else:
                status[field] = value if isinstance(value, _SCALARS) else _clone(value)
        changes: list[Transition] = []
        now = self._stamp() if self._conditions else None
        for type_, want in self._conditions.items():
            change = (remove_condition(obj, type_) if want is None else
                      set_condition(obj, type_, want[0], want[1], want[2],
                                    observed_generation=self._observed_generation, now=now))
            if change is not None:
                changes.append(change)
        if not status.get("conditions"):
            status.pop("conditions", None)
        if not status:
            obj.pop("status", None)
        return changes


@dataclass
class Context:
    """Everything a handler may use; handlers never touch the queue."""

    key: ObjectKey
    store: Store
    events: EventRecorder
    logger: logging.LoggerAdapter[logging.Logger]
    status: StatusPatcher
    metrics: Metrics
    supervisor: TaskSupervisor
    clock: Clock
    controller: str  # e.g. "pluginmanifest"
    generation: int = 0  # metadata.generation of the object the handler was given
    retries: int = 0  # failed attempts of this key in a row (0 on a fresh reconcile)
    resources: Mapping[str, Any] | None = None  # what the composition root shares with handlers


class KeyLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Prefixes messages with the object key, and passes it as ``extra["key"]``."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        key = self.extra.get("key") if self.extra else None
        kwargs.setdefault("extra", {}).update(self.extra or {})
        return f"[{key}] {msg}", kwargs
