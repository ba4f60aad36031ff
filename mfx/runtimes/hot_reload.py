"""``type: hot_reload``: a Python-module plugin that is reloaded when its sources change.

A watchdog observer (its own thread) watches the plugin directory; events about the
entry point's package reach the event loop through a memory object stream. Editors save
atomically (write a temporary file, rename it over the original), which arrives as
``moved``/``created`` rather than ``modified``, and one save makes a burst of events: a
burst is folded into one reload once no event has come for ``debounce_seconds``.

A reload never interrupts the running version until its successor has proven itself:

1. the new version is imported beside the old one (fresh unique module names for every
   module of the package, see :mod:`mfx.runtimes.python_module`),
2. ``initialize(config)`` and ``health()`` are called on it,
3. the old one's ``export_state()`` goes into the new one's ``import_state()``, the new one
   is started if the old one was, and the instance switches to it in one assignment,
4. the old one is stopped and unloaded.

If any step fails (syntax error, exception in ``initialize``, failing health) the old
version keeps serving and the failure goes to ``on_reload(name, False, message)``; a
successful swap reports ``on_reload(name, True, message)``. Calls already running on the old
version finish there; state the old version changes after step 3 began is not carried over.
"""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio.abc import ObjectReceiveStream, TaskStatus
from anyio.streams.memory import MemoryObjectSendStream
from watchdog.events import (
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from mfx.errors import MfxError
from mfx.runtimes.base import LoadRequest, LogLevel, PluginLogRecord, PluginType
from mfx.runtimes.python_module import (
    PythonEntryPoint,
    PythonModuleInstance,
    PythonModuleRuntime,
    module_file,
)
from mfx.task_group import TaskGroupOwner

ReloadCallback = Callable[[str, bool, str], None]

_CHANGE_EVENTS = {EVENT_TYPE_CREATED, EVENT_TYPE_DELETED, EVENT_TYPE_MODIFIED, EVENT_TYPE_MOVED}
_IGNORED_SUFFIXES = (".pyc", ".pyo", "~", ".swp", ".swx", ".tmp", ".part")


def _relevant(path: str, plugin_dir: Path, root: str) -> bool:
    """Is ``path`` a source file of the entry point's package (not an editor's temp file)?"""
    try:
        rel = Path(path).relative_to(plugin_dir)
    except ValueError:
        return False
    parts = rel.parts
    if not parts or parts[0] not in (root, root + ".py"):
        return False
    if "__pycache__" in parts or any(p.startswith(".") for p in parts):
        return False
    return not parts[-1].endswith(_IGNORED_SUFFIXES)


def package_fingerprint(plugin_dir: Path, root: str) -> str:
    """A digest of every source file of the package, to skip reloads that change nothing."""
    digest = hashlib.sha256()
    # The files that run: the module file alone, or the package (which shadows a module of its name).
    single = plugin_dir / (root + ".py")
    files = [single] if module_file(plugin_dir, (root,)) == str(single) else sorted((plugin_dir / root).rglob("*"))
    for path in files:
        if not path.is_file() or not _relevant(str(path), plugin_dir, root):
            continue
        digest.update(str(path.relative_to(plugin_dir)).encode() + b"\0")
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"<unreadable>")
        digest.update(b"\0")
    return digest.hexdigest()


class _Forwarder(FileSystemEventHandler):
    """Runs in the observer thread: passes relevant paths to the event loop."""

    def __init__(self, plugin_dir: Path, root: str, send: MemoryObjectSendStream[str],
                 token: anyio.lowlevel.EventLoopToken) -> None:
        self._plugin_dir = plugin_dir
        self._root = root
        self._send = send
        self._token = token

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _CHANGE_EVENTS:
            return  # opened/closed events: our own reads of the files would loop forever
        if event.is_directory and event.event_type == EVENT_TYPE_MODIFIED:
            return
        paths = [str(event.src_path), str(event.dest_path or "")]
        hit = next((p for p in paths if p and _relevant(p, self._plugin_dir, self._root)), None)
        if hit is None:
            return
        try:
            anyio.from_thread.run_sync(self._offer, hit, token=self._token)
        except Exception:  # the loop is shutting down: nothing left to reload
            pass

    def _offer(self, path: str) -> None:
        try:
            self._send.send_nowait(path)
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass  # a reload is already pending; one signal is enough


class HotReloadInstance:
    """A hot-reloaded plugin: the current version plus the watcher that replaces it."""

    def __init__(self, runtime: HotReloadRuntime, request: LoadRequest, entry: PythonEntryPoint,
                 current: PythonModuleInstance, fingerprint: str) -> None:
        self._runtime = runtime
        self._request = request
        self._root = entry.parts[0]
        self._plugin_dir = request.plugin_dir.resolve()
        self._current = current
        self._fingerprint = fingerprint
        self._config: Mapping[str, Any] | None = None
        self._started = False
        self._lifecycle = anyio.Lock()  # reloads and controller lifecycle calls take turns
        self._generation = 1
        self._last_error: str | None = None
        self._scope = anyio.CancelScope()
        self._finished = anyio.Event()
        self._closed = False

    @property
    def name(self) -> str:
        return self._request.name

    @property
    def current(self) -> PythonModuleInstance:
        return self._current

    @property
    def details(self) -> dict[str, Any]:
        return {**self._current.details, "generation": self._generation, "watching": str(self._plugin_dir),
                "lastReloadError": self._last_error}

    async def initialize(self, config: Mapping[str, Any]) -> None:
        async with self._lifecycle:
            await self._current.initialize(config)
            self._config = dict(config)

    async def start(self) -> None:
        async with self._lifecycle:
            await self._current.start()
            self._started = True

    async def health(self) -> None:
        await self._current.health()

    async def update_config(self, config: Mapping[str, Any]) -> None:
        async with self._lifecycle:
            await self._current.update_config(config)
            self._config = dict(config)

    async def call(self, method: str, params: Any = None) -> Any:
        return await self._current.call(method, params)

    async def stop(self) -> None:
        async with self._lifecycle:
            self._started = False
            await self._current.stop()

    async def cleanup(self) -> None:
        with anyio.CancelScope(shield=True):
            self._closed = True
            self._scope.cancel()
            await self._finished.wait()
            await self._current.cleanup()
            self._runtime._forget(self)

    async def run_watcher(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Watch the plugin directory until ``cleanup``; runs in the runtime's task group."""
        send, receive = anyio.create_memory_object_stream[str](max_buffer_size=64)
        handler = _Forwarder(self._plugin_dir, self._root, send, anyio.lowlevel.current_token())
        observer = Observer()
        try:
            with self._scope:
                observer.schedule(handler, str(self._plugin_dir), recursive=True)
                await anyio.to_thread.run_sync(observer.start)
                task_status.started()
                async with receive:
                    while await self._next_burst(receive):
                        await self._reload()
        finally:
            with anyio.CancelScope(shield=True):
                if observer.is_alive():
                    observer.stop()
                    await anyio.to_thread.run_sync(observer.join)
                send.close()
                self._finished.set()

    async def _next_burst(self, receive: ObjectReceiveStream[str]) -> bool:
        """Wait for a change, then until none has come for the debounce interval."""
        try:
            await receive.receive()
        except anyio.EndOfStream:
            return False
        while True:
            with anyio.move_on_after(self._runtime.debounce_seconds) as quiet:
                try:
                    await receive.receive()
                except anyio.EndOfStream:
                    return True
            if quiet.cancelled_caught:
                return True

    async def _reload(self) -> None:
        fingerprint = await anyio.to_thread.run_sync(package_fingerprint, self._plugin_dir, self._root)
        if fingerprint == self._fingerprint or self._closed:
            return
        # Remember it even if the load fails: the same broken content is not retried.
        self._fingerprint = fingerprint
        async with self._lifecycle:
            try:
                message = await self._swap()
            except Exception as exc:  # the old version keeps serving whatever went wrong
                self._last_error = str(exc) if isinstance(exc, MfxError) else f"{type(exc).__name__}: {exc}"
                self._report(False, f"reload failed, still running generation {self._generation}: "
                                    f"{self._last_error}")
                return
        self._last_error = None
        self._report(True, message)

    async def _swap(self) -> str:
        old = self._current
        new = await self._runtime.python.load(self._request)
        started = False
        try:
            if self._config is not None:
                await new.initialize(self._config)
                await new.health()
                state = await old.export_state()
                if state is not None:
                    await new.import_state(state)
            if self._started:
                await new.start()
                started = True
        except BaseException:
            with anyio.CancelScope(shield=True):
                if started:
                    await _quietly(new.stop())
                await new.cleanup()
            raise
        self._current = new
        self._generation += 1
        with anyio.CancelScope(shield=True):
            if self._started:
                try:
                    await old.stop()
                except Exception as exc:
                    self._log(LogLevel.WARNING, f"stopping the replaced version failed: {exc}")
            await old.cleanup()
        return f"reloaded: generation {self._generation} ({new.details['module']}) is serving"

    def _report(self, ok: bool, message: str) -> None:
        self._log(LogLevel.INFO if ok else LogLevel.ERROR, message)
        callback = self._runtime.on_reload
        if callback is None:
            return
        try:
            callback(self.name, ok, message)
        except Exception as exc:  # a broken listener must not stop the watcher
            self._log(LogLevel.ERROR, f"on_reload callback failed: {exc!r}")

    def _log(self, level: LogLevel, message: str) -> None:
        self._request.log(PluginLogRecord(self.name, level, message, "controller"))


async def _quietly(awaitable: Any) -> None:
    try:
        await awaitable
    except Exception:
        pass


class HotReloadRuntime(TaskGroupOwner):
    """Runs ``python:pkg.module:Class`` plugins and reloads them when their files change.
    The watchers live in the runtime's task group.

    ``on_reload(name, ok, message)`` is called on the event loop after every reload attempt
    (the controller turns failures into a ``ReloadFailed`` event and a condition message).
    """

    type = PluginType.HOT_RELOAD

    def __init__(self, on_reload: ReloadCallback | None = None, *, debounce_seconds: float = 0.2) -> None:
        self.on_reload = on_reload
        self.debounce_seconds = debounce_seconds
        self.python = PythonModuleRuntime()
        self._instances: set[HotReloadInstance] = set()

    async def __aenter__(self) -> Self:
        await self.python.__aenter__()
        try:
            await super().__aenter__()
        except BaseException:
            await self.python.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self, exc_type: builtins.type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        # Instances are cleaned up before their watchers are cancelled, and the Python
        # runtime they were loaded by ends last.
        try:
            await self._cleanup_all()
            return await super().__aexit__(exc_type, exc, tb)
        finally:
            await self.python.__aexit__(exc_type, exc, tb)

    async def load(self, request: LoadRequest) -> HotReloadInstance:
        if not self.running:
            raise RuntimeError("HotReloadRuntime.load() outside 'async with HotReloadRuntime()'")
        entry = PythonEntryPoint.parse(request.entry_point)
        plugin_dir = request.plugin_dir.resolve()
        fingerprint = await anyio.to_thread.run_sync(package_fingerprint, plugin_dir, entry.parts[0])
        current = await self.python.load(request)
        instance = HotReloadInstance(self, request, entry, current, fingerprint)
        self._instances.add(instance)
        try:
            await self.task_group().start(instance.run_watcher)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await instance.cleanup()
            raise
        return instance

    def _forget(self, instance: HotReloadInstance) -> None:
        self._instances.discard(instance)

    async def _cleanup_all(self) -> None:
        with anyio.CancelScope(shield=True):
            for instance in list(self._instances):
                await instance.cleanup()
