"""The webassembly runtime's epoch ticker: the clock behind every call deadline. (Each
plugin's own thread, on which its blocking wasmtime calls run, is a ``call_thread.PluginThread``.)
"""

from __future__ import annotations

import threading

import wasmtime


class EpochTicker:
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
