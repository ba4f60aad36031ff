"""The one Runtime protocol every plugin type implements.

The PluginManifest controller turns a manifest into a ``LoadRequest`` (entry point resolved
to files, quantities and durations already parsed), asks the runtime of the manifest's
``type`` to ``load`` it, and then drives the returned ``PluginInstance`` through its
lifecycle: ``initialize(config)`` -> ``start()`` -> ``health()`` (repeatedly) ->
``update_config(config)`` (as often as the spec changes) -> ``stop()`` -> ``cleanup()``.
Service calls from the player go through ``call(method, params)``.

Every call into a plugin is bounded by the caller with an anyio cancel scope; runtimes add
their own hard limits (RPC deadlines, wasm fuel and epochs) so a plugin cannot outlive them.
A runtime is an async context manager: it owns the background tasks of its instances
(process watchers, log forwarders, epoch tickers) in its own task group, so nothing runs
fire-and-forget and everything ends when the runtime's context ends.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Self, TypeGuard, TypeVar, runtime_checkable

import anyio

from mfx.errors import PluginError, PluginTimeoutError

T = TypeVar("T")


class PluginType(enum.StrEnum):
    DYNAMIC_LIBRARY = "dynamic_library"
    RPC = "rpc"
    WEBASSEMBLY = "webassembly"
    HOT_RELOAD = "hot_reload"


class LogLevel(enum.StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class PluginLogRecord:
    plugin: str
    level: LogLevel
    message: str
    stream: str = "stderr"  # "stderr" | "wasm" | "controller" | ...
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Limits:
    """``spec.resources.limits`` parsed into numbers (None: no limit)."""

    memory_bytes: int | None = None
    cpu_millis: int | None = None  # 500m -> 500; "2" -> 2000
    timeout_seconds: float = 5.0  # per call into the plugin
    max_concurrency: int | None = None
    open_files: int | None = None
    fuel: int | None = None  # webassembly: fuel units per call
    max_message_bytes: int = 16 * 1024 * 1024  # rpc: largest accepted message


@dataclass(frozen=True)
class AllowedPath:
    path: Path
    writable: bool = False


@dataclass(frozen=True)
class CallDeadline:
    """How long one call into a plugin may take, and the manifest field that says so."""

    seconds: float
    field: str = "spec.resources.limits.timeout"


@dataclass(frozen=True)
class LoadRequest:
    name: str
    version: str
    type: PluginType
    entry_point: str  # as written in the manifest
    plugin_dir: Path  # directory holding the plugin's files; relative paths resolve here
    state_dir: Path  # a private, writable directory for this plugin
    config: Mapping[str, Any] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    checksum: str | None = None  # "sha256:<hex>" of the bytes that will be loaded
    allowed_paths: tuple[AllowedPath, ...] = ()
    allowed_networks: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    start_timeout_seconds: float = 10.0
    health_timeout_seconds: float | None = None  # spec.healthCheck.timeout
    # The runtime reports plugin output here (stderr lines, wasm log imports) ...
    log: Callable[[PluginLogRecord], None] = lambda record: None
    # ... and an unexpected end of the instance (process exit, fatal trap) here, at once; the
    # error says why (a process's ``PluginExitedError`` carries its exit status).
    on_exit: Callable[[PluginError], None] = lambda error: None

    def call_deadline(self, *, health: bool = False) -> CallDeadline:
        """A call's deadline: ``limits.timeout``; a health check's is ``healthCheck.timeout``
        where that is shorter (a probe answers within it, whatever the runtime)."""
        if health and self.health_timeout_seconds is not None \
                and self.health_timeout_seconds < self.limits.timeout_seconds:
            return CallDeadline(self.health_timeout_seconds, "spec.healthCheck.timeout")
        return CallDeadline(self.limits.timeout_seconds)


class PluginInstance(Protocol):
    """One loaded plugin. Methods raise subclasses of ``mfx.errors.PluginError``."""

    @property
    def details(self) -> dict[str, Any]:
        """What ``status.runtime`` shows: pid, socket, module path, memory, fuel used..."""
        ...

    async def initialize(self, config: Mapping[str, Any]) -> None: ...

    async def start(self) -> None: ...

    async def health(self) -> None:
        """Return when healthy; raise ``PluginError`` with the reason when not."""
        ...

    async def update_config(self, config: Mapping[str, Any]) -> None: ...

    async def call(self, method: str, params: Any = None) -> Any: ...

    async def stop(self) -> None: ...

    async def cleanup(self) -> None: ...


# A health check as a synchronous call, safe from any thread, that returns at once: True once
# checked and healthy, False when the plugin is busy (a call in flight) and checking would
# wait; it raises ``PluginError`` when unhealthy.
QuickHealthCheck = Callable[[], bool]


@runtime_checkable
class QuickHealth(Protocol):
    """An instance whose health check can also be a call that returns at once (in-process C,
    a Python plugin's synchronous ``health``): the periodic probes run those in rounds."""

    def quick_health(self) -> QuickHealthCheck | None:
        """This instance's quick health check, or None when it has none (its checks then all
        go through ``health``)."""
        ...


class Runtime(Protocol):
    type: PluginType

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    async def load(self, request: LoadRequest) -> PluginInstance: ...


class StartStep(enum.IntEnum):
    """How far ``EagerRuntime.load_started`` took a plugin; each step includes those before."""

    LOADED = 1
    INITIALIZED = 2  # initialize(config) returned
    STARTED = 3  # start() returned
    CHECKED = 4  # its first health() said healthy


@dataclass(frozen=True)
class Loaded:
    """What ``EagerRuntime.load_started`` gives back."""

    instance: PluginInstance
    reached: StartStep  # the steps after it are still the caller's to run
    error: PluginError | None = None  # how the step after ``reached`` failed; the instance is still to be cleaned up
    health_seconds: float = 0.0  # how long the first health check took, once ``reached`` is CHECKED


@runtime_checkable
class EagerRuntime(Protocol):
    """A runtime that can run the first steps of a plugin's life together: for an in-process
    plugin whose hooks are synchronous, load, ``initialize``, ``start`` and the first
    ``health`` in one worker-thread hop instead of four (a start is a chain of short calls,
    and each hop costs the event loop more than such a call).

    It runs the steps up to ``until`` (stopping early at a hook it cannot run there, say an
    async one), each within its own deadline: load and ``initialize`` together, and ``start``,
    within ``request.start_timeout_seconds`` each; ``health`` within ``health_seconds``.
    """

    async def load_started(self, request: LoadRequest, *, until: StartStep,
                           health_seconds: float) -> Loaded: ...


P = TypeVar("P")


def implements(obj: object, protocol: type[P]) -> TypeGuard[P]:
    """``isinstance(obj, protocol)`` for a runtime-checkable protocol of methods, decided once
    per class: typing's own check walks the protocol's members on every call (tens of
    microseconds, twice for every plugin a daemon starts)."""
    return _class_implements(type(obj), protocol)


@functools.cache
def _class_implements(cls: type, protocol: type) -> bool:
    # As typing decides it: each method of the protocol is there and not set to None.
    return all(getattr(cls, member, None) is not None for member in _members(protocol))


def _members(protocol: type) -> list[str]:
    return [name for base in protocol.__mro__[:-1] if base is not Protocol and base is not object
            for name in vars(base) if not name.startswith("_") and callable(vars(base)[name])]


async def bounded(what: str, seconds: float, call: Awaitable[T]) -> T:
    """``await call`` within ``seconds`` (an anyio cancel scope); a timeout is a PluginTimeoutError."""
    with anyio.move_on_after(seconds) as scope:
        return await call
    if scope.cancelled_caught:
        raise PluginTimeoutError(f"{what} did not finish within {seconds:g} s")
    raise AssertionError("unreachable")  # pragma: no cover
