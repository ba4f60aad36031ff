"""Starting a plugin process: command, environment, limits, and reading what it prints.

Which limit holds where (Linux):

==================  ======================================================================
limit               how it is enforced
==================  ======================================================================
memory              ``RLIMIT_AS`` (address space) always: allocations beyond it fail, and
                    Python raises ``MemoryError`` in the plugin. Where a writable cgroup v2
                    hierarchy is mounted at ``/sys/fs/cgroup`` (``cgroup.controllers``
                    present, memory controller available), the plugin also gets its own
                    cgroup with ``memory.max`` (the kernel OOM-kills the cgroup's processes
                    beyond it). Elsewhere (cgroup v1, read-only cgroup fs) only the rlimit.
                    The address-space limit counts reserved, not resident, memory: thread
                    stacks and malloc arenas count, so the runtime sets
                    ``MALLOC_ARENA_MAX=2`` and the SDK uses 2 MiB thread stacks.
cpu (a rate)        cgroup v2 ``cpu.max`` only, where writable. ``RLIMIT_CPU`` caps the CPU
                    seconds of a whole life, not a rate, so it does not follow from
                    ``cpu: 500m``; ``RpcRuntime(cpu_seconds=N)`` sets it as a runaway guard
                    (SIGXCPU, then SIGKILL a second later).
openFiles           ``RLIMIT_NOFILE`` (never above the daemon's own hard limit).
parent death        ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` in the child before exec: if the
                    daemon dies (even by SIGKILL) the kernel kills the plugin. It fires when
                    the *thread* that forked exits, so spawn from the event-loop thread (as
                    here), never from a worker thread. The SDK also exits when its stdin (a
                    pipe the daemon holds) reaches end-of-file.
the plugin's own    Each plugin leads its own process group (and has a cgroup of its own
children            where cgroup v2 is writable, limits or not). The whole group is killed
                    when the plugin stops, crashes or is restarted, even after the plugin
                    itself has exited. The death signal reaches only the plugin, so each
                    plugin also gets a ``GroupReaper``: a tiny shell, outside the group,
                    waiting for end-of-file on a pipe only the daemon holds. The daemon
                    closes it when it lets go of the plugin, and the kernel closes it when
                    the daemon dies, however it dies: either way the reaper kills the group
                    (and the cgroup) and exits.
==================  ======================================================================

The environment is scrubbed (see ``process_command``). The working directory is the
state directory. Each plugin is the leader of a new session, so a terminal's Ctrl-C reaches
the daemon only and the daemon decides how plugins stop; signals at the end of ``stop()``
go to the whole process group, so a plugin's own children do not outlive it (a child that
leaves the group with ``setsid`` is still caught by the cgroup, where there is one).

The parts live in modules of their own: ``process_command`` (argv and environment),
``cgroups``, ``child_setup`` (what the child does before exec), ``process_group`` (spawning,
signalling and reaping the group), ``process_output`` (reading stdout and stderr). This
module names them all in one place for the rpc runtime.

Spawning uses asyncio directly because ``anyio.open_process`` has no ``preexec_fn``; the
RPC runtime therefore needs anyio's asyncio backend (the daemon's backend).
"""

from __future__ import annotations

from mfx.runtimes.cgroups import CGROUP_PARENT, CGROUP_ROOT, Cgroup, create_cgroup
from mfx.runtimes.child_setup import make_preexec, rlimits_for
from mfx.runtimes.process_command import (
    PASSTHROUGH_ENV,
    PASSTHROUGH_ENV_PREFIXES,
    PYTHON_ALIASES,
    build_environment,
    resolve_command,
)
from mfx.runtimes.process_group import (
    REAPER_SCRIPT,
    GroupReaper,
    describe_exit,
    signal_group,
    spawn,
)
from mfx.runtimes.process_output import LineReader, StderrParser

__all__ = [
    "CGROUP_PARENT",
    "CGROUP_ROOT",
    "PASSTHROUGH_ENV",
    "PASSTHROUGH_ENV_PREFIXES",
    "PYTHON_ALIASES",
    "REAPER_SCRIPT",
    "Cgroup",
    "GroupReaper",
    "LineReader",
    "StderrParser",
    "build_environment",
    "create_cgroup",
    "describe_exit",
    "make_preexec",
    "resolve_command",
    "rlimits_for",
    "signal_group",
    "spawn",
]
