"""Events from any thread to every subscriber on the event loop, without blocking the sender.

The senders are the sinks' real-time writer threads and the pipeline's producer thread: a
hop that waited for the event loop would let a busy loop stall the audio, so ``emit`` only
queues the event and wakes the loop through a socket pair; ``pump`` (a task of the engine)
hands queued events to the subscribers.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
from collections.abc import Iterator

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from mfx.engine.api import EngineEvent

log = logging.getLogger("mfx.engine")

# A subscriber this far behind is too slow to keep: it is cut off rather than letting the
# engine's memory grow (a connection then closes, and its controller reconnects).
SUBSCRIBER_BACKLOG = 10_000


class EventHub:
    def __init__(self) -> None:
        self._pending: queue.SimpleQueue[EngineEvent] = queue.SimpleQueue()
        self._subscribers: set[MemoryObjectSendStream[EngineEvent]] = set()
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._wake_write.setblocking(False)

    def emit(self, event: EngineEvent) -> None:
        """Queue ``event`` for every subscriber; safe from any thread, never blocks."""
        self._pending.put(event)
        with contextlib.suppress(BlockingIOError, OSError):  # full: a wake-up is pending anyway
            self._wake_write.send(b"\0")

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[MemoryObjectReceiveStream[EngineEvent]]:
        """Every event emitted from now on, while the ``with`` lasts."""
        send, receive = anyio.create_memory_object_stream[EngineEvent](SUBSCRIBER_BACKLOG)
        self._subscribers.add(send)
        try:
            yield receive
        finally:
            self._subscribers.discard(send)
            send.close()
            receive.close()

    async def pump(self) -> None:
        """Deliver queued events until cancelled."""
        try:
            while True:
                await anyio.wait_readable(self._wake_read)
                with contextlib.suppress(BlockingIOError):
                    while self._wake_read.recv(4096):
                        pass
                self.deliver()
        finally:
            self._wake_read.close()
            self._wake_write.close()

    def deliver(self) -> None:
        """Hand everything queued to the subscribers now (on the event loop)."""
        while True:
            try:
                event = self._pending.get_nowait()
            except queue.Empty:
                return
            fan_out(event, self._subscribers, SUBSCRIBER_BACKLOG)


def fan_out(event: EngineEvent, subscribers: set[MemoryObjectSendStream[EngineEvent]], backlog: int) -> None:
    """Hand ``event`` to every subscriber without waiting: one that fell ``backlog`` events
    behind is dropped (its stream closes, and it subscribes again), one that left is forgotten."""
    for send in list(subscribers):
        try:
            send.send_nowait(event)
        except anyio.WouldBlock:
            log.warning("an engine event subscriber fell %d events behind; dropping it", backlog)
            subscribers.discard(send)
            send.close()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            subscribers.discard(send)
