"""The reconciler engine: throughput of the full loop, and dependency-ordered convergence.

1. No-op reconciles per second through the whole loop (informer, work queue, worker, outcome
   switch, status write where needed) on a real SQLite store, against raw ``asyncio.Queue``
   put/get of the same number of keys.
2. 500 keys in a random DAG ten levels deep, each "starting" for 50 ms of async time on the
   TaskSupervisor, dependents re-enqueued when a start completes, 4 workers: convergence
   time against the critical-path lower bound (target <= 1.2), against starts that hold the
   worker, and against a sequential start. Engine only: queue, workers, supervisor, graph.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from pathlib import Path

import anyio

from bench.common import Figure, median
from mfx.api.objects import Obj, ObjectKey
from mfx.store import SQLiteStore
from observability.metrics import Metrics
from reconciler import (
    Context,
    ControllerOptions,
    DependencyGraph,
    Manager,
    QueueShutDown,
    Registry,
    TaskState,
    TaskSupervisor,
    WorkQueue,
)

KIND = "GitSource"


# --- 1. throughput ---------------------------------------------------------------------------------


async def _raw_queue(n: int) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue()
    started = time.perf_counter()
    for i in range(n):
        queue.put_nowait(i)
    taken = 0

    async def consumer() -> None:
        nonlocal taken
        while taken < n:
            await queue.get()
            taken += 1
            queue.task_done()
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(consumer)
    return n / (time.perf_counter() - started)


async def _work_queue_only(n: int) -> float:
    queue: WorkQueue[ObjectKey] = WorkQueue("bench", metrics=Metrics())
    keys = [ObjectKey(KIND, f"o{i}") for i in range(n)]
    started = time.perf_counter()
    for key in keys:
        queue.add(key)
    done = 0

    async def worker() -> None:
        nonlocal done
        while True:
            try:
                key = await queue.get()
            except QueueShutDown:
                return
            queue.forget(key)
            queue.done(key)
            done += 1
            if done == n:
                queue.shutdown()
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(worker)
    return n / (time.perf_counter() - started)


async def _full_loop(n: int, *, converged: bool) -> float:
    """Reconciles/s of a Manager on SQLite; ``converged``: objects already Ready (no write)."""
    with tempfile.TemporaryDirectory() as tmp:
        async with SQLiteStore(Path(tmp) / "bench.db") as store:
            for i in range(n):
                obj: Obj = {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": KIND,
                            "metadata": {"name": f"o{i}"}, "spec": {"i": i}}
                if converged:
                    obj["status"] = {"observedGeneration": 1, "conditions": [{
                        "type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
                        "message": "generation 1 reconciled", "lastTransitionTime": "2026-01-01T00:00:00Z",
                        "observedGeneration": 1}]}
                await store.create(obj)
            on = Registry()
            count = 0
            all_done = anyio.Event()

            @on.reconcile(KIND)
            async def noop(obj: Obj, ctx: Context) -> None:
                nonlocal count
                count += 1
                if count == n:
                    all_done.set()

            started = time.perf_counter()
            async with Manager(store, on, options=ControllerOptions(workers=4)):
                await all_done.wait()
                elapsed = time.perf_counter() - started
            return n / elapsed


# --- 2. dependency-ordered convergence ------------------------------------------------------------------


def random_dag(n: int, levels: int, seed: int = 1) -> DependencyGraph:
    rng = random.Random(seed)
    per_level = n // levels
    names = [[f"p{level}-{i}" for i in range(per_level)] for level in range(levels)]
    graph = DependencyGraph()
    for level, row in enumerate(names):
        for name in row:
            deps: set[str] = set()
            if level:
                deps.update(rng.sample(names[level - 1], rng.randint(1, 3)))
                for _ in range(rng.randint(0, 2)):
                    deps.add(rng.choice(names[rng.randrange(level)]))
            graph.set_node(name, deps)
    return graph


async def converge(graph: DependencyGraph, *, start_seconds: float, workers: int, blocking: bool) -> float:
    """Seconds until every node has started, each after its dependencies, on the engine."""
    started: set[str] = set()
    total = len(graph.nodes())
    all_started = anyio.Event()
    queue: WorkQueue[ObjectKey] = WorkQueue("sim", metrics=Metrics())

    async def start() -> None:
        await anyio.sleep(start_seconds)

    def mark_started(name: str) -> None:
        # Like a Ready condition seen by a related-keys function: wake the dependents.
        started.add(name)
        for dependent in graph.dependents(name):
            queue.add(ObjectKey(KIND, dependent))
        if len(started) == total:
            all_started.set()

    async with TaskSupervisor(on_complete=queue.add) as supervisor:

        async def reconcile(key: ObjectKey) -> None:
            name = key.name
            if name in started:
                return
            if not all(dep in started for dep in graph.dependencies(name)):
                return  # DependencyNotReady: a completion of a dependency enqueues us again
            if blocking:
                await start()
                mark_started(name)
                return
            status = supervisor.status(key, "start")
            if status is None:
                supervisor.start(key, "start", start)
            elif status.state is TaskState.DONE:
                mark_started(name)

        async def worker() -> None:
            while True:
                try:
                    key = await queue.get()
                except QueueShutDown:
                    return
                try:
                    await reconcile(key)
                    queue.forget(key)
                finally:
                    queue.done(key)

        t0 = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(workers):
                tg.start_soon(worker)
            for name in graph.nodes():
                queue.add(ObjectKey(KIND, name))
            await all_started.wait()
            elapsed = time.perf_counter() - t0
            queue.shutdown()
    return elapsed


async def ideal(graph: DependencyGraph, *, start_seconds: float) -> float:
    """No engine at all: one task per node waiting on its dependencies' events (this machine's floor)."""
    finished = {name: anyio.Event() for name in graph.nodes()}

    async def node(name: str) -> None:
        for dep in graph.dependencies(name):
            await finished[dep].wait()
        await anyio.sleep(start_seconds)
        finished[name].set()

    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for name in graph.nodes():
            tg.start_soon(node, name)
    return time.perf_counter() - t0


async def _all() -> list[Figure]:
    figures: list[Figure] = []
    n = 2000
    raw = await _raw_queue(n)
    wq = await _work_queue_only(n)
    figures.append(Figure(f"WorkQueue add/get/done, {n} keys, 4 workers", wq, "keys/s",
                          "asyncio.Queue put/get", raw, higher_is_better=True))
    loop_converged = await _full_loop(n, converged=True)
    figures.append(Figure(f"no-op reconciles through the full loop on SQLite, {n} Ready objects",
                          loop_converged, "reconciles/s", "asyncio.Queue put/get", raw, higher_is_better=True))
    loop_fresh = await _full_loop(n // 2, converged=False)
    figures.append(Figure(f"first reconciles with status writes on SQLite, {n // 2} new objects",
                          loop_fresh, "reconciles/s", "asyncio.Queue put/get", raw, higher_is_better=True))

    graph = random_dag(500, 10)
    start_seconds = 0.05
    chain = graph.critical_chain({name: start_seconds for name in graph.nodes()})
    # Medians of 3: on a shared machine one run can be unlucky with the scheduler.
    supervised = median([await converge(graph, start_seconds=start_seconds, workers=4, blocking=False)
                         for _ in range(3)])
    floor = median([await ideal(graph, start_seconds=start_seconds) for _ in range(3)])
    figures.append(Figure("500-key DAG (10 levels) converges, starts on the supervisor, 4 workers",
                          supervised, "s", f"critical path ({len(chain.nodes)} x 50 ms)", chain.duration,
                          target="ratio <= 1.2", baseline_computed=True))
    figures.append(Figure("same DAG, starts on the supervisor, 4 workers", supervised, "s",
                          "one task per node awaiting its dependencies (no engine)", floor))
    blocking = await converge(graph, start_seconds=start_seconds, workers=4, blocking=True)
    figures.append(Figure("same DAG, starts holding the worker, 4 workers", blocking, "s",
                          "starts on the supervisor", supervised))
    sequential = start_seconds * len(graph.nodes())
    figures.append(Figure("same DAG, starts on the supervisor", supervised, "s",
                          "sequential start (500 x 50 ms)", sequential, baseline_computed=True))
    return figures


def run() -> list[Figure]:
    return anyio.run(_all)
