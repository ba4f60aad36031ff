"""How punctual a sink's writer thread is, and who is to blame for an underrun.

The writer's deadline: a blocking device write returns when the device has room for about
a period, and the device then holds the rest of its buffer. The writer must be back in the
device with the next period before that runs out; its work in between (taking a period from
the ring, padding, bookkeeping, and getting the GIL back) should take far less than a period.

- Lateness of a period: the time from the previous device write's return to the next write
  call, minus the time spent waiting for the producer (a producer that is late is not the
  writer's fault: the silence padded for it is counted apart). More than one period is a
  deadline miss; a person tuning period sizes wants the worst as a share of a period.
- An underrun is ``writerLate`` when the writer was away (inside the previous call and
  between calls) for about the buffer's length or more, and ``deviceStall`` when it came
  back in time and the device ran dry anyway (it drained faster than real time, or stalled).

Not thread-safe: the sink calls it under its own lock.
"""

from __future__ import annotations

import collections
import enum
import logging
from dataclasses import dataclass, field

from mfx.audio.alsa_device import DeviceParams

log = logging.getLogger("mfx.audio.sink")

LOOP_SAMPLES = 8192  # recent per-period work times kept for benchmarks


class XrunCause(enum.StrEnum):
    WRITER_LATE = "writerLate"  # the writer came back later than the buffer lasts
    DEVICE_STALL = "deviceStall"  # the writer was in time; the device ran dry anyway


@dataclass
class WriterTiming:
    deadline_misses: int = 0
    worst_lateness_seconds: float = 0.0
    worst_lateness_periods: float = 0.0
    xrun_causes: dict[XrunCause, int] = field(default_factory=dict)
    loop_seconds: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=LOOP_SAMPLES))
    last_return: float | None = None  # perf_counter when the last device write returned
    last_call_seconds: float = 0.0  # how long that write call took, back in Python

    def record_work(self, seconds: float, params: DeviceParams) -> None:
        """The writer spent ``seconds`` between device writes, not counting waits for data."""
        seconds = max(0.0, seconds)
        self.loop_seconds.append(seconds)
        if seconds > self.worst_lateness_seconds:
            self.worst_lateness_seconds = seconds
            self.worst_lateness_periods = seconds / params.period_seconds
        if seconds > params.period_seconds:
            self.deadline_misses += 1

    def returned(self, call_started: float, now: float) -> None:
        """A device write that began at ``call_started`` returned at ``now``."""
        self.last_return = now
        self.last_call_seconds = now - call_started

    def restart(self) -> None:
        """The device starts a new run (after an open or an idle spell): nothing was late."""
        self.last_return = None
        self.last_call_seconds = 0.0

    def xrun(self, call_started: float, params: DeviceParams, sink: str, count: int) -> XrunCause:
        """Count an underrun noticed by the write that began at ``call_started``, log who was
        late, and return the cause.

        A blocking write returns about a period after the device has room, and a running
        device holds a buffer of audio. When the writer was away for about a buffer and most
        of it inside the previous write call, the device had taken that write's data long
        before: the thread was waiting to get back into Python (the GIL, held by a long
        garbage collection or C call in another thread). Most of it between calls is the
        writer's own loop being late. Neither means the device drained faster than real time.
        """
        gap = call_started - self.last_return if self.last_return is not None else 0.0
        previous = self.last_call_seconds
        if previous + gap < params.buffer_seconds - params.period_seconds:
            cause, why = XrunCause.DEVICE_STALL, "the device drained faster than real time"
        elif previous >= gap:
            cause, why = XrunCause.WRITER_LATE, "the writer was held returning from the previous write (the GIL)"
        else:
            cause, why = XrunCause.WRITER_LATE, "the writer was late between writes"
        self.xrun_causes[cause] = self.xrun_causes.get(cause, 0) + 1
        log.warning("sink %s: underrun (xrun %d): the previous write call took %.0f ms and the "
                    "next began %.0f ms later, the device buffer holds %.0f ms: %s",
                    sink, count, previous * 1000, gap * 1000, params.buffer_seconds * 1000, why)
        return cause

    def causes(self) -> dict[str, int]:
        return {cause.value: self.xrun_causes.get(cause, 0) for cause in XrunCause}
