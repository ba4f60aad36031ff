"""The ``webassembly`` runtime: plugins compiled to WebAssembly, run by wasmtime.

Isolation comes from wasmtime, not from a process: every call gets a fuel budget
(``limits.fuel``) and a wall-clock deadline (``limits.timeout_seconds``, enforced with epoch
interruption: a ticker thread owned by the runtime bumps the engine epoch every
``tick_seconds``), linear memory is capped by the store limiter (``limits.memory_bytes``;
without it ``DEFAULT_MEMORY_BYTES``, 256 MiB, so a manifest that forgets the limit does not
hand a plugin the 4 GiB a 32-bit module can address),
and WASI sees only the directories of ``allowed_paths`` (read-only unless writable), only
the environment the manifest gives, and no sockets.

The calling convention is documented in ``plugins/include/mfx_wasm_abi.md``; the host checks
it in ``wasm_abi`` and passes bytes across it in ``wasm_marshalling``; the exports are called,
and memory copied, through ``wasm_calls`` (types checked once per store, then wasmtime's
unchecked C entry point: about a sixth of what wasmtime-py's ``Func.__call__`` costs).

Structure (each part in a module of its own):
- ``WasmRuntime`` (here) owns one ``wasmtime.Engine`` (fuel and epochs on), a cache of compiled
  modules keyed by the sha256 of their bytes (compile once per plugin version), and the epoch
  ticker thread, started with the first module and stopped with the runtime's ``async with``
  block.
- ``WasmPluginInstance`` (``wasm_instance``) owns one ``wasmtime.Store`` at a time and one thread of its own
  (a daemon thread, not anyio's shared worker pool, whose default limiter ``/metrics`` and
  the API need too): wasmtime calls block, so they run there, one at a time per store (an
  ``anyio.Lock``). A slow or stuck plugin therefore only ever holds its own thread
  (``call_thread``; the epoch ticker is in ``wasm_threads``).
- The default call path: the call runs on the plugin's thread while the caller waits for
  it on the event-loop thread for at most ``hold_loop_seconds`` (2 ms). A call that ends
  by then (nearly all of them) is answered without a round trip through the event loop,
  which would cost about as much again as a small call; one still running is waited for on
  the loop. So no guest, not even one spinning until its deadline or blocked in a WASI
  call, holds the event loop longer than ``hold_loop_seconds``, and every deadline below
  holds as it does for any call on the thread.
- Epoch interruption stops wasm code at the deadline, but not a guest blocked inside a
  host or WASI call (opening a FIFO, a long ``poll_oneoff``). So the caller also waits
  only ``timeout + deadline_grace_seconds``: past that it gets ``PluginTimeoutError``
  whatever the guest is doing, the store is abandoned to its thread (which ends when the
  host call returns, and touches nothing of the instance on the way out), the instance is
  broken and ``LoadRequest.on_exit`` is told, so the controller restarts the plugin on a
  fresh instance instead of reusing one in an unknown state.
- ``poll_oneoff`` is the host's own (``wasm_host``, beside ``mfx::log`` and the WASI sandbox): a clock subscription that would outlast the call's
  deadline fails the call at once (``PluginTimeoutError``) instead of sleeping through it,
  and shorter sleeps are served; subscriptions to descriptors are refused (``ENOTSUP``
  events: the sandbox has no sockets and no stdin to wait for).
- A trap leaves a store in an unknown state (half-written globals, leaked allocations), so
  the store is dropped and a fresh one is instantiated at once (``init`` is replayed with the
  last accepted config; the instantiation has a deadline of its own). A trap therefore
  fails one call, never the plugin; traps and re-instantiations are counted in
  ``details`` (what each trap becomes: ``wasm_traps``). Only when the fresh instantiation itself fails is the instance lost, and
  ``LoadRequest.on_exit`` is told.
- ``inline_calls`` runs calls on the event-loop thread, only for modules whose imports
  cannot wait (``mfx::log`` and the WASI calls that return at once: clocks, randomness,
  arguments, environment, stdout and stderr; ``wasm_abi.can_wait_in_host``), so that epoch
  interruption bounds everything they do; a module importing ``poll_oneoff``, ``fd_read``,
  ``path_open`` and the like stays on its thread. It is not the default because an inline
  guest spinning until its deadline holds the event loop for the whole deadline.
"""

from __future__ import annotations

import math
import threading
import weakref
from pathlib import Path
from typing import Self

import anyio
import wasmtime

from mfx.errors import EntryPointNotFoundError, PluginLoadError, SecurityError
from mfx.runtimes.base import LoadRequest, PluginType
from mfx.runtimes.verified_files import verify_bytes
from mfx.runtimes.wasm_abi import check_module_abi
from mfx.runtimes.wasm_instance import DEFAULT_MEMORY_BYTES, InstanceState, WasmPluginInstance
from mfx.runtimes.wasm_threads import EpochTicker
from observability.metrics import Metrics

__all__ = [
    "DEFAULT_MEMORY_BYTES",
    "InstanceState",
    "WasmPluginInstance",
    "WasmRuntime",
    "check_module_abi",
]


def _verify(data: bytes, checksum: str | None, *, what: str) -> str:
    """``verify_bytes`` with the file named in the message."""
    try:
        return verify_bytes(data, checksum)
    except SecurityError as exc:
        raise type(exc)(f"{what}: {exc}") from exc


class WasmRuntime:
    """Loads ``type: webassembly`` plugins. Use as ``async with WasmRuntime() as rt``.

    ``inline_calls=True`` runs calls on the caller's thread instead of the plugin's thread: it
    saves the thread hand-off (tens of µs) but blocks the event loop for as long as the call
    runs, up to its deadline. Meant for small, trusted, latency-bound plugins; modules that
    import a WASI call that can wait run on their thread regardless (it can block past any
    deadline).

    ``deadline_grace_seconds``: how long past a call's deadline the caller waits for the
    epoch interrupt to unwind before it gives the instance up as stuck.

    ``hold_loop_seconds``: how long the event-loop thread waits for a call on the plugin's
    thread before it leaves the wait to the event loop (0: always through the loop). The
    longest any call holds the loop on the default path.
    """

    type = PluginType.WEBASSEMBLY

    def __init__(self, *, metrics: Metrics | None = None, tick_seconds: float = 0.01,
                 inline_calls: bool = False, deadline_grace_seconds: float = 0.25,
                 hold_loop_seconds: float = 0.002) -> None:
        config = wasmtime.Config()
        config.consume_fuel = True
        config.epoch_interruption = True
        self._engine = wasmtime.Engine(config)
        self._modules: dict[str, wasmtime.Module] = {}
        self._modules_lock = threading.Lock()
        self._ticker: EpochTicker | None = None
        self._running = False
        self._instances: weakref.WeakSet[WasmPluginInstance] = weakref.WeakSet()
        self.metrics = metrics
        self.tick_seconds = tick_seconds
        self.inline_calls = inline_calls
        self.deadline_grace_seconds = deadline_grace_seconds
        self.hold_loop_seconds = hold_loop_seconds

    @property
    def engine(self) -> wasmtime.Engine:
        return self._engine

    @property
    def running(self) -> bool:
        return self._running

    async def __aenter__(self) -> Self:
        self._running = True
        return self

    def _ensure_ticker(self) -> None:
        # Started with the first module, not with the runtime: a daemon without WebAssembly
        # plugins should not wake a thread every tick for nothing.
        if self._ticker is None:
            self._ticker = EpochTicker(self._engine, self.tick_seconds)
            self._ticker.start()

    async def __aexit__(self, *exc_info: object) -> None:
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            await anyio.to_thread.run_sync(ticker.stop)
        for instance in list(self._instances):
            instance.close_thread()
        self._running = False

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
        self._ensure_ticker()
        instance = WasmPluginInstance(self, request, module, digest, path, optional)
        self._instances.add(instance)
        try:
            instance.check_wasi_imports()
            await instance.first_store()
        except BaseException:
            instance.close_thread()
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
