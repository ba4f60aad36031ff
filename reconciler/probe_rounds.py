"""Quick probes run in rounds: one thread hand-off for every quick probe due together.

An in-process plugin's health check (a C library's, a Python plugin's synchronous
``health``) is a call of a few microseconds, but as an ordinary probe each one costs its
task's wake-up, a timeout scope and a hand-off to a thread and back: about 130 µs of the event
loop's time. At 1000 plugins and the default 10 s interval that is 100 probes a second, 1.3 %
of a core for nothing but the bookkeeping.

A probe with a *quick* form (synchronous, thread-safe, returning at once) is run in a round
instead: the scheduler takes every quick probe due at about the same time and
:func:`run_quick` runs them one after another on one worker thread, so the round pays one
wake-up and one hand-off however many probes it holds.

Each probe keeps its own timeout. A quick probe still running past it is reported timed out
(found at most the round's shortest timeout later) and left to its thread (C code cannot be
interrupted); the rest of the round goes on on a fresh thread, so one hung plugin delays the
others' probes by about its timeout, once: it is then probed in a task of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import anyio
import anyio.to_thread

# Returns True once it has checked (healthy); False when it could not check without waiting
# (the plugin is busy): the scheduler then runs the ordinary probe. Raises when unhealthy.
QuickProbeFn = Callable[[], bool]

ROUND_SLACK_SECONDS = 0.5  # a probe may run up to this much early to join a round ...
ROUND_SLACK_SHARE = 0.1  # ... and never more than this share of its interval early


def round_slack(interval: float) -> float:
    """How early a probe with this interval may run so that it joins a round."""
    return min(ROUND_SLACK_SECONDS, ROUND_SLACK_SHARE * interval)


@dataclass(frozen=True)
class QuickOutcome:
    ran: bool  # False: the plugin was busy, nothing was checked
    duration: float  # seconds (real time)
    error: str | None = None
    timed_out: bool = False


class _Pass:
    """One worker thread's way through a list of quick probes; the event loop reads how far it
    got from ``current`` (the index of the probe running and when it began) and ``outcomes``."""

    def __init__(self, probes: Sequence[QuickProbeFn]) -> None:
        self.probes = probes
        self.current: tuple[int, float] = (-1, time.perf_counter())
        self.outcomes: list[QuickOutcome] = []

    def run(self) -> None:
        for index, probe in enumerate(self.probes):
            started = time.perf_counter()
            self.current = (index, started)  # one assignment: the loop never sees half of it
            try:
                ran, error = probe() is not False, None
            except Exception as exc:  # a failing probe is an outcome, not the end of the round
                ran, error = True, f"{type(exc).__name__}: {exc}"
            self.outcomes.append(QuickOutcome(ran, time.perf_counter() - started, error))


async def run_quick(probes: Sequence[QuickProbeFn], timeouts: Sequence[float]) -> list[QuickOutcome]:
    """Run ``probes`` in order on a worker thread, each within its own timeout (real time);
    one outcome per probe, in the same order."""
    outcomes: list[QuickOutcome] = []
    while len(outcomes) < len(probes):
        start = len(outcomes)
        one_pass = _Pass(probes[start:])
        overran = await _watch(one_pass, timeouts[start:])
        if overran is None:
            outcomes.extend(one_pass.outcomes)
            continue
        outcomes.extend(one_pass.outcomes[:overran])
        timeout = timeouts[start + overran]
        outcomes.append(QuickOutcome(True, timeout, f"health probe did not answer within {timeout:g} s",
                                     timed_out=True))
    return outcomes


async def _watch(one_pass: _Pass, timeouts: Sequence[float]) -> int | None:
    """Run ``one_pass`` on a worker thread until it ends (None) or one of its probes overruns
    its timeout: then that probe's index, with the thread left to it."""
    finished = anyio.Event()

    async def work() -> None:
        # A limiter of its own: the rounds never wait for a token of anyio's default limiter,
        # which the API's thread calls share (an abandoned pass gives its token back).
        await anyio.to_thread.run_sync(one_pass.run, abandon_on_cancel=True, limiter=anyio.CapacityLimiter(1))
        finished.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(work)
        while not finished.is_set():
            index, started = one_pass.current
            done = len(one_pass.outcomes)
            # Looked at again after the shortest timeout still ahead at the latest: a probe that
            # hangs right after this look is found at most that late (the thread tells the
            # loop nothing per probe, which would cost a wake-up each).
            wait = min(timeouts[min(done, len(timeouts) - 1):])
            if index >= 0 and done == index:  # probe ``index`` is running
                overrun = time.perf_counter() - started - timeouts[index]
                if overrun >= 0:
                    tg.cancel_scope.cancel()
                    return index
                wait = min(wait, -overrun)
            with anyio.move_on_after(wait):
                await finished.wait()
    return None
