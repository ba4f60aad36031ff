"""One plugin import at a time, unless the one going on takes longer than a moment.

An import is interpreter work: module code and class bodies run under the interpreter lock,
so two threads importing at once finish no sooner than one after the other. What running
them at once does cost: every thread waiting for the lock wakes each switch interval to ask
for it, and the event loop, which gives the lock up at each of its own system calls, has to
queue behind them to get it back. A daemon starting a level of fifty plugins had up to forty
worker threads in that queue. Waiting at the gate instead is one sleep until the import
before is done.

A module that blocks while it is imported (a network call at its top level, a lock) keeps
the others waiting for ``patience`` at most; past that, imports go on beside it, and no
later import waits for it at all.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

PATIENCE_SECONDS = 0.02  # a plugin import takes well under a millisecond of interpreter time


class ImportGate:
    """Let one import through at a time (``with gate.passage(): ...``), waiting for the one
    going on ``patience`` seconds at most."""

    def __init__(self, patience: float = PATIENCE_SECONDS) -> None:
        if patience < 0:
            raise ValueError(f"patience must be 0 or more seconds, got {patience}")
        self._lock = threading.Lock()
        self._patience = patience
        self._held_since = 0.0  # when the import going through took the gate; 0.0 when none is

    @contextlib.contextmanager
    def passage(self) -> Iterator[None]:
        since = self._held_since
        if since and time.monotonic() - since > self._patience:
            held = False  # the one going through is slow: nobody waits for it any more
        else:
            held = self._lock.acquire(timeout=self._patience)
        if held:
            self._held_since = time.monotonic()
        try:
            yield
        finally:
            if held:
                self._held_since = 0.0
                self._lock.release()
