"""One controller connection to one engine life: requests matched to replies by id, pushed
events handed to a callback. When the engine goes away, ``closed`` is set and every call
waiting on it fails with AudioError."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import anyio
from anyio.abc import SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from mfx.engine import protocol, sockets
from mfx.engine.api import EngineEvent
from mfx.errors import AudioError, BadRequestError, MfxError
from mfx.task_group import TaskGroupOwner

log = logging.getLogger("mfx.engine.client")

REQUEST_SECONDS = 60.0  # the longest call: a sink closed with a drain, a slow plugin load


class _Waiter:
    def __init__(self, method: str) -> None:
        self.method = method
        self.done = anyio.Event()
        self.result: Any = None
        self.error: MfxError | None = None


class EngineConnection(TaskGroupOwner):
    """``async with EngineConnection(socket, on_event=...) as connection:``; raises OSError
    (FileNotFoundError, ConnectionRefusedError) when no engine listens there."""

    def __init__(self, socket_path: Path, *, on_event: Callable[[EngineEvent], None] = lambda e: None,
                 request_seconds: float = REQUEST_SECONDS) -> None:
        self.socket_path = socket_path
        self.on_event = on_event
        self.request_seconds = request_seconds
        self.closed = anyio.Event()
        self._stream: SocketStream | None = None
        self._ids = itertools.count(1)
        self._waiters: dict[int, _Waiter] = {}
        self._send_lock = anyio.Lock()

    async def __aenter__(self) -> Self:
        sock = sockets.connect(self.socket_path)
        self._stream = await SocketStream.from_socket(sock)
        await super().__aenter__()
        self.task_group().start_soon(self._read)
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        try:
            if self._stream is not None:
                with anyio.CancelScope(shield=True):
                    await self._stream.aclose()
        finally:
            self._lost("the connection was closed")
        return await super().__aexit__(*exc_info)

    async def request(self, method: str, params: Any = None) -> Any:
        """Call ``method`` with ``params`` (its protocol params dataclass; None: none) and
        return the decoded result, or raise the engine's error as its mfx class."""
        if self.closed.is_set() or self._stream is None:
            raise _gone(method)
        ident = next(self._ids)
        waiter = _Waiter(method)
        self._waiters[ident] = waiter
        try:
            line = protocol.request_line(ident, method, params if params is not None else protocol.NoParams())
            try:
                async with self._send_lock:
                    await self._stream.send(line)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                raise _gone(method) from None
            with anyio.move_on_after(self.request_seconds):
                await waiter.done.wait()
            if not waiter.done.is_set():
                raise AudioError(f"the audio engine did not answer {method} within {self.request_seconds:g}s; "
                                 f"see its log next to {self.socket_path}")
        finally:
            self._waiters.pop(ident, None)
        if waiter.error is not None:
            raise waiter.error
        return waiter.result

    async def _read(self) -> None:
        assert self._stream is not None
        reader = BufferedByteReceiveStream(self._stream)
        try:
            while True:
                line = await reader.receive_until(b"\n", protocol.MAX_LINE_BYTES)
                self._dispatch(line)
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError,
                anyio.ClosedResourceError, anyio.DelimiterNotFound, OSError) as exc:
            log.debug("engine connection %s ended: %r", self.socket_path, exc)
        finally:
            self._lost("the audio engine went away")

    def _dispatch(self, line: bytes) -> None:
        try:
            message = protocol.parse_line(line)
        except BadRequestError as exc:
            log.warning("unreadable message from the engine: %s", exc)
            return
        if "event" in message:
            try:
                event = protocol.decode_event(str(message["event"]), message.get("data"))
            except BadRequestError as exc:
                log.warning("unreadable event from the engine: %s", exc)
                return
            if event is not None:
                self.on_event(event)
            return
        ident = message.get("id")
        waiter = self._waiters.get(ident) if isinstance(ident, int) else None
        if waiter is None:
            return  # a call given up on, or an error about a line the engine could not read
        try:
            if "error" in message:
                waiter.error = protocol.decode_error(message["error"])
            else:
                waiter.result = protocol.decode_result(waiter.method, message.get("result"))
        except BadRequestError as exc:
            waiter.error = AudioError(f"the engine's answer to {waiter.method} is unreadable: {exc}")
        waiter.done.set()

    def _lost(self, why: str) -> None:
        self.closed.set()
        for ident, waiter in list(self._waiters.items()):
            if not waiter.done.is_set():
                waiter.error = AudioError(f"{why} during the call (request {ident})")
                waiter.done.set()


def _gone(method: str) -> AudioError:
    return AudioError(f"the audio engine is not connected (calling {method}); it is being restarted, "
                      "or was stopped: see 'engine.log' under $MFX_HOME/engine")
