"""The runtime side of the PluginManifest controller: the runtimes by type, the live
instances, deadlines around every call into a plugin, and the handle the service registry
hands to callers (the player).

Nothing here decides *what* should run; ``plugin_decide`` does, and ``plugin_execution``
runs the long operations defined here (``start_instance``, ``stop_instance``) as tracked tasks
on the engine's ``TaskSupervisor``, so a slow plugin never holds a reconcile worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import anyio

from mfx.errors import (
    MfxError,
    PluginError,
    PluginExitedError,
    PluginRuntimeError,
)
from mfx.runtimes.base import (
    EagerRuntime,
    Loaded,
    LoadRequest,
    PluginInstance,
    PluginType,
    Runtime,
    StartStep,
    bounded,
    implements,
)
from mfx.runtimes.dynamic_library import DynamicLibraryRuntime
from mfx.runtimes.hot_reload import HotReloadRuntime
from mfx.runtimes.rpc import RpcRuntime
from mfx.runtimes.wasm import WasmRuntime
from observability.metrics import Metrics
from reconciler import BreakerState, CircuitBreaker

log = logging.getLogger("mfx.controllers.plugin")

ReloadListener = Callable[[str, bool, str], None]


class PluginRuntimes:
    """Every runtime, entered together: ``async with PluginRuntimes(home) as runtimes``."""

    def __init__(self, home: Path, *, metrics: Metrics | None = None) -> None:
        self.home = home
        self._reload_listeners: list[ReloadListener] = []
        self.dynamic_library = DynamicLibraryRuntime(home / "run" / "lib")
        self.rpc = RpcRuntime()
        self.webassembly = WasmRuntime(metrics=metrics)
        self.hot_reload = HotReloadRuntime(on_reload=self._on_reload)
        self._stack: AsyncExitStack | None = None

    def add_reload_listener(self, listener: ReloadListener) -> None:
        self._reload_listeners.append(listener)

    def _on_reload(self, name: str, ok: bool, message: str) -> None:
        for listener in list(self._reload_listeners):
            try:
                listener(name, ok, message)
            except Exception:
                log.exception("reload listener failed for %s", name)

    def for_type(self, plugin_type: PluginType | str) -> Runtime:
        runtimes: dict[str, Runtime] = {
            PluginType.DYNAMIC_LIBRARY: self.dynamic_library,
            PluginType.RPC: self.rpc,
            PluginType.WEBASSEMBLY: self.webassembly,
            PluginType.HOT_RELOAD: self.hot_reload,
        }
        return runtimes[str(plugin_type)]

    async def __aenter__(self) -> Self:
        (self.home / "run" / "lib").mkdir(parents=True, exist_ok=True)
        async with AsyncExitStack() as stack:
            for runtime in (self.dynamic_library, self.rpc, self.webassembly, self.hot_reload):
                await stack.enter_async_context(runtime)  # type: ignore[arg-type]
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.__aexit__(*exc_info)  # type: ignore[arg-type]


@dataclass
class Running:
    """One live instance of a plugin."""

    instance: PluginInstance
    request: LoadRequest
    identity: str  # what forces a new instance when it changes (version, entry point, files, limits)
    version: str
    config: dict[str, Any]
    generation: int
    started_at: float  # wall clock (time.time()) when its start began
    ready_at: float  # wall clock when it passed its first health check
    started_mono: float = field(default_factory=time.monotonic)
    exited: str | None = None  # set by on_exit: the instance ended by itself
    exit_error: PluginError | None = None  # ... and the runtime's error for it (exit status included)
    health_seconds: float = 0.0  # how long the first health check took
    identity_parts: dict[str, Any] = field(default_factory=dict)  # what its identity digest was made of

    @property
    def start_seconds(self) -> float:
        return max(0.0, self.ready_at - self.started_at)

    @property
    def exited_cleanly(self) -> bool:
        """Whether its process ended by itself with exit status 0."""
        return isinstance(self.exit_error, PluginExitedError) and self.exit_error.clean


async def start_instance(runtime: Runtime, request: LoadRequest, *,
                         call_timeout: float) -> tuple[PluginInstance, float]:
    """load -> initialize -> start -> health, each under a deadline; cleans up on failure.

    Returns the instance and how long its first health check took.
    """
    start_timeout = request.start_timeout_seconds
    if implements(runtime, EagerRuntime):
        loaded = await runtime.load_started(request, until=StartStep.CHECKED, health_seconds=call_timeout)
    else:
        loaded = Loaded(await bounded(f"loading {request.name}", start_timeout, runtime.load(request)),
                        StartStep.LOADED)
    instance = loaded.instance
    health_seconds = loaded.health_seconds
    try:
        if loaded.error is not None:
            raise loaded.error
        if loaded.reached < StartStep.INITIALIZED:
            await bounded(f"{request.name}.initialize", start_timeout, instance.initialize(request.config))
        if loaded.reached < StartStep.STARTED:
            await bounded(f"{request.name}.start", start_timeout, instance.start())
        if loaded.reached < StartStep.CHECKED:
            probe_started = time.perf_counter()
            await bounded(f"{request.name}.health", call_timeout, instance.health())
            health_seconds = time.perf_counter() - probe_started
    except BaseException:
        with anyio.CancelScope(shield=True):
            await stop_instance(request.name, instance, call_seconds=call_timeout, stop=True)
        raise
    return instance, health_seconds


async def stop_instance(name: str, instance: PluginInstance, *, call_seconds: float, stop: bool = True) -> str | None:
    """stop() then cleanup(), each bounded; returns the first problem (never raises MfxError)."""
    problem: str | None = None
    if stop:
        try:
            await bounded(f"{name}.stop", call_seconds, instance.stop())
        except MfxError as exc:
            problem = f"stop: {exc}"
        except Exception as exc:  # a plugin's own bug must not keep its resources alive
            problem = f"stop: {type(exc).__name__}: {exc}"
    try:
        await bounded(f"{name}.cleanup", max(call_seconds, 5.0), instance.cleanup())
    except Exception as exc:
        problem = problem or f"cleanup: {exc}"
    return problem


class PluginHandle:
    """What the service registry hands out for a Ready plugin: ``await handle.call(m, params)``.

    Calls go to the plugin's current instance through its circuit breaker, under the
    plugin's call deadline, and are measured (``mfx_plugin_call_duration_seconds``,
    ``mfx_plugin_call_errors_total``). The handle outlives restarts and upgrades: it always
    calls whatever instance runs now, and raises ``PluginRuntimeError`` (reason NotRunning)
    while none does.
    """

    def __init__(self, name: str, breaker: CircuitBreaker, metrics: Metrics) -> None:
        self.name = name
        self.breaker = breaker
        self._metrics = metrics
        self.running: Running | None = None
        self.timeout = 5.0
        self.interfaces: tuple[str, ...] = ()

    @property
    def version(self) -> str | None:
        return self.running.version if self.running else None

    @property
    def details(self) -> dict[str, Any]:
        return dict(self.running.instance.details) if self.running else {}

    async def call(self, method: str, params: Any = None) -> Any:
        running = self.running
        if running is None or running.exited is not None:
            self._metrics.plugin_call_errors_total.labels(self.name, method, "NotRunning").inc()
            raise PluginRuntimeError(f"plugin {self.name} is not running", reason="NotRunning")
        started = time.perf_counter()
        try:
            async with self.breaker.guard():
                return await bounded(f"{self.name}.{method}", self.timeout,
                                     running.instance.call(method, params))
        except Exception as exc:
            reason = exc.reason if isinstance(exc, MfxError) else type(exc).__name__
            self._metrics.plugin_call_errors_total.labels(self.name, method, reason).inc()
            raise
        finally:
            self._metrics.plugin_call_duration_seconds.labels(self.name, method).observe(
                time.perf_counter() - started)

    def __repr__(self) -> str:
        return f"PluginHandle({self.name!r}, version={self.version!r})"


def breaker_state_name(state: BreakerState) -> str:
    return {BreakerState.CLOSED: "Closed", BreakerState.OPEN: "Open", BreakerState.HALF_OPEN: "HalfOpen"}[state]


def plugin_error_reason(exc: BaseException, default: str = "StartFailed") -> str:
    if isinstance(exc, PluginError) and exc.reason not in ("PluginError", "RuntimeError"):
        return exc.reason
    return default


def config_of(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items()}
