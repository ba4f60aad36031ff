"""A JSON-RPC 2.0 client over one unix-socket connection to a plugin.

Many calls may be in flight at once; answers are matched to callers by id. Each call has a
deadline; when it passes (or the caller is cancelled) the client sends ``$/cancel`` so the
plugin can stop working on it, and a late answer is dropped. A malformed or oversized
message from the plugin breaks the connection: every pending call fails with
``ProtocolError`` and so does every later call.

The transport is an asyncio ``Protocol``: answers are matched to callers in
``data_received`` itself, with no reader task in between, which keeps a round trip close to
that of a raw socket echo (anyio's streams cost a task switch and a checkpoint or two per
message). The daemon runs on anyio's asyncio backend; callers use anyio cancel scopes as
usual.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from mfx.errors import (
    MemoryLimitExceededError,
    PluginCrashedError,
    PluginError,
    PluginRuntimeError,
    PluginTimeoutError,
    ProtocolError,
)
from mfx.runtimes.base import LogLevel, PluginLogRecord
from mfx.sdk import rpc_protocol as proto


class RemoteError(PluginRuntimeError):
    """Plugin code raised; the remote exception type, message and traceback are kept."""

    reason = "PluginRaised"

    def __init__(self, message: str, *, method: str, remote_type: str, remote_message: str, remote_traceback: str) -> None:
        super().__init__(message)
        self.method = method
        self.remote_type = remote_type
        self.remote_message = remote_message
        self.remote_traceback = remote_traceback


class RemoteMemoryError(MemoryLimitExceededError, RemoteError):
    """The plugin ran out of memory (its ``MemoryError``), usually at its memory limit."""


class RpcClient:
    """Use ``await RpcClient.connect(path, ...)``; run ``client.run()`` in a task group."""

    def __init__(
        self,
        *,
        plugin: str,
        max_message_bytes: int,
        max_concurrency: int | None = None,
        memory_limit: str | None = None,
        log: Callable[[PluginLogRecord], None] = lambda record: None,
        on_broken: Callable[[ProtocolError], None] = lambda error: None,
        on_eof: Callable[[], Awaitable[PluginError]] | None = None,
    ) -> None:
        self._plugin = plugin
        self._max = max_message_bytes
        self._memory_limit = memory_limit
        self._log = log
        self._on_broken = on_broken
        self._on_eof = on_eof
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, asyncio.Future[Any], float]] = {}  # method, answer, expiry
        self._sweep: asyncio.TimerHandle | None = None  # fires at the earliest expiry (or before)
        self._sweep_at = math.inf
        self._slots = anyio.Semaphore(max_concurrency, fast_acquire=True) if max_concurrency else None
        self._closed_error: PluginError | None = None
        self._splitter = proto.FrameSplitter(max_message_bytes)
        self._transport: asyncio.Transport | None = None
        self._lost = anyio.Event()
        self._writable = anyio.Event()
        self._writable.set()

    @classmethod
    async def connect(cls, path: str, **options: Any) -> RpcClient:
        client = cls(**options)
        loop = asyncio.get_running_loop()
        # asyncio's own loop hands a plain protocol a fresh 256 KiB allocation per read;
        # other loops (uvloop) read into a buffer of their own and pass exact-size bytes.
        protocol = _BufferedProtocol if isinstance(loop, asyncio.BaseEventLoop) else _Protocol
        await loop.create_unix_connection(lambda: protocol(client), path)
        return client

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    @property
    def closed_error(self) -> PluginError | None:
        return self._closed_error

    # --- calls -------------------------------------------------------------------------

    async def call(self, method: str, params: Any = None, *, deadline: float | None, limited: bool = True) -> Any:
        """Call ``method``; ``params`` is a list (positional), a dict (named) or one value.

        ``deadline`` (seconds) bounds the call; past it the plugin is told to cancel it and
        ``PluginTimeoutError`` is raised. ``limited=False`` sends it beside the calls that
        take every slot of ``max_concurrency`` (the daemon's own health checks)."""
        slots = self._slots if limited else None
        if self._closed_error is not None:
            raise _again(self._closed_error)
        if params is not None and not isinstance(params, (list, dict)):
            params = [params]
        id = next(self._ids)
        try:
            frame = proto.encode(proto.request(id, method, params), self._max)
        except proto.MessageTooLargeError as exc:
            raise ProtocolError(f"plugin {self._plugin}: request {method} not sent: {exc}") from None
        except TypeError as exc:
            raise PluginRuntimeError(
                f"plugin {self._plugin}: the params of {method} are not JSON-serialisable: {exc}"
            ) from None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        expires = math.inf if deadline is None else loop.time() + deadline
        self._pending[id] = (method, future, expires)
        try:
            if slots is None and self._writable.is_set():
                # The common case: nothing to wait for but the answer, whose deadline the
                # sweeper enforces (one timer per connection: a timer or a cancel scope per
                # call costs more than the rest of the client's share of a round trip).
                if expires < self._sweep_at:
                    self._arm(loop, expires)
                self._send(frame)
                return await future
            with anyio.fail_after(math.inf if deadline is None else deadline):
                if slots is not None:
                    async with slots:
                        await self._write(frame)
                        return await future
                await self._write(frame)
                return await future
        except (TimeoutError, _DeadlinePassed):
            self._cancel_remote(id)
            raise PluginTimeoutError(
                f"plugin {self._plugin}: {method} did not answer within {deadline:g}s "
                "(raise spec.resources.limits.timeout if it legitimately needs longer)"
            ) from None
        except anyio.get_cancelled_exc_class():
            self._cancel_remote(id)
            raise
        finally:
            self._pending.pop(id, None)

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
        self._sweep_at = when
        self._sweep = loop.call_at(when, self._expire_due, loop)

    def _expire_due(self, loop: asyncio.AbstractEventLoop) -> None:
        """Fail the calls whose deadline has passed; sleep until the next expiry."""
        self._sweep, self._sweep_at = None, math.inf
        now = loop.time()
        earliest = math.inf
        for _, future, expires in list(self._pending.values()):
            if expires <= now:
                if not future.done():
                    future.set_exception(_DeadlinePassed())
            elif expires < earliest:
                earliest = expires
        if earliest < math.inf and self._closed_error is None:
            self._arm(loop, earliest)

    async def notify(self, method: str, params: Any = None) -> None:
        if self._closed_error is not None:
            raise _again(self._closed_error)
        await self._write(proto.encode(proto.notification(method, params), self._max))

    def _send(self, frame: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            raise _again(self._closed_error or PluginCrashedError(f"plugin {self._plugin}: the connection is closed"))
        transport.write(frame)  # whole frames only: concurrent writers never interleave

    async def _write(self, frame: bytes) -> None:
        self._send(frame)
        if not self._writable.is_set():
            await self._writable.wait()  # the plugin reads slower than we write

    def _cancel_remote(self, id: int) -> None:
        transport = self._transport
        if self._closed_error is None and transport is not None and not transport.is_closing():
            transport.write(proto.encode(proto.notification(proto.CANCEL_METHOD, {"id": id}), self._max))

    # --- answers (called by the protocol, on the event loop) ---------------------------

    def _data_received(self, data: bytes) -> None:
        if self._closed_error is not None:
            return
        try:
            for frame in self._splitter.feed(data):
                self._dispatch(proto.decode(frame))
        except proto.FramingError as exc:
            error = ProtocolError(
                f"plugin {self._plugin} sent a bad message, the connection is closed: {exc}"
            )
            self._break(error)
            if self._transport is not None:
                self._transport.abort()
            self._on_broken(error)

    def _dispatch(self, message: dict[str, Any]) -> None:
        id = message.get("id")
        entry = self._pending.get(id) if isinstance(id, int) else None
        if entry is None:
            if "error" in message and id is None:
                error = message["error"]
                detail = error.get("message") if isinstance(error, dict) else error
                raise proto.MalformedMessageError(f"the plugin could not read a request: {detail}")
            return  # a late answer to a call that timed out or was cancelled
        method, future, _ = entry
        if "error" in message:
            outcome: Any = self._error_from(message["error"], method)
            if not future.done():
                future.set_exception(outcome)
        elif "result" in message:
            if not future.done():
                future.set_result(message["result"])
        else:
            raise proto.MalformedMessageError(f"an answer needs 'result' or 'error': {message!r:.200}")

    async def run(self) -> None:
        """Wait for the connection to end, then fail what is pending with the reason."""
        await self._lost.wait()
        if self._closed_error is None:
            if self._on_eof is not None:
                error = await self._on_eof()
            else:
                error = PluginCrashedError(f"plugin {self._plugin} closed the connection")
            self._break(error)

    def _error_from(self, error: Any, method: str) -> PluginError:
        if not isinstance(error, dict) or not isinstance(error.get("code"), int):
            raise proto.MalformedMessageError(f"an error needs an integer 'code': {error!r:.200}")
        code = error["code"]
        message = str(error.get("message", ""))
        raw_data = error.get("data")
        data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
        if code == proto.ErrorCode.PLUGIN_ERROR:
            remote_type = str(data.get("type", "Exception"))
            remote_message = str(data.get("message", message))
            traceback = str(data.get("traceback", ""))
            text = f"plugin {self._plugin}: {method} raised {remote_type}: {remote_message}"
            cls: type[RemoteError] = RemoteError
            if remote_type == "MemoryError":
                cls = RemoteMemoryError
                text += (
                    f" (out of memory; its limit is {self._memory_limit}: raise "
                    "spec.resources.limits.memory if it needs more)"
                    if self._memory_limit
                    else " (out of memory)"
                )
            self._log(
                PluginLogRecord(
                    plugin=self._plugin,
                    level=LogLevel.ERROR,
                    message=text,
                    stream="rpc",
                    fields={"type": remote_type, "traceback": traceback},
                )
            )
            return cls(
                text,
                method=method,
                remote_type=remote_type,
                remote_message=remote_message,
                remote_traceback=traceback,
            )
        if code == proto.ErrorCode.MESSAGE_TOO_LARGE:
            return ProtocolError(
                f"plugin {self._plugin}: {message} (raise spec.resources.limits.maxMessageSize)"
            )
        if code == proto.ErrorCode.METHOD_NOT_FOUND:
            return PluginRuntimeError(f"plugin {self._plugin}: {message}", reason="MethodNotFound")
        if code == proto.ErrorCode.CANCELLED:
            return PluginRuntimeError(f"plugin {self._plugin}: {message}", reason="Cancelled")
        return PluginRuntimeError(f"plugin {self._plugin}: {message} (JSON-RPC error {code})")

    # --- the end -----------------------------------------------------------------------

    def _break(self, error: PluginError) -> None:
        """Fail every pending call and every later one with ``error``."""
        if self._closed_error is None:
            self._closed_error = error
        for _, future, _ in self._pending.values():
            if not future.done():
                future.set_exception(_again(self._closed_error))

    def fail_all(self, error: PluginError) -> None:
        self._break(error)

    async def aclose(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep, self._sweep_at = None, math.inf
        self._break(PluginCrashedError(f"plugin {self._plugin}: the connection is closed"))
        if self._transport is not None:
            self._transport.close()


READ_BUFFER_BYTES = 65536


class _Protocol(asyncio.Protocol):
    def __init__(self, client: RpcClient) -> None:
        self._client = client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._client._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._client._data_received(data)

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._client._writable.set()
        self._client._lost.set()

    def pause_writing(self) -> None:
        self._client._writable = anyio.Event()

    def resume_writing(self) -> None:
        self._client._writable.set()


class _BufferedProtocol(_Protocol, asyncio.BufferedProtocol):
    """Reads into one reused buffer (see ``RpcClient.connect``)."""

    def __init__(self, client: RpcClient) -> None:
        super().__init__(client)
        self._buffer = memoryview(bytearray(READ_BUFFER_BYTES))

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        self._client._data_received(bytes(self._buffer[:nbytes]))


class _DeadlinePassed(Exception):
    """Set on a call's future when its deadline passes (never leaves ``call``)."""


def _again(error: PluginError) -> PluginError:
    """A fresh exception of the same class and message (raising one object twice chains tracebacks)."""
    fresh = PluginError.__new__(type(error))
    Exception.__init__(fresh, error.message)
    fresh.__dict__.update(error.__dict__)
    return fresh
