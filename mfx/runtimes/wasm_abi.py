"""The mfx WebAssembly ABI as the host checks it: the exports a module must have, the
imports the host provides, and the exports of one instantiated store.

The calling convention itself is documented in ``plugins/include/mfx_wasm_abi.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import wasmtime

from mfx.errors import AbiMismatchError
from mfx.runtimes.wasm_calls import LinearMemory, TypedFunc

WASI_MODULE = "wasi_snapshot_preview1"
HOST_MODULE = "mfx"

_I32 = "i32"
_I64 = "i64"

Signature = tuple[tuple[str, ...], tuple[str, ...]]

# name -> (params, results); "memory" is a memory export.
REQUIRED_EXPORTS: dict[str, Signature | None] = {
    "memory": None,
    "alloc": ((_I32,), (_I32,)),
    "dealloc": ((_I32, _I32), ()),
    "call": ((_I32, _I32, _I32, _I32), (_I64,)),
}
OPTIONAL_EXPORTS: dict[str, Signature] = {
    "health": ((), (_I32,)),
    "init": ((_I32, _I32), (_I32,)),
    "_initialize": ((), ()),  # WASI reactor convention: run once after instantiation
}
HOST_IMPORTS: dict[tuple[str, str], Signature] = {
    (HOST_MODULE, "log"): ((_I32, _I32, _I32), ()),
}


def signature(ty: wasmtime.FuncType) -> Signature:
    return tuple(str(p) for p in ty.params), tuple(str(r) for r in ty.results)


def format_signature(sig: Signature) -> str:
    params, results = sig
    return f"({', '.join(params)}) -> ({', '.join(results)})"


# WASI preview 1 calls that return without waiting: arguments, environment, clocks,
# randomness and descriptor bookkeeping. Any other may wait on a file, a FIFO or a timer
# (poll_oneoff, fd_read, path_open ...). fd_write reaches only stdout and stderr, which the
# host serves at once, unless the module can open files (path_open).
_WASI_NEVER_WAITS = frozenset({
    "args_get", "args_sizes_get", "environ_get", "environ_sizes_get", "clock_res_get",
    "clock_time_get", "random_get", "sched_yield", "proc_exit", "fd_close", "fd_fdstat_get",
    "fd_fdstat_set_flags", "fd_filestat_get", "fd_prestat_get", "fd_prestat_dir_name",
    "fd_seek", "fd_tell",
})


def uses_wasi(module: wasmtime.Module) -> bool:
    return any(i.module == WASI_MODULE for i in module.imports)


def can_wait_in_host(module: wasmtime.Module) -> bool:
    """Whether a call into ``module`` can wait inside a host call, where epoch interruption
    does not reach: it imports a WASI call that may wait (``mfx::log`` never does)."""
    wasi = {i.name or "" for i in module.imports if i.module == WASI_MODULE}
    never_waits = _WASI_NEVER_WAITS if "path_open" in wasi else _WASI_NEVER_WAITS | {"fd_write"}
    return bool(wasi - never_waits)


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
        elif not isinstance(ty, wasmtime.FuncType) or signature(ty) != sig:
            problems.append(f"export {name!r} must be a function {format_signature(sig)}")
    present: set[str] = set()
    for name, sig in OPTIONAL_EXPORTS.items():
        ty = exports.get(name)
        if ty is None:
            continue
        if not isinstance(ty, wasmtime.FuncType) or signature(ty) != sig:
            problems.append(f"optional export {name!r} must be a function {format_signature(sig)}")
        present.add(name)
    unknown: list[str] = []
    for imp in module.imports:
        if imp.module == WASI_MODULE:
            continue  # checked by the linker at instantiation (it knows every WASI name)
        name = imp.name or ""
        sig = HOST_IMPORTS.get((imp.module, name))
        if sig is None:
            unknown.append(f"{imp.module}::{name}")
        elif not isinstance(imp.type, wasmtime.FuncType) or signature(imp.type) != sig:
            problems.append(f"import {imp.module}::{name} must be a function {format_signature(sig)}")
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


def check_wasi_imports(module: wasmtime.Module, linker: wasmtime.Linker, engine: wasmtime.Engine,
                       *, path: Path) -> None:
    """Raise ``AbiMismatchError`` for WASI imports this wasmtime does not define (or
    defines with another type): found before instantiation, so the load fails as
    permanently as any other ABI mismatch, not as a retryable link error."""
    if not uses_wasi(module):
        return
    store = wasmtime.Store(engine)
    problems: list[str] = []
    for imp in module.imports:
        if imp.module != WASI_MODULE:
            continue
        name = imp.name or ""
        try:
            defined = linker.get(store, WASI_MODULE, name)
        except wasmtime.WasmtimeError:
            problems.append(f"{WASI_MODULE}::{name} is not a WASI preview 1 function")
            continue
        if (isinstance(imp.type, wasmtime.FuncType) and isinstance(defined, wasmtime.Func)
                and signature(imp.type) != signature(defined.type(store))):
            problems.append(f"{WASI_MODULE}::{name} must be a function "
                            f"{format_signature(signature(defined.type(store)))}")
    if problems:
        raise AbiMismatchError(
            f"{path} does not follow the mfx WebAssembly ABI "
            "(plugins/include/mfx_wasm_abi.md): " + "; ".join(problems))


class LiveStore:
    """One live wasmtime store with its instance's ABI exports, ready to call
    (``wasm_calls``: each export's type checked once here, not at every call)."""

    def __init__(self, store: wasmtime.Store, exports: Mapping[str, Any]) -> None:
        self.store = store
        self.memory = LinearMemory(store, exports["memory"])
        self.alloc = TypedFunc(store, exports["alloc"], "alloc")
        self.dealloc = TypedFunc(store, exports["dealloc"], "dealloc")
        self.call = TypedFunc(store, exports["call"], "call")
        self.health = _optional(store, exports, "health")
        self.init = _optional(store, exports, "init")


def _optional(store: wasmtime.Store, exports: Mapping[str, Any], name: str) -> TypedFunc | None:
    func = exports.get(name)
    return TypedFunc(store, func, name) if func is not None else None
