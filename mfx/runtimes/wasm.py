"""The ``webassembly`` runtime: plugins compiled to WebAssembly, run by wasmtime.

Isolation comes from wasmtime, not from a process: every call gets a fuel budget
(``limits.fuel``) and a wall-clock deadline (``limits.timeout_seconds``, enforced with epoch
interruption: a ticker thread owned by the runtime bumps the engine epoch every
``tick_seconds``), linear memory is capped by the store limiter (``limits.memory_bytes``;
without it ``DEFAULT_MEMORY_BYTES``, 256 MiB, so a manifest that forgets the limit does not
hand a plugin the 4 GiB a 32-bit module can address),
and WASI sees only the directories of ``allowed_paths`` (read-only unless writable), only
the environment the manifest gives, and no sockets.

The calling convention is documented in ``plugins/include/mfx_wasm_abi.md``.

Structure:
- ``WasmRuntime`` owns one ``wasmtime.Engine`` (fuel and epochs on), a cache of compiled
  modules keyed by the sha256 of their bytes (compile once per plugin version), and the epoch
  ticker thread, which lives as long as the runtime's ``async with`` block.
- ``WasmPluginInstance`` owns one ``wasmtime.Store`` at a time and one thread of its own
  (a daemon thread, not anyio's shared worker pool, whose default limiter ``/metrics`` and
  the API need too): wasmtime calls block, so they run there, one at a time per store (an
  ``anyio.Lock``). A slow or stuck plugin therefore only ever holds its own thread.
- Epoch interruption stops wasm code at the deadline, but not a guest blocked inside a
  host or WASI call (opening a FIFO, a long ``poll_oneoff``). So the caller also waits
  only ``timeout + deadline_grace_seconds``: past that it gets ``PluginTimeoutError``
  whatever the guest is doing, the store is abandoned to its thread (which ends when the
  host call returns, and touches nothing of the instance on the way out), the instance is
  broken and ``LoadRequest.on_exit`` is told, so the controller restarts the plugin on a
  fresh instance instead of reusing one in an unknown state.
- ``poll_oneoff`` is the host's own: a clock subscription that would outlast the call's
  deadline fails the call at once (``PluginTimeoutError``) instead of sleeping through it,
  and shorter sleeps are served; subscriptions to descriptors are refused (``ENOTSUP``
  events: the sandbox has no sockets and no stdin to wait for).
- A trap leaves a store in an unknown state (half-written globals, leaked allocations), so
  the store is dropped and a fresh one is instantiated at once (``init`` is replayed with the
  last accepted config; the instantiation has a deadline of its own). A trap therefore
  fails one call, never the plugin; traps and re-instantiations are counted in
  ``details``. Only when the fresh instantiation itself fails is the instance lost, and
  ``LoadRequest.on_exit`` is told.
- ``inline_calls`` runs calls on the event-loop thread, only for modules that import no
  WASI: their only host call (``mfx::log``) never blocks, so epoch interruption bounds them.
"""

from __future__ import annotations

import contextlib
import enum
import math
import queue
import struct
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Self, TypeVar

import anyio
import anyio.from_thread
import orjson
import wasmtime

from mfx.errors import (
    AbiMismatchError,
    EntryPointNotFoundError,
    MemoryLimitExceededError,
    MfxError,
    OutOfFuelError,
    PluginCrashedError,
    PluginError,
    PluginInitError,
    PluginLoadError,
    PluginRuntimeError,
    PluginTimeoutError,
    ProtocolError,
    SecurityError,
    TrapError,
)
from mfx.runtimes.base import LoadRequest, LogLevel, PluginLogRecord, PluginType
from mfx.runtimes.verified_files import verify_bytes
from observability.metrics import Metrics

T = TypeVar("T")

WASI_MODULE = "wasi_snapshot_preview1"
HOST_MODULE = "mfx"
WASM_PAGE = 65536
# Fuel when the manifest sets no limit: the epoch deadline still bounds the call.
UNLIMITED_FUEL = 2**62
# Linear memory when the manifest sets no limit.
DEFAULT_MEMORY_BYTES = 256 * 1024 * 1024
MAX_LOG_RECORDS_PER_CALL = 1000
MAX_LOG_MESSAGE_BYTES = 8192

_I32 = "i32"
_I64 = "i64"

# name -> (params, results); "memory" is a memory export.
REQUIRED_EXPORTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]] | None] = {
    "memory": None,
    "alloc": ((_I32,), (_I32,)),
    "dealloc": ((_I32, _I32), ()),
    "call": ((_I32, _I32, _I32, _I32), (_I64,)),
}
OPTIONAL_EXPORTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "health": ((), (_I32,)),
    "init": ((_I32, _I32), (_I32,)),
    "_initialize": ((), ()),  # WASI reactor convention: run once after instantiation
}
HOST_IMPORTS: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {
    (HOST_MODULE, "log"): ((_I32, _I32, _I32), ()),
}
# WASI preview 1 poll_oneoff: a subscription is 48 bytes (userdata u64, tag u8 at 8, clock id
# u32 at 16, timeout u64 at 24, precision u64 at 32, flags u16 at 40), an event 32 bytes
# (userdata u64, errno u16 at 8, type u8 at 10).
_SUBSCRIPTION = struct.Struct("<QB7xIxxxxQQH6x")
_EVENT = struct.Struct("<QHB21x")
_EVENTTYPE_CLOCK = 0
_CLOCK_REALTIME = 0
_CLOCK_MONOTONIC = 1
_CLOCK_ABSTIME = 1
_ERRNO_SUCCESS = 0
_ERRNO_FAULT = 21
_ERRNO_INVAL = 28
_ERRNO_NOTSUP = 58
_LOG_LEVELS = {0: LogLevel.DEBUG, 1: LogLevel.INFO, 2: LogLevel.WARNING, 3: LogLevel.ERROR}


class InstanceState(enum.StrEnum):
    LOADED = "Loaded"
    RUNNING = "Running"
    STOPPED = "Stopped"
    BROKEN = "Broken"  # a fresh store could not be instantiated after a trap
    CLEANED_UP = "CleanedUp"


def _verify(data: bytes, checksum: str | None, *, what: str) -> str:
    """``verify_bytes`` with the file named in the message."""
    try:
        return verify_bytes(data, checksum)
    except SecurityError as exc:
        raise type(exc)(f"{what}: {exc}") from exc


def _signature(ty: wasmtime.FuncType) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(str(p) for p in ty.params), tuple(str(r) for r in ty.results)


def _fmt_sig(sig: tuple[tuple[str, ...], tuple[str, ...]]) -> str:
    params, results = sig
    return f"({', '.join(params)}) -> ({', '.join(results)})"


def check_module_abi(module: wasmtime.Module, *, what: str) -> set[str]:
    """Raise ``AbiMismatchError`` (permanent, as in every runtime: the same bytes will not
    match next time either) naming every missing or mistyped ABI export and every import
    the host does not provide. Returns the names of the optional exports present."""
    problems: list[str] = []
    exports = {e.name: e.type for e in module.exports}
    missing = [name for name in REQUIRED_EXPORTS if name not in exports]
    if missing:
        problems.append("missing exports: " + ", ".join(missing))
    for name, sig in REQUIRED_EXPORTS.items():
        ty = exports.get(name)
        if ty is None:
            continue
        if sig is None:
            if not isinstance(ty, wasmtime.MemoryType):
                problems.append(f"export {name!r} must be a memory")
        elif not isinstance(ty, wasmtime.FuncType) or _signature(ty) != sig:
            problems.append(f"export {name!r} must be a function {_fmt_sig(sig)}")
    present: set[str] = set()
    for name, sig in OPTIONAL_EXPORTS.items():
        ty = exports.get(name)
        if ty is None:
            continue
        if not isinstance(ty, wasmtime.FuncType) or _signature(ty) != sig:
            problems.append(f"optional export {name!r} must be a function {_fmt_sig(sig)}")
        present.add(name)
    unknown: list[str] = []
    for imp in module.imports:
        if imp.module == WASI_MODULE:
            continue  # checked by the linker at instantiation (it knows every WASI name)
        name = imp.name or ""
        sig = HOST_IMPORTS.get((imp.module, name))
        if sig is None:
            unknown.append(f"{imp.module}::{name}")
        elif not isinstance(imp.type, wasmtime.FuncType) or _signature(imp.type) != sig:
            problems.append(f"import {imp.module}::{name} must be a function {_fmt_sig(sig)}")
    if unknown:
        problems.append(
            "imports the host does not provide: " + ", ".join(unknown)
            + f" (the host provides {', '.join(f'{m}::{n}' for m, n in HOST_IMPORTS)}"
            f" and {WASI_MODULE})")
    if problems:
        raise AbiMismatchError(
            f"{what} does not follow the mfx WebAssembly ABI (plugins/include/mfx_wasm_abi.md): "
            + "; ".join(problems))
    return present


class _EpochTicker:
    """A thread that advances the engine epoch: the clock behind every call deadline.

    A thread rather than an async task, so deadlines hold even when a call runs on the
    event-loop thread (inline calls) or the loop is busy."""

    def __init__(self, engine: wasmtime.Engine, tick_seconds: float) -> None:
        self._engine = engine
        self._tick = tick_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mfx-wasm-epoch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._tick):
            self._engine.increment_epoch()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class _Worker:
    """One plugin's own thread: runs its wasmtime calls one at a time.

    A daemon thread, so one stuck in a host call for an hour never holds up the daemon's
    exit; its results reach the event loop through the runtime's portal."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"mfx-wasm:{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()

    def close(self) -> None:
        """The thread ends after the job it runs now, if any."""
        self._jobs.put(None)

    async def run(self, portal: anyio.from_thread.BlockingPortal, budget: float,
                  fn: Callable[..., T], *args: Any) -> tuple[bool, T | None]:
        """``(True, fn(*args))`` run on this thread, or ``(False, None)`` when it has not
        returned within ``budget`` seconds. ``fn``'s exceptions are raised here. The caller's
        own cancellation waits for the job (at most ``budget``): a store must never be left
        running in a job nobody waits for without being given up."""
        done = anyio.Event()
        outcome: list[tuple[bool, Any]] = []

        def job() -> None:
            try:
                outcome.append((True, fn(*args)))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller as is
                outcome.append((False, exc))
            try:
                portal.start_task_soon(done.set)
            except RuntimeError:
                pass  # the runtime has ended: nobody waits any more

        self._jobs.put(job)
        with anyio.CancelScope(shield=True), anyio.move_on_after(budget):
            await done.wait()
        if not outcome:
            return False, None
        ok, value = outcome[0]
        if not ok:
            raise value
        return True, value


class WasmRuntime:
    """Loads ``type: webassembly`` plugins. Use as ``async with WasmRuntime() as rt``.

    ``inline_calls=True`` runs calls on the caller's thread instead of the plugin's thread: it
    saves the thread hand-off (tens of µs) but blocks the event loop for as long as the call
    runs, up to its deadline. Meant for small, trusted, latency-bound plugins; modules that
    import WASI run on their thread regardless (a WASI call can block past any deadline).

    ``deadline_grace_seconds``: how long past a call's deadline the caller waits for the
    epoch interrupt to unwind before it gives the instance up as stuck.
    """

    type = PluginType.WEBASSEMBLY

    def __init__(self, *, metrics: Metrics | None = None, tick_seconds: float = 0.01,
                 inline_calls: bool = False, deadline_grace_seconds: float = 0.25) -> None:
        config = wasmtime.Config()
        config.consume_fuel = True
        config.epoch_interruption = True
        self._engine = wasmtime.Engine(config)
        self._modules: dict[str, wasmtime.Module] = {}
        self._modules_lock = threading.Lock()
        self._ticker: _EpochTicker | None = None
        # Hands results from the plugins' threads back to the event loop.
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._instances: weakref.WeakSet[WasmPluginInstance] = weakref.WeakSet()
        self.metrics = metrics
        self.tick_seconds = tick_seconds
        self.inline_calls = inline_calls
        self.deadline_grace_seconds = deadline_grace_seconds

    @property
    def engine(self) -> wasmtime.Engine:
        return self._engine

    @property
    def running(self) -> bool:
        return self._ticker is not None

    async def __aenter__(self) -> Self:
        portal = anyio.from_thread.BlockingPortal()
        await portal.__aenter__()
        self._portal = portal
        self._ticker = _EpochTicker(self._engine, self.tick_seconds)
        self._ticker.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            await anyio.to_thread.run_sync(ticker.stop)
        for instance in list(self._instances):
            instance._worker.close()
        portal, self._portal = self._portal, None
        if portal is not None:
            await portal.__aexit__(None, None, None)

    @property
    def portal(self) -> anyio.from_thread.BlockingPortal:
        if self._portal is None:
            raise PluginRuntimeError("the webassembly runtime has stopped", reason="NotRunning")
        return self._portal

    def deadline_ticks(self, timeout_seconds: float) -> int:
        # +1: the tick in progress may be almost over when the call starts.
        return max(1, math.ceil(timeout_seconds / self.tick_seconds)) + 1

    def compiled_modules(self) -> int:
        return len(self._modules)

    def compile(self, data: bytes, digest: str, *, what: str) -> wasmtime.Module:
        """Compile ``data`` (blocking), or return the module compiled before for ``digest``."""
        with self._modules_lock:
            cached = self._modules.get(digest)
        if cached is not None:
            return cached
        try:
            module = wasmtime.Module(self._engine, data)
        except wasmtime.WasmtimeError as exc:
            raise PluginLoadError(
                f"{what} is not a valid WebAssembly module: {exc}", reason="InvalidModule") from exc
        with self._modules_lock:
            return self._modules.setdefault(digest, module)

    async def load(self, request: LoadRequest) -> WasmPluginInstance:
        if not self.running:
            raise PluginLoadError(
                "the webassembly runtime is not running: use it inside 'async with WasmRuntime()'")
        path = _entry_path(request)
        data = await anyio.to_thread.run_sync(_read_file, path)
        # The bytes that were checked are the bytes that are compiled: no second read.
        digest = _verify(data, request.checksum, what=str(path))
        module = await anyio.to_thread.run_sync(
            lambda: self.compile(data, digest, what=str(path)))
        optional = check_module_abi(module, what=str(path))
        instance = WasmPluginInstance(self, request, module, digest, path, optional)
        self._instances.add(instance)
        try:
            instance.check_wasi_imports()
            await instance._first_store()
        except BaseException:
            instance._worker.close()
            raise
        return instance


def _entry_path(request: LoadRequest) -> Path:
    base = request.plugin_dir.resolve()
    path = (base / request.entry_point).resolve()
    if not path.is_relative_to(base):
        raise EntryPointNotFoundError(
            f"spec.entryPoint {request.entry_point!r} of plugin {request.name} resolves outside "
            f"its plugin directory {base}; use a path relative to that directory")
    if not path.is_file():
        raise EntryPointNotFoundError(
            f"spec.entryPoint {request.entry_point!r} of plugin {request.name}: {path} does not "
            "exist; build the plugin (make plugins) or fix the entry point")
    return path


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PluginLoadError(f"cannot read {path}: {exc.strerror}") from exc


class _Store:
    """One live wasmtime store with its instance's exports."""

    def __init__(self, store: wasmtime.Store, exports: Mapping[str, Any]) -> None:
        self.store = store
        self.memory: wasmtime.Memory = exports["memory"]
        self.alloc: wasmtime.Func = exports["alloc"]
        self.dealloc: wasmtime.Func = exports["dealloc"]
        self.call: wasmtime.Func = exports["call"]
        self.health: wasmtime.Func | None = exports.get("health")
        self.init: wasmtime.Func | None = exports.get("init")


class WasmPluginInstance:
    """One loaded WebAssembly plugin (see the module docstring for the life of a store)."""

    def __init__(self, runtime: WasmRuntime, request: LoadRequest, module: wasmtime.Module,
                 digest: str, path: Path, optional_exports: set[str]) -> None:
        self._runtime = runtime
        self._request = request
        self._module = module
        self._digest = digest
        self._path = path
        self._optional = optional_exports
        self._uses_wasi = any(i.module == WASI_MODULE for i in module.imports)
        self._linker = self._make_linker()
        # fast_acquire: an uncontended call does not pay an event-loop round trip.
        self._lock = anyio.Lock(fast_acquire=True)
        self._live: _Store | None = None
        self._config: bytes | None = None  # last config ``init`` accepted, replayed after traps
        self._state = InstanceState.LOADED
        self._broken: PluginError | None = None
        self._exit_told = False
        self._worker = _Worker(request.name)
        # Inline only where epoch interruption bounds everything the guest can do.
        self._inline = runtime.inline_calls and not self._uses_wasi
        # When the call running now must end (monotonic seconds): poll_oneoff sleeps to it.
        self._call_deadline = math.inf
        self._monotonic_origin = time.monotonic()  # of the live store's WASI clock
        self._logs: list[PluginLogRecord] = []
        self._logs_dropped = 0
        self._line_buffers: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        self.calls = 0
        self.traps = 0
        self.reinstantiations = 0
        self.fuel_last_call = 0
        self.fuel_consumed_total = 0
        self.memory_bytes = 0
        self.abandoned_calls = 0
        self._last_trap: MfxError = MfxError("no trap yet")

    @property
    def memory_limit_bytes(self) -> int:
        """``limits.memory_bytes``, or the default cap when the manifest sets none."""
        limit = self._request.limits.memory_bytes
        return limit if limit is not None else DEFAULT_MEMORY_BYTES

    def check_wasi_imports(self) -> None:
        """Raise ``AbiMismatchError`` for WASI imports this wasmtime does not define (or
        defines with another type): found before instantiation, so the load fails as
        permanently as any other ABI mismatch, not as a retryable link error."""
        if not self._uses_wasi:
            return
        store = wasmtime.Store(self._runtime.engine)
        problems: list[str] = []
        for imp in self._module.imports:
            if imp.module != WASI_MODULE:
                continue
            name = imp.name or ""
            try:
                defined = self._linker.get(store, WASI_MODULE, name)
            except wasmtime.WasmtimeError:
                problems.append(f"{WASI_MODULE}::{name} is not a WASI preview 1 function")
                continue
            if (isinstance(imp.type, wasmtime.FuncType) and isinstance(defined, wasmtime.Func)
                    and _signature(imp.type) != _signature(defined.type(store))):
                problems.append(f"{WASI_MODULE}::{name} must be a function "
                                f"{_fmt_sig(_signature(defined.type(store)))}")
        if problems:
            raise AbiMismatchError(
                f"{self._path} does not follow the mfx WebAssembly ABI "
                "(plugins/include/mfx_wasm_abi.md): " + "; ".join(problems))

    # --- the PluginInstance protocol ---------------------------------------------------

    @property
    def name(self) -> str:
        return self._request.name

    @property
    def state(self) -> InstanceState:
        return self._state

    @property
    def details(self) -> dict[str, Any]:
        return {
            "module": str(self._path),
            "digest": self._digest,
            "state": str(self._state),
            "calls": self.calls,
            "traps": self.traps,
            "reinstantiations": self.reinstantiations,
            "fuelLastCall": self.fuel_last_call,
            "fuelConsumedTotal": self.fuel_consumed_total,
            "memoryBytes": self.memory_bytes,
            "memoryLimitBytes": self.memory_limit_bytes,
            "inlineCalls": self._inline,
            "abandonedCalls": self.abandoned_calls,
        }

    async def initialize(self, config: Mapping[str, Any]) -> None:
        await self._configure(config)

    async def update_config(self, config: Mapping[str, Any]) -> None:
        await self._configure(config)

    async def start(self) -> None:
        if self._state in (InstanceState.BROKEN, InstanceState.CLEANED_UP):
            self._check_usable()
        self._state = InstanceState.RUNNING

    async def health(self) -> None:
        await self._locked(self._health_sync)

    async def call(self, method: str, params: Any = None) -> Any:
        try:
            payload = orjson.dumps(params)
        except TypeError as exc:
            raise ProtocolError(
                f"{self.name}.{method}: params are not JSON-serialisable: {exc}") from exc
        limit = self._request.limits.max_message_bytes
        if len(payload) > limit:
            raise ProtocolError(
                f"{self.name}.{method}: request of {len(payload)} bytes exceeds "
                f"maxMessageSize ({limit} bytes)")
        raw = await self._locked(self._call_sync, method.encode(), payload)
        return self._decode(method, raw)

    async def stop(self) -> None:
        if self._state in (InstanceState.LOADED, InstanceState.RUNNING):
            self._state = InstanceState.STOPPED

    async def cleanup(self) -> None:
        async with self._lock:
            self._live = None
            self._state = InstanceState.CLEANED_UP
            self._worker.close()

    # --- async plumbing ------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._state is InstanceState.BROKEN:
            raise PluginCrashedError(
                f"plugin {self.name} is broken: {self._broken}; it must be reloaded")
        if self._state in (InstanceState.STOPPED, InstanceState.CLEANED_UP):
            raise PluginRuntimeError(
                f"plugin {self.name} is {self._state.value.lower()}; start it again to call it",
                reason="NotRunning")
        if not self._runtime.running:
            raise PluginRuntimeError(
                f"the webassembly runtime of plugin {self.name} has stopped", reason="NotRunning")

    async def _first_store(self) -> None:
        if self._inline:
            self._instantiate_first()
            return
        try:
            await self._in_thread("instantiate", self._instantiate_first)
        except PluginTimeoutError as exc:
            raise PluginLoadError(f"cannot instantiate {self._path}: {exc}", reason=exc.reason) from exc

    async def _in_thread(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the plugin's thread; ``PluginTimeoutError`` at the deadline (plus
        grace) whatever the guest is doing, and then the store is given up."""
        timeout = self._request.limits.timeout_seconds
        finished, value = await self._worker.run(
            self._runtime.portal, timeout + self._runtime.deadline_grace_seconds, fn, *args)
        if finished:
            return value  # type: ignore[return-value]
        error = PluginTimeoutError(
            f"{self.name}.{what} did not return within its deadline of {timeout:g}s "
            "(spec.resources.limits.timeout); it is blocked outside WebAssembly (in a host or "
            "WASI call), where interruption cannot reach it, so the instance was abandoned")
        self._abandon(error)
        raise error

    def _abandon(self, error: PluginError) -> None:
        """Leave the store to the thread stuck in it: nothing here touches it again."""
        self.abandoned_calls += 1
        self._live = None
        self._break(error)
        # A fresh thread would be needed for more calls; a broken instance takes none.
        self._worker.close()

    def _break(self, error: PluginError) -> None:
        if self._state is not InstanceState.CLEANED_UP:
            self._state = InstanceState.BROKEN
        self._broken = self._broken or error

    async def _locked(self, fn: Callable[..., T], *args: Any) -> T:
        self._check_usable()
        if self._inline:
            # Nothing awaits between here and the end of the call, so no other task can
            # reach the store meanwhile: the lock is not needed.
            try:
                return fn(*args)
            finally:
                if self._live is None and self._state is not InstanceState.BROKEN:
                    self._replace_store()
                self._after_call()
        async with self._lock:
            self._check_usable()
            try:
                return await self._in_thread(_what(fn, args), fn, *args)
            finally:
                # After a trap: a fresh store at once, with a deadline of its own.
                if self._live is None and self._state is not InstanceState.BROKEN:
                    with contextlib.suppress(PluginTimeoutError):
                        await self._in_thread("instantiate", self._replace_store)
                self._after_call()

    def _after_call(self) -> None:
        # Logs are handed over on the caller's thread, after the wasm has returned.
        self._flush_logs()
        if self._broken is not None and not self._exit_told:
            self._exit_told = True
            self._request.on_exit(self._broken)

    async def _configure(self, config: Mapping[str, Any]) -> None:
        try:
            payload = orjson.dumps(dict(config))
        except TypeError as exc:
            raise PluginInitError(f"{self.name}: config is not JSON-serialisable: {exc}") from exc
        await self._locked(self._init_sync, payload)

    def _decode(self, method: str, raw: bytes) -> Any:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ProtocolError(
                f"{self.name}.{method} returned invalid JSON ({exc}); first bytes: {raw[:80]!r}. "
                "The response must be one UTF-8 JSON document (see mfx_wasm_abi.md)") from exc
        if isinstance(value, dict) and set(value) == {"error"} and isinstance(value["error"], dict):
            err = value["error"]
            error = PluginRuntimeError(
                f"{self.name}.{method} failed: {err.get('type', 'Error')}: "
                f"{err.get('message', '')}")
            error.plugin_error_type = str(err.get("type", "Error"))  # type: ignore[attr-defined]
            raise error
        return value

    # --- logging (called on the worker thread, delivered on the caller's) ----------------

    def _emit(self, level: LogLevel, message: str, stream: str) -> None:
        if len(self._logs) >= MAX_LOG_RECORDS_PER_CALL:
            self._logs_dropped += 1
            return
        self._logs.append(PluginLogRecord(self.name, level, message, stream=stream))

    def _flush_logs(self) -> None:
        for stream, buffer in self._line_buffers.items():
            if buffer:
                self._emit(LogLevel.INFO, buffer.decode("utf-8", "replace"), stream)
                buffer.clear()
        logs, self._logs = self._logs, []
        if self._logs_dropped:
            logs.append(PluginLogRecord(
                self.name, LogLevel.WARNING,
                f"{self._logs_dropped} log records dropped (more than "
                f"{MAX_LOG_RECORDS_PER_CALL} in one call)", stream="controller"))
            self._logs_dropped = 0
        for record in logs:
            try:
                self._request.log(record)
            except Exception:  # noqa: BLE001 - a broken log sink must not fail the call
                pass

    def _host_log(self, caller: wasmtime.Caller, level: int, ptr: int, length: int) -> None:
        memory = caller.get("memory")
        if not isinstance(memory, wasmtime.Memory):
            raise wasmtime.Trap("mfx::log called by a module without an exported memory")
        if ptr < 0 or length < 0 or ptr + length > memory.data_len(caller):
            raise wasmtime.Trap(f"mfx::log: message at {ptr}+{length} is outside linear memory")
        data = bytes(memory.read(caller, ptr, ptr + min(length, MAX_LOG_MESSAGE_BYTES)))
        self._emit(_LOG_LEVELS.get(level, LogLevel.INFO), data.decode("utf-8", "replace"), "wasm")

    def _poll_oneoff(self, caller: wasmtime.Caller, subs_ptr: int, events_ptr: int,
                     count: int, count_ptr: int) -> int:
        """WASI ``poll_oneoff`` as mfx serves it: clock subscriptions only (the sandbox has
        no sockets and no stdin to wait for: descriptor subscriptions get ``ENOTSUP`` events
        at once). A sleep that would end past the call's deadline fails the call now, with
        ``PluginTimeoutError``, instead of sleeping through it on the plugin's thread."""
        memory = caller.get("memory")
        if not isinstance(memory, wasmtime.Memory):
            return _ERRNO_FAULT
        size = memory.data_len(caller)
        if count <= 0:
            return _ERRNO_INVAL
        end = subs_ptr + count * _SUBSCRIPTION.size
        if (subs_ptr < 0 or events_ptr < 0 or end > size or count_ptr < 0 or count_ptr + 4 > size
                or events_ptr + count * _EVENT.size > size):
            return _ERRNO_FAULT
        raw = bytes(memory.read(caller, subs_ptr, end))
        subs = [_SUBSCRIPTION.unpack_from(raw, i * _SUBSCRIPTION.size) for i in range(count)]
        events = [(userdata, _ERRNO_NOTSUP, tag) for userdata, tag, *_ in subs
                  if tag != _EVENTTYPE_CLOCK]
        if not events:
            waits = [(userdata, _clock_wait(clock, timeout, flags, self._monotonic_origin))
                     for userdata, _tag, clock, timeout, _precision, flags in subs]
            soonest = min(wait for _, wait in waits)
            left = self._call_deadline - time.monotonic()
            if soonest > left:
                raise PluginTimeoutError(
                    f"{self.name}: poll_oneoff asked to sleep {soonest:g}s with {max(left, 0):g}s "
                    f"left of its deadline of {self._request.limits.timeout_seconds:g}s "
                    "(spec.resources.limits.timeout)")
            time.sleep(soonest)
            events = [(u, _ERRNO_SUCCESS, _EVENTTYPE_CLOCK) for u, wait in waits if wait <= soonest]
        out = b"".join(_EVENT.pack(*event) for event in events)
        memory.write(caller, out, events_ptr)
        memory.write(caller, struct.pack("<I", len(events)), count_ptr)
        return _ERRNO_SUCCESS

    def _output(self, stream: str) -> Callable[[bytes], None]:
        def write(data: bytes) -> None:
            buffer = self._line_buffers[stream]
            buffer.extend(data)
            while (end := buffer.find(b"\n")) >= 0:
                line = bytes(buffer[:end])
                del buffer[: end + 1]
                self._emit(LogLevel.INFO, line.decode("utf-8", "replace"), stream)
            if len(buffer) > MAX_LOG_MESSAGE_BYTES:
                self._emit(LogLevel.INFO, buffer.decode("utf-8", "replace"), stream)
                buffer.clear()
        return write

    # --- stores (worker thread) ----------------------------------------------------------

    def _make_linker(self) -> wasmtime.Linker:
        linker = wasmtime.Linker(self._runtime.engine)
        i32 = wasmtime.ValType.i32()
        if self._uses_wasi:
            linker.define_wasi()
            linker.allow_shadowing = True
            linker.define_func(WASI_MODULE, "poll_oneoff", wasmtime.FuncType([i32] * 4, [i32]),
                               self._poll_oneoff, access_caller=True)
            linker.allow_shadowing = False
        linker.define_func(HOST_MODULE, "log", wasmtime.FuncType([i32, i32, i32], []),
                           self._host_log, access_caller=True)
        return linker

    def _wasi_config(self) -> wasmtime.WasiConfig:
        wasi = wasmtime.WasiConfig()
        wasi.argv = [self.name]
        wasi.env = [(k, v) for k, v in self._request.env.items()]  # nothing inherited
        for allowed in self._request.allowed_paths:
            host = str(allowed.path)
            if not allowed.path.is_dir():
                raise PluginLoadError(
                    f"spec.security.allowedPaths: {host} is not a directory; WebAssembly "
                    "plugins can only be given directories", reason="InvalidAllowedPath")
            # The guest sees each directory under its host path.
            wasi.preopen_dir(host, host, allowed.writable)
        wasi.stdout_custom = self._output("stdout")
        wasi.stderr_custom = self._output("stderr")
        return wasi

    def _arm(self, store: wasmtime.Store) -> int:
        """Give the store this call's fuel and deadline; return the fuel given."""
        limits = self._request.limits
        fuel = limits.fuel if limits.fuel is not None else UNLIMITED_FUEL
        store.set_fuel(fuel)
        store.set_epoch_deadline(self._runtime.deadline_ticks(limits.timeout_seconds))
        self._call_deadline = time.monotonic() + limits.timeout_seconds
        return fuel

    def _account(self, store: wasmtime.Store, given: int, *, exhausted: bool = False,
                 is_call: bool = True) -> None:
        used = given if exhausted else max(0, given - store.get_fuel())
        if is_call:
            self.fuel_last_call = used
        self.fuel_consumed_total += used
        if self._runtime.metrics is not None and used:
            self._runtime.metrics.plugin_wasm_fuel_consumed_total.labels(self.name).inc(used)

    def _new_store(self) -> _Store:
        store = wasmtime.Store(self._runtime.engine)
        store.set_limits(memory_size=self.memory_limit_bytes)
        if self._uses_wasi:
            wasi = self._wasi_config()
            # The guest's monotonic clock counts from its WASI context's creation.
            self._monotonic_origin = time.monotonic()
            store.set_wasi(wasi)
        given = self._arm(store)
        try:
            instance = self._linker.instantiate(store, self._module)
            exports = instance.exports(store)
            live = _Store(store, {name: exports[name] for name in
                                  (*REQUIRED_EXPORTS, *self._optional)})
            reactor_init = exports.get("_initialize")
            if isinstance(reactor_init, wasmtime.Func):
                reactor_init(store)
            if self._config is not None and live.init is not None:
                self._call_init(live, self._config)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            self._account(store, given, exhausted=_is_out_of_fuel(exc), is_call=False)
            raise self._translate(exc, store, None, "instantiate") from exc
        self._account(store, given, is_call=False)
        self.memory_bytes = live.memory.data_len(store)
        return live

    def _instantiate_first(self) -> None:
        try:
            self._live = self._new_store()
        except PluginError as exc:
            raise PluginLoadError(
                f"cannot instantiate {self._path}: {exc}", reason=exc.reason) from exc

    def _ensure_store(self) -> _Store:
        if self._live is None:
            self._live = self._new_store()
        return self._live

    def _poison(self, exc: MfxError) -> None:
        """Drop the trapped store; the caller instantiates a fresh one (``_replace_store``)."""
        self.traps += 1
        self._live = None
        self._last_trap = exc

    def _replace_store(self) -> None:
        """A fresh store after a trap; the instance is broken when even that fails."""
        try:
            fresh = self._new_store()
        except PluginError as again:
            self._break(PluginCrashedError(
                f"a fresh store could not be instantiated after a trap "
                f"({self._last_trap.reason}): {again}"))
            return
        if self._state is not InstanceState.BROKEN:  # not abandoned meanwhile
            self._live = fresh
            self.reinstantiations += 1

    def _guarded(self, what: str, fn: Callable[[_Store], T]) -> T:
        """Run ``fn`` on the live store with this call's limits; translate traps."""
        live = self._ensure_store()
        store = live.store
        given = self._arm(store)
        try:
            result = fn(live)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            self._account(store, given, exhausted=_is_out_of_fuel(exc))
            error = self._translate(exc, store, live.memory, what)
            self._poison(error)
            raise error from exc
        except (MemoryLimitExceededError, ProtocolError, PluginTimeoutError) as error:
            # The module broke the ABI mid-call, or a host call ended it: its state is suspect.
            self._account(store, given)
            self._poison(error)
            raise
        self._account(store, given)
        return result

    def _call_init(self, live: _Store, config: bytes) -> None:
        assert live.init is not None
        ptr = self._put(live, config)
        status = live.init(live.store, ptr, len(config))
        if ptr:
            live.dealloc(live.store, ptr, len(config))
        if status != 0:
            raise PluginInitError(
                f"{self.name}: init returned {status} (non-zero: config rejected); see the "
                "plugin's log for why", reason="InitializeFailed")

    def _init_sync(self, config: bytes) -> None:
        live = self._ensure_store()
        if live.init is not None:
            self._guarded("init", lambda live: self._call_init(live, config))
        self._config = config

    def _health_sync(self) -> None:
        def probe(live: _Store) -> None:
            if live.health is None:
                return  # a store that instantiated and is not poisoned is as healthy as it gets
            status = live.health(live.store)
            self.memory_bytes = live.memory.data_len(live.store)
            if status != 0:
                raise PluginRuntimeError(
                    f"{self.name}: health() returned {status} (0 means healthy)",
                    reason="Unhealthy")
        self._guarded("health", probe)

    def _put(self, live: _Store, data: bytes) -> int:
        if not data:
            return 0
        ptr = live.alloc(live.store, len(data))
        size = live.memory.data_len(live.store)
        if ptr == 0 or ptr < 0 or ptr + len(data) > size:
            limit = self.memory_limit_bytes
            if ptr == 0 and size + WASM_PAGE > limit:
                raise MemoryLimitExceededError(
                    f"{self.name}: alloc({len(data)}) failed with linear memory at {size} bytes "
                    f"(limit {limit}); raise spec.resources.limits.memory")
            raise ProtocolError(
                f"{self.name}: alloc({len(data)}) returned {ptr}, outside linear memory "
                f"({size} bytes)")
        live.memory.write(live.store, data, ptr)
        return ptr

    def _call_sync(self, method: bytes, payload: bytes) -> bytes:
        self.calls += 1

        def invoke(live: _Store) -> bytes:
            store = live.store
            # One buffer for method and params: one alloc, one write, one dealloc.
            request = method + payload
            ptr = self._put(live, request)
            packed = live.call(store, ptr, len(method), ptr + len(method), len(payload))
            packed &= 0xFFFF_FFFF_FFFF_FFFF
            out_ptr, out_len = packed >> 32, packed & 0xFFFF_FFFF
            size = live.memory.data_len(store)
            if out_ptr + out_len > size:
                raise ProtocolError(
                    f"{self.name}.{method.decode(errors='replace')}: call returned a response at "
                    f"{out_ptr}+{out_len}, outside linear memory ({size} bytes)")
            limit = self._request.limits.max_message_bytes
            if out_len > limit:
                raise ProtocolError(
                    f"{self.name}.{method.decode(errors='replace')}: response of {out_len} bytes "
                    f"exceeds maxMessageSize ({limit} bytes)")
            out = bytes(live.memory.read(store, out_ptr, out_ptr + out_len))
            if out_len:
                live.dealloc(store, out_ptr, out_len)
            live.dealloc(store, ptr, len(request))
            self.memory_bytes = size
            return out

        return self._guarded(method.decode(errors="replace"), invoke)

    def _translate(self, exc: Exception, store: wasmtime.Store, memory: wasmtime.Memory | None,
                   what: str) -> PluginError:
        limits = self._request.limits
        where = f"{self.name}.{what}"
        text = str(exc)
        code = exc.trap_code if isinstance(exc, wasmtime.Trap) else None
        if code is wasmtime.TrapCode.OUT_OF_FUEL:
            return OutOfFuelError(
                f"{where} ran out of fuel ({limits.fuel} units per call); raise "
                "spec.resources.limits.fuel or make the call cheaper")
        if code is wasmtime.TrapCode.INTERRUPT:
            return PluginTimeoutError(
                f"{where} exceeded its deadline of {limits.timeout_seconds:g}s "
                "(spec.resources.limits.timeout) and was interrupted")
        if isinstance(exc, wasmtime.ExitTrap):
            return PluginCrashedError(f"{where}: the module exited (proc_exit {exc.code})")
        memory_limit = self.memory_limit_bytes
        if memory is not None and memory.data_len(store) + WASM_PAGE > memory_limit:
            return MemoryLimitExceededError(
                f"{where} trapped with linear memory at its limit "
                f"({memory.data_len(store)} of {memory_limit} bytes: growth refused); "
                f"raise spec.resources.limits.memory. Trap: {text}")
        if "memory" in text and ("limit" in text or "maximum" in text or "exceeds" in text):
            return MemoryLimitExceededError(
                f"{where}: {text}; raise spec.resources.limits.memory "
                f"(now {memory_limit} bytes)")
        if isinstance(exc, wasmtime.Trap):
            return TrapError(f"{where} trapped: {text}")
        return TrapError(f"{where} failed in wasmtime: {text}")


def _clock_wait(clock: int, timeout_ns: int, flags: int, monotonic_origin: float) -> float:
    """Seconds a clock subscription waits. An absolute time is read on the realtime clock or
    on the store's monotonic clock (``monotonic_origin`` is its zero); on the CPU-time clocks
    it counts from now, the longest it can be."""
    if not flags & _CLOCK_ABSTIME:
        return timeout_ns / 1e9
    if clock == _CLOCK_REALTIME:
        return max(0.0, (timeout_ns - time.time_ns()) / 1e9)
    if clock == _CLOCK_MONOTONIC:
        return max(0.0, timeout_ns / 1e9 - (time.monotonic() - monotonic_origin))
    return timeout_ns / 1e9


def _what(fn: Callable[..., Any], args: tuple[Any, ...]) -> str:
    """What a job does, for messages: the method name of a call, else the export it runs."""
    if args and isinstance(args[0], bytes):
        return args[0].decode(errors="replace")
    return getattr(fn, "__name__", "call").strip("_").removesuffix("_sync")


def _is_out_of_fuel(exc: Exception) -> bool:
    return isinstance(exc, wasmtime.Trap) and exc.trap_code is wasmtime.TrapCode.OUT_OF_FUEL
