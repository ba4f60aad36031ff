"""The manager: every kind's controller on one store, one metrics catalog, one supervisor.

```python
async with Manager(store, on, metrics=metrics) as manager:   # lists, watches, works
    ...                                                       # until the block ends
# or: await Manager(store, on).run()                          # until cancelled
```

Long operations started by handlers (``ctx.supervisor.start``) re-enqueue their key when
they finish; ``related`` functions enqueue keys of other kinds when an object changes.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import TaskGroup

from mfx.api.objects import ObjectKey
from mfx.store.base import Store
from observability.metrics import Metrics
from reconciler.clock import Clock, MonotonicClock
from reconciler.controller import Controller, ControllerOptions
from reconciler.eventbus import EventBus
from reconciler.registry import Registry
from reconciler.supervisor import TaskSupervisor


class Manager:
    def __init__(
        self,
        store: Store,
        registry: Registry,
        *,
        metrics: Metrics | None = None,
        clock: Clock | None = None,
        options: ControllerOptions | None = None,
        options_by_kind: dict[str, ControllerOptions] | None = None,
        resources: dict[str, Any] | None = None,
        bus: EventBus | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.metrics = metrics or Metrics()
        self.clock = clock or MonotonicClock()
        self.options = options or ControllerOptions()
        self.bus = bus  # receives a ReconcileOutcome per processed key (topic "reconcile")
        self._log = logger or logging.getLogger("mfx.reconciler.manager")
        self.supervisor = TaskSupervisor(on_complete=self.enqueue, clock=self.clock, logger=self._log)
        self.controllers: dict[str, Controller] = {
            kind: Controller(
                kind,
                registry.handlers(kind),
                store,
                supervisor=self.supervisor,
                metrics=self.metrics,
                clock=self.clock,
                options=(options_by_kind or {}).get(kind, self.options),
                enqueue_related=self.enqueue,
                resources=resources,
                bus=bus,
                logger=logging.getLogger(f"mfx.reconciler.{kind.lower()}"),
            )
            for kind in registry.kinds()
        }
        self._group: TaskGroup | None = None

    def controller(self, kind: str) -> Controller:
        try:
            return self.controllers[kind]
        except KeyError:
            known = ", ".join(self.controllers) or "none"
            raise KeyError(f"no controller for kind {kind} (registered kinds: {known})") from None

    def enqueue(self, key: ObjectKey, low: bool = False) -> None:
        """Reconcile ``key`` soon (unknown kinds are ignored: nothing reconciles them);
        ``low``: after everything queued without it (see ``WorkQueue.add``)."""
        controller = self.controllers.get(key.kind)
        if controller is not None:
            controller.enqueue(key, low)

    def enqueue_after(self, key: ObjectKey, delay: float) -> None:
        controller = self.controllers.get(key.kind)
        if controller is not None:
            controller.enqueue_after(key, delay)

    def reset(self, key: ObjectKey) -> None:
        """Clear a stall (``mfx reset-failed``): reconcile ``key`` again at once."""
        self.controller(key.kind).reset(key)

    # The supervisor and the workers' task group are entered and left by hand, nested, not
    # through an AsyncExitStack: when a cancellation ends them, ExitStack's rewriting of
    # exception contexts can link a CancelledError's __context__ chain into a cycle, which
    # anyio then walks forever as the task finishes (seen when a leader stops leading).
    async def __aenter__(self) -> Manager:
        # The supervisor outlives the workers that start its tasks: entered first, left last.
        await self.supervisor.__aenter__()
        group = anyio.create_task_group()
        try:
            await group.__aenter__()
        except BaseException as exc:
            await self.supervisor.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        try:
            for controller in self.controllers.values():
                await group.start(controller.run)
        except BaseException as exc:
            group.cancel_scope.cancel()
            try:
                await group.__aexit__(type(exc), exc, exc.__traceback__)
            finally:
                await self.supervisor.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._group = group
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        group, self._group = self._group, None
        assert group is not None
        group.cancel_scope.cancel()
        try:
            handled = bool(await group.__aexit__(exc_type, exc, tb))
        except BaseException as raised:
            await self.supervisor.__aexit__(type(raised), raised, raised.__traceback__)
            raise
        if handled:
            exc_type, exc, tb = None, None, None
        return bool(await self.supervisor.__aexit__(exc_type, exc, tb)) or handled

    async def run(self) -> None:
        """Run until cancelled."""
        async with self:
            await anyio.sleep_forever()
