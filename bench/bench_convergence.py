"""PluginManifest convergence on a real daemon (store, API, controllers, python runtime).

1. 500 testkit plugins (each ``start()`` takes 50 ms) in a random DAG about 10 levels deep,
   stored, then the daemon starts: time until every one is Ready, against the critical-path
   lower bound (levels x 50 ms; target ratio <= 1.2) and against a sequential start
   (500 x 50 ms); and the CPU time it took (all threads of this process, which hosts the
   daemon), against the wall time.
   Objects stored but never started: each start writes its status twice, as a first start
   must (the finalizer is stored with "Starting" before the instance it guards starts).
1b. The same set as a daemon leaves it (finalizers, statuses Ready), the daemon restarted
   (a reboot, ``systemctl restart mfx``): time until every plugin is Ready with this
   daemon's instance, against the same bound (target ratio <= 1.2). A start that ends within
   a second is one status write (``StatusPatcher.hold``), and a Ready left in the store by
   the daemon before wakes no dependents.
2. The same set applied through the daemon's API while it runs (apply included).
3. No-op reconciles per second once everything is Ready (resync of all 500).
4. apply -> Ready latency, p50 and p99, for a trivial plugin (no start delay).
5. The daemon's graceful stop with all of them Ready (every plugin stopped, dependents first).
6. Convergence 1 again with the daemon logging as ``mfx serve`` sets it up (INFO): what a
   user's daemon pays for its log and each plugin's log file on top of the figures above,
   taken with logging at the embedder's default (WARNING: the controllers' INFO messages
   are dropped before they are formatted); and of that, what creating each plugin's log
   file costs at this machine's price of one file created.
7. Convergence 1 again with the daemon's interpreter threads free to run on any CPU
   (``mfx serve --no-pin-threads``), against 1 (pinned, as ``mfx serve`` runs by default).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from bench.common import (
    Figure,
    file_create_cpu_seconds,
    handoff_cpu_seconds,
    percentile,
    thread_cpu,
    thread_cpu_spent,
)
from bench.daemon import BenchDaemon, is_ready, store_offline, wait_ready, wait_until
from mfx.api.objects import Obj
from mfx.logs import configure_logging
from reconciler import DependencyGraph

REPO = Path(__file__).resolve().parents[1]
TESTKIT = REPO / "tests" / "plugins" / "testkit"
KIND = "PluginManifest"
N = 500
LEVELS = 10
DELAY = 0.05
# Thread names (without their numbers) of the daemon's busy threads during a convergence.
_THREAD_GROUPS = {"asyncio-portal": "event loop (controllers, watches, API)",
                  "mfx-store:state.db": "store writer thread (SQLite commits)",
                  "mfx-python-plugins": "plugin call threads (imports, plugin methods)"}


def _dag(seed: int = 7) -> dict[str, list[str]]:
    rng = random.Random(seed)
    levels: list[list[str]] = [[] for _ in range(LEVELS)]
    for i in range(N):
        levels[i % LEVELS if i < LEVELS else rng.randrange(LEVELS)].append(f"p{i:03d}")
    deps: dict[str, list[str]] = {}
    for depth, names in enumerate(levels):
        for name in names:
            if depth == 0:
                deps[name] = []
                continue
            below = levels[depth - 1]
            extra = [n for lvl in levels[:depth] for n in lvl]
            chosen = {rng.choice(below)} | set(rng.sample(extra, k=min(len(extra), rng.randrange(0, 3))))
            deps[name] = sorted(chosen)
    return deps


def _manifest(name: str, deps: list[str], delay: float) -> Obj:
    spec: dict[str, Any] = {
        "version": "1.0.0", "type": "dynamic_library", "entryPoint": "python:testkit.slowstart:SlowStartPlugin",
        "config": {"name": name, "startDelay": delay},
        "healthCheck": {"interval": "1h", "timeout": "2s", "failureThreshold": 3},
    }
    if deps:
        spec["dependencies"] = [{"name": d} for d in deps]
    return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": KIND, "metadata": {"name": name}, "spec": spec}


def _plugin_path(base: Path, names: list[str]) -> Path:
    root = base / "plugins"
    for name in names:
        (root / name).mkdir(parents=True, exist_ok=True)
        os.symlink(TESTKIT, root / name / "testkit")
    return root


async def _wait_ready(store: Any, names: set[str]) -> float:
    return await wait_ready(store, KIND, names)


@contextlib.contextmanager
def _collections_timed() -> Iterator[list[float]]:
    """The wall time of each garbage collection while entered (gc.callbacks)."""
    spent: list[float] = []
    began = [0.0]

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            spent.append(time.perf_counter() - began[0])

    gc.callbacks.append(timed)
    try:
        yield spent
    finally:
        gc.callbacks.remove(timed)


@contextlib.contextmanager
def _logging_as_served() -> Iterator[None]:
    """The process's logging as ``mfx serve`` sets it up (text, INFO), written to /dev/null;
    put back as it was afterwards."""
    root = logging.getLogger()
    handlers, level, stderr = root.handlers[:], root.level, sys.stderr
    with open(os.devnull, "w") as sink:
        sys.stderr = sink
        try:
            configure_logging("text", "info")
            yield
        finally:
            sys.stderr = stderr
            root.handlers[:] = handlers
            root.setLevel(level)


def run() -> list[Figure]:
    deps = _dag()
    graph = DependencyGraph()
    for name, ds in deps.items():
        graph.set_node(name, ds)
    chain = graph.critical_chain({n: DELAY for n in deps})
    lower_bound = chain.duration
    sequential = N * DELAY
    names = sorted(deps)
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="mfx-bench-conv-") as tmp:
        base = Path(tmp)
        root = _plugin_path(base, [*names, *(f"t{i:03d}" for i in range(60))])

        # 1. stored state, daemon starts
        home = base / "home1"
        home.mkdir()
        store_offline(home / "state.db", [_manifest(n, deps[n], DELAY) for n in names])
        cpu_before = time.process_time()  # the daemon runs in this process: its CPU is ours
        with BenchDaemon(home, root) as daemon:
            serving = time.perf_counter() - daemon.started
            assert daemon.context is not None
            stored_rv = daemon.portal.call(daemon.context.store.current_resource_version)
            threads_before, window_cpu = thread_cpu(), time.process_time()
            usage_before = resource.getrusage(resource.RUSAGE_SELF)
            with _collections_timed() as collecting:
                done = daemon.portal.call(_wait_ready, daemon.context.store, set(names))
            usage = resource.getrusage(resource.RUSAGE_SELF)
            threads = thread_cpu_spent(threads_before, thread_cpu(), time.process_time() - window_cpu)
            converged = done - daemon.started
            cpu = time.process_time() - cpu_before
            # 3. no-op reconciles per second: resync all 500, count reconciles
            manager = daemon.context.manager
            metrics = daemon.context.metrics

            def total() -> float:
                return sum(s.value for m in metrics.reconcile_total.collect() for s in m.samples
                           if s.name.endswith("_total") and s.labels.get("controller") == "pluginmanifest")

            # What each plugin's convergence cost in units of work: the store's revisions (one
            # per object or event written) and reconciles, counted right after it.
            writes = daemon.portal.call(daemon.context.store.current_resource_version) - stored_rv
            events = len(daemon.portal.call(daemon.context.store.list_events, KIND))
            reconciles = total()

            async def noop_rounds(rounds: int) -> float:
                before = total()
                started = time.perf_counter()
                controller = manager.controller(KIND)
                for _ in range(rounds):
                    await controller.resync()
                    while total() - before < N * (_ + 1):  # noqa: ASYNC110
                        await anyio.sleep(0.0005)
                return N * rounds / (time.perf_counter() - started)

            noop = daemon.portal.call(noop_rounds, 4)

            # 4. apply -> Ready latency of a trivial plugin
            async def latency(i: int) -> float:
                store = daemon.context.store  # type: ignore[union-attr]
                name = f"t{i:03d}"
                started = time.perf_counter()
                await store.create(_manifest(name, [], 0.0))
                return await _wait_ready(store, {name}) - started

            latencies = [daemon.portal.call(latency, i) for i in range(60)]
        stopped = len(names) + len(latencies)
        figures.append(Figure(f"{N} plugins, 50 ms starts, DAG depth {LEVELS}: daemon start -> all Ready",
                              converged, "s", "critical-path lower bound", lower_bound, "ratio <= 1.2",
                              baseline_computed=True))
        figures.append(Figure("same, against a sequential start", converged, "s",
                              f"sequential ({N} x 50 ms)", sequential, "ratio << 1", baseline_computed=True))
        # Near 1 means the convergence is bound by the daemon's CPU, not by the plugins' starts.
        figures.append(Figure("CPU time of the daemon process during that convergence", cpu, "s",
                              "its wall time", converged))
        figures.append(Figure("CPU time per plugin", cpu / N * 1000, "ms"))
        # Where it went, from serving to all Ready, by thread: the event loop runs the controllers
        # (and the API), the store writer commits, the plugin-call threads import and call plugins.
        for group, label in _THREAD_GROUPS.items():
            figures.append(Figure(f"  of it, {label}", threads.pop(group, 0.0) / N * 1000, "ms"))
        figures.append(Figure("  of it, other threads (those that ended meanwhile included)",
                              sum(threads.values()) / N * 1000, "ms"))
        # The same window by where the CPU ran: the kernel's part is mostly threads handing the
        # interpreter lock to each other (each system call a thread makes lets another one run),
        # counted by the times a thread gave up the CPU before its time slice ended.
        figures.append(Figure("  of it, in the kernel (system calls, threads handing over the interpreter lock)",
                              (usage.ru_stime - usage_before.ru_stime) / N * 1000, "ms"))
        # The collector's passes (they hold the interpreter lock), whichever thread ran them.
        figures.append(Figure("  of it, garbage collection (start-up objects frozen, young collections every 20 000 allocations, as mfx serve does)",
                              sum(collecting) / N * 1000, "ms"))
        switches = (usage.ru_nvcsw - usage_before.ru_nvcsw) / N
        figures.append(Figure("per plugin: threads waiting (voluntary context switches)", switches, "switches"))
        # What those waits cost at this machine's price of one (a wake-up, a wait, the lock
        # changing hands): the part of the CPU per plugin that is threads handing over work.
        handoff = handoff_cpu_seconds()
        figures.append(Figure("  one thread hand-off on this machine (two threads and Events, CPU)",
                              handoff * 1e6, "us"))
        figures.append(Figure("  of the CPU per plugin, those waits at that price", switches * handoff * 1000, "ms"))
        # Part of the convergence before any plugin is looked at (imports, schemas, the store).
        figures.append(Figure("of the convergence: daemon start until it serves", serving, "s"))
        figures.append(Figure("per plugin: reconciles", reconciles / N, "reconciles"))
        figures.append(Figure("per plugin: store writes (status and events; node objects included)",
                              writes / N, "writes"))
        figures.append(Figure("per plugin: events recorded", events / N, "events"))
        figures.append(Figure(f"no-op reconciles, {N} Ready plugins", noop, "reconciles/s",
                              higher_is_better=True))
        figures.append(Figure("apply -> Ready, trivial plugin, p50", percentile(latencies, 50) * 1000, "ms"))
        figures.append(Figure("apply -> Ready, trivial plugin, p99", percentile(latencies, 99) * 1000, "ms"))
        # Each plugin stopped (dependents first) and its modules unloaded, then the daemon's own end.
        figures.append(Figure(f"daemon stop with {stopped} Ready Python plugins", daemon.stopped_in, "s"))

        # 1b. the same set as a daemon leaves it, the daemon restarted
        home = base / "home5"
        home.mkdir()
        store_offline(home / "state.db", [_manifest(n, deps[n], DELAY) for n in names])
        with BenchDaemon(home, root) as daemon:
            assert daemon.context is not None
            daemon.portal.call(_wait_ready, daemon.context.store, set(names))
            before = {o["metadata"]["name"]: o["status"]["startedAt"]
                      for o in daemon.portal.call(partial(daemon.context.store.list, KIND, limit=N)).items}
        cpu_before = time.process_time()
        with BenchDaemon(home, root) as daemon:
            assert daemon.context is not None

            def restarted(obj: Obj) -> bool:  # Ready with this daemon's instance
                return is_ready(obj) and obj["status"].get("startedAt") != before[obj["metadata"]["name"]]

            again = daemon.portal.call(wait_until, daemon.context.store, KIND, set(names), restarted) - daemon.started
            again_cpu = time.process_time() - cpu_before
        figures.append(Figure("same set as a daemon leaves it, daemon restarted -> all Ready again", again, "s",
                              "critical-path lower bound", lower_bound, "ratio <= 1.2", baseline_computed=True))
        figures.append(Figure("  CPU time per plugin, daemon restarted", again_cpu / N * 1000, "ms",
                              "the same, first start (1)", cpu / N * 1000))

        # 6. the same stored set, the daemon logging as `mfx serve` does: INFO records to the
        #    daemon's log (here /dev/null) and each plugin's own messages to its log file
        home = base / "home3"
        home.mkdir()
        store_offline(home / "state.db", [_manifest(n, deps[n], DELAY) for n in names])
        cpu_before = time.process_time()
        with _logging_as_served():
            with BenchDaemon(home, root) as daemon:
                assert daemon.context is not None
                logged = daemon.portal.call(_wait_ready, daemon.context.store, set(names)) - daemon.started
                logged_cpu = time.process_time() - cpu_before
        log_files = len(list((home / "logs").glob("*.log")))
        figures.append(Figure("same, logging as mfx serve does (INFO, each plugin's log file)", logged, "s",
                              "critical-path lower bound", lower_bound, "ratio <= 1.2", baseline_computed=True))
        figures.append(Figure("  CPU time per plugin, logging as mfx serve does", logged_cpu / N * 1000, "ms",
                              "the same, logging at WARNING (1)", cpu / N * 1000))
        # A first start makes each plugin's log file: a file system's create is kernel work
        # on the daemon's CPU (a restarted daemon appends to the files it finds).
        create = file_create_cpu_seconds()
        figures.append(Figure("  one file created on this machine's file system (CPU)", create * 1e6, "us"))
        figures.append(Figure("  of it, creating the plugins' log files at that price", log_files * create / N * 1000,
                              "ms"))

        # 7. the same stored set, the daemon's interpreter threads on any CPU (mfx serve
        #    --no-pin-threads): what sharing one CPU saves (mfx.cpu_affinity)
        home = base / "home4"
        home.mkdir()
        store_offline(home / "state.db", [_manifest(n, deps[n], DELAY) for n in names])
        cpu_before = time.process_time()
        with BenchDaemon(home, root, pin_threads=False) as daemon:
            assert daemon.context is not None
            spread = daemon.portal.call(_wait_ready, daemon.context.store, set(names)) - daemon.started
            spread_cpu = time.process_time() - cpu_before
        figures.append(Figure("daemon start -> all Ready, interpreter threads pinned (the default)", converged, "s",
                              "the same, threads on any CPU (--no-pin-threads)", spread))
        figures.append(Figure("CPU time per plugin, pinned (the default)", cpu / N * 1000, "ms",
                              "the same, threads on any CPU", spread_cpu / N * 1000))

        # 2. applied through the API while the daemon runs
        home = base / "home2"
        home.mkdir()
        with BenchDaemon(home, root) as daemon:
            from mfx.api.kinds import PLUGIN_MANIFEST
            from mfx.cli.client import Client, Endpoint

            started = time.perf_counter()
            with Client(Endpoint(socket=home / "mfx.sock")) as client:
                for name in graph.start_order():
                    client.create(_manifest(name, deps[name], DELAY), PLUGIN_MANIFEST)
            applied = time.perf_counter() - started
            assert daemon.context is not None
            done = daemon.portal.call(_wait_ready, daemon.context.store, set(names))
            figures.append(Figure(f"{N} plugins applied over the API (apply {applied:.2f} s included) -> all Ready",
                                  done - started, "s", "measured apply time + computed critical path",
                                  applied + lower_bound, baseline_computed=True))
    return figures


if __name__ == "__main__":
    for figure in run():
        print(figure.line())
