"""Real-time scheduling for the sink's writer thread, and for the threads a device opens."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

log = logging.getLogger("mfx.audio.sink")


# A low real-time priority: above every normal process, below the kernel's own RT threads
# and the sound server's (PulseAudio asks for 5 through rtkit, JACK for 10+).
WRITER_RT_PRIORITY = 3


def request_realtime(name: str) -> bool:
    """Give the calling (writer) thread SCHED_FIFO so a busy machine cannot starve it.

    Linux applies ``sched_setscheduler(0, ...)`` to the calling thread only. It needs root or
    CAP_SYS_NICE (or an RLIMIT_RTPRIO); without them the writer keeps the normal class and
    relies on its buffer, which is logged once so an operator knows why xruns may appear.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(WRITER_RT_PRIORITY))
    except (AttributeError, OSError) as error:
        log.info("sink %s: writer thread runs without real-time priority (%s); "
                 "run the daemon with CAP_SYS_NICE for glitch-free playback on a busy machine", name, error)
        return False
    return True


@contextlib.contextmanager
def realtime_threads() -> Iterator[None]:
    """Open the device with the calling thread briefly real-time.

    Sound-server clients (the PulseAudio ALSA plugin, for one) start their own I/O thread at
    open, and a new thread inherits its creator's scheduling class: opened from a normal
    thread, that I/O thread can be starved on a busy machine and the stream underruns even
    though the writer is on time. The caller's own class is restored afterwards.
    """
    try:
        before = os.sched_getscheduler(0), os.sched_getparam(0)
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(WRITER_RT_PRIORITY))
    except (AttributeError, OSError):
        yield  # no permission: the writer thread's own request logs why
        return
    try:
        yield
    finally:
        os.sched_setscheduler(0, before[0], before[1])
