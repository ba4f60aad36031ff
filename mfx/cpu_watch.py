"""Keeping the daemon's shared CPU (mfx.cpu_affinity) free of other work.

The interpreter threads are pinned, so the kernel cannot move them off a CPU that something
else keeps busy: another task pinned there (a second mfx daemon on the machine, which chose
the same CPU when it started, or any program run under ``taskset``). Every couple of seconds
(jittered, so two daemons on one CPU do not decide together) the daemon compares how busy
each CPU was (/proc/stat) with what its own interpreter threads ran (their schedstat). When
other work took a good share of the shared CPU and another CPU was clearly idler, the
interpreter threads move there, and the daemon logs it.
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass

import anyio

from mfx.cpu_affinity import CpuAffinity

log = logging.getLogger("mfx.cpu")

WATCH_SECONDS = 2.0
# Other work on the shared CPU worth moving for, and how much idler another CPU must be,
# as shares of the interval.
CONTENDED_SHARE = 0.3
MARGIN_SHARE = 0.2
_TICK_SECONDS = 1 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01


@dataclass(frozen=True)
class CpuReading:
    """One look: seconds each CPU has been busy (not idle) since boot, and seconds the
    daemon's interpreter threads have run."""

    busy: dict[int, float]
    ours: float


def read_cpus(cpu: CpuAffinity) -> CpuReading:
    busy: dict[int, float] = {}
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            for line in stat:
                name, _, rest = line.partition(" ")
                if not name.startswith("cpu") or name == "cpu":
                    continue
                ticks = [int(v) for v in rest.split()]
                idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
                busy[int(name[3:])] = (sum(ticks[:8]) - idle) * _TICK_SECONDS
    except (OSError, ValueError, IndexError):
        pass
    ours = 0.0
    for tid in cpu.interpreter_threads():
        try:
            with open(f"/proc/self/task/{tid}/schedstat", encoding="ascii") as schedstat:
                ours += int(schedstat.read().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            continue  # ended meanwhile
    return CpuReading(busy, ours)


def idler_cpu(cpu: CpuAffinity, before: CpuReading, after: CpuReading, seconds: float) -> int | None:
    """The CPU to move the interpreter threads to, if other work took the shared one."""
    shared = cpu.shared
    if shared is None or shared not in after.busy or shared not in before.busy:
        return None
    others_on_shared = (after.busy[shared] - before.busy[shared]) - (after.ours - before.ours)
    if others_on_shared < CONTENDED_SHARE * seconds:
        return None
    load = {c: after.busy[c] - before.busy[c] for c in cpu.allowed
            if c != shared and c in after.busy and c in before.busy}
    if not load:
        return None
    best = min(load, key=lambda c: load[c])
    return best if load[best] < others_on_shared - MARGIN_SHARE * seconds else None


async def keep_shared_cpu_free(cpu: CpuAffinity, seconds: float = WATCH_SECONDS) -> None:
    """Until cancelled: move the interpreter threads off their CPU when other work takes it."""
    if cpu.shared is None:
        return
    jitter = random.Random()
    before, began = read_cpus(cpu), anyio.current_time()
    while True:
        await anyio.sleep(seconds * jitter.uniform(0.75, 1.25))
        after, now = read_cpus(cpu), anyio.current_time()
        target = idler_cpu(cpu, before, after, now - began)
        if target is not None:
            old = cpu.shared
            moved = cpu.move_to(target)
            log.info("the daemon's %d interpreter threads move from CPU %s to CPU %d: other work kept CPU %s "
                     "busy (--no-pin-threads lets them run anywhere)", moved, old, target, old)
            after, now = read_cpus(cpu), anyio.current_time()
        before, began = after, now
