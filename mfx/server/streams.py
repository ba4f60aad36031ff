"""Streaming responses that end when the daemon shuts down."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TypeVar

import anyio

T = TypeVar("T")


class _Failed:
    """What ended ``items`` with an error, carried to the reader to raise as itself."""

    def __init__(self, error: Exception) -> None:
        self.error = error


async def until_shutdown(items: AsyncIterator[T], shutdown: anyio.Event, *, buffer: int = 16) -> AsyncIterator[T]:
    """Yield ``items`` until they end or ``shutdown`` is set.

    Long-lived responses (watches, ``logs -f``) would otherwise keep uvicorn from closing its
    connections at shutdown; this wrapper ends them promptly either way. An error that ends
    ``items`` (a watch's 410 Gone) is raised to the reader as it is, not inside an exception
    group, so the caller's ``except GoneError`` sees it.
    """
    send, receive = anyio.create_memory_object_stream[tuple[T] | _Failed | None](buffer)
    failure: Exception | None = None

    async def pump() -> None:
        async with send:
            try:
                async for item in items:
                    await send.send((item,))
            except Exception as error:  # handed over: the reader raises it
                with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                    await send.send(_Failed(error))

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
                if isinstance(wrapped, _Failed):
                    failure = wrapped.error
                    break
                yield wrapped[0]
        group.cancel_scope.cancel()
    if failure is not None:
        raise failure
