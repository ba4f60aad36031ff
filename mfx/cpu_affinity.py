"""The daemon's interpreter threads share one CPU; what runs outside the interpreter does not.

The interpreter runs one thread at a time (the GIL). The daemon's threads hand it to each
other all the time: the event loop to the store's writer thread and back at every commit, to
a plugin's call thread and back at every call, and whoever waits for it takes it at each of
the holder's system calls. When the two threads are on different CPUs, each hand-off wakes
the other CPU and moves the interpreter's working set between two caches; on one CPU it is
a plain switch. Measured on two cores (``bench convergence`` prints both), keeping them on
one CPU cut the daemon's CPU per started plugin by about 40 %, and it costs nothing the
interpreter could have done at once.

Child processes (plugin processes and their zygote, the audio engine, git) keep every CPU
the daemon was given (by ``taskset``, systemd's ``CPUAffinity=`` or its cgroup): they are
started inside ``spawning()``, as a child starts with its parent thread's CPUs. So is the
thread that writes the plugin logs (``PluginLogStore.background_writes``): its work is
file-system calls, and an interpreter thread only queues its lines. The threads
of native plugin calls (a C library's, WebAssembly's) stay with the interpreter threads:
their calls are mostly short and each is a hand-off with the caller, which cost a
WebAssembly call more than twice as much when the two were on different CPUs (``bench
wasm``); a long one is bounded by its deadline.

When other work takes the shared CPU, ``mfx.cpu_watch`` moves the interpreter threads to an
idler one (``move_to``). ``pin()`` is called once, by the thread of the daemon's event loop
before it starts any other thread; the threads it starts afterwards (the store's writer,
plugin call threads, probe rounds) start on the same CPU. The daemon's tasks find its ``CpuAffinity`` in their
context (``current()``, set by ``run_daemon``), so the places that spawn or start a native
thread need none handed down; outside a daemon it is one that moves nothing. Linux only;
elsewhere, and with one CPU, nothing moves.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from contextvars import ContextVar


class CpuAffinity:
    """The CPUs the daemon was given, and the one its interpreter threads share (None: they
    are not pinned, and every method here leaves threads where they are). ``move_to`` puts
    them on another one (``mfx.cpu_watch`` does when theirs gets busy with other work)."""

    def __init__(self, allowed: frozenset[int] = frozenset(), shared: int | None = None) -> None:
        self.allowed = allowed
        self.shared = shared
        self._former: set[int] = set()  # CPUs shared before a move: threads still there follow
        # Per thread: how many ``spawning`` blocks are open (tasks of one loop may overlap them).
        self._spawns = threading.local()

    def __repr__(self) -> str:
        return f"CpuAffinity(allowed={sorted(self.allowed)}, shared={self.shared})"

    @classmethod
    def choose(cls, *, pin: bool) -> CpuAffinity:
        """The calling thread's CPUs, and (``pin``, more than one CPU) the one it runs on now,
        whose caches already hold what the thread has been doing."""
        if not hasattr(os, "sched_getaffinity"):
            return cls()
        allowed = frozenset(os.sched_getaffinity(0))
        if not pin or len(allowed) < 2:
            return cls(allowed)
        current = _current_cpu()
        return cls(allowed, current if current in allowed else min(allowed))

    def interpreter_threads(self) -> list[int]:
        """The ids of this process's threads pinned to the shared CPU (or to one shared before)."""
        if self.shared is None:
            return []
        ours = {self.shared, *self._former}
        found = []
        for tid in _thread_ids():
            try:
                mask = os.sched_getaffinity(tid)
            except OSError:
                continue  # ended meanwhile
            if len(mask) == 1 and not mask.isdisjoint(ours):
                found.append(tid)
        return found

    def move_to(self, cpu: int) -> int:
        """Put every interpreter thread on ``cpu`` (one of ``allowed``) instead; how many moved."""
        if self.shared is None or cpu == self.shared or cpu not in self.allowed:
            return 0
        threads = self.interpreter_threads()
        self._former.add(self.shared)
        self.shared = cpu  # first: a spawn ending meanwhile goes back to the new one
        moved = 0
        for tid in threads:
            try:
                os.sched_setaffinity(tid, {cpu})
                moved += 1
            except OSError:
                continue
        return moved

    def pin(self) -> None:
        """Put the calling thread (and the threads it starts from now on) on the shared CPU."""
        if self.shared is not None:
            os.sched_setaffinity(0, {self.shared})

    def release(self) -> None:
        """Give the calling thread back every CPU the daemon was given."""
        if self.shared is not None:
            os.sched_setaffinity(0, self.allowed)

    @contextlib.contextmanager
    def spawning(self) -> Iterator[None]:
        """Inside, the calling (interpreter) thread has every CPU back, so a child process
        started here does; it goes back to the shared CPU when the last such block ends."""
        if self.shared is None:
            yield
            return
        depth = getattr(self._spawns, "depth", 0)
        if depth == 0:
            os.sched_setaffinity(0, self.allowed)
        self._spawns.depth = depth + 1
        try:
            yield
        finally:
            self._spawns.depth -= 1
            if self._spawns.depth == 0:
                os.sched_setaffinity(0, {self.shared})


_CURRENT: ContextVar[CpuAffinity | None] = ContextVar("mfx_cpu_affinity", default=None)


def current() -> CpuAffinity:
    """The running daemon's ``CpuAffinity`` (one that moves nothing outside a daemon)."""
    return _CURRENT.get() or CpuAffinity()


@contextlib.contextmanager
def in_effect(cpu: CpuAffinity) -> Iterator[None]:
    """``cpu`` is ``current()`` for the code inside and the tasks it starts."""
    token = _CURRENT.set(cpu)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def spawning() -> contextlib.AbstractContextManager[None]:
    """``current().spawning()``: start child processes inside it."""
    return current().spawning()


def _thread_ids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:
        return []


def _current_cpu() -> int | None:
    """The CPU the calling thread last ran on (field 39 of /proc/thread-self/stat)."""
    try:
        with open("/proc/thread-self/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
        return int(fields[36])
    except (OSError, IndexError, ValueError):
        return None
