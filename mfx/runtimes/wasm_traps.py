"""What a wasmtime trap or error means for the caller: the one mfx error each becomes."""

from __future__ import annotations

import wasmtime

from mfx.errors import (
    MemoryLimitExceededError,
    OutOfFuelError,
    PluginCrashedError,
    PluginError,
    PluginTimeoutError,
    TrapError,
)
from mfx.runtimes.base import CallDeadline, Limits
from mfx.runtimes.wasm_marshalling import WASM_PAGE


def translate_trap(exc: Exception, store: wasmtime.Store, memory: wasmtime.Memory | None, *,
                   where: str, limits: Limits, deadline: CallDeadline, memory_limit: int) -> PluginError:
    """The error for ``exc`` raised while ``where`` (``plugin.method``) ran on ``store``."""
    text = str(exc)
    code = exc.trap_code if isinstance(exc, wasmtime.Trap) else None
    if code is wasmtime.TrapCode.OUT_OF_FUEL:
        return OutOfFuelError(
            f"{where} ran out of fuel ({limits.fuel} units per call); raise "
            "spec.resources.limits.fuel or make the call cheaper")
    if code is wasmtime.TrapCode.INTERRUPT:
        return PluginTimeoutError(
            f"{where} exceeded its deadline of {deadline.seconds:g}s ({deadline.field}) and was interrupted")
    if isinstance(exc, wasmtime.ExitTrap):
        return PluginCrashedError(f"{where}: the module exited (proc_exit {exc.code})")
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


def is_out_of_fuel(exc: Exception) -> bool:
    return isinstance(exc, wasmtime.Trap) and exc.trap_code is wasmtime.TrapCode.OUT_OF_FUEL
