"""In-process plugins: the C AudioProcessor fast path, hot-reload swap latency, unload leaks.

- C ``process()`` on 1024 stereo float32 frames, per call, against numpy doing the same gain
  (``block *= g``) on the same block in the same run (the floor for "multiply a block").
- Hot reload: from an editor-style save (rename over the file) to the new version serving,
  median of several edits, with the default 200 ms debounce; baseline: a cold load +
  initialize + health of the same plugin.
- 1000 load/unload cycles of a Python-module plugin: RSS growth after ``gc.collect()``.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import time
from pathlib import Path

import anyio
import numpy as np
import psutil

from bench.common import Figure, median
from mfx.runtimes.base import LoadRequest, PluginType
from mfx.runtimes.clib import CLibraryRuntime
from mfx.runtimes.hot_reload import HotReloadRuntime
from mfx.runtimes.python_module import PythonModuleRuntime

REPO = Path(__file__).resolve().parent.parent
RATE = 48000
FRAMES = 1024


def _request(plugin_dir: Path, entry: str, state_dir: Path, kind: PluginType) -> LoadRequest:
    return LoadRequest(name="bench", version="1.0.0", type=kind, entry_point=entry,
                       plugin_dir=plugin_dir, state_dir=state_dir)


def _per_call_us(fn: object, block: np.ndarray, calls: int, rounds: int = 7) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn(block)  # type: ignore[operator]
        samples.append((time.perf_counter() - start) / calls * 1e6)
    return median(samples)


async def _process_figures(work: Path) -> list[Figure]:
    build = work / "effects"
    await anyio.run_process(["make", "-s", "-C", str(REPO / "plugins" / "effects"), f"OUTDIR={build}"])
    block = np.random.default_rng(0).uniform(-0.5, 0.5, (FRAMES, 2)).astype(np.float32)
    g = np.float32(10 ** (-0.01 / 20))  # close to 1 so repeated calls stay in range
    figures = []
    async with CLibraryRuntime() as runtime:
        gain = await runtime.load(_request(build, "libeffects.so", work, PluginType.DYNAMIC_LIBRARY))
        await gain.initialize({"gainDb": -0.01})
        eq = await runtime.load(_request(build, "libeffects.so", work, PluginType.DYNAMIC_LIBRARY))
        await eq.initialize({"gainDb": -0.01, "eq": [
            {"type": "lowshelf", "freq": 120, "gainDb": 2}, {"type": "peaking", "freq": 3000, "q": 1, "gainDb": -1.5},
            {"type": "highshelf", "freq": 9000, "gainDb": 1}]})

        def numpy_gain(b: np.ndarray) -> None:
            b *= g

        calls = 5000
        baseline = _per_call_us(numpy_gain, block, calls)
        c_gain = _per_call_us(lambda b: gain.process(b, RATE), block, calls)
        c_eq = _per_call_us(lambda b: eq.process(b, RATE), block, calls // 5)
        budget_us = FRAMES / RATE * 1e6
        figures.append(Figure("C process() gain, 1024 stereo frames", c_gain, "µs/call",
                              "numpy block *= g", baseline, f"< 1% of the {budget_us:.0f} µs block period"))
        figures.append(Figure("C process() gain + 3-band EQ, 1024 stereo frames", c_eq, "µs/call",
                              "numpy block *= g", baseline, f"< 1% of the {budget_us:.0f} µs block period"))
    return figures


PLUGIN = '''
class Bench:
    def initialize(self, config):
        self.count = 0
    def health(self):
        return True
    def version(self):
        return {version!r}
    def export_state(self):
        return {{"count": self.count}}
    def import_state(self, state):
        self.count = state["count"]
'''


async def _reload_figures(work: Path, edits: int = 12) -> list[Figure]:
    plugin_dir = work / "hot"
    package = plugin_dir / "benchpkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "plugin.py").write_text(PLUGIN.format(version=0))
    request = _request(plugin_dir, "python:benchpkg.plugin:Bench", work, PluginType.HOT_RELOAD)

    cold = []
    async with PythonModuleRuntime() as runtime:
        for _ in range(edits):
            start = time.perf_counter()
            instance = await runtime.load(request)
            await instance.initialize({})
            await instance.health()
            cold.append((time.perf_counter() - start) * 1000)
            await instance.cleanup()

    send, receive = anyio.create_memory_object_stream[bool](16)
    latencies = []
    async with HotReloadRuntime(lambda name, ok, msg: send.send_nowait(ok)) as runtime:
        instance = await runtime.load(request)
        await instance.initialize({})
        await instance.start()
        for version in range(1, edits + 1):
            temp = package / ".plugin.py.tmp"
            temp.write_text(PLUGIN.format(version=version))
            start = time.perf_counter()
            os.replace(temp, package / "plugin.py")
            with anyio.fail_after(30):
                ok = await receive.receive()
            latencies.append((time.perf_counter() - start) * 1000)
            assert ok and await instance.call("version") == version
    return [Figure("hot reload: save -> new version serving (median, 200 ms debounce)", median(latencies),
                   "ms", "cold load + initialize + health", median(cold), "< 500 ms")]


async def _leak_figures(work: Path, cycles: int = 1000) -> list[Figure]:
    request = _request(REPO / "plugins" / "hello-python", "python:hello_python.plugin:HelloPlugin", work,
                       PluginType.DYNAMIC_LIBRARY)
    process = psutil.Process()

    async def cycle() -> None:
        instance = await runtime.load(request)
        await instance.initialize({"greeting": "Hi"})
        await instance.start()
        await instance.call("greet", ["x"])
        await instance.stop()
        await instance.cleanup()

    async with PythonModuleRuntime() as runtime:
        for _ in range(100):
            await cycle()
        gc.collect()
        before = process.memory_info().rss
        start = time.perf_counter()
        for _ in range(cycles):
            await cycle()
        elapsed = time.perf_counter() - start
        gc.collect()
        growth = process.memory_info().rss - before
    return [
        Figure(f"RSS growth over {cycles} load/unload cycles (Python module)", growth / 2**20, "MiB",
               "RSS before the cycles", before / 2**20, "< 10 MiB"),
        Figure("Python module load + initialize + call + unload", elapsed / cycles * 1000, "ms/cycle"),
    ]


async def _main() -> list[Figure]:
    work = Path(tempfile.mkdtemp(prefix="mfx-bench-inprocess-"))
    try:
        return [*await _process_figures(work), *await _reload_figures(work), *await _leak_figures(work)]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run() -> list[Figure]:
    return anyio.run(_main)
