"""In-process Python plugins: ``entryPoint: "python:pkg.module:Class"``.

How a plugin's package is found, imported under a unique name, compiled and checksummed is
``python_import``; how a start runs its first steps on one worker thread is ``python_start``;
here are the runtime and the loaded instance.

Calls into the plugin: async methods run on the event loop; sync ones on the runtime's worker
threads (``mfx.thread_calls``), so a slow plugin cannot stall the loop. Every call is bounded by
``limits.timeout_seconds`` (``initialize`` and ``start`` by ``start_timeout_seconds``),
raising ``PluginTimeoutError`` (a sync call that overruns keeps its worker thread until it
returns: Python threads cannot be killed), and, when set, by
``limits.max_concurrency`` (an anyio ``CapacityLimiter``; health checks are not counted, see
``health``). A synchronous ``health`` is also the instance's quick health check, which the
periodic probes call in rounds on a thread of theirs (``QuickHealth``). Exceptions become
``PluginRuntimeError`` (``PluginInitError`` from ``initialize``); the plugin's formatted
traceback is kept on the error as ``plugin_traceback`` and sent to ``request.log``.
"""

from __future__ import annotations

import copy
import inspect
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Self

import anyio

from mfx.errors import PluginError, PluginInitError, PluginRuntimeError, PluginTimeoutError
from mfx.runtimes.base import (
    Loaded,
    LoadRequest,
    LogLevel,
    PluginLogRecord,
    PluginType,
    QuickHealthCheck,
    StartStep,
)
from mfx.runtimes.python_import import (
    PYTHON_PREFIX,
    ROOT_PREFIX,
    CodeCache,
    LoadedModule,
    PluginFinder,
    PythonEntryPoint,
    import_plugin,
    locate_module,
    module_file,
)
from mfx.runtimes.python_start import STEP_METHODS, Late, Raised, StartChain
from mfx.thread_calls import ThreadCalls

__all__ = [
    "LIFECYCLE_METHODS",
    "PYTHON_PREFIX",
    "ROOT_PREFIX",
    "CodeCache",
    "LoadedModule",
    "PluginFinder",
    "PythonEntryPoint",
    "PythonModuleInstance",
    "PythonModuleRuntime",
    "health_verdict",
    "import_plugin",
    "locate_module",
    "module_file",
]

# Lifecycle methods belong to the controller; ``call`` never reaches them.
LIFECYCLE_METHODS = frozenset(
    {"initialize", "start", "health", "update_config", "stop", "export_state", "import_state"}
)


def _arguments(params: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """JSON-RPC style: a mapping gives keyword arguments, a list positional ones."""
    if params is None:
        return (), {}
    if isinstance(params, Mapping):
        return (), dict(params)
    if isinstance(params, list | tuple):
        return tuple(params), {}
    return (params,), {}


def health_verdict(result: Any) -> tuple[bool, str]:
    """Read a plugin's health answer: None/True, False, {"ok": ...} or an object with ``ok``."""
    if result is None or result is True:
        return True, ""
    if result is False:
        return False, "health() returned False"
    ok: Any = True
    message = ""
    if isinstance(result, Mapping):
        ok = result.get("ok", result.get("healthy", True))
        message = str(result.get("message", "") or "")
    else:
        ok = getattr(result, "ok", getattr(result, "healthy", True))
        message = str(getattr(result, "message", "") or "")
    return bool(ok), message or ("" if ok else "health() reported not ok")


def _healthy(name: str, result: Any) -> None:
    """Raise the plugin error for a health answer that says unhealthy."""
    ok, message = health_verdict(result)
    if not ok:
        raise PluginRuntimeError(f"{name}: unhealthy: {message}", reason="Unhealthy")


class _StillRunning(PluginTimeoutError):
    """Raised by ``_OneAtATime`` in place of a call: mfx's own answer, not the plugin's
    failure, so it goes to the caller without a traceback in the plugin's log."""


class _OneAtATime:
    """One call of a plugin's method at a time, across threads: one made while another has not
    returned (its caller gave up on it: a health check stuck in the plugin) fails at once,
    instead of taking one more thread for each probe."""

    def __init__(self, name: str, method: str) -> None:
        self._name = name
        self._method = method
        self._lock = threading.Lock()
        self._since: float | None = None

    def call(self, fn: Callable[[], Any]) -> Any:
        with self._lock:
            since = self._since
            if since is None:
                self._since = time.monotonic()
        if since is not None:
            raise _StillRunning(
                f"{self._name}: {self._method}() has not returned from the call made "
                f"{time.monotonic() - since:.1f}s ago; it is not called again until it does")
        try:
            return fn()
        finally:
            self._since = None


class PythonModuleInstance:
    """One loaded Python plugin (see the module docstring for how calls are run)."""

    def __init__(self, request: LoadRequest, entry: PythonEntryPoint, loaded: LoadedModule, calls: ThreadCalls,
                 on_cleanup: Callable[[PythonModuleInstance], None]) -> None:
        self._request = request
        self._entry = entry
        self._loaded = loaded
        self._calls = calls
        self._on_cleanup = on_cleanup
        limit = request.limits.max_concurrency
        self._limiter = anyio.CapacityLimiter(limit) if limit else None
        self._class = type(loaded.plugin)
        self._public_names: frozenset[str] | None = None  # see ``_public``
        self._health_guard = _OneAtATime(request.name, "health")

    @property
    def name(self) -> str:
        return self._request.name

    @property
    def plugin(self) -> Any:
        """The plugin object itself, for in-process fast paths (None once cleaned up)."""
        return self._loaded.plugin

    @property
    def details(self) -> dict[str, Any]:
        details: dict[str, Any] = {
            "module": self._loaded.module_name,
            "class": self._entry.attribute,
            "file": str(self._loaded.module_file),
        }
        if self._loaded.checksum:
            details["checksum"] = self._loaded.checksum
        return details

    async def initialize(self, config: Mapping[str, Any]) -> None:
        await self._invoke("initialize", (copy.deepcopy(dict(config)),), {},
                           seconds=self._request.start_timeout_seconds, error=PluginInitError)

    async def start(self) -> None:
        await self._invoke("start", (), {}, seconds=self._request.start_timeout_seconds)

    async def health(self) -> None:
        # Not behind maxConcurrency: health checks are the daemon's own, one at a time, and
        # a plugin busy with as many calls as it takes is busy, not unhealthy (restarting it
        # for its load would drop every call it is serving).
        _healthy(self.name, await self._invoke("health", (), {}, limited=False, guard=self._health_guard))

    def quick_health(self) -> QuickHealthCheck | None:
        """A synchronous ``health`` (or none at all), called straight from the periodic probes'
        round thread (``QuickHealth``); None for an async one, which runs on the event loop."""
        if inspect.iscoroutinefunction(getattr(self._require_plugin(), "health", None)):
            return None
        return self._health_here

    def _health_here(self) -> bool:
        fn = getattr(self._require_plugin(), "health", None)
        if fn is None:
            return True
        try:
            result = self._health_guard.call(fn)
        except _StillRunning:
            raise
        except Exception as exc:
            raise self.failure("health", exc) from exc
        if inspect.isawaitable(result):  # a plain function that returned a coroutine: the usual way
            close = getattr(result, "close", None)
            if close is not None:
                close()
            return False
        _healthy(self.name, result)
        return True

    async def update_config(self, config: Mapping[str, Any]) -> None:
        await self._invoke("update_config", (copy.deepcopy(dict(config)),), {})

    async def export_state(self) -> Any:
        return await self._invoke("export_state", (), {})

    async def import_state(self, state: Any) -> None:
        await self._invoke("import_state", (state,), {})

    def public_methods(self) -> list[str]:
        """What ``call`` dispatches to: public methods that are not lifecycle hooks."""
        return sorted(self._public)

    @property
    def _public(self) -> frozenset[str]:
        # Looked up on the first call, not at load: most plugins are started many more times
        # than they are called by name, and ``dir`` of a class walks all its bases.
        if self._public_names is None:
            cls = self._class
            reserved = LIFECYCLE_METHODS | frozenset(getattr(cls, "RESERVED", ()))
            self._public_names = frozenset(
                n for n in dir(cls)
                if not n.startswith("_") and n not in reserved and callable(getattr(cls, n, None))
            )
        return self._public_names

    async def call(self, method: str, params: Any = None) -> Any:
        if method not in self._public:
            raise PluginRuntimeError(
                f"{self.name}: no public method {method!r} "
                f"(available: {', '.join(self.public_methods()) or 'none'})",
                reason="MethodNotFound",
            )
        args, kwargs = _arguments(params)
        return await self._invoke(method, args, kwargs, required=True)

    async def stop(self) -> None:
        await self._invoke("stop", (), {})

    async def cleanup(self) -> None:
        self._loaded.unload()
        self._on_cleanup(self)

    def _require_plugin(self) -> Any:
        plugin = self._loaded.plugin
        if plugin is None:
            raise PluginRuntimeError(f"{self.name}: the plugin has been unloaded", reason="Unloaded")
        return plugin

    async def _invoke(
        self,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        seconds: float | None = None,
        error: type[PluginError] = PluginRuntimeError,
        required: bool = False,
        limited: bool = True,
        guard: _OneAtATime | None = None,
    ) -> Any:
        fn = getattr(self._require_plugin(), method, None)
        if fn is None and not required:
            return None  # lifecycle hooks are optional
        if guard is not None and fn is not None and not inspect.iscoroutinefunction(fn):
            fn = partial(guard.call, fn)
        timeout = self._request.limits.timeout_seconds if seconds is None else seconds
        try:
            with anyio.move_on_after(timeout) as scope:
                return await self._run(fn, args, kwargs, self._limiter if limited else None)
        except _StillRunning:
            raise
        except Exception as exc:
            raise self.failure(method, exc, error) from exc
        assert scope.cancelled_caught
        raise self.timeout(method, timeout)

    def timeout(self, method: str, seconds: float) -> PluginTimeoutError:
        """What a call of ``method`` that did not return within ``seconds`` is raised as."""
        return PluginTimeoutError(
            f"{self.name}: {method}() did not return within {seconds:g}s; raise "
            "spec.resources.limits.timeout or make the plugin answer sooner"
        )

    async def _run(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                   limiter: anyio.CapacityLimiter | None) -> Any:
        if inspect.iscoroutinefunction(fn):
            if limiter is None:
                return await fn(*args, **kwargs)
            async with limiter:
                return await fn(*args, **kwargs)
        if limiter is None:
            result = await self._calls.run(partial(fn, *args, **kwargs))
        else:  # the limiter's token is held until the call ends, even one its caller has left
            result = await anyio.to_thread.run_sync(
                partial(fn, *args, **kwargs), abandon_on_cancel=True, limiter=limiter
            )
        if inspect.isawaitable(result):
            result = await result
        return result

    def failure(self, method: str, exc: Exception, error: type[PluginError] = PluginRuntimeError) -> PluginError:
        """What a plugin's exception in ``method`` is raised as (logged with its traceback)."""
        if isinstance(exc, PluginError):
            self._log_failure(method, exc)
            return exc
        tb = self._log_failure(method, exc)
        err = error(f"{self.name}: {method}() raised {type(exc).__name__}: {exc}")
        err.plugin_traceback = tb  # type: ignore[attr-defined]
        err.__cause__ = exc
        return err

    def _log_failure(self, method: str, exc: BaseException) -> str:
        tb = "".join(traceback.format_exception(exc))
        self._request.log(
            PluginLogRecord(self.name, LogLevel.ERROR, f"{method}() failed: {exc}", "python",
                            {"method": method, "traceback": tb})
        )
        if isinstance(exc, PluginError) and not hasattr(exc, "plugin_traceback"):
            exc.plugin_traceback = tb  # type: ignore[attr-defined]
        return tb


class PythonModuleRuntime:
    """Loads ``python:pkg.module:Class`` plugins into this process."""

    type = PluginType.DYNAMIC_LIBRARY

    def __init__(self) -> None:
        self._instances: set[PythonModuleInstance] = set()
        self._finder: PluginFinder | None = None
        self._calls: ThreadCalls | None = None  # the threads of the plugins' synchronous calls
        self.codes = CodeCache()

    def _threads(self) -> ThreadCalls:
        if self._calls is None:
            self._calls = ThreadCalls("python-plugins", abandonable=True)
        return self._calls

    async def __aenter__(self) -> Self:
        self._finder = PluginFinder(self.codes)
        sys.meta_path.insert(0, self._finder)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        with anyio.CancelScope(shield=True):
            for instance in list(self._instances):
                await instance.cleanup()
        finder, self._finder = self._finder, None
        if finder is not None and finder in sys.meta_path:
            sys.meta_path.remove(finder)
        self.codes.clear()
        calls, self._calls = self._calls, None
        if calls is not None:
            calls.close()

    async def load(self, request: LoadRequest) -> PythonModuleInstance:
        if self._finder is None:
            raise RuntimeError("PythonModuleRuntime.load() outside 'async with PythonModuleRuntime()'")
        entry = PythonEntryPoint.parse(request.entry_point)
        with anyio.CancelScope(shield=True):  # a module imported for nobody would never be unloaded
            loaded = await self._threads().run(import_plugin, request, entry, self._finder)
        instance = PythonModuleInstance(request, entry, loaded, self._threads(), self._instances.discard)
        self._instances.add(instance)
        return instance

    @staticmethod
    async def _let_go(instance: PythonModuleInstance) -> None:
        """Stop and unload an instance nobody will own; its errors are logged, not raised."""
        try:
            await instance.stop()
        except PluginError:
            pass  # logged with the plugin's traceback by the call itself
        await instance.cleanup()

    async def load_started(self, request: LoadRequest, *, until: StartStep = StartStep.CHECKED,
                           health_seconds: float = 5.0) -> Loaded:
        """Load, ``initialize``, ``start`` and the first ``health`` check in one worker-thread
        call, as far as ``until`` and as long as the hooks are synchronous (``python_start``).

        A failing or late step is reported in ``Loaded.error`` as that hook's own call reports
        it; the instance is returned, for the caller to stop and clean up. A failed import raises.
        """
        if self._finder is None:
            raise RuntimeError("PythonModuleRuntime.load() outside 'async with PythonModuleRuntime()'")
        entry = PythonEntryPoint.parse(request.entry_point)
        chain = StartChain(request, entry, self._finder, until=until, config=copy.deepcopy(dict(request.config)),
                           health_seconds=health_seconds)
        try:
            with anyio.move_on_after(chain.budget()) as scope:
                await self._threads().run(chain.run)
        except BaseException:
            # Cancelled from outside (say, the plugin deleted while it starts): nothing more
            # runs, and what the chain got to is stopped and unloaded, as a start cancelled
            # between its hops always was.
            abandoned = chain.give_up()
            if abandoned is not None:
                with anyio.CancelScope(shield=True):
                    await self._let_go(PythonModuleInstance(request, entry, abandoned, self._threads(),
                                                            self._instances.discard))
            raise
        loaded = chain.give_up() if scope.cancelled_caught else chain.loaded
        if loaded is None:
            raise PluginTimeoutError(f"loading {request.name} did not finish within "
                                     f"{chain.deadline(StartStep.LOADED):g} s")
        instance = PythonModuleInstance(request, entry, loaded, self._threads(), self._instances.discard)
        self._instances.add(instance)
        error: PluginError | None = None
        step = chain.step
        method = STEP_METHODS.get(step, "load")
        try:
            if scope.cancelled_caught or isinstance(chain.outcome, Late):
                raise instance.timeout(method, chain.deadline(step))
            if isinstance(chain.outcome, Raised):
                raise chain.outcome.exc
            if chain.pending is not None:
                with anyio.fail_after(chain.deadline(step)):
                    result = await chain.pending
                if step is StartStep.CHECKED:
                    _healthy(request.name, result)
                return Loaded(instance, step)
            if step is StartStep.CHECKED:
                _healthy(request.name, chain.health)
                return Loaded(instance, StartStep.CHECKED, health_seconds=chain.health_seconds)
        except TimeoutError:
            error = instance.timeout(method, chain.deadline(step))
        except PluginError as exc:
            error = exc
        except Exception as exc:
            error = instance.failure(method, exc, PluginInitError if step is StartStep.INITIALIZED else PluginRuntimeError)
        return Loaded(instance, chain.reached, error)
