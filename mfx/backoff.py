"""Exponential backoff: the one formula every retry loop in mfx uses.

The n-th consecutive failure waits ``initial * 2**(n-1)``, capped at ``cap``. The exponent is
clamped so a long run of failures never overflows a float.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

_MAX_EXPONENT = 30


def exponential_delay(failures: int, initial: float, cap: float) -> float:
    """Seconds to wait after ``failures`` consecutive failures (``failures >= 1``)."""
    exponent = min(max(failures, 1) - 1, _MAX_EXPONENT)
    return min(cap, initial * 2**exponent)


def jittered(delay: float, fraction: float = 0.1, rng: random.Random | None = None) -> float:
    """``delay`` spread by up to ``fraction`` either way, so many retriers do not move in step."""
    spread = delay * fraction
    return max(0.0, delay + (rng or random).uniform(-spread, spread))


@dataclass(frozen=True)
class Backoff:
    """A retry policy: the first delay and the cap."""

    initial: float
    cap: float

    def delay(self, failures: int) -> float:
        return exponential_delay(failures, self.initial, self.cap)
