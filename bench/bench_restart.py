"""A restart on request (``mfx rollout restart``) of an ``rpc`` plugin on a real daemon.

The plugin is ``plugins/hello-rpc``. In one run, on one daemon:

- restart: the ``mfx.musicfox.io/restartedAt`` annotation is merge-patched (what the command
  sends) and the time until the object shows a new pid, Ready, is taken, RESTARTS times
  (median), against a fresh start of the same plugin (apply -> Ready, median of FRESH);
- calls during restarts: a caller calls the plugin (``greet``, through its handle, as the
  player calls plugins) without pause while the restarts go on; the time from a failed call
  to the next answer is added up. The baseline is the same caller while the plugin's process
  is SIGKILLed and recovers as many times (a crash: the controller restarts it at once after
  a healthy run). Target: no call fails during a restart, as the new instance is started
  beside the old one and takes over once Ready.

Everything is timed from this process, which hosts the daemon, on the store's watch.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime
from typing import Any

import anyio

from bench.common import Figure, median
from bench.daemon import BenchDaemon
from bench.rpc_plugin import (
    HEALTHY_SECONDS,
    KIND,
    fresh_start,
    fresh_starts,
    hello_rpc_daemon,
    until_ready,
)
from mfx.errors import ConflictError

RESTARTS = 10
FRESH = 10


async def _restart(store: Any, name: str, pid: int) -> tuple[float, int]:
    rv = (await store.list(KIND, limit=1)).resource_version
    stamp = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    started = time.perf_counter()
    while True:  # what the API's merge patch does: read, set the annotation, write unless changed meanwhile
        obj = await store.get(KIND, name)
        obj["metadata"].setdefault("annotations", {})["mfx.musicfox.io/restartedAt"] = stamp
        try:
            await store.update(obj)
            break
        except ConflictError:
            continue
    new_pid = await until_ready(store, name, rv, pid)
    return time.perf_counter() - started, new_pid


async def _kill(store: Any, name: str, pid: int) -> tuple[float, int]:
    rv = (await store.list(KIND, limit=1)).resource_version
    started = time.perf_counter()
    os.kill(pid, signal.SIGKILL)
    new_pid = await until_ready(store, name, rv, pid)
    return time.perf_counter() - started, new_pid


async def _under_calls(daemon: BenchDaemon, name: str, pid: int, how: str) -> tuple[list[float], float, int]:
    """RESTARTS restarts (``how``: "restart" or "kill") while a caller calls the plugin without
    pause: (seconds per restart, seconds during which calls failed, failed calls)."""
    context = daemon.context
    assert context is not None
    registry = context.service_registry
    assert registry is not None
    handle = next(p.instance for p in registry.lookup("Greeter") if p.name == name)
    failed = 0
    failing_since: float | None = None
    down = 0.0
    done = anyio.Event()

    async def caller() -> None:
        nonlocal failed, failing_since, down
        while not done.is_set():
            try:
                await handle.call("greet", {"name": "bench"})
            except Exception:  # any failure a caller would see counts
                failed += 1
                if failing_since is None:
                    failing_since = time.perf_counter()
                await anyio.sleep(0.001)
                continue
            if failing_since is not None:  # from the first failed call to the next answer
                down += time.perf_counter() - failing_since
                failing_since = None

    seconds: list[float] = []
    async with anyio.create_task_group() as group:
        group.start_soon(caller)
        for _ in range(RESTARTS):
            if how == "kill":
                await anyio.sleep(HEALTHY_SECONDS * 1.2)  # a healthy run: the crash restarts at once
                took, pid = await _kill(daemon.store, name, pid)
            else:
                took, pid = await _restart(daemon.store, name, pid)
            seconds.append(took)
        await anyio.sleep(0.1)  # the caller's answer after the last restart closes its window
        done.set()
    return seconds, down, failed


def run() -> list[Figure]:
    names = ["warm", "restarted", "killed", *(f"fresh{i:02d}" for i in range(FRESH))]
    with hello_rpc_daemon("mfx-bench-restart-", names) as daemon:
        store = daemon.store
        fresh = fresh_starts(daemon, FRESH)
        _, pid = daemon.portal.call(fresh_start, store, "restarted")
        restarts, restart_down, restart_failed = daemon.portal.call(_under_calls, daemon, "restarted", pid,
                                                                    "restart")
        _, pid = daemon.portal.call(fresh_start, store, "killed")
        _, kill_down, kill_failed = daemon.portal.call(_under_calls, daemon, "killed", pid, "kill")
    return [
        Figure(f"rpc plugin rollout restart -> new pid Ready, median of {RESTARTS}", median(restarts) * 1e3, "ms",
               baseline_name=f"fresh start of the same plugin, apply -> Ready, median of {FRESH}",
               baseline=median(fresh) * 1e3),
        Figure(f"time calls failed during {RESTARTS} rollout restarts ({restart_failed} failed calls)",
               restart_down * 1e3, "ms",
               baseline_name=f"the same during {RESTARTS} SIGKILL recoveries ({kill_failed} failed calls)",
               baseline=kill_down * 1e3, target="value == 0"),
    ]


if __name__ == "__main__":
    for figure in run():
        print(figure.line())
