"""Long operations as tracked tasks, so a slow start never holds a worker.

A handler starts ``supervisor.start(key, "start", coro_fn)`` and returns; the task runs in
the supervisor's task group, and when it finishes its key is enqueued again, so the next
reconcile reads ``supervisor.status(key, "start")`` and moves on. Tasks are keyed by object
and name, at most one per pair, and cancellable per object (delete, spec change).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio

from mfx.api.objects import ObjectKey
from mfx.task_group import TaskGroupOwner
from reconciler.clock import Clock, MonotonicClock


class TaskState(enum.StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class TaskStatus:
    state: TaskState
    result: Any = None  # the coroutine's return value (DONE)
    error: BaseException | None = None  # its exception (FAILED)
    started_at: float = 0.0
    finished_at: float | None = None

    @property
    def finished(self) -> bool:
        return self.state is not TaskState.RUNNING


class _Entry:
    def __init__(self, started_at: float) -> None:
        self.scope = anyio.CancelScope()
        self.status = TaskStatus(TaskState.RUNNING, started_at=started_at)
        self.finished = anyio.Event()


CoroFn = Callable[[], Awaitable[Any]]


class TaskSupervisor(TaskGroupOwner):
    """Owns a task group; use as ``async with TaskSupervisor(on_complete=...) as sup``."""

    def __init__(
        self,
        *,
        on_complete: Callable[[ObjectKey], None] | None = None,
        clock: Clock | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self._on_complete = on_complete
        self._clock = clock or MonotonicClock()
        self._log = logger or logging.getLogger("mfx.reconciler.supervisor")
        self._entries: dict[tuple[ObjectKey, str], _Entry] = {}

    def set_on_complete(self, on_complete: Callable[[ObjectKey], None] | None) -> None:
        self._on_complete = on_complete

    # --- tasks ------------------------------------------------------------------------------------

    def start(self, key: ObjectKey, name: str, coro_fn: CoroFn, *, replace: bool = False,
              notify: bool = True) -> bool:
        """Run ``coro_fn()`` as the task ``name`` of ``key``; False if one is already running.

        ``replace=True`` cancels a running one first. With ``notify`` (the default) the key is
        handed to ``on_complete`` when the task finishes (done or failed, not cancelled).
        """
        tg = self.task_group()
        current = self._entries.get((key, name))
        if current is not None and not current.status.finished:
            if not replace:
                return False
            current.scope.cancel()
        entry = _Entry(self._clock.now())
        self._entries[(key, name)] = entry
        tg.start_soon(self._run, key, name, entry, coro_fn, notify, name=f"{key}:{name}")
        return True

    async def _run(self, key: ObjectKey, name: str, entry: _Entry, coro_fn: CoroFn, notify: bool) -> None:
        status: TaskStatus
        try:
            with entry.scope:
                try:
                    result = await coro_fn()
                except Exception as exc:  # the task's failure is its status, not the group's
                    self._log.warning("task %s of %s failed: %s", name, key, exc, exc_info=exc)
                    status = TaskStatus(TaskState.FAILED, error=exc, started_at=entry.status.started_at,
                                        finished_at=self._clock.now())
                else:
                    status = TaskStatus(TaskState.DONE, result=result, started_at=entry.status.started_at,
                                        finished_at=self._clock.now())
            if entry.scope.cancel_called:
                status = TaskStatus(TaskState.CANCELLED, started_at=entry.status.started_at,
                                    finished_at=self._clock.now())
                notify = False
        except BaseException:
            entry.status = TaskStatus(TaskState.CANCELLED, started_at=entry.status.started_at,
                                      finished_at=self._clock.now())
            entry.finished.set()
            raise
        entry.status = status
        entry.finished.set()
        if notify and self._entries.get((key, name)) is entry and self._on_complete is not None:
            self._on_complete(key)

    def status(self, key: ObjectKey, name: str) -> TaskStatus | None:
        entry = self._entries.get((key, name))
        return None if entry is None else entry.status

    # Handlers ask which of their tasks run; whether the supervisor itself runs is what
    # task_group() answers, so the base's ``running`` flag gives way to this listing.
    def running(self, key: ObjectKey | None = None) -> list[tuple[ObjectKey, str]]:  # type: ignore[override]
        """(key, name) of the tasks still running, of ``key`` or of every object."""
        return sorted(k for k, e in self._entries.items()
                      if not e.status.finished and (key is None or k[0] == key))

    def cancel(self, key: ObjectKey, name: str | None = None) -> int:
        """Cancel the running task(s) of ``key`` and forget their statuses; returns how many ran."""
        if name is not None:  # one entry: looked up, not searched for among every task
            entry = self._entries.pop((key, name), None)
            if entry is None or entry.status.finished:
                return 0
            entry.scope.cancel()
            return 1
        return self._take_all(key)[0]

    def drop(self, key: ObjectKey) -> dict[str, TaskStatus]:
        """Cancel every running task of ``key`` and forget them all; returns the statuses of
        those that had finished, by name, so their results (a started instance) can be
        cleaned up by whoever owns them."""
        return self._take_all(key)[1]

    def _take_all(self, key: ObjectKey) -> tuple[int, dict[str, TaskStatus]]:
        """Cancel the running tasks of ``key`` and forget every one: how many ran, and the
        statuses of those that had finished, by name."""
        cancelled = 0
        finished: dict[str, TaskStatus] = {}
        for (k, n), entry in list(self._entries.items()):
            if k != key:
                continue
            if entry.status.finished:
                finished[n] = entry.status
            else:
                entry.scope.cancel()
                cancelled += 1
            del self._entries[(k, n)]
        return cancelled, finished

    def forget(self, key: ObjectKey, name: str) -> None:
        """Drop a finished task's status (a running task is left alone)."""
        entry = self._entries.get((key, name))
        if entry is not None and entry.status.finished:
            del self._entries[(key, name)]

    async def wait(self, key: ObjectKey, name: str) -> TaskStatus | None:
        """Wait for the task to finish; its final status (None if there is no such task)."""
        entry = self._entries.get((key, name))
        if entry is None:
            return None
        await entry.finished.wait()
        return entry.status

    def __len__(self) -> int:
        return sum(1 for e in self._entries.values() if not e.status.finished)
