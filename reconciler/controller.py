"""One controller per kind: informer -> work queue -> N workers -> the outcome switch.

Level-triggered: watch events and the periodic resync only enqueue keys; a worker reads the
object from the store and calls the kind's handler with whatever it looks like now. One
place, ``_switch``, turns the handler's return value or exception into queue actions
(forget / requeue after / backoff / stall), default conditions, events and metrics.

What an outcome means is ``reconciler.controller_outcome``; per-object timers and daemons are
``reconciler.controller_background``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio
from anyio.abc import TaskStatus

from mfx.api.objects import FINALIZER, Obj, ObjectKey, generation, is_deleting, key_of
from mfx.backoff import Backoff
from mfx.errors import ConflictError, MfxError, NotFoundError
from mfx.store.base import Store, WatchEvent, WatchEventType
from observability.metrics import Metrics
from reconciler.clock import Clock, MonotonicClock
from reconciler.conditions import ConditionStatus, ConditionType, Reason, get_condition
from reconciler.context import Context, HeldPatch, KeyLogger, StatusPatcher
from reconciler.controller_background import BackgroundWork
from reconciler.controller_outcome import Outcome, apply_default_conditions, classify, failure_of
from reconciler.eventbus import EventBus
from reconciler.events import EventRecorder
from reconciler.informer import Informer, list_all
from reconciler.outcomes import (
    RECONCILE_TOPIC,
    ReconcileOutcome,
    ReconcileResult,
)
from reconciler.ratelimit import RateLimiter, default_rate_limiter
from reconciler.registry import KindHandlers
from reconciler.supervisor import TaskSupervisor
from reconciler.workqueue import QueueShutDown, WorkQueue

RateLimiterFactory = Callable[[Clock], RateLimiter]

_RESET = -1  # a stall cleared by ``reset``: reconcile once even if the stored Stalled says no


@dataclass(frozen=True)
class ControllerOptions:
    workers: int = 4
    resync_period: float = 600.0
    finalizer: str = FINALIZER
    rate_limiter: RateLimiterFactory | None = None  # default: 5 ms..1000 s per key, 10 qps/100 burst
    daemon_backoff: tuple[float, float] = (1.0, 300.0)  # a failing daemon restarts after this backoff

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.resync_period <= 0:
            raise ValueError(f"resync_period must be positive, got {self.resync_period}")


def _signature(obj: Obj) -> tuple[Any, ...]:
    """What makes a change worth a reconcile of the object itself (status changes are not)."""
    meta = obj.get("metadata", {})
    return (
        meta.get("generation"),
        tuple(sorted((meta.get("labels") or {}).items())),
        tuple(sorted((meta.get("annotations") or {}).items())),
        tuple(meta.get("finalizers") or ()),
        meta.get("deletionTimestamp"),
        meta.get("uid"),
    )


_BRIEF_ATTRIBUTE = "__mfx_brief_handler__"


def brief_handler(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a reconcile handler that never waits long itself (its long work runs as tracked tasks).

    For such a handler the engine does not write ``Reconciling=True`` on its own before the
    call: the condition goes out with the handler's first status write (its own ``flush`` or
    the one after it returns), so a reconcile costs one write instead of two, and
    ``Reconciling=True`` is still visible for as long as the work it started runs. Likewise
    the kind's finalizer is added with that first write, not in a write of its own. Such a
    handler either writes first (``flush``) when ``ctx.status.finalizer_pending`` before it
    starts anything the finalizer guards, or relies on the kind's ``gone`` function
    (``Registry.gone``) to release what it started if the object is deleted before that write.
    """
    setattr(fn, _BRIEF_ATTRIBUTE, True)
    return fn


def is_brief(fn: Any) -> bool:
    return bool(getattr(fn, _BRIEF_ATTRIBUTE, False))


class Controller:
    def __init__(
        self,
        kind: str,
        handlers: KindHandlers,
        store: Store,
        *,
        supervisor: TaskSupervisor,
        metrics: Metrics | None = None,
        clock: Clock | None = None,
        options: ControllerOptions | None = None,
        enqueue_related: Callable[[ObjectKey, bool], None] | None = None,
        resources: dict[str, Any] | None = None,
        bus: EventBus | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.kind = kind
        self.bus = bus
        self.name = kind.lower()
        self.handlers = handlers
        self.store = store
        self.supervisor = supervisor
        self.metrics = metrics or Metrics()
        self.clock = clock or MonotonicClock()
        self.options = options or ControllerOptions()
        self._enqueue_related = enqueue_related
        self._resources = resources
        self._log = logger or logging.getLogger(f"mfx.reconciler.{self.name}")
        limiter = (self.options.rate_limiter(self.clock) if self.options.rate_limiter
                   else default_rate_limiter(clock=self.clock))
        self.queue: WorkQueue[ObjectKey] = WorkQueue(self.name, rate_limiter=limiter, clock=self.clock,
                                                      metrics=self.metrics)
        self.events = EventRecorder(store, f"{self.name}-controller", logger=self._log)
        self.informer = Informer(store, kind, on_event=self._on_event, on_relist=self._on_relist,
                                 logger=self._log)
        self._seen: dict[ObjectKey, tuple[Any, ...]] = {}
        self._stalled: dict[ObjectKey, int] = {}
        self._held: dict[ObjectKey, HeldPatch] = {}  # see StatusPatcher.hold
        self._outcome_metrics: dict[ReconcileResult, tuple[Any, Any]] = {}  # result -> (total, duration)
        self.background = BackgroundWork(handlers, store, supervisor=supervisor, clock=self.clock,
                                         events=self.events, context=self._context,
                                         daemon_backoff=Backoff(*self.options.daemon_backoff), logger=self._log)

    # --- feeding the queue ------------------------------------------------------------------------

    def enqueue(self, key: ObjectKey, low: bool = False) -> None:
        self.queue.add(key, low=low)

    def enqueue_after(self, key: ObjectKey, delay: float) -> None:
        self.queue.add_after(key, delay)

    def reset(self, key: ObjectKey) -> None:
        """Retry a stalled object now although its generation did not change (reset-failed)."""
        self._stalled[key] = _RESET
        self.queue.forget(key)
        self.queue.add(key)

    def stalled_generation(self, key: ObjectKey) -> int | None:
        gen = self._stalled.get(key)
        return None if gen is None or gen == _RESET else gen

    def _on_event(self, event: WatchEvent) -> None:
        obj = event.object
        key = key_of(obj)
        if event.type is WatchEventType.DELETED:
            self._seen.pop(key, None)
            self.background.stop(key)
            self.queue.add(key)  # the worker finds it gone and cleans up
        else:
            signature = _signature(obj)
            if self._seen.get(key) != signature:
                self._seen[key] = signature
                self.queue.add(key)
            self.background.sync(key, obj)
        self._map_related(obj)

    def _on_relist(self, items: list[Obj]) -> None:
        # A relist (the first list, a resync, a list after 410 Gone) queues its objects at low
        # priority: it heals missed events and reports, while what events and finished tasks
        # queue is news that goes first. The kind may name objects of a relist that are urgent.
        urgent = self.handlers.urgent
        listed: set[ObjectKey] = set()
        for obj in items:
            key = key_of(obj)
            listed.add(key)
            self._seen[key] = _signature(obj)
            self.queue.add(key, low=urgent is None or not urgent(obj))
            self.background.sync(key, obj)
            self._map_related(obj, low=True)
        for key in [k for k in self._seen if k not in listed]:
            self._seen.pop(key, None)
            self.background.stop(key)
            self.queue.add(key)  # deleted while we were not watching

    def _map_related(self, obj: Obj, *, low: bool = False) -> None:
        if self._enqueue_related is None:
            return
        for mapper in self.handlers.related:
            try:
                keys = list(mapper(obj))
            except Exception:
                self._log.exception("related-keys function %s failed on %s", mapper, key_of(obj))
                continue
            for key in keys:
                self._enqueue_related(key, low)

    async def resync(self) -> int:
        """Enqueue every object of the kind, read from the store (heals missed events)."""
        items, _ = await list_all(self.store, self.kind)
        self._on_relist(items)
        return len(items)

    # --- running ----------------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Informer, resync and workers; reports started once the first list is enqueued."""
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(self.informer.run)
                tg.start_soon(self._resync_loop, name=f"{self.name}-resync")
                if self.handlers.has_controller:
                    for i in range(self.options.workers):
                        tg.start_soon(self._worker, name=f"{self.name}-worker-{i}")
                task_status.started()
        finally:
            self.queue.shutdown()

    async def _resync_loop(self) -> None:
        while True:
            await self.clock.sleep(self.options.resync_period)
            try:
                count = await self.resync()
                self._log.debug("resync enqueued %d %s", count, self.kind)
            except MfxError as exc:
                self._log.warning("resync of %s failed: %s; the next one runs in %.0f s",
                                  self.kind, exc, self.options.resync_period)

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except QueueShutDown:
                return
            gauge = self.metrics.active_workers.labels(self.name)
            gauge.inc()
            try:
                await self._process(key)
            except MfxError as exc:  # the store failed around the handler: try again later
                self._log.warning("processing %s failed: %s; retrying with backoff", key, exc)
                self.queue.add_rate_limited(key)
            except Exception:  # a worker must outlive any bug in one key's processing
                self._log.exception("processing %s failed; retrying with backoff", key)
                self.queue.add_rate_limited(key)
            finally:
                gauge.dec()
                self.queue.done(key)

    # --- one key ------------------------------------------------------------------------------------

    async def _process(self, key: ObjectKey) -> None:
        try:
            obj = await self.store.get(key.kind, key.name)
        except NotFoundError:
            self._gone(key)
            return
        if self._skip_stalled(key, obj):
            self._publish(ReconcileOutcome(key, ReconcileResult.SKIPPED, generation(obj)))
            return
        if is_deleting(obj):
            await self._finalize(key, obj)
            return
        add_finalizer = self.handlers.delete is not None and self.options.finalizer not in _finalizers(obj)
        if add_finalizer and not is_brief(self.handlers.reconcile):
            with_finalizer = await self._add_finalizer(key, obj)
            if with_finalizer is None:
                return
            obj = with_finalizer
            add_finalizer = False
        if self.handlers.reconcile is None:
            return
        await self._run_handler(key, obj, deleting=False, add_finalizer=add_finalizer)

    async def _finalize(self, key: ObjectKey, obj: Obj) -> None:
        if self.handlers.delete is None or self.options.finalizer not in _finalizers(obj):
            # Not ours to finalize: deleted before the finalizer was stored (a start is held,
            # see StatusPatcher.hold) or after it was removed by hand.
            if self.handlers.gone is not None:
                self._release(key)
            else:
                self.background.stop(key)
            return
        self.background.stop(key)
        outcome = await self._run_handler(key, obj, deleting=True)
        if outcome is not None and outcome.result is ReconcileResult.SUCCESS:
            await self._remove_finalizer(key)

    def _skip_stalled(self, key: ObjectKey, obj: Obj) -> bool:
        if key in self._held:
            return False  # the last reconcile succeeded; a Stalled=True stored before it is not news
        gen = generation(obj)
        mark = self._stalled.get(key)
        if mark == _RESET:
            del self._stalled[key]
            return False
        if mark is not None:
            if mark == gen:
                return True
            del self._stalled[key]
            return False
        stalled = get_condition(obj, ConditionType.STALLED)
        if (stalled is not None and stalled.get("status") == ConditionStatus.TRUE
                and int(stalled.get("observedGeneration", -1)) == gen):
            self._stalled[key] = gen  # remembered across restarts through the condition
            return True
        return False

    def _context(self, key: ObjectKey, obj: Obj) -> Context:
        return Context(
            key=key,
            store=self.store,
            events=self.events,
            logger=KeyLogger(self._log, {"key": str(key)}),
            status=StatusPatcher(self.store, obj, self.events, settle=partial(_settle, generation(obj))),
            metrics=self.metrics,
            supervisor=self.supervisor,
            clock=self.clock,
            controller=self.name,
            generation=generation(obj),
            retries=self.queue.num_requeues(key),
            resources=self._resources,
        )

    async def _run_handler(self, key: ObjectKey, obj: Obj, *, deleting: bool,
                           add_finalizer: bool = False) -> Outcome | None:
        ctx = self._context(key, obj)
        gen = ctx.generation
        held = self._held.pop(key, None)
        if held is not None:  # this reconcile writes what the held one did not
            self.queue.cancel_delayed(key)
            ctx.status.carry(held)
        if add_finalizer:
            # A brief handler's first write carries the finalizer: one commit instead of two
            # (see brief_handler for what guards the work it starts before that write).
            ctx.status.add_finalizer(self.options.finalizer)
            meta = obj.get("metadata", {})
            # The watch event of that write is no change worth another reconcile.
            self._seen[key] = _signature({**obj, "metadata": {**meta, "finalizers": [
                *_finalizers(obj), self.options.finalizer]}})
        if not deleting:
            observed = obj.get("status", {}).get("observedGeneration")
            stalled = get_condition(obj, ConditionType.STALLED) is not None
            if observed != gen or stalled:
                # kstatus: work on a new generation (or after a reset) is visible at once
                ctx.status.default_condition(ConditionType.RECONCILING, True, Reason.PROGRESSING,
                                             f"reconciling generation {gen}")
                ctx.status.default_condition(ConditionType.STALLED, None)
                if not is_brief(self.handlers.reconcile):
                    try:
                        await ctx.status.flush()
                    except NotFoundError:
                        self._gone(key)
                        return None
        fn = self.handlers.delete if deleting else self.handlers.reconcile
        assert fn is not None
        started = time.perf_counter()
        returned: Any = None
        error: BaseException | None = None
        try:
            returned = await fn(obj, ctx)
        except Exception as exc:  # every outcome, expected or not, goes through the switch
            error = exc
        duration = time.perf_counter() - started
        outcome = classify(fn, returned, error)
        try:
            await self._switch(key, ctx, outcome, deleting=deleting, duration=duration)
        except NotFoundError:
            self._gone(key)
        return outcome

    async def _switch(self, key: ObjectKey, ctx: Context, outcome: Outcome, *, deleting: bool,
                      duration: float) -> None:
        """The one place that turns an outcome into queue actions, conditions, events, metrics."""
        result, error = outcome.result, outcome.error
        status = ctx.status
        reason, message = failure_of(error)
        held_for = status.held_for if result is ReconcileResult.SUCCESS and status.holdable else None
        if held_for is not None:
            self._held[key] = status.held()
            status.discard()
        else:
            apply_default_conditions(status, result, reason, message, deleting=deleting, gen=ctx.generation)
            if not (deleting and result is ReconcileResult.SUCCESS):
                status.set("observedGeneration", ctx.generation)
            await status.flush()

        # Queue actions.
        delay: float | None = None
        if held_for is not None:
            self.queue.forget(key)
            delay = held_for
            self.queue.add_after(key, delay)
        elif result is ReconcileResult.SUCCESS:
            self.queue.forget(key)
        elif result is ReconcileResult.REQUEUE_AFTER:
            self.queue.forget(key)
            delay = outcome.delay or 0.0
            self.queue.add_after(key, delay)
        elif result is ReconcileResult.REQUEUE:
            delay = self.queue.add_rate_limited(key)
        elif result is ReconcileResult.RETRY:
            if outcome.delay is not None:
                self.metrics.workqueue_retries_total.labels(self.name).inc()
                delay = outcome.delay
                self.queue.add_after(key, delay)
            else:
                delay = self.queue.add_rate_limited(key)
            ctx.logger.info("%s handler asked for a retry: %s", "delete" if deleting else "reconcile", message)
        elif result is ReconcileResult.ERROR:
            delay = self.queue.add_rate_limited(key)
            ctx.logger.error("%s handler failed; retrying in %.3f s", "delete" if deleting else "reconcile",
                             delay, exc_info=error)
        else:  # STALLED
            self.queue.forget(key)
            self.queue.cancel_delayed(key)
            if self._stalled.get(key) != _RESET:  # a reset() while the handler ran wins: it runs again
                self._stalled[key] = ctx.generation
            ctx.logger.warning("stalled until the spec changes: %s: %s", reason, message)

        # Metrics.
        counters = self._outcome_metrics.get(result)
        if counters is None:  # a labelled child is looked up once: labels() costs a lock and a hash
            counters = self._outcome_metrics[result] = (
                self.metrics.reconcile_total.labels(self.name, str(result)),
                self.metrics.reconcile_duration_seconds.labels(self.name))
        counters[0].inc()
        if result in (ReconcileResult.RETRY, ReconcileResult.ERROR, ReconcileResult.STALLED):
            self.metrics.reconcile_errors_total.labels(self.name).inc()
        counters[1].observe(duration)
        self._publish(ReconcileOutcome(key, result, ctx.generation, delay, reason, message))

    def _publish(self, outcome: ReconcileOutcome) -> None:
        if self.bus is not None:
            self.bus.publish(RECONCILE_TOPIC, outcome)

    def _gone(self, key: ObjectKey) -> None:
        self._publish(ReconcileOutcome(key, ReconcileResult.GONE))
        self.queue.forget(key)
        self.queue.cancel_delayed(key)
        self._stalled.pop(key, None)
        self._held.pop(key, None)
        self._seen.pop(key, None)
        self._release(key)

    def _release(self, key: ObjectKey) -> None:
        """Stop the object's background work and tasks; the kind's ``gone`` function releases
        what they had started (see ``Registry.gone``)."""
        self.background.stop(key)
        finished = self.supervisor.drop(key)
        if self.handlers.gone is None:
            return
        try:
            self.handlers.gone(key, finished)
        except Exception:  # a worker must outlive any bug in one key's processing
            self._log.exception("releasing what was started for %s failed", key)

    # --- finalizer ------------------------------------------------------------------------------------

    async def _add_finalizer(self, key: ObjectKey, obj: Obj) -> Obj | None:
        for _ in range(20):
            meta = obj.setdefault("metadata", {})
            meta["finalizers"] = [*_finalizers(obj), self.options.finalizer]
            # The watch may deliver this write before the update returns: known beforehand,
            # it is not taken for a change worth another reconcile.
            self._seen[key] = _signature(obj)
            try:
                updated = await self.store.update(obj)
            except ConflictError:
                try:
                    obj = await self.store.get(key.kind, key.name)
                except NotFoundError:
                    self._gone(key)
                    return None
                if is_deleting(obj):
                    self.queue.add(key)
                    return None
                if self.options.finalizer in _finalizers(obj):
                    return obj
                continue
            except NotFoundError:
                self._gone(key)
                return None
            self._seen[key] = _signature(updated)  # our own write is no reason to reconcile again
            return updated
        raise ConflictError(f"could not add the finalizer to {key}: the object keeps changing")

    async def _remove_finalizer(self, key: ObjectKey) -> None:
        for _ in range(20):
            try:
                obj = await self.store.get(key.kind, key.name)
            except NotFoundError:
                self._gone(key)
                return
            finalizers = _finalizers(obj)
            if self.options.finalizer not in finalizers:
                return
            obj["metadata"]["finalizers"] = [f for f in finalizers if f != self.options.finalizer]
            try:
                await self.store.update(obj)
            except ConflictError:
                continue
            except NotFoundError:
                self._gone(key)
                return
            if not obj["metadata"]["finalizers"]:
                self._gone(key)
            return
        raise ConflictError(f"could not remove the finalizer from {key}: the object keeps changing")

def _settle(gen: int, status: StatusPatcher) -> None:
    """What ``_switch`` writes after a handler that succeeded on generation ``gen``."""
    apply_default_conditions(status, ReconcileResult.SUCCESS, "", "", deleting=False, gen=gen)
    status.set("observedGeneration", gen)


def _finalizers(obj: Obj) -> list[str]:
    return list(obj.get("metadata", {}).get("finalizers") or [])
