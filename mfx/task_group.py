"""A base for services that run background tasks for exactly as long as they are entered.

``async with service:`` opens one anyio task group; leaving it cancels what still runs and
waits for it. Every task therefore has an owner and an end (structured concurrency), and a
service started outside ``async with`` fails loudly instead of spawning an orphan.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

import anyio
from anyio.abc import TaskGroup


class TaskGroupOwner:
    """Subclasses reach their running group through :meth:`task_group`."""

    _tg: TaskGroup | None = None

    async def __aenter__(self) -> Self:
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        tg, self._tg = self._tg, None
        if tg is None:
            return None
        tg.cancel_scope.cancel()
        return await tg.__aexit__(exc_type, exc, tb)

    @property
    def running(self) -> bool:
        return self._tg is not None

    def task_group(self) -> TaskGroup:
        """The open group; a clear error for a service used before ``async with``."""
        if self._tg is None:
            raise RuntimeError(f"{type(self).__name__} is not running: enter `async with` it first")
        return self._tg
