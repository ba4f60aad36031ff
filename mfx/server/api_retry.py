"""Writes without a resourceVersion of their own: they apply to whatever is current.

When a concurrent write (a controller's) wins the race, such a write reads again and
re-applies, as kube-apiserver's GuaranteedUpdate does, so the client never sees a conflict it
did not ask for. Unconditional writes to one object also take turns (``KeyedLocks``): racing
each other, all but one would lose every commit round.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import TypeVar

import anyio

from mfx.api.objects import Obj
from mfx.backoff import jittered
from mfx.errors import ConflictError
from mfx.server.server_side_apply import ApplyConflictError

T = TypeVar("T")

PATCH_ATTEMPTS = 64
# Writers that keep colliding spread out: after this many attempts, each waits up to a
# millisecond per attempt so far.
_JITTER_AFTER = 3
_JITTER_STEP = 0.001


class KeyedLocks:
    """One lock per key, existing only while someone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[anyio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = anyio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


def pin_to_read(updated: Obj, current: Obj) -> None:
    """Make an unconditional write of ``updated`` conditional on the ``current`` it was made
    from: if another write lands in between, the store answers a conflict and the attempt runs
    again on the newer object, instead of overwriting it."""
    updated["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]


async def retry_lost_races(attempt: Callable[[], Awaitable[T]], retry: bool) -> T:
    """``attempt()``, run again on a conflict when ``retry`` (the write carried no resourceVersion).

    An apply conflict is never retried: it is about fields, not about a race."""
    for tries in range(1, PATCH_ATTEMPTS + 1):
        try:
            return await attempt()
        except ApplyConflictError:
            raise
        except ConflictError:
            if not retry or tries == PATCH_ATTEMPTS:
                raise
            if tries >= _JITTER_AFTER:
                # Uniform over [0, step * tries]: jitter of the whole span around its middle.
                await anyio.sleep(jittered(_JITTER_STEP * tries / 2, fraction=1.0))
    raise AssertionError("unreachable")
