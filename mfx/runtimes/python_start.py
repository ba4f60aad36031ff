"""The first steps of a Python plugin's life, run back to back on one worker thread.

A start is a chain of short calls: import the module, ``initialize(config)``, ``start()``,
the first ``health()``. Run one hop at a time, each costs the event loop a round trip to a
worker thread, more than most such calls take. ``StartChain.run`` runs them all on the
thread that imports the plugin, as far as the caller asked and as long as each hook is
synchronous; the loop reads the outcome once (``PythonModuleRuntime.load_started``).

Deadlines: each step is timed on the thread, and one that took longer than its own
deadline ends the chain there (a step that overran is not followed by the next). A step that
never returns is caught by the loop's overall deadline, the sum of the steps' own: the loop
then gives the chain up, so a late return runs nothing more, and the timeout names the step.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mfx.runtimes.base import LoadRequest, StartStep
from mfx.runtimes.python_import import LoadedModule, PluginFinder, PythonEntryPoint, import_plugin

# The hook each step after the load calls.
STEP_METHODS = {StartStep.INITIALIZED: "initialize", StartStep.STARTED: "start", StartStep.CHECKED: "health"}


@dataclass(frozen=True)
class Raised:
    """A hook raised: the loop turns it into the plugin error the hook's own call would give."""

    exc: Exception


@dataclass(frozen=True)
class Late:
    """A hook returned, but after its deadline."""

    seconds: float


class StartChain:
    """The steps one ``load_started`` runs on a worker thread, and how far they got.

    Written by the worker thread, read by the loop once the thread has returned (or, for a
    step that hangs, once the loop has given up on it: ``abandoned`` is the loop's only
    write, and the thread checks it before each step).
    """

    def __init__(self, request: LoadRequest, entry: PythonEntryPoint, finder: PluginFinder, *,
                 until: StartStep, config: Mapping[str, Any], health_seconds: float) -> None:
        self._request = request
        self._entry = entry
        self._finder = finder
        self._until = until
        self._config = config
        self._health_seconds = health_seconds
        self.loaded: LoadedModule | None = None  # set as soon as the import is done
        self.reached = StartStep.LOADED  # meaningful once ``loaded`` is set
        self.step = StartStep.LOADED  # the step running now (or that ended the chain)
        self.outcome: Raised | Late | None = None  # how ``step`` ended the chain, if it did
        self.pending: Any = None  # an awaitable a synchronous hook returned, for the loop to await
        self.health: Any = None  # what the first health() answered, if it was called
        self.health_seconds = 0.0  # ... and how long it took
        self.abandoned = False
        self._lock = threading.Lock()  # who owns the module when the loop gives up: see ``give_up``

    def give_up(self) -> LoadedModule | None:
        """On the loop, past the deadline: nothing more runs; the module, if the import has
        returned (the loop's to clean up); else the thread unloads it once it returns."""
        with self._lock:
            self.abandoned = True
            return self.loaded

    def deadline(self, step: StartStep) -> float:
        """Seconds ``step`` may take (the load and ``initialize`` share theirs)."""
        return self._health_seconds if step is StartStep.CHECKED else self._request.start_timeout_seconds

    def budget(self) -> float:
        """The loop's overall deadline: the sum of the steps' own (load and initialize count once)."""
        steps = [s for s in (StartStep.LOADED, StartStep.STARTED, StartStep.CHECKED) if s <= self._until]
        return sum(self.deadline(s) for s in steps)

    def run(self) -> None:
        """On the worker thread: import, then each step up to ``until`` while the hooks are synchronous."""
        began = time.perf_counter()
        loaded = import_plugin(self._request, self._entry, self._finder)
        with self._lock:
            self.loaded, abandoned = loaded, self.abandoned
        if abandoned:  # the loop gave up before the import returned: nobody else will unload it
            loaded.unload()
            return
        took = time.perf_counter() - began
        if took > self.deadline(StartStep.LOADED):
            self.outcome = Late(took)
            return
        plugin = loaded.plugin
        for step in (StartStep.INITIALIZED, StartStep.STARTED, StartStep.CHECKED):
            if step > self._until or self.abandoned:
                return
            fn = getattr(plugin, STEP_METHODS[step], None)
            if fn is not None and inspect.iscoroutinefunction(fn):
                return  # an async hook runs on the event loop: the caller's
            self.step = step
            if step is not StartStep.INITIALIZED:  # initialize shares the load's deadline
                began = time.perf_counter()
            args = (self._config,) if step is StartStep.INITIALIZED else ()
            try:
                result = fn(*args) if fn is not None else None
            except Exception as exc:
                self.outcome = Raised(exc)
                return
            if inspect.isawaitable(result):
                self.pending = result
                return
            took = time.perf_counter() - began
            if took > self.deadline(step):
                self.outcome = Late(took)
                return
            if step is StartStep.CHECKED:  # its answer is read on the loop, which sets ``reached``
                self.health, self.health_seconds = result, took
                return
            self.reached = step
