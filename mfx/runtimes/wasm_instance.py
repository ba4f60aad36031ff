"""One loaded WebAssembly plugin: its state, its store (replaced after a trap), and how a
call reaches it (on the plugin's thread, or inline) within its deadline.

See ``mfx.runtimes.wasm`` for the life of a store and why calls are bounded as they are.
"""

from __future__ import annotations

import contextlib
import enum
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import orjson
import wasmtime

from mfx.errors import (
    MemoryLimitExceededError,
    MfxError,
    PluginCrashedError,
    PluginError,
    PluginInitError,
    PluginLoadError,
    PluginRuntimeError,
    PluginTimeoutError,
    ProtocolError,
)
from mfx.runtimes.base import CallDeadline, LoadRequest
from mfx.runtimes.call_thread import PluginThread
from mfx.runtimes.wasm_abi import (
    REQUIRED_EXPORTS,
    LiveStore,
    can_wait_in_host,
    check_wasi_imports,
    uses_wasi,
)
from mfx.runtimes.wasm_host import HostFunctions
from mfx.runtimes.wasm_logs import CallLog
from mfx.runtimes.wasm_marshalling import call_init, call_method
from mfx.runtimes.wasm_traps import is_out_of_fuel, translate_trap

if TYPE_CHECKING:
    from mfx.runtimes.wasm import WasmRuntime

T = TypeVar("T")

# Fuel when the manifest sets no limit: the epoch deadline still bounds the call.
UNLIMITED_FUEL = 2**62
# Linear memory when the manifest sets no limit.
DEFAULT_MEMORY_BYTES = 256 * 1024 * 1024


class InstanceState(enum.StrEnum):
    LOADED = "Loaded"
    RUNNING = "Running"
    STOPPED = "Stopped"
    BROKEN = "Broken"  # a fresh store could not be instantiated after a trap
    CLEANED_UP = "CleanedUp"


class WasmPluginInstance:
    """One loaded WebAssembly plugin (see ``mfx.runtimes.wasm`` for the life of a store)."""

    def __init__(self, runtime: WasmRuntime, request: LoadRequest, module: wasmtime.Module,
                 digest: str, path: Path, optional_exports: set[str]) -> None:
        self._runtime = runtime
        self._request = request
        self._module = module
        self._digest = digest
        self._path = path
        self._optional = optional_exports
        self._uses_wasi = uses_wasi(module)
        self._log = CallLog(request.name, request.log)
        self._host = HostFunctions(request, self._log)
        self._linker = self._host.linker(runtime.engine, with_wasi=self._uses_wasi)
        # fast_acquire: an uncontended call does not pay an event-loop round trip.
        self._lock = anyio.Lock(fast_acquire=True)
        self._live: LiveStore | None = None
        self._config: bytes | None = None  # last config ``init`` accepted, replayed after traps
        self._state = InstanceState.LOADED
        self._broken: PluginError | None = None
        self._exit_told = False
        self._thread = PluginThread(request.name, "wasm")
        self._call_deadline = request.call_deadline()
        self._deadline = self._call_deadline  # of the call running now (calls take turns)
        # Inline only where epoch interruption bounds everything the guest can do.
        self._inline = runtime.inline_calls and not can_wait_in_host(module)
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
        """Raise ``AbiMismatchError`` for WASI imports this wasmtime does not define."""
        check_wasi_imports(self._module, self._linker, self._runtime.engine, path=self._path)

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
        # The guest is interrupted at the probe's own timeout, not the call timeout: waits
        # for a store are shielded, so a probe's cancellation could not cut this one short.
        await self._locked(self._health_sync, deadline=self._request.call_deadline(health=True))

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
            self._thread.close()
            if self._host.output is not None:
                self._host.output.close()

    def close_thread(self) -> None:
        """End the plugin's thread after the job it runs now (the runtime is ending)."""
        self._thread.close()

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

    async def first_store(self) -> None:
        """Instantiate the first store, within the call deadline (the load's last step)."""
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
        deadline = self._deadline
        finished, value = await self._thread.run(
            deadline.seconds + self._runtime.deadline_grace_seconds, self._runtime.hold_loop_seconds, fn, *args)
        if finished:
            return value  # type: ignore[return-value]
        error = PluginTimeoutError(
            f"{self.name}.{what} did not return within its deadline of {deadline.seconds:g}s "
            f"({deadline.field}); it is blocked outside WebAssembly (in a host or "
            "WASI call), where interruption cannot reach it, so the instance was abandoned")
        self._abandon(error)
        raise error

    def _abandon(self, error: PluginError) -> None:
        """Leave the store to the thread stuck in it: nothing here touches it again."""
        self.abandoned_calls += 1
        self._live = None
        self._break(error)
        # A fresh thread would be needed for more calls; a broken instance takes none.
        self._thread.close()

    def _break(self, error: PluginError) -> None:
        if self._state is not InstanceState.CLEANED_UP:
            self._state = InstanceState.BROKEN
        self._broken = self._broken or error

    async def _locked(self, fn: Callable[..., T], *args: Any, deadline: CallDeadline | None = None) -> T:
        """``fn(*args)`` with the store to itself, within ``deadline`` (the call timeout)."""
        self._check_usable()
        if self._inline:
            # Nothing awaits between here and the end of the call, so no other task can
            # reach the store meanwhile: the lock is not needed.
            self._deadline = deadline or self._call_deadline
            try:
                return fn(*args)
            finally:
                self._deadline = self._call_deadline
                if self._live is None and self._state is not InstanceState.BROKEN:
                    self._replace_store()
                self._after_call()
        async with self._lock:
            self._check_usable()
            self._deadline = deadline or self._call_deadline
            try:
                return await self._in_thread(_what(fn, args), fn, *args)
            finally:
                self._deadline = self._call_deadline
                # After a trap: a fresh store at once, with a deadline of its own.
                if self._live is None and self._state is not InstanceState.BROKEN:
                    with contextlib.suppress(PluginTimeoutError):
                        await self._in_thread("instantiate", self._replace_store)
                self._after_call()

    def _after_call(self) -> None:
        # Logs are handed over on the caller's thread, after the wasm has returned.
        if self._host.output is not None:
            self._host.output.collect()
        self._log.flush()
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

    # --- stores (the plugin's thread) ------------------------------------------------------

    def _arm(self, store: wasmtime.Store) -> int:
        """Give the store this call's fuel and deadline; return the fuel given."""
        limits = self._request.limits
        fuel = limits.fuel if limits.fuel is not None else UNLIMITED_FUEL
        store.set_fuel(fuel)
        store.set_epoch_deadline(self._runtime.deadline_ticks(self._deadline.seconds))
        self._host.arm(self._deadline)
        return fuel

    def _account(self, store: wasmtime.Store, given: int, *, exhausted: bool = False,
                 is_call: bool = True) -> None:
        used = given if exhausted else max(0, given - store.get_fuel())
        if is_call:
            self.fuel_last_call = used
        self.fuel_consumed_total += used
        if self._runtime.metrics is not None and used:
            self._runtime.metrics.plugin_wasm_fuel_consumed_total.labels(self.name).inc(used)

    def _translate(self, exc: Exception, store: wasmtime.Store, memory: wasmtime.Memory | None,
                   what: str) -> PluginError:
        return translate_trap(exc, store, memory, where=f"{self.name}.{what}", limits=self._request.limits,
                              deadline=self._deadline, memory_limit=self.memory_limit_bytes)

    def _new_store(self) -> LiveStore:
        store = wasmtime.Store(self._runtime.engine)
        store.set_limits(memory_size=self.memory_limit_bytes)
        if self._uses_wasi:
            wasi = self._host.wasi_config()
            # The guest's monotonic clock counts from its WASI context's creation.
            self._host.monotonic_origin = time.monotonic()
            store.set_wasi(wasi)
        given = self._arm(store)
        try:
            instance = self._linker.instantiate(store, self._module)
            exports = instance.exports(store)
            live = LiveStore(store, {name: exports[name] for name in
                                     (*REQUIRED_EXPORTS, *self._optional)})
            reactor_init = exports.get("_initialize")
            if isinstance(reactor_init, wasmtime.Func):
                reactor_init(store)
            if self._config is not None and live.init is not None:
                self._call_init(live, self._config)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            self._account(store, given, exhausted=is_out_of_fuel(exc), is_call=False)
            raise self._translate(exc, store, None, "instantiate") from exc
        self._account(store, given, is_call=False)
        self.memory_bytes = live.memory.size()
        return live

    def _instantiate_first(self) -> None:
        try:
            self._live = self._new_store()
        except PluginError as exc:
            raise PluginLoadError(
                f"cannot instantiate {self._path}: {exc}", reason=exc.reason) from exc

    def _ensure_store(self) -> LiveStore:
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

    def _guarded(self, what: str, fn: Callable[[LiveStore], T]) -> T:
        """Run ``fn`` on the live store with this call's limits; translate traps."""
        live = self._ensure_store()
        store = live.store
        given = self._arm(store)
        try:
            result = fn(live)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            self._account(store, given, exhausted=is_out_of_fuel(exc))
            error = self._translate(exc, store, live.memory.exported, what)
            self._poison(error)
            raise error from exc
        except (MemoryLimitExceededError, ProtocolError, PluginTimeoutError) as error:
            # The module broke the ABI mid-call, or a host call ended it: its state is suspect.
            self._account(store, given)
            self._poison(error)
            raise
        self._account(store, given)
        return result

    def _call_init(self, live: LiveStore, config: bytes) -> None:
        call_init(live, config, plugin=self.name, memory_limit=self.memory_limit_bytes)

    def _init_sync(self, config: bytes) -> None:
        live = self._ensure_store()
        if live.init is not None:
            self._guarded("init", lambda live: self._call_init(live, config))
        self._config = config

    def _health_sync(self) -> None:
        def probe(live: LiveStore) -> None:
            if live.health is None:
                return  # a store that instantiated and is not poisoned is as healthy as it gets
            status = live.health()
            self.memory_bytes = live.memory.size()
            if status != 0:
                raise PluginRuntimeError(
                    f"{self.name}: health() returned {status} (0 means healthy)",
                    reason="Unhealthy")
        self._guarded("health", probe)

    def _call_sync(self, method: bytes, payload: bytes) -> bytes:
        self.calls += 1

        def invoke(live: LiveStore) -> bytes:
            out, self.memory_bytes = call_method(
                live, method, payload, plugin=self.name, memory_limit=self.memory_limit_bytes,
                max_message_bytes=self._request.limits.max_message_bytes)
            return out

        return self._guarded(method.decode(errors="replace"), invoke)


def _what(fn: Callable[..., Any], args: tuple[Any, ...]) -> str:
    """What a job does, for messages: the method name of a call, else the export it runs."""
    if args and isinstance(args[0], bytes):
        return args[0].decode(errors="replace")
    return getattr(fn, "__name__", "call").strip("_").removesuffix("_sync")
