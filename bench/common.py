"""What every benchmark reports: a figure, its baseline from the same run, and the ratio."""

from __future__ import annotations

import os
import re
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    name: str  # what was measured, e.g. "apply 1000 objects"
    value: float
    unit: str  # "objects/s", "ms", "x realtime" ...
    baseline_name: str = ""  # what it is compared with, measured in the same run
    baseline: float | None = None
    target: str = ""  # the goal as written in the issue, e.g. "ratio <= 1.2"
    higher_is_better: bool = False
    # A baseline worked out on paper (a bound such as a critical path), not measured in the run.
    baseline_computed: bool = False

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline  # type: ignore[operator]

    def line(self) -> str:
        text = f"{self.name}: {self.value:.4g} {self.unit}"
        if self.baseline is not None:
            how = ", computed, not measured" if self.baseline_computed else ""
            text += f" | baseline ({self.baseline_name}{how}): {self.baseline:.4g} {self.unit}"
            if self.ratio is not None:
                text += f" | ratio {self.ratio:.3g}"
        if self.target:
            text += f" | target {self.target}"
        return text


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


ENDED_THREADS = "the rest (threads that ended meanwhile, per-thread rounding)"


def thread_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) of each live thread of this process by its native id, with
    its group: its name without the trailing number (``mfx-store:state.db-2`` is in
    ``mfx-store:state.db``). Linux only: read from /proc/self/task, in nanoseconds from
    ``schedstat`` where the kernel keeps it (``stat`` counts whole clock ticks, 10 ms each:
    too coarse for threads that run a millisecond at a time)."""
    found: dict[int, tuple[str, float]] = {}
    for thread in threading.enumerate():
        if thread.native_id is None:
            continue
        cpu = _task_cpu(thread.native_id)
        if cpu is None:
            continue  # ended since it was listed
        found[thread.native_id] = (re.sub(r"-?[0-9a-f]*\d+$", "", thread.name), cpu)
    return found


def _task_cpu(native_id: int) -> float | None:
    task = f"/proc/self/task/{native_id}"
    try:
        with open(f"{task}/schedstat") as schedstat:
            return int(schedstat.read().split()[0]) / 1e9
    except (FileNotFoundError, ProcessLookupError):
        pass
    try:
        with open(f"{task}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_spent(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]],
                     process_cpu: float) -> dict[str, float]:
    """The CPU seconds spent between two ``thread_cpu`` readings, by group: each thread alive
    at the second counts what it spent since the first (all of it when it started since). A
    thread that ended in between cannot be read any more: what the process spent beyond the
    live threads (``process_cpu``, its CPU time over the same window) is ``ENDED_THREADS``."""
    spent: dict[str, float] = {}
    for native_id, (group, cpu) in after.items():
        spent[group] = spent.get(group, 0.0) + cpu - before.get(native_id, (group, 0.0))[1]
    spent[ENDED_THREADS] = max(0.0, process_cpu - sum(spent.values()))
    return spent


def file_create_cpu_seconds(count: int = 300) -> float:
    """The CPU time creating one small file costs on this machine (in a fresh directory of
    the temporary file system's disk, one line written, as a plugin's first log line is):
    the kernel's part dominates, and on a virtual disk it is far from free."""
    line = b"x" * 160 + b"\n"
    with tempfile.TemporaryDirectory(prefix="mfx-bench-create-") as folder:
        started = time.process_time()
        for i in range(count):
            fd = os.open(os.path.join(folder, f"p{i}.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        return (time.process_time() - started) / count


def handoff_cpu_seconds(rounds: int = 2000) -> float:
    """The CPU time one thread handing the turn to another costs on this machine: two threads
    pass it back and forth through ``threading.Event``s (a wake-up, a wait and the interpreter
    lock each way); the process's CPU time per hand-off. On a virtual machine it is several
    times a bare-metal figure, and every blocked call of a busy process pays it."""
    mine, theirs = threading.Event(), threading.Event()

    def other() -> None:
        for _ in range(rounds):
            theirs.wait()
            theirs.clear()
            mine.set()

    thread = threading.Thread(target=other, name="bench-handoff")
    thread.start()
    started = time.process_time()
    for _ in range(rounds):
        theirs.set()
        mine.wait()
        mine.clear()
    spent = time.process_time() - started
    thread.join()
    return spent / (2 * rounds)
