"""What a new plugin process does to itself before it runs the plugin: the parent-death
signal, joining its cgroup, its rlimits.

Used on both paths to a plugin process: the ``preexec_fn`` of an exec'd plugin, and the
zygote's fork (``zygote_server``), which must do the same in the same order. Everything the
child runs is plain system calls on values prepared before the fork.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from mfx.runtimes.base import Limits

if TYPE_CHECKING:
    from mfx.runtimes.cgroups import Cgroup

PR_SET_PDEATHSIG = 1


def join_cgroup(procs: str) -> None:
    """Move the calling process into the cgroup whose ``cgroup.procs`` is ``procs``."""
    try:
        fd = os.open(procs, os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)
    except OSError:
        pass  # the rlimits still hold


def apply_rlimits(rlimits: Iterable[tuple[int, int, int]]) -> None:
    """``setrlimit`` for each ``(resource, soft, hard)`` of ``rlimits_for``."""
    for which, soft, hard in rlimits:
        resource.setrlimit(which, (soft, hard))


def rlimits_for(limits: Limits, *, cpu_seconds: int | None = None) -> list[tuple[int, int, int]]:
    """``(resource, soft, hard)`` for ``setrlimit`` in a new plugin process."""
    rlimits: list[tuple[int, int, int]] = []
    if limits.memory_bytes is not None:
        rlimits.append((resource.RLIMIT_AS, limits.memory_bytes, limits.memory_bytes))
    if limits.open_files is not None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        value = limits.open_files if hard == resource.RLIM_INFINITY else min(limits.open_files, hard)
        rlimits.append((resource.RLIMIT_NOFILE, value, value))
    if cpu_seconds is not None:
        rlimits.append((resource.RLIMIT_CPU, cpu_seconds, cpu_seconds + 1))
    return rlimits


def make_preexec(
    limits: Limits,
    *,
    cgroup: Cgroup | None = None,
    cpu_seconds: int | None = None,
) -> Callable[[], None]:
    """What the forked child does before exec. Everything is prepared here, in the parent,
    so the child runs only a few system calls (other daemon threads may hold locks)."""
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl
    parent_pid = os.getpid()
    rlimits = rlimits_for(limits, cpu_seconds=cpu_seconds)
    procs = str(cgroup.procs) if cgroup is not None else None

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the daemon died before prctl took effect
            os._exit(1)
        if procs is not None:
            join_cgroup(procs)
        apply_rlimits(rlimits)

    return preexec
