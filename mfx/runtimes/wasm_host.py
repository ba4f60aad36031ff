"""What the host gives a WebAssembly plugin to call: ``mfx::log``, the WASI sandbox (only
the manifest's directories and environment), and the host's own WASI ``poll_oneoff``.

``poll_oneoff`` is the host's so that a sleep cannot outlast the call's deadline: a clock
subscription that would end past it fails the call at once (``PluginTimeoutError``)
instead of sleeping through it on the plugin's thread, where epoch interruption cannot
reach; shorter sleeps are served. Subscriptions to descriptors get ``ENOTSUP`` events: the
sandbox has no sockets and no stdin to wait for.
"""

from __future__ import annotations

import math
import struct
import time

import wasmtime

from mfx.errors import PluginLoadError, PluginTimeoutError
from mfx.runtimes.base import CallDeadline, LoadRequest, LogLevel
from mfx.runtimes.wasm_abi import HOST_MODULE, WASI_MODULE
from mfx.runtimes.wasm_logs import MAX_LOG_MESSAGE_BYTES, CallLog, WasiOutputFiles

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


class HostFunctions:
    """The host functions of one plugin instance, with the call state they read.

    ``call_deadline`` (monotonic seconds) is when the call running now must end, set by the
    instance as it arms a call; ``monotonic_origin`` is the zero of the live store's WASI
    monotonic clock, set as the store's WASI context is made."""

    def __init__(self, request: LoadRequest, log: CallLog) -> None:
        self._request = request
        self._log = log
        self.call_deadline = math.inf
        self.deadline = request.call_deadline()  # of the call running now
        self.monotonic_origin = time.monotonic()
        self.output: WasiOutputFiles | None = None  # made with the first WASI context

    def arm(self, deadline: CallDeadline) -> None:
        """The call starting now must end within ``deadline``."""
        self.deadline = deadline
        self.call_deadline = time.monotonic() + deadline.seconds

    @property
    def _name(self) -> str:
        return self._request.name

    def linker(self, engine: wasmtime.Engine, *, with_wasi: bool) -> wasmtime.Linker:
        linker = wasmtime.Linker(engine)
        i32 = wasmtime.ValType.i32()
        if with_wasi:
            linker.define_wasi()
            linker.allow_shadowing = True
            linker.define_func(WASI_MODULE, "poll_oneoff", wasmtime.FuncType([i32] * 4, [i32]),
                               self.poll_oneoff, access_caller=True)
            linker.allow_shadowing = False
        linker.define_func(HOST_MODULE, "log", wasmtime.FuncType([i32, i32, i32], []),
                           self.log, access_caller=True)
        return linker

    def wasi_config(self) -> wasmtime.WasiConfig:
        wasi = wasmtime.WasiConfig()
        wasi.argv = [self._name]
        wasi.env = [(k, v) for k, v in self._request.env.items()]  # nothing inherited
        for allowed in self._request.allowed_paths:
            host = str(allowed.path)
            if not allowed.path.is_dir():
                raise PluginLoadError(
                    f"spec.security.allowedPaths: {host} is not a directory; WebAssembly "
                    "plugins can only be given directories", reason="InvalidAllowedPath")
            # The guest sees each directory under its host path.
            wasi.preopen_dir(host, host, allowed.writable)
        if self.output is None:
            self.output = WasiOutputFiles(self._log)
        self.output.configure(wasi)
        return wasi

    def log(self, caller: wasmtime.Caller, level: int, ptr: int, length: int) -> None:
        """``mfx::log(level, ptr, len)``."""
        memory = caller.get("memory")
        if not isinstance(memory, wasmtime.Memory):
            raise wasmtime.Trap("mfx::log called by a module without an exported memory")
        if ptr < 0 or length < 0 or ptr + length > memory.data_len(caller):
            raise wasmtime.Trap(f"mfx::log: message at {ptr}+{length} is outside linear memory")
        data = bytes(memory.read(caller, ptr, ptr + min(length, MAX_LOG_MESSAGE_BYTES)))
        self._log.emit(_LOG_LEVELS.get(level, LogLevel.INFO), data.decode("utf-8", "replace"), "wasm")

    def poll_oneoff(self, caller: wasmtime.Caller, subs_ptr: int, events_ptr: int,
                    count: int, count_ptr: int) -> int:
        """WASI ``poll_oneoff`` as mfx serves it (see the module docstring)."""
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
            waits = [(userdata, clock_wait(clock, timeout, flags, self.monotonic_origin))
                     for userdata, _tag, clock, timeout, _precision, flags in subs]
            soonest = min(wait for _, wait in waits)
            left = self.call_deadline - time.monotonic()
            if soonest > left:
                raise PluginTimeoutError(
                    f"{self._name}: poll_oneoff asked to sleep {soonest:g}s with {max(left, 0):g}s "
                    f"left of its deadline of {self.deadline.seconds:g}s ({self.deadline.field})")
            time.sleep(soonest)
            events = [(u, _ERRNO_SUCCESS, _EVENTTYPE_CLOCK) for u, wait in waits if wait <= soonest]
        out = b"".join(_EVENT.pack(*event) for event in events)
        memory.write(caller, out, events_ptr)
        memory.write(caller, struct.pack("<I", len(events)), count_ptr)
        return _ERRNO_SUCCESS


def clock_wait(clock: int, timeout_ns: int, flags: int, monotonic_origin: float) -> float:
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
