"""In-process publish/subscribe with topics.

Each subscriber owns a bounded queue. Publishing never waits: when a subscriber's queue is
full the message is dropped for that subscriber only and counted
(``mfx_eventbus_dropped_total{topic}`` and ``Subscription.dropped``), so one slow consumer
can never stall the player or a controller.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from observability.metrics import Metrics

ALL_TOPICS = "*"


@dataclass(frozen=True)
class Message:
    topic: str
    payload: Any


class Subscription:
    """A subscriber's end: iterate it, or ``await receive()``; close it to unsubscribe."""

    def __init__(self, bus: EventBus, topic: str, capacity: int) -> None:
        self.topic = topic
        self.capacity = capacity
        self.dropped = 0
        self._bus = bus
        send, receive = anyio.create_memory_object_stream[Message](max_buffer_size=capacity)
        self._send: MemoryObjectSendStream[Message] = send
        self._receive: MemoryObjectReceiveStream[Message] = receive
        self.closed = False

    async def receive(self) -> Message:
        return await self._receive.receive()

    def receive_nowait(self) -> Message:
        return self._receive.receive_nowait()

    def pending(self) -> int:
        return self._receive.statistics().current_buffer_used

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
        try:
            async for message in self._receive:
                yield message
        except anyio.ClosedResourceError:
            return

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._bus._remove(self)
        self._send.close()
        self._receive.close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _offer(self, message: Message) -> bool:
        try:
            self._send.send_nowait(message)
            return True
        except anyio.WouldBlock:
            self.dropped += 1
            return False
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self.close()
            return False


class EventBus:
    def __init__(self, *, metrics: Metrics | None = None, default_capacity: int = 256) -> None:
        if default_capacity < 1:
            raise ValueError(f"default_capacity must be >= 1, got {default_capacity}")
        self._metrics = metrics
        self._default_capacity = default_capacity
        self._subscribers: dict[str, list[Subscription]] = {}

    def subscribe(self, topic: str, *, capacity: int | None = None) -> Subscription:
        """Subscribe to ``topic`` (``"*"``: every topic) with a queue of ``capacity`` messages."""
        cap = self._default_capacity if capacity is None else capacity
        if cap < 1:
            raise ValueError(f"capacity must be >= 1, got {cap}")
        sub = Subscription(self, topic, cap)
        self._subscribers.setdefault(topic, []).append(sub)
        return sub

    def publish(self, topic: str, payload: Any) -> int:
        """Deliver to every subscriber of ``topic`` and of ``"*"``; returns how many got it."""
        if topic == ALL_TOPICS:
            raise ValueError('"*" is for subscribing; publish to a concrete topic')
        message = Message(topic, payload)
        delivered = 0
        for sub in [*self._subscribers.get(topic, ()), *self._subscribers.get(ALL_TOPICS, ())]:
            if sub._offer(message):
                delivered += 1
            elif not sub.closed and self._metrics is not None:
                self._metrics.eventbus_dropped_total.labels(topic).inc()
        return delivered

    def subscriber_count(self, topic: str) -> int:
        return len(self._subscribers.get(topic, ()))

    def _remove(self, sub: Subscription) -> None:
        subs = self._subscribers.get(sub.topic)
        if subs and sub in subs:
            subs.remove(sub)
            if not subs:
                del self._subscribers[sub.topic]
