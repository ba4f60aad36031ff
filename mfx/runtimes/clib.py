"""In-process C-ABI plugins (``plugins/include/mfx_plugin.h``): ``entryPoint: lib/x.so``.

The library is never loaded from the plugin directory: its bytes are read once, checked
against ``LoadRequest.checksum`` and written to a private directory, and that copy is
``dlopen``ed (``verified_files.stage_verified``). Every load gets its own copy, so two
instances never share the library's globals.

Audio goes through :meth:`CLibraryInstance.process` (the AudioProcessor fast path): a plain
synchronous method the audio pipeline calls on its own thread with a numpy block, processed
in place with no copy. ``call("process", {...})`` does the same for generic callers.
"""

from __future__ import annotations

import _ctypes
import ctypes
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Self, TypeVar

import anyio
import numpy as np

from mfx.errors import (
    AbiMismatchError,
    EntryPointNotFoundError,
    InvalidConfigError,
    PluginInitError,
    PluginLoadError,
    PluginRuntimeError,
    PluginTimeoutError,
)
from mfx.runtimes.base import LoadRequest, PluginType, QuickHealthCheck
from mfx.runtimes.call_thread import HOLD_LOOP_SECONDS, PluginThread
from mfx.runtimes.verified_files import stage_verified

T = TypeVar("T")

ABI_VERSION = 1  # MFX_PLUGIN_ABI_VERSION in plugins/include/mfx_plugin.h
_ERR_LEN = 512
_FLOAT32 = np.dtype(np.float32)
_BYTE = ctypes.c_char

# How long a quick health check waits for the instance's lock: an audio block's process()
# ends well within it; anything longer is a call in flight that the usual probe waits for.
QUICK_LOCK_SECONDS = 0.002

_RETURN_CODES = {-1: "invalid argument", -2: "unsupported (e.g. too many channels)", -3: "config rejected"}

# name -> (restype, argtypes): the whole ABI; every symbol must be present.
_SYMBOLS: dict[str, tuple[Any, list[Any]]] = {
    "mfx_plugin_info": (ctypes.c_char_p, []),
    "mfx_plugin_abi_version": (ctypes.c_int, []),
    "mfx_plugin_init": (ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]),
    "mfx_plugin_configure": (
        ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]),
    "mfx_plugin_process": (
        ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int]),
    "mfx_plugin_health": (ctypes.c_int, [ctypes.c_void_p]),
    "mfx_plugin_shutdown": (None, [ctypes.c_void_p]),
}


def _config_json(name: str, config: Mapping[str, Any]) -> bytes:
    try:
        return json.dumps(dict(config), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidConfigError(f"{name}: spec.config is not plain JSON: {exc}") from exc


class _Library:
    """The ctypes view of one dlopened private copy; ``close`` unmaps it."""

    def __init__(self, name: str, path: Path) -> None:
        self.path = path
        try:
            self.cdll: ctypes.CDLL | None = ctypes.CDLL(str(path), mode=os.RTLD_NOW | os.RTLD_LOCAL)
        except OSError as exc:
            raise PluginLoadError(f"{name}: cannot load the shared library: {exc}") from exc
        self.fn: dict[str, Any] = {}
        for symbol, (restype, argtypes) in _SYMBOLS.items():
            try:
                fn = getattr(self.cdll, symbol)
            except AttributeError:
                self.close()
                # The same bytes will miss it on every attempt: permanent, as in every runtime.
                raise AbiMismatchError(
                    f"{name}: the library does not export {symbol}(); build it against "
                    "plugins/include/mfx_plugin.h (and check -fvisibility / MFX_EXPORT)",
                ) from None
            fn.restype = restype
            fn.argtypes = argtypes
            self.fn[symbol] = fn

    def close(self) -> None:
        # dlclose unmaps the code: any pointer still into it (a function object we kept, a
        # thread the library started, an atexit or TLS destructor it registered) would crash
        # the daemon afterwards. So: drop our function objects first, call only after the
        # instance's shutdown has returned and no call is in flight (the instance's lock),
        # and never load two instances from one mapping (each load has its own copy, so the
        # dlopen reference count is 1 and dlclose really unmaps).
        cdll, self.cdll = self.cdll, None
        self.fn = {}
        if cdll is not None:
            handle = cdll._handle
            del cdll
            _ctypes.dlclose(handle)


class CLibraryInstance:
    """One instance (``mfx_plugin_init`` handle) of a C-ABI plugin."""

    def __init__(self, request: LoadRequest, library: _Library, info: dict[str, Any],
                 on_cleanup: Callable[[CLibraryInstance], None]) -> None:
        self._request = request
        self._thread: PluginThread | None = None  # started with the first call
        self._lib = library
        self._info = info
        self._on_cleanup = on_cleanup
        self._handle: int | None = None
        # The ABI promises one thread per handle at a time: process() on the audio thread
        # and configure()/health() from the event loop's workers take turns here.
        self._lock = threading.Lock()
        self._process = library.fn["mfx_plugin_process"]

    @property
    def name(self) -> str:
        return self._request.name

    @property
    def details(self) -> dict[str, Any]:
        return {"library": str(self._lib.path), "info": dict(self._info),
                "initialized": self._handle is not None}

    async def initialize(self, config: Mapping[str, Any]) -> None:
        payload = _config_json(self.name, config)

        def init() -> None:
            err = ctypes.create_string_buffer(_ERR_LEN)
            with self._lock:
                self._require_loaded()
                if self._handle is not None:
                    self._lib.fn["mfx_plugin_shutdown"](self._handle)
                    self._handle = None
                handle = self._lib.fn["mfx_plugin_init"](payload, err, _ERR_LEN)
                if not handle:
                    raise PluginInitError(f"{self.name}: mfx_plugin_init failed: {err.value.decode(errors='replace')}")
                self._handle = handle

        await self._blocking("initialize", init, self._request.start_timeout_seconds)

    async def start(self) -> None:
        self._require_handle()

    async def health(self) -> None:
        def health() -> int:
            with self._lock:
                return self._health_code()

        self._check_health_code(await self._blocking("health", health))

    def quick_health(self) -> QuickHealthCheck:
        """The periodic probes' path (``QuickHealth``): no hand-off to the plugin's thread."""
        return self._health_here

    def _health_here(self) -> bool:
        """``mfx_plugin_health`` on the calling thread, unless a call holds the instance."""
        if not self._lock.acquire(timeout=QUICK_LOCK_SECONDS):
            return False  # a call in flight (a configure, a long process()): probed the usual way
        try:
            code = self._health_code()
        finally:
            self._lock.release()
        self._check_health_code(code)
        return True

    def _health_code(self) -> int:
        """What ``mfx_plugin_health`` returns; the caller holds the instance's lock."""
        self._require_loaded()
        return int(self._lib.fn["mfx_plugin_health"](self._require_handle()))

    def _check_health_code(self, code: int) -> None:
        if code != 0:
            raise PluginRuntimeError(f"{self.name}: mfx_plugin_health returned {code}", reason="Unhealthy")

    async def update_config(self, config: Mapping[str, Any]) -> None:
        payload = _config_json(self.name, config)

        def configure() -> None:
            err = ctypes.create_string_buffer(_ERR_LEN)
            with self._lock:
                code = self._lib.fn["mfx_plugin_configure"](self._require_handle(), payload, err, _ERR_LEN)
            if code != 0:
                raise InvalidConfigError(
                    f"{self.name}: spec.config rejected: {err.value.decode(errors='replace') or _describe(code)}"
                )

        await self._blocking("update_config", configure)

    def process(self, block: np.ndarray, sample_rate: int) -> np.ndarray:
        """The AudioProcessor fast path: process ``block`` in place and return it.

        ``block`` is interleaved audio shaped ``(frames, channels)`` (or ``(frames,)`` for
        mono). A C-contiguous, writeable float32 array is processed in place with no copy
        (pass the pipeline's own buffer); anything else is converted first, and the result
        is the converted array. Synchronous, no allocation beyond a tiny buffer view: call
        it from the audio thread, not from the event loop.
        """
        if block.dtype is not _FLOAT32:
            block = np.ascontiguousarray(block, dtype=np.float32)
        shape = block.shape
        if len(shape) == 2:
            frames, channels = shape
        elif len(shape) == 1:
            frames, channels = shape[0], 1
        else:
            raise PluginRuntimeError(f"{self.name}: process: expected a (frames, channels) block, got shape {shape}")
        if frames == 0 or channels == 0:
            return block
        try:
            # Exporting the buffer writable requires C-contiguous memory and pins it (no
            # resize) while the C code runs; cheaper than ndarray.ctypes.
            view = _BYTE.from_buffer(block)  # type: ignore[arg-type]
        except (TypeError, ValueError, BufferError):
            block = np.array(block, dtype=np.float32, order="C")
            view = _BYTE.from_buffer(block)  # type: ignore[arg-type]
        with self._lock:
            handle = self._handle
            if handle is None:
                raise PluginRuntimeError(f"{self.name}: process called before initialize or after stop",
                                         reason="NotInitialized")
            code = self._process(handle, ctypes.addressof(view), frames, channels, sample_rate)
        if code != 0:
            raise PluginRuntimeError(f"{self.name}: mfx_plugin_process returned {code} ({_describe(code)}) "
                                     f"for {frames} frames x {channels} channels at {sample_rate} Hz")
        return block

    async def call(self, method: str, params: Any = None) -> Any:
        """Generic calls: ``process`` and ``info``.

        ``process`` takes ``{"block": ndarray, "sampleRate": n}`` (returns the array) or
        JSON-friendly ``{"samples": [interleaved floats], "channels": c, "sampleRate": n}``
        (returns ``{"samples": [...]}``).
        """
        if method == "info":
            return dict(self._info)
        if method != "process":
            raise PluginRuntimeError(f"{self.name}: no method {method!r} (available: info, process)",
                                     reason="MethodNotFound")
        if not isinstance(params, Mapping) or "sampleRate" not in params:
            raise PluginRuntimeError(f"{self.name}: process expects params with 'sampleRate' and "
                                     "'block' or 'samples'+'channels'", reason="BadParams")
        rate = int(params["sampleRate"])
        if "block" in params:
            block = params["block"]
            return await self._blocking("process", lambda: self.process(block, rate))
        channels = int(params.get("channels", 1))
        samples = np.asarray(params.get("samples", []), dtype=np.float32).reshape(-1, channels)
        out = await self._blocking("process", lambda: self.process(samples, rate))
        return {"samples": out.reshape(-1).tolist()}

    async def stop(self) -> None:
        def shutdown() -> None:
            with self._lock:
                self._shutdown_handle()

        await self._blocking("stop", shutdown)

    async def cleanup(self) -> None:
        """Shut the handle down and unload the library, on the plugin's thread.

        A plugin still stuck in a call (its stop, bounded by the call timeout, did not get
        through) cannot be unloaded under that call: the unload is left queued behind it,
        to run when the call returns, and this raises ``PluginTimeoutError`` at once."""
        def teardown() -> None:
            with self._lock:
                self._shutdown_handle()
                self._process = None
                self._lib.close()

        with anyio.CancelScope(shield=True):
            self._lib.path.unlink(missing_ok=True)  # the loaded mapping stays valid
            self._on_cleanup(self)
            thread, self._thread = self._thread or PluginThread(self.name, "clib"), None
            busy = thread.busy_with()
            seconds = HOLD_LOOP_SECONDS if busy is not None else self._request.limits.timeout_seconds
            finished, _ = await thread.run(seconds, HOLD_LOOP_SECONDS, teardown, what="cleanup", keep=True)
            thread.close()  # the thread ends after the teardown, whenever that runs
            if not finished:
                busy = thread.busy_with() or busy or ("a call", 0.0)
                raise PluginTimeoutError(f"{self.name}: the plugin's thread has been in {busy[0]} for {busy[1]:.1f}s; "
                                         "the library is unloaded once that call returns")

    def _shutdown_handle(self) -> None:
        """``mfx_plugin_shutdown`` of the handle, if any; the caller holds the instance's lock."""
        handle, self._handle = self._handle, None
        if handle is not None and self._lib.cdll is not None:
            self._lib.fn["mfx_plugin_shutdown"](handle)

    def _require_loaded(self) -> None:
        if self._lib.cdll is None:
            raise PluginRuntimeError(f"{self.name}: the library has been unloaded", reason="Unloaded")

    def _require_handle(self) -> int:
        if self._handle is None:
            raise PluginRuntimeError(f"{self.name}: not initialized (or already stopped)", reason="NotInitialized")
        return self._handle

    async def _blocking(self, method: str, fn: Callable[[], T], seconds: float | None = None) -> T:
        """``fn()`` on this plugin's own thread, within ``seconds`` (the call timeout).

        A caller that stops waiting (a timeout, or a probe's own deadline cancelling it) leaves
        a call already running to the thread, as C code cannot be interrupted, and a call not
        started yet is never made. Later calls queue on the same thread behind it: a plugin
        stuck in its library holds one thread, however often it is probed."""
        seconds = self._request.limits.timeout_seconds if seconds is None else seconds
        if self._thread is None:
            self._thread = PluginThread(self.name, "clib")
        thread = self._thread
        finished, value = await thread.run(seconds, HOLD_LOOP_SECONDS, fn, shield=False, what=method)
        if finished:
            return value  # type: ignore[return-value]
        raise PluginTimeoutError(f"{self.name}: {method} did not return within {seconds:g}s{_stuck_in(thread, method)}")


def _stuck_in(thread: PluginThread, method: str) -> str:
    """Why a call did not return: what else the plugin's thread is in, and for how long."""
    busy = thread.busy_with()
    if busy is None or busy[0] == method:
        return ""
    return f" (it never started: the plugin's thread has been busy with {busy[0]} for {busy[1]:.1f}s)"


def _describe(code: int) -> str:
    return _RETURN_CODES.get(code, "error")


class CLibraryRuntime:
    """Loads C-ABI shared objects from verified private copies."""

    type = PluginType.DYNAMIC_LIBRARY

    def __init__(self, private_dir: Path | None = None) -> None:
        self._private_dir = private_dir
        self._owns_dir = False
        self._instances: set[CLibraryInstance] = set()

    async def __aenter__(self) -> Self:
        if self._private_dir is None:
            self._private_dir = Path(tempfile.mkdtemp(prefix="mfx-clib-"))
            self._owns_dir = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        with anyio.CancelScope(shield=True):
            for instance in list(self._instances):
                await instance.cleanup()
        if self._owns_dir and self._private_dir is not None:
            shutil.rmtree(self._private_dir, ignore_errors=True)
            self._private_dir = None

    async def load(self, request: LoadRequest) -> CLibraryInstance:
        if self._private_dir is None:
            raise RuntimeError("CLibraryRuntime.load() outside 'async with CLibraryRuntime()'")
        source = (request.plugin_dir / request.entry_point).resolve()
        if not source.is_file():
            raise EntryPointNotFoundError(
                f"{request.name}: spec.entryPoint {request.entry_point!r}: {source} does not exist; "
                "build the plugin (make plugins) or fix the path"
            )
        private_dir = self._private_dir
        return await anyio.to_thread.run_sync(self._load_blocking, request, source, private_dir)

    def _load_blocking(self, request: LoadRequest, source: Path, private_dir: Path) -> CLibraryInstance:
        staged = stage_verified(source, request.checksum, private_dir)
        try:
            library = _Library(request.name, staged)
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
        try:
            abi = int(library.fn["mfx_plugin_abi_version"]())
            if abi != ABI_VERSION:
                raise AbiMismatchError(
                    f"{request.name}: the library speaks plugin ABI {abi}, this mfx speaks {ABI_VERSION}; "
                    "rebuild it against this mfx's plugins/include/mfx_plugin.h"
                )
            raw = library.fn["mfx_plugin_info"]()
            try:
                info = json.loads(raw.decode()) if raw else {}
            except (UnicodeDecodeError, ValueError) as exc:
                raise AbiMismatchError(f"{request.name}: mfx_plugin_info() is not JSON: {raw!r}") from exc
            if not isinstance(info, dict) or info.get("abi", abi) != abi:
                raise AbiMismatchError(
                    f"{request.name}: mfx_plugin_info() says abi {info.get('abi') if isinstance(info, dict) else '?'} "
                    f"but mfx_plugin_abi_version() returns {abi}"
                )
        except BaseException:
            library.close()
            staged.unlink(missing_ok=True)
            raise
        instance = CLibraryInstance(request, library, info, self._instances.discard)
        self._instances.add(instance)
        return instance
