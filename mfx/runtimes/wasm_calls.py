"""Calling a plugin's ABI exports and touching its linear memory at the cost of the C call.

wasmtime-py's ``Func.__call__`` asks wasmtime for the function's type, builds ``Val``
objects for every argument and result and unroots them, on every call; ``Memory.read`` and
``write`` ask for the memory's size and build ctypes arrays. For the five or six crossings
of one ABI call that is most of its cost. The exports of the mfx ABI take and return only
``i32``/``i64``, so their types are checked once, when a store is instantiated
(``TypedFunc``), and each call then goes through ``wasmtime_func_call_unchecked`` with one
preallocated argument array; memory is copied with one ``memmove``/``string_at`` from the
data pointer wasmtime gives for this access (memory can move when it grows, so it is asked
for every time).

Traps, wasmtime errors and exceptions raised by host functions (``mfx::log``, WASI) come out
exactly as ``Func.__call__`` raises them: ``wasmtime.Trap``, ``wasmtime.WasmtimeError``, or
the host function's own exception.

This uses wasmtime-py's ``_ffi`` bindings, which are not its public API; the runtime's tests
exercise every path through them, so a wasmtime upgrade that changes them fails there.
"""

from __future__ import annotations

import ctypes
from typing import Any

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime._func import maybe_raise_last_exn


def _kind(ty: wasmtime.ValType) -> str | None:
    """The ``wasmtime_val_raw_t`` field of an ``i32``/``i64``; None for any other type."""
    if ty == wasmtime.ValType.i32():
        return "i32"
    if ty == wasmtime.ValType.i64():
        return "i64"
    return None


class TypedFunc:
    """One export of ``i32``/``i64`` parameters and at most one such result, bound to a store."""

    __slots__ = ("_args", "_context", "_func", "_keep", "_params", "_result", "_width", "name")

    def __init__(self, store: wasmtime.Store, func: wasmtime.Func, name: str) -> None:
        ty = func.type(store)
        kinds = [_kind(t) for t in (*ty.params, *ty.results)]
        if None in kinds or len(ty.results) > 1:
            raise TypeError(f"{name}: only i32/i64 parameters and one i32/i64 result are supported")
        self.name = name
        self._params: tuple[str, ...] = tuple(kinds[: len(ty.params)])  # type: ignore[arg-type]
        self._result: str | None = kinds[-1] if ty.results else None
        self._width = max(len(ty.params), len(ty.results), 1)
        self._args = (ffi.wasmtime_val_raw_t * self._width)()
        self._keep = (store, func)  # the context and function below live as long as these
        self._context = store._context()
        self._func = ctypes.byref(func._func)

    def __call__(self, *args: int) -> Any:
        if len(args) != len(self._params):
            raise TypeError(f"{self.name}: expected {len(self._params)} arguments, got {len(args)}")
        raw = self._args
        for i, (value, kind) in enumerate(zip(args, self._params, strict=True)):
            setattr(raw[i], kind, value)
        trap = ctypes.POINTER(ffi.wasm_trap_t)()
        error = ffi.wasmtime_func_call_unchecked(self._context, self._func, raw, self._width,
                                                 ctypes.byref(trap))
        if error:
            maybe_raise_last_exn()
            raise wasmtime.WasmtimeError._from_ptr(error)
        if trap:
            trapped = wasmtime.Trap._from_ptr(trap)
            maybe_raise_last_exn()
            raise trapped
        return getattr(raw[0], self._result) if self._result is not None else None


class LinearMemory:
    """A store's exported memory: its size, and copies in and out of it."""

    __slots__ = ("_context", "_keep", "_memory", "exported")

    def __init__(self, store: wasmtime.Store, memory: wasmtime.Memory) -> None:
        self.exported = memory
        self._keep = store
        self._context = store._context()
        self._memory = ctypes.byref(memory._memory)

    def size(self) -> int:
        return int(ffi.wasmtime_memory_data_size(self._context, self._memory))

    def _base(self) -> int:
        return ctypes.cast(ffi.wasmtime_memory_data(self._context, self._memory), ctypes.c_void_p).value or 0

    def read(self, start: int, length: int) -> bytes:
        """``length`` bytes at ``start``. Checked here even where the caller checked already: a
        copy outside the memory would read the daemon's own memory, or end it."""
        if start < 0 or start + length > self.size():
            raise IndexError(f"{start}+{length} is outside linear memory ({self.size()} bytes)")
        return ctypes.string_at(self._base() + start, length) if length else b""

    def write(self, start: int, data: bytes) -> None:
        if start < 0 or start + len(data) > self.size():
            raise IndexError(f"{start}+{len(data)} is outside linear memory ({self.size()} bytes)")
        ctypes.memmove(self._base() + start, data, len(data))
