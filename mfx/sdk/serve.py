"""``serve(plugin)``: run a plugin object as an mfx RPC plugin process.

An RPC plugin's ``__main__`` is two lines::

    from mfx.sdk import serve
    serve(MyPlugin())

``serve`` checks that mfx started the process (the magic cookie), binds the unix socket,
prints the handshake line, and answers JSON-RPC requests by calling the plugin's public
methods. It never returns: the process exits 0 after the ``stop`` request, or when the
daemon goes away (the socket or stdin reaches end-of-file).

A synchronous method runs on the thread that read its request (no hand-off on the way to
the answer); when it is still running a few milliseconds later, another thread takes over
the reading, so a slow call does not hold up the others for long. ``async def`` methods run on an asyncio loop in one extra thread, started only
for plugins that have such methods (asyncio costs tens of milliseconds to import, and
spawn-to-ready time matters). ``$/cancel`` cancels an async call; a synchronous call cannot
be interrupted and its late answer is dropped by the daemon.

Logging: the root logger writes ``LEVEL message`` lines to stderr, which the daemon parses
and forwards to the plugin's log. Use ``logging.getLogger(__name__)`` in plugin code.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn

from mfx.sdk import rpc_protocol as proto

log = logging.getLogger("mfx.sdk")

_CO_COROUTINE = 0x80  # inspect.CO_COROUTINE, without importing inspect
_MAX_WORKERS = 32
_SLOW_CALL_SECONDS = 0.002
# The watchdog keeps looking this many idle looks before it sleeps until the next call:
# waking it on every call of a busy connection costs more than the looks themselves.
_IDLE_LOOKS = 50
_WORKER_STACK_BYTES = 2 * 1024 * 1024  # keeps many threads cheap under RLIMIT_AS
# Bytes per read. A read allocates this much before it shrinks to what arrived, and
# allocations past malloc's mmap threshold (128 KiB) cost tens of microseconds each.
_READ_BYTES = 65536


def serve(plugin: Any, *, app_protocol: int = 1) -> NoReturn:
    """Serve ``plugin`` to the mfx daemon that started this process; never returns."""
    if os.environ.get(proto.COOKIE_ENV) != proto.COOKIE_VALUE:
        sys.stderr.write(
            "This is an mfx plugin: it must be started by the mfx daemon, not run by hand.\n"
            "Declare it in a PluginManifest (spec.type: rpc) and `mfx apply -f` it.\n"
        )
        sys.stderr.flush()
        sys.exit(1)
    _configure_logging()
    socket_dir = os.environ.get(proto.SOCKET_DIR_ENV, "")
    if not socket_dir or not os.path.isdir(socket_dir):
        _fail(f"{proto.SOCKET_DIR_ENV} must name an existing directory (got {socket_dir!r})")
    path = os.path.join(socket_dir, proto.SOCKET_NAME)
    if len(path.encode()) > proto.MAX_SOCKET_PATH_BYTES:
        _fail(f"socket path {path!r} is longer than {proto.MAX_SOCKET_PATH_BYTES} bytes")
    try:
        max_bytes = int(os.environ.get(proto.MAX_MESSAGE_ENV, proto.DEFAULT_MAX_MESSAGE_BYTES))
    except ValueError:
        _fail(f"{proto.MAX_MESSAGE_ENV} must be an integer")

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    _watch_stdin()
    sys.stdout.write(proto.Handshake(proto.CORE_PROTOCOL_VERSION, app_protocol, path).line())
    sys.stdout.flush()
    conn, _ = listener.accept()
    listener.close()
    try:
        os.unlink(path)  # nobody else may connect; the directory is private anyway
    except OSError:
        pass
    code = _Server(plugin, conn, max_bytes).run()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # worker threads may still be inside plugin code: do not wait for them


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"ERROR {message}\n")
    sys.stderr.flush()
    sys.exit(2)


def _configure_logging() -> None:
    level = os.environ.get(proto.LOG_LEVEL_ENV, "INFO").upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level if level in logging.getLevelNamesMapping() else "INFO")


def _watch_stdin() -> None:
    """The daemon holds our stdin open; end-of-file means it is gone, so we go too."""

    def wait_for_eof() -> None:
        try:
            while sys.stdin.buffer.read(65536):
                pass
        except (OSError, ValueError):
            pass
        os._exit(0)

    if sys.stdin is not None and not sys.stdin.isatty():
        threading.Thread(target=wait_for_eof, name="mfx-stdin", daemon=True).start()


class _Server:
    """One connection. One thread at a time reads; it runs each call itself.

    Running a call on the thread that read it keeps a thread hand-off (tens of
    microseconds of wake-ups and GIL traffic) off every answer. A watchdog thread looks
    every ``_SLOW_CALL_SECONDS`` while calls run: when one call is still running at two
    looks in a row, the reading passes to another thread, so a slow call holds up the
    calls behind it by at most a few milliseconds.
    """

    def __init__(self, plugin: Any, conn: socket.socket, max_bytes: int) -> None:
        self._plugin = plugin
        self._conn = conn
        self._max = max_bytes
        self._send_lock = threading.Lock()
        self._splitter = proto.FrameSplitter(max_bytes)
        self._frames: list[bytes] = []  # read but not yet taken, oldest last
        self._role = threading.Lock()  # guards the reader hand-off state below
        self._token = threading.Semaphore(0)  # released to make a waiting thread the reader
        self._waiting = 0  # threads waiting for the token
        self._threads = 0
        self._seq = 0
        self._running = 0  # the call the reader runs right now (0: none)
        self._watch = threading.Event()  # set while calls run: the watchdog looks
        self._done = threading.Event()
        self._exit_code = 0
        self._loop: Any = None  # asyncio loop, created on the first async call
        self._async_calls: dict[Any, Any] = {}  # request id -> concurrent.futures.Future
        threading.stack_size(_WORKER_STACK_BYTES)

    def run(self) -> int:
        """Serve until the daemon goes away or asks to stop; the exit code for the process."""
        threading.Thread(target=self._watchdog, name="mfx-watchdog", daemon=True).start()
        self._start_thread(reader=True)
        self._done.wait()
        return self._exit_code

    def _start_thread(self, *, reader: bool) -> None:
        self._threads += 1
        threading.Thread(target=self._serve, args=(reader,), name="mfx-rpc", daemon=True).start()

    # --- reading -----------------------------------------------------------------------

    def _serve(self, reader: bool) -> None:
        while True:
            if not reader:
                with self._role:
                    self._waiting += 1
                self._token.acquire()
            frame = self._next_frame()
            if frame is None:
                self._done.set()
                return
            with self._role:
                self._seq += 1
                seq = self._running = self._seq
            if not self._watch.is_set():
                self._watch.set()
            try:
                self._handle(frame)
            except Exception:  # a bug here must not leave the connection without a reader
                log.exception("failed to handle a request")
            with self._role:
                reader = self._running == seq  # else the watchdog passed the reading on
                if reader:
                    self._running = 0

    def _watchdog(self) -> None:
        seen = 0
        idle = 0
        while not self._done.is_set():
            self._watch.wait()
            time.sleep(_SLOW_CALL_SECONDS)
            with self._role:
                running = self._running
                if running == 0:
                    idle += 1
                    if idle >= _IDLE_LOOKS:
                        idle = 0
                        # Under the lock: the next call's reader sees the cleared flag and sets it.
                        self._watch.clear()  # idle for a while: sleep until the next call
                    seen = 0
                    continue
                idle = 0
                if running == seen and (self._waiting or self._threads < _MAX_WORKERS):
                    self._running = 0  # the slow call's thread stops reading when it returns
                    if self._waiting:
                        self._waiting -= 1
                        self._token.release()
                    else:
                        self._start_thread(reader=True)
                seen = running

    def _next_frame(self) -> bytes | None:
        while not self._frames:
            if self._done.is_set():
                return None
            try:
                chunk = self._conn.recv(_READ_BYTES)
            except OSError:
                chunk = b""
            if not chunk:
                return None  # the daemon went away (or the stop answer shut the socket)
            try:
                frames = self._splitter.feed(chunk)
            except proto.FramingError as exc:
                log.error("closing the connection: %s", exc)
                self._exit_code = 3
                return None
            frames.reverse()
            self._frames = frames
        return self._frames.pop()

    def _handle(self, frame: bytes) -> None:
        try:
            message = proto.decode(frame)
        except proto.FramingError as exc:
            self._send(proto.error(None, proto.ErrorCode.PARSE_ERROR, str(exc)))
            return
        method = message.get("method")
        id = message.get("id")
        if not isinstance(method, str):
            self._send(proto.error(id, proto.ErrorCode.INVALID_REQUEST, "request without a method"))
            return
        if method == proto.CANCEL_METHOD:
            self._cancel(message.get("params"))
            return
        params = message.get("params")
        if params is None:
            args: tuple[Any, ...] = ()
            kwargs: dict[str, Any] = {}
        elif isinstance(params, list):
            args, kwargs = tuple(params), {}
        elif isinstance(params, dict):
            args, kwargs = (), params
        else:
            self._send(proto.error(id, proto.ErrorCode.INVALID_PARAMS, "params must be an array or an object"))
            return
        fn = self._lookup(method)
        if fn is None:
            if id is not None:
                self._send(
                    proto.error(id, proto.ErrorCode.METHOD_NOT_FOUND, f"the plugin has no method {method!r}")
                )
            return
        if _is_coroutine_function(fn):
            self._submit_async(id, method, fn, args, kwargs)
        else:
            self._call_sync(id, method, fn, args, kwargs)

    def _lookup(self, method: str) -> Callable[..., Any] | None:
        if method.startswith("_") or method in getattr(self._plugin, "RESERVED", ()):
            return None
        fn = getattr(self._plugin, method, None)
        return fn if callable(fn) and not isinstance(fn, type) else None

    # --- calling -----------------------------------------------------------------------

    def _call_sync(self, id: Any, method: str, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            value = fn(*args, **kwargs)
            if hasattr(value, "__await__"):  # a decorated coroutine function
                value = self._run_coroutine(id, value).result()
        except BaseException as exc:  # noqa: BLE001 - every failure is the caller's answer
            self._reply_error(id, method, exc)
            if not isinstance(exc, Exception):
                raise
            return
        self._reply(id, method, value)

    def _submit_async(self, id: Any, method: str, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        future = self._run_coroutine(id, fn(*args, **kwargs))

        def done(f: Any) -> None:
            self._async_calls.pop(id, None)
            if f.cancelled():
                self._send(proto.error(id, proto.ErrorCode.CANCELLED, f"{method} was cancelled"))
                return
            exc = f.exception()
            if exc is not None:
                self._reply_error(id, method, exc)
            else:
                self._reply(id, method, f.result())

        future.add_done_callback(done)

    def _run_coroutine(self, id: Any, coro: Any) -> Any:
        import asyncio  # only plugins with async methods pay for it

        with self._role:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="mfx-asyncio", daemon=True).start()
                self._loop = loop
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        if id is not None:
            self._async_calls[id] = future
        return future

    def _cancel(self, params: Any) -> None:
        target = params.get("id") if isinstance(params, dict) else None
        future = self._async_calls.pop(target, None)
        if future is not None:
            future.cancel()

    # --- answering ---------------------------------------------------------------------

    def _reply(self, id: Any, method: str, value: Any) -> None:
        if id is None:
            return
        try:
            data = proto.encode(proto.result(id, value), self._max)
        except proto.MessageTooLargeError as exc:
            self._send(proto.error(id, proto.ErrorCode.MESSAGE_TOO_LARGE, f"the result of {method}: {exc}"))
            return
        except TypeError as exc:
            self._send(
                proto.error(id, proto.ErrorCode.INTERNAL_ERROR, f"the result of {method} is not JSON-serialisable: {exc}")
            )
            return
        self._write(data)
        if method == "stop":
            self._done.set()
            try:
                self._conn.shutdown(socket.SHUT_RDWR)  # ends run(): the process exits 0
            except OSError:
                pass

    def _reply_error(self, id: Any, method: str, exc: BaseException) -> None:
        import traceback  # only failing calls pay for it

        text = "".join(traceback.format_exception(exc))
        log.debug("%s raised %s", method, text)
        if id is None:
            log.error("notification %s failed: %s", method, text)
            return
        data = {"type": type(exc).__qualname__, "message": str(exc), "traceback": text}
        self._send(proto.error(id, proto.ErrorCode.PLUGIN_ERROR, f"{type(exc).__name__}: {exc}", data))

    def _send(self, message: dict[str, Any]) -> None:
        try:
            data = proto.encode(message, self._max)
        except proto.MessageTooLargeError:
            message = dict(message)
            message["error"] = {"code": int(proto.ErrorCode.MESSAGE_TOO_LARGE), "message": "error too large to send"}
            data = proto.encode(message, self._max)
        self._write(data)

    def _write(self, data: bytes) -> None:
        with self._send_lock:
            try:
                self._conn.sendall(data)
            except OSError:
                pass  # the daemon is gone; run() sees end-of-file and exits


def _is_coroutine_function(fn: Any) -> bool:
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    return code is not None and bool(code.co_flags & _CO_COROUTINE)
