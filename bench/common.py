"""What every benchmark reports: a figure, its baseline from the same run, and the ratio."""

from __future__ import annotations

import os
import re
import statistics
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


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of each live thread of this process, summed by thread name
    without its trailing number (``mfx-store:state.db-2`` counts as ``mfx-store:state.db``).
    Linux only: read from /proc/self/task."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[str, float] = {}
    for thread in threading.enumerate():
        try:
            with open(f"/proc/self/task/{thread.native_id}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended since it was listed
        group = re.sub(r"-?[0-9a-f]*\d+$", "", thread.name)
        found[group] = found.get(group, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return found
