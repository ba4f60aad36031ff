"""Per-object timers and daemons of one kind: started when an object appears or changes,
cancelled when it goes (kopf's ``@timer`` and ``@daemon``).

They run as tracked tasks on the engine's ``TaskSupervisor``, so they live exactly as long as
the object (or the engine) and never outlive it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from mfx.api.objects import Obj, ObjectKey, generation, is_deleting
from mfx.backoff import Backoff
from mfx.errors import NotFoundError
from mfx.store.base import Store
from reconciler.clock import Clock
from reconciler.context import Context
from reconciler.events import EventRecorder
from reconciler.outcomes import PermanentError, TemporaryError
from reconciler.registry import DaemonSpec, KindHandlers, TimerSpec
from reconciler.supervisor import TaskSupervisor

ContextFactory = Callable[[ObjectKey, Obj], Context]


class BackgroundWork:
    """The timers and daemons of every object of one kind."""

    def __init__(self, handlers: KindHandlers, store: Store, *, supervisor: TaskSupervisor, clock: Clock,
                 events: EventRecorder, context: ContextFactory, daemon_backoff: Backoff,
                 logger: logging.Logger) -> None:
        self.handlers = handlers
        self.store = store
        self.supervisor = supervisor
        self.clock = clock
        self.events = events
        self._context = context
        self._daemon_backoff = daemon_backoff
        self._log = logger
        self._timer_intervals: dict[tuple[ObjectKey, str], float] = {}
        self._daemon_generations: dict[tuple[ObjectKey, str], int] = {}

    def sync(self, key: ObjectKey, obj: Obj) -> None:
        """Start what ``obj`` should have running and is not; restart what changed."""
        if not self.handlers.timers and not self.handlers.daemons:
            return
        if is_deleting(obj):
            self.stop(key)
            return
        for timer in self.handlers.timers:
            try:
                interval = timer.interval_for(obj)
            except Exception as exc:
                self._log.warning("timer %s on %s not started: %s", timer.name, key, exc)
                interval = None
            slot = (key, timer.name)
            if interval is None:
                if self._timer_intervals.pop(slot, None) is not None:
                    self.supervisor.cancel(key, f"timer:{timer.name}")
                continue
            running = self.supervisor.status(key, f"timer:{timer.name}")
            if self._timer_intervals.get(slot) == interval and running is not None and not running.finished:
                continue
            self._timer_intervals[slot] = interval
            self.supervisor.start(key, f"timer:{timer.name}",
                                  _bind(self._timer_loop, key, timer, interval), replace=True, notify=False)
        gen = generation(obj)
        for daemon in self.handlers.daemons:
            slot = (key, daemon.name)
            if self._daemon_generations.get(slot) == gen:
                continue
            self._daemon_generations[slot] = gen
            self.supervisor.start(key, f"daemon:{daemon.name}", _bind(self._daemon_loop, key, daemon),
                                  replace=True, notify=False)

    def stop(self, key: ObjectKey) -> None:
        """Cancel every timer and daemon of ``key``."""
        for timer in self.handlers.timers:
            if self._timer_intervals.pop((key, timer.name), None) is not None:
                self.supervisor.cancel(key, f"timer:{timer.name}")
        for daemon in self.handlers.daemons:
            if self._daemon_generations.pop((key, daemon.name), None) is not None:
                self.supervisor.cancel(key, f"daemon:{daemon.name}")

    async def _live_object(self, key: ObjectKey) -> Obj | None:
        """The object a timer or daemon works on; None once it is gone or being deleted."""
        try:
            obj = await self.store.get(key.kind, key.name)
        except NotFoundError:
            return None
        return None if is_deleting(obj) else obj

    async def _timer_loop(self, key: ObjectKey, timer: TimerSpec, interval: float) -> None:
        while True:
            await self.clock.sleep(interval)
            obj = await self._live_object(key)
            if obj is None:
                return
            ctx = self._context(key, obj)
            try:
                await timer.fn(obj, ctx)
                await ctx.status.flush()
            except NotFoundError:
                return
            except Exception:  # one failed tick must not end the timer
                ctx.logger.exception("timer %s failed; it runs again in %.3g s", timer.name, interval)

    async def _daemon_loop(self, key: ObjectKey, daemon: DaemonSpec) -> None:
        failures = 0
        backoff = self._daemon_backoff
        while True:
            obj = await self._live_object(key)
            if obj is None:
                return
            ctx = self._context(key, obj)
            delay: float
            try:
                await daemon.fn(obj, ctx)
                await ctx.status.flush()
                return  # a daemon that returns is done until the spec changes
            except NotFoundError:
                return
            except PermanentError as exc:
                ctx.logger.warning("daemon %s stopped: %s: %s", daemon.name, exc.reason, exc)
                await self.events.warning(obj, exc.reason, f"daemon {daemon.name} stopped: {exc}")
                return
            except TemporaryError as exc:
                failures += 1
                delay = exc.delay if exc.delay is not None else backoff.delay(failures)
                ctx.logger.info("daemon %s will restart in %.3g s: %s", daemon.name, delay, exc)
            except Exception:
                failures += 1
                delay = backoff.delay(failures)
                ctx.logger.exception("daemon %s failed; restarting in %.3g s", daemon.name, delay)
            await self.clock.sleep(delay if math.isfinite(delay) else backoff.cap)


def _bind(fn: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    return lambda: fn(*args)
