"""The engine on its socket: one task per controller connection, requests answered in the
order they come, events pushed to connections that subscribed.

Nothing a client sends can stop the engine but ``shutdown``: an unreadable line, an unknown
method, a field of the wrong type or a failing call each get an error reply, and a
connection that breaks only ends itself.

Lifetime: ``run`` returns after ``shutdown``, or once nothing has played and no controller
has been connected for ``idle_exit`` seconds (an engine nobody drives and that plays
nothing is only a held device).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractContextManager
from typing import Any

import anyio
from anyio.abc import SocketStream, TaskGroup
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.memory import MemoryObjectReceiveStream

from mfx.engine import protocol, sockets
from mfx.engine.api import EngineEvent
from mfx.engine.core import Engine
from mfx.errors import BadRequestError, MfxError

log = logging.getLogger("mfx.engine.server")

IDLE_CHECK_SECONDS = 0.5
MAX_IN_FLIGHT = 32  # requests of one connection answered at once; more wait to be read

Handler = Callable[[Any], Awaitable[Any]]


class EngineServer:
    def __init__(self, engine: Engine, *, idle_exit: float = 60.0) -> None:
        self.engine = engine
        self.idle_exit = idle_exit
        self._connections = 0
        self._last_connected = time.monotonic()  # when the last controller left (or the start)
        self._last_busy = time.monotonic()
        self._done = anyio.Event()
        self._drain = False
        self._drain_seconds = 10.0
        self._handlers = self._make_handlers()

    async def run(self) -> None:
        """Serve until shutdown or idleness; then close the sinks."""
        sock = sockets.bind(self.engine.paths.socket)
        listener = await anyio.abc.SocketListener.from_socket(sock)
        log.info("engine %d serving %s", self.engine.info.pid, self.engine.paths.socket)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._accept, listener, group)
                group.start_soon(self._watch_idle)
                await self._done.wait()
                group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await listener.aclose()
                self.engine.paths.socket.unlink(missing_ok=True)
                await self.engine.close(drain=self._drain, drain_seconds=self._drain_seconds)

    def shutdown(self, *, drain: bool = False, drain_seconds: float = 10.0) -> None:
        self._drain, self._drain_seconds = drain, drain_seconds
        self._done.set()

    # --- connections --------------------------------------------------------------------------

    async def _accept(self, listener: anyio.abc.SocketListener, group: TaskGroup) -> None:
        while True:
            stream = await listener.accept()
            group.start_soon(self._serve, stream)

    async def _serve(self, stream: SocketStream) -> None:
        self._connections += 1
        connection = _Connection(stream)
        try:
            async with stream, anyio.create_task_group() as group:
                connection.group = group
                await self._read_requests(connection)
                group.cancel_scope.cancel()
        finally:
            self._connections -= 1
            self._last_connected = time.monotonic()

    async def _read_requests(self, connection: _Connection) -> None:
        reader = BufferedByteReceiveStream(connection.stream)
        while True:
            try:
                line = await reader.receive_until(b"\n", protocol.MAX_LINE_BYTES)
            except anyio.DelimiterNotFound:
                await connection.send(protocol.error_line(None, BadRequestError(
                    f"a request line is longer than {protocol.MAX_LINE_BYTES} bytes")))
                return  # the rest of that line cannot be told from the next request
            except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError,
                    anyio.ClosedResourceError):
                return
            if line.strip():
                # Answered concurrently: a sink drained on close must not hold up a seek.
                await connection.limiter.acquire()
                connection.spawn(self._answer_released, connection, line)

    async def _answer_released(self, connection: _Connection, line: bytes) -> None:
        try:
            await self._answer(connection, line)
        finally:
            connection.limiter.release()

    async def _answer(self, connection: _Connection, line: bytes) -> None:
        ident = None
        try:
            message = protocol.parse_line(line)
            ident = message.get("id") if isinstance(message.get("id"), int | str) else None
            request = protocol.parse_request(message)
            if request.method == "subscribe":
                connection.subscribe(self.engine)
                result = None
            else:
                result = await self._handlers[request.method](request.params)
            reply = protocol.reply_line(ident, result)
        except MfxError as exc:
            reply = protocol.error_line(ident, exc)
        except Exception as exc:  # a bug must answer as one, not end the engine
            log.exception("request failed: %.200r", line)
            reply = protocol.error_line(ident, MfxError(f"the engine failed on this request: {exc!r}"))
        try:
            with anyio.CancelScope(shield=True):  # a shutdown's reply goes out before the exit
                await connection.send(reply)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return

    def _make_handlers(self) -> dict[str, Handler]:
        engine = self.engine

        async def hello(_: Any) -> Any:
            return engine.info

        async def snapshot(_: Any) -> Any:
            return engine.snapshot()

        async def shutdown(p: protocol.ShutdownParams) -> None:
            self.shutdown(drain=p.drain, drain_seconds=p.drain_seconds)

        return {
            "hello": hello,
            "configure_sink": lambda p: engine.configure_sink(p.config),
            "close_sink": lambda p: engine.close_sink(p.name, drain=p.drain, drain_seconds=p.drain_seconds),
            "sink_report": lambda p: engine.sink_report(p.name),
            "sink_reports": lambda p: engine.sink_reports(),
            "load_plugins": lambda p: engine.load_plugins(p.plugins),
            "open_track": lambda p: engine.open_track(p.request),
            "play": lambda p: engine.play(p.label, sink=p.sink, paused=p.paused),
            "enqueue": lambda p: engine.enqueue(p.label),
            "drop_queued": lambda p: engine.drop_queued(),
            "pause": lambda p: engine.pause(),
            "resume": lambda p: engine.resume(),
            "seek": lambda p: engine.seek(p.frame),
            "stop": lambda p: engine.stop(),
            "set_volume": lambda p: engine.set_volume(p.volume, p.muted),
            "set_processors": lambda p: engine.set_processors(p.names),
            "set_fade": lambda p: engine.set_fade(p.seconds),
            "playback": lambda p: engine.playback(),
            "snapshot": snapshot,
            "shutdown": shutdown,
        }

    # --- idleness -----------------------------------------------------------------------------

    async def _watch_idle(self) -> None:
        if math.isinf(self.idle_exit):
            return
        while True:
            await anyio.sleep(IDLE_CHECK_SECONDS)
            now = time.monotonic()
            if self.engine.busy:
                self._last_busy = now
                continue
            if self._connections:
                continue
            quiet = now - max(self._last_connected, self._last_busy)
            if quiet >= self.idle_exit:
                log.info("nothing played and no controller connected for %.0f s: exiting", quiet)
                self.shutdown()
                return


class _Connection:
    """One controller's socket: replies and pushed events share it, one line at a time."""

    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream
        self.group: TaskGroup | None = None
        self.limiter = anyio.Semaphore(MAX_IN_FLIGHT)
        self._send_lock = anyio.Lock()
        self._subscribed = False

    def spawn(self, fn: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        assert self.group is not None
        self.group.start_soon(fn, *args)

    async def send(self, line: bytes) -> None:
        async with self._send_lock:
            await self.stream.send(line)

    def subscribe(self, engine: Engine) -> None:
        """Push every event from now on: subscribed before the reply, so none falls between."""
        if self._subscribed or self.group is None:
            return
        self._subscribed = True
        subscription = engine.subscribe()
        events = subscription.__enter__()
        self.group.start_soon(self._push, subscription, events)

    async def _push(self, subscription: AbstractContextManager[object],
                    events: MemoryObjectReceiveStream[EngineEvent]) -> None:
        try:
            async for event in events:
                await self.send(protocol.event_line(event))
            # The hub cut this subscriber off (too far behind): a controller that misses
            # events must know, so the connection ends and it reconnects.
            log.warning("closing a controller connection that fell behind on events")
            await self.stream.aclose()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return
        finally:
            subscription.__exit__(None, None, None)
