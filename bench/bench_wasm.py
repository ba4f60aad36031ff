"""WebAssembly call overhead: ``WasmPluginInstance.call`` (JSON in and out, fuel, deadline,
one call at a time per store) against the same ABI round trip done by hand with wasmtime
(alloc, write, call, read, dealloc) on the same module, engine settings and request bytes.

Module: ``plugins/now-playing`` (compiled from its WAT here), method ``format``. Variants:
the default path (the plugin's thread, its result taken on the caller's thread when the call
ends within ``hold_loop_seconds``), the plugin's thread with every result handed back through
the event loop (``hold_loop_seconds=0``), and ``inline_calls``. They are measured in
interleaved rounds so machine noise hits them alike; then the whole set again with the
caller's thread pinned to one CPU as ``mfx serve`` pins its event loop (mfx.cpu_affinity),
where the plugin's call thread starts on the caller's CPU.

The baseline the requirement names is the round trip through wasmtime-py's public API
(``Func.__call__``, ``Memory.read``/``write``). mfx calls the exports through wasmtime's
unchecked C entry point with types checked once per store (``mfx.runtimes.wasm_calls``),
which costs less than that API; so the same round trip done by hand that way is printed
too, as the physical limit the default path is measured against as well.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import anyio
import orjson
import wasmtime

from bench.common import Figure, median
from mfx import cpu_affinity
from mfx.cpu_affinity import CpuAffinity
from mfx.runtimes.base import Limits, LoadRequest, PluginType
from mfx.runtimes.wasm import WasmPluginInstance, WasmRuntime
from mfx.runtimes.wasm_abi import LiveStore

REPO = Path(__file__).resolve().parents[1]
TRACK = {"title": "Bohemian Rhapsody", "artist": "Queen", "position": 83.4, "duration": 354}
METHOD = b"format"
CALLS = 200
ROUNDS = 15


def _instantiate(module_bytes: bytes) -> tuple[wasmtime.Store, Any]:
    """A store (fuel and epochs on, as the runtime's engine has them) and the module's exports."""
    config = wasmtime.Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    engine = wasmtime.Engine(config)
    store = wasmtime.Store(engine)
    store.set_fuel(2**62)
    store.set_epoch_deadline(2**40)
    linker = wasmtime.Linker(engine)
    linker.define_func("mfx", "log", wasmtime.FuncType([wasmtime.ValType.i32()] * 3, []),
                       lambda *args: None)
    return store, linker.instantiate(store, wasmtime.Module(engine, module_bytes)).exports(store)


def _raw_store(module_bytes: bytes) -> tuple[Callable[[], bytes], Callable[[], object]]:
    """(full ABI round trip, bare ``call`` invocation) straight on wasmtime."""
    store, ex = _instantiate(module_bytes)
    memory, alloc, dealloc, call = ex["memory"], ex["alloc"], ex["dealloc"], ex["call"]
    payload = orjson.dumps(TRACK)
    request = METHOD + payload

    def round_trip() -> bytes:
        ptr = alloc(store, len(request))
        memory.write(store, request, ptr)
        packed = call(store, ptr, len(METHOD), ptr + len(METHOD), len(payload)) & 0xFFFF_FFFF_FFFF_FFFF
        out_ptr, out_len = packed >> 32, packed & 0xFFFF_FFFF
        out = bytes(memory.read(store, out_ptr, out_ptr + out_len))
        dealloc(store, out_ptr, out_len)
        dealloc(store, ptr, len(request))
        return out

    assert orjson.loads(round_trip())["line"].startswith("Queen - ")
    fixed = alloc(store, len(request))
    memory.write(store, request, fixed)
    return round_trip, lambda: call(store, fixed, len(METHOD), fixed + len(METHOD), len(payload))


def _typed_round_trip(module_bytes: bytes) -> Callable[[], bytes]:
    """The same round trip through the typed C calls mfx uses (no fuel or deadline upkeep)."""
    live = LiveStore(*_instantiate(module_bytes))
    payload = orjson.dumps(TRACK)
    request = METHOD + payload

    def round_trip() -> bytes:
        ptr = live.alloc(len(request))
        live.memory.write(ptr, request)
        packed = live.call(ptr, len(METHOD), ptr + len(METHOD), len(payload)) & 0xFFFF_FFFF_FFFF_FFFF
        out_ptr, out_len = packed >> 32, packed & 0xFFFF_FFFF
        out = live.memory.read(out_ptr, out_len)
        live.dealloc(out_ptr, out_len)
        live.dealloc(ptr, len(request))
        return out

    assert orjson.loads(round_trip())["line"].startswith("Queen - ")
    return round_trip


async def _load(stack: AsyncExitStack, plugin_dir: Path, runtime: WasmRuntime) -> WasmPluginInstance:
    runtime = await stack.enter_async_context(runtime)
    instance = await runtime.load(LoadRequest(
        name="now-playing", version="1.0.0", type=PluginType.WEBASSEMBLY,
        entry_point="now_playing.wasm", plugin_dir=plugin_dir, state_dir=plugin_dir,
        limits=Limits(fuel=1_000_000, memory_bytes=2 << 20, timeout_seconds=1.0)))
    await instance.initialize({})
    await instance.start()
    assert (await instance.call("format", TRACK))["line"].startswith("Queen - ")
    return instance


async def _measure(plugin_dir: Path, module_bytes: bytes) -> dict[str, float]:
    round_trip, bare = _raw_store(module_bytes)
    typed = _typed_round_trip(module_bytes)
    samples: dict[str, list[float]] = {"raw": [], "bare": [], "typed": [], "default": [],
                                       "thread": [], "inline": []}
    async with AsyncExitStack() as stack:
        instances = {
            "default": await _load(stack, plugin_dir, WasmRuntime()),
            # Every result handed back through the event loop: the default before it waited
            # for short calls on the caller's thread.
            "thread": await _load(stack, plugin_dir, WasmRuntime(hold_loop_seconds=0.0)),
            "inline": await _load(stack, plugin_dir, WasmRuntime(inline_calls=True)),
        }
        for _ in range(ROUNDS):
            for name, fn in (("raw", round_trip), ("bare", bare), ("typed", typed)):
                start = time.perf_counter()
                for _ in range(CALLS):
                    fn()
                samples[name].append(time.perf_counter() - start)
            for name, instance in instances.items():
                start = time.perf_counter()
                for _ in range(CALLS):
                    await instance.call("format", TRACK)
                samples[name].append(time.perf_counter() - start)
    return {name: median(values) / CALLS * 1e6 for name, values in samples.items()}


def _measured_pinned(plugin_dir: Path, module_bytes: bytes) -> dict[str, float]:
    """``_measure`` with the caller's thread pinned as ``mfx serve`` pins its event loop
    (mfx.cpu_affinity): the plugin's call thread starts on the same CPU. Unpinned after."""
    cpu = CpuAffinity.choose(pin=True)
    cpu.pin()
    try:
        with cpu_affinity.in_effect(cpu):
            return anyio.run(_measure, plugin_dir, module_bytes)
    finally:
        cpu.release()


def run() -> list[Figure]:
    wat = (REPO / "plugins" / "now-playing" / "now_playing.wat").read_text()
    module_bytes = wasmtime.wat2wasm(wat)
    with TemporaryDirectory() as tmp:
        plugin_dir = Path(tmp)
        (plugin_dir / "now_playing.wasm").write_bytes(module_bytes)
        us = anyio.run(_measure, plugin_dir, module_bytes)
        pinned = _measured_pinned(plugin_dir, module_bytes)
    base = "raw wasmtime ABI round trip (alloc, write, call, read, 2x dealloc)"
    limit = "the same round trip through typed C calls"
    return [
        Figure("raw wasmtime: the ABI round trip through typed C calls (mfx.runtimes.wasm_calls)",
               us["typed"], "µs/call", baseline_name=base, baseline=us["raw"]),
        Figure("raw wasmtime: one call() into now-playing", us["bare"], "µs/call"),
        Figure("raw wasmtime: ABI round trip", us["raw"], "µs/call"),
        Figure("WasmPluginInstance.call (default path)", us["default"], "µs/call",
               baseline_name=base, baseline=us["raw"], target="ratio <= 1.3"),
        Figure("WasmPluginInstance.call (default path)", us["default"], "µs/call",
               baseline_name=limit, baseline=us["typed"]),
        # As in mfx serve: its event loop pinned, the plugin's call thread on the same CPU.
        Figure("WasmPluginInstance.call (default path, caller pinned as mfx serve runs)", pinned["default"],
               "µs/call", baseline_name=base, baseline=pinned["raw"], target="ratio <= 1.3"),
        Figure("WasmPluginInstance.call (plugin thread, result through the event loop)",
               us["thread"], "µs/call", baseline_name=base, baseline=us["raw"]),
        Figure("WasmPluginInstance.call (inline_calls=True)", us["inline"], "µs/call",
               baseline_name=base, baseline=us["raw"]),
        Figure("WasmPluginInstance.call (inline_calls=True)", us["inline"], "µs/call",
               baseline_name=limit, baseline=us["typed"]),
    ]
