"""Handlers by kind, registered kopf-style with decorators.

```python
on = Registry()

@on.reconcile("PluginManifest")          # create, update, resume and resync alike
async def reconcile(obj: Obj, ctx: Context) -> Result | None: ...

@on.delete("PluginManifest")             # runs under a finalizer until it returns
async def finalize(obj: Obj, ctx: Context) -> None: ...

@on.timer("PluginManifest", interval_from=lambda o: o["spec"]["healthCheck"]["interval"])
async def probe(obj: Obj, ctx: Context) -> None: ...

@on.daemon("AudioSink")                  # one task per object, restarted on spec change
async def pump(obj: Obj, ctx: Context) -> None: ...

@on.gone("PluginManifest")               # the object vanished: release what was started for it
def release(key: ObjectKey, finished: dict[str, TaskStatus]) -> None: ...

@on.related("PluginManifest")            # which keys to enqueue when such an object changes
def dependents(obj: Obj) -> Iterable[ObjectKey]: ...
```

Kinds are plain strings: a new kind registers its handlers here without touching the engine.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from mfx.api.objects import Obj, ObjectKey
from mfx.api.units import parse_duration

if TYPE_CHECKING:
    from reconciler.context import Context
    from reconciler.outcomes import Result
    from reconciler.supervisor import TaskStatus

ReconcileFn = Callable[[Obj, "Context"], Awaitable["Result | None"]]
DeleteFn = Callable[[Obj, "Context"], Awaitable[None]]
TimerFn = Callable[[Obj, "Context"], Awaitable[None]]
DaemonFn = Callable[[Obj, "Context"], Awaitable[None]]
MapFn = Callable[[Obj], Iterable[ObjectKey]]
UrgentFn = Callable[[Obj], bool]
GoneFn = Callable[[ObjectKey, "dict[str, TaskStatus]"], None]
Interval = float | int | timedelta | str
IntervalFrom = Callable[[Obj], "Interval | None"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class TimerSpec:
    name: str
    fn: TimerFn
    interval: Interval | None = None
    interval_from: IntervalFrom | None = None

    def interval_for(self, obj: Obj) -> float | None:
        """Seconds between calls for ``obj`` (None: no timer for this object)."""
        value: Interval | None = self.interval_from(obj) if self.interval_from else self.interval
        return None if value is None else parse_interval(value, f"timer {self.name}")


@dataclass(frozen=True)
class DaemonSpec:
    name: str
    fn: DaemonFn


@dataclass
class KindHandlers:
    kind: str
    reconcile: ReconcileFn | None = None
    delete: DeleteFn | None = None
    timers: list[TimerSpec] = field(default_factory=list)
    daemons: list[DaemonSpec] = field(default_factory=list)
    related: list[MapFn] = field(default_factory=list)
    urgent: UrgentFn | None = None
    gone: GoneFn | None = None

    @property
    def has_controller(self) -> bool:
        return self.reconcile is not None or self.delete is not None


class Registry:
    def __init__(self) -> None:
        self._kinds: dict[str, KindHandlers] = {}

    def _for(self, kind: str) -> KindHandlers:
        _check_kind(kind)
        return self._kinds.setdefault(kind, KindHandlers(kind))

    def reconcile(self, kind: str) -> Callable[[F], F]:
        return self._only_one(kind, "reconcile", "a reconcile handler", "; a kind has exactly one")

    def delete(self, kind: str) -> Callable[[F], F]:
        return self._only_one(kind, "delete", "a delete handler")

    def timer(self, kind: str, *, interval: Interval | None = None, interval_from: IntervalFrom | None = None,
              name: str | None = None) -> Callable[[F], F]:
        _check_kind(kind)
        if (interval is None) == (interval_from is None):
            raise ValueError(f"timer on {kind}: give exactly one of interval= and interval_from=")
        if interval is not None:
            parse_interval(interval, f"timer on {kind}")

        def register(fn: F) -> F:
            spec_name = name or getattr(fn, "__name__", None) or _name(fn)
            handlers = self._for(kind)
            if any(t.name == spec_name for t in handlers.timers):
                raise ValueError(f"{kind} already has a timer named {spec_name}")
            handlers.timers.append(TimerSpec(spec_name, fn, interval, interval_from))
            return fn
        return register

    def daemon(self, kind: str, *, name: str | None = None) -> Callable[[F], F]:
        _check_kind(kind)

        def register(fn: F) -> F:
            spec_name = name or getattr(fn, "__name__", None) or _name(fn)
            handlers = self._for(kind)
            if any(d.name == spec_name for d in handlers.daemons):
                raise ValueError(f"{kind} already has a daemon named {spec_name}")
            handlers.daemons.append(DaemonSpec(spec_name, fn))
            return fn
        return register

    def related(self, kind: str) -> Callable[[F], F]:
        """``fn(obj) -> keys``: enqueue those keys whenever an object of ``kind`` changes."""
        _check_kind(kind)

        def register(fn: F) -> F:
            self._for(kind).related.append(fn)
            return fn
        return register

    def urgent(self, kind: str) -> Callable[[F], F]:
        """``fn(obj) -> bool``: whether a relisted object of ``kind`` is queued like an event's
        (True) rather than behind the work events and finished tasks ask for (False, and the
        default), e.g. one that can make progress at once, unlike one that would report it waits."""
        return self._only_one(kind, "urgent", "an urgency function")

    def gone(self, kind: str) -> Callable[[F], F]:
        """``fn(key, finished)``: the object ``key`` is gone, or being deleted without this
        controller's finalizer. Its tasks are cancelled; ``finished`` holds the statuses of
        those that had already ended (a start's instance not yet taken over). The function
        releases what was started for the object (stops it as a tracked task): a delete that
        comes before the finalizer is stored, or a finalizer removed by hand, leaks nothing.
        Called again for an object already released: it must do nothing then."""
        return self._only_one(kind, "gone", "a gone function")

    def _only_one(self, kind: str, slot: str, what: str, hint: str = "") -> Callable[[F], F]:
        """A decorator that sets the kind's one ``slot`` handler (a second is refused)."""
        _check_kind(kind)

        def register(fn: F) -> F:
            handlers = self._for(kind)
            current = getattr(handlers, slot)
            if current is not None:
                raise ValueError(f"{kind} already has {what} ({_name(current)}){hint}")
            setattr(handlers, slot, fn)
            return fn
        return register

    def kinds(self) -> list[str]:
        return sorted(self._kinds)

    def handlers(self, kind: str) -> KindHandlers:
        return self._kinds.get(kind) or KindHandlers(kind)


def _check_kind(kind: str) -> None:
    if not kind or not isinstance(kind, str):
        raise ValueError(f"a handler needs a kind name such as PluginManifest, got {kind!r}")


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def parse_interval(value: Interval, what: str = "interval") -> float:
    """Seconds from a number, a timedelta or a duration string (``500ms``, ``10s``, ``1h30m``)."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError(f"{what}: expected a duration such as 10s, got {value!r}")
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from None
    else:
        raise ValueError(f"{what}: expected a duration such as 10s, got {value!r}")
    if seconds <= 0:
        raise ValueError(f"{what}: the interval must be positive, got {value!r}")
    return seconds
