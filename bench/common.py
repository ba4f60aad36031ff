"""What every benchmark reports: a figure, its baseline from the same run, and the ratio."""

from __future__ import annotations

import statistics
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
