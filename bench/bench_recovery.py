"""Recovery of an ``rpc`` plugin on a real daemon: SIGKILL -> Ready again, against a fresh start.

The plugin is ``plugins/hello-rpc`` (a Python plugin forked from the rpc runtime's zygote).
In one run, on one daemon:

- fresh start: apply -> Ready=True of a copy of the plugin that never ran (median and p99 of
  20 copies, after one unmeasured start that warms the zygote up);
- recovery: the plugin's process is SIGKILLed (its pid from ``status.runtime.pid``) and the
  time until the object says Ready=True again with a new pid is taken, 20 times (median and
  p99). Target: median < 50 ms (supervisord restarts after about 1 s).

Both are timed from this process, which hosts the daemon, through the store's watch: no
polling.

Restart policy. The manifest keeps the default policy (Always) and the default first delay
(``backoff.initial`` 1 s): the plugin's first crash after a healthy run is restarted at once
(as Kubernetes restarts a container the first time), and repeated crashes back off from
``backoff.initial``. A run counts as healthy once it lasted ``backoff.max``; that is 5 min by
default, so the manifest sets ``backoff.max`` to 1 s and the bench kills only after the plugin
has been Ready for longer than that: each kill is then a crash after a healthy run, what a
user sees when a long-running plugin dies. It also raises ``startLimit.burst`` to 100: 20
kills within a minute would otherwise be a crash loop for the start limit (5 per minute).
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from bench.common import Figure, median, percentile
from bench.rpc_plugin import (
    HEALTHY_SECONDS,
    KIND,
    fresh_start,
    fresh_starts,
    hello_rpc_daemon,
    until_ready,
)

KILLS = 20
FRESH = 20


async def _kill_and_recover(store: Any, name: str, pid: int) -> tuple[float, int]:
    """SIGKILL ``pid`` -> ``name`` Ready with a new pid: (seconds, the new pid)."""
    rv = (await store.list(KIND, limit=1)).resource_version
    started = time.perf_counter()
    os.kill(pid, signal.SIGKILL)
    new_pid = await until_ready(store, name, rv, pid)
    return time.perf_counter() - started, new_pid


async def _restart_count(store: Any, name: str) -> int:
    obj = await store.get(KIND, name)
    return int((obj.get("status") or {}).get("restartCount") or 0)


def run() -> list[Figure]:
    names = ["warm", "victim", *(f"fresh{i:02d}" for i in range(FRESH))]
    with hello_rpc_daemon("mfx-bench-recovery-", names) as daemon:
        store = daemon.store
        fresh = fresh_starts(daemon, FRESH)
        _, pid = daemon.portal.call(fresh_start, store, "victim")
        recoveries = []
        for _ in range(KILLS):
            time.sleep(HEALTHY_SECONDS * 1.2)  # a healthy run, longer than the backoff's reset period
            seconds, pid = daemon.portal.call(_kill_and_recover, store, "victim", pid)
            recoveries.append(seconds)
        restarts = daemon.portal.call(_restart_count, store, "victim")
    if restarts != KILLS:
        raise RuntimeError(f"expected {KILLS} restarts, the status says {restarts}")
    return [
        Figure(f"rpc plugin SIGKILL -> Ready again, median of {KILLS}", median(recoveries) * 1e3, "ms",
               baseline_name=f"fresh start of the same plugin, apply -> Ready, median of {FRESH}",
               baseline=median(fresh) * 1e3, target="value < 50 ms"),
        Figure(f"rpc plugin SIGKILL -> Ready again, p99 of {KILLS}", percentile(recoveries, 99) * 1e3, "ms",
               baseline_name=f"fresh start of the same plugin, apply -> Ready, p99 of {FRESH}",
               baseline=percentile(fresh, 99) * 1e3),
        Figure(f"rpc plugin SIGKILL -> Ready again, median of {KILLS}", median(recoveries) * 1e3, "ms",
               baseline_name="supervisord for the same, ~1 s as the requirement puts it", baseline=1000.0,
               target="value < 50 ms", baseline_computed=True),
    ]


if __name__ == "__main__":
    for figure in run():
        print(figure.line())
