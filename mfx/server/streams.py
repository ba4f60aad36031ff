"""Streaming responses that end when the daemon shuts down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeVar

import anyio

T = TypeVar("T")


async def until_shutdown(items: AsyncIterator[T], shutdown: anyio.Event, *, buffer: int = 16) -> AsyncIterator[T]:
    """Yield ``items`` until they end or ``shutdown`` is set.

    Long-lived responses (watches, ``logs -f``) would otherwise keep uvicorn from closing its
    connections at shutdown; this wrapper ends them promptly either way.
    """
    send, receive = anyio.create_memory_object_stream[tuple[T] | None](buffer)

    async def pump() -> None:
        async with send:
            async for item in items:
                await send.send((item,))

    async def stop_on_shutdown() -> None:
        await shutdown.wait()
        try:
            await send.send(None)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass  # the items ended first

    async with anyio.create_task_group() as group:
        group.start_soon(pump)
        group.start_soon(stop_on_shutdown)
        async with receive:
            async for wrapped in receive:
                if wrapped is None:
                    break
                yield wrapped[0]
        group.cancel_scope.cancel()
