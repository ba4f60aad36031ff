"""Resident memory and CPU time of plugins that run in their own process, sampled at scrape.

An ``rpc`` plugin's process (and whatever it spawned) is outside the daemon, so nothing in
the daemon observes its cost as it goes. ``PluginProcessSampler`` reads it from /proc (psutil)
each time /metrics is rendered, for every plugin whose status names a pid, and writes it into
``mfx_plugin_process_resident_memory_bytes`` (the process tree's RSS) and
``mfx_plugin_process_cpu_seconds_total``. The CPU counter adds what the process tree used since
the previous sample, so it never goes down across restarts. In-process plugins
(``dynamic_library``, ``hot_reload``, ``webassembly``) have no process of their own and no
such series: their cost is the daemon's own ``process_*`` metrics.

The sampler is a collector with a ``render`` that writes no text: registered before the
families it fills (``Metrics`` does that), it runs before them in every scrape.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import psutil
from prometheus_client.metrics_core import Metric

PidsFn = Callable[[], Mapping[str, int]]  # plugin name -> pid of its process


@dataclass
class _Seen:
    pid: int
    create_time: float
    cpu_seconds: float  # the process tree's user+system time at the previous sample


class PluginProcessSampler:
    def __init__(self) -> None:
        self._rss: Any = None
        self._cpu_total: Any = None
        self._pids: PidsFn = dict
        self._seen: dict[str, _Seen] = {}
        self._lock = threading.Lock()

    def fill(self, rss: Any, cpu_total: Any) -> None:
        """The families to write: a gauge of bytes and a counter of seconds, labelled by name."""
        self._rss = rss
        self._cpu_total = cpu_total

    def sample_from(self, pids: PidsFn) -> None:
        """Where the running plugins' pids come from (the daemon's object cache)."""
        self._pids = pids

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        self.sample()
        return iter(())

    def render(self, out: list[bytes]) -> None:
        self.sample()

    def sample(self) -> None:
        if self._rss is None:
            return
        with self._lock:  # concurrent scrapes: one sample at a time keeps the counters monotonic
            pids = dict(self._pids())
            for name, pid in sorted(pids.items()):
                self._sample_one(name, pid)
            for name in set(self._seen) - set(pids):
                del self._seen[name]

    def _sample_one(self, name: str, pid: int) -> None:
        try:
            process = psutil.Process(pid)
            with process.oneshot():
                created = process.create_time()
                rss, cpu = _tree_usage(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            self._seen.pop(name, None)
            return
        previous = self._seen.get(name)
        if previous is None or previous.pid != pid or previous.create_time != created:
            used = cpu  # a new process: all it used counts
        else:
            used = max(0.0, cpu - previous.cpu_seconds)  # children that exited take theirs away
        self._seen[name] = _Seen(pid, created, cpu)
        self._rss.labels(name).set(rss)
        if used:
            self._cpu_total.labels(name).inc(used)


def _tree_usage(process: psutil.Process) -> tuple[int, float]:
    """RSS and user+system CPU seconds of a process and its living descendants."""
    rss = 0
    cpu = 0.0
    for member in [process, *process.children(recursive=True)]:
        try:
            rss += member.memory_info().rss
            times = member.cpu_times()
            cpu += times.user + times.system
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return rss, cpu


def pids_from_snapshot(snapshot: Callable[[], Mapping[str, Mapping[str, dict[str, Any]]]]) -> PidsFn:
    """Plugin pids as the PluginManifest statuses report them (``status.runtime.pid``)."""

    def pids() -> dict[str, int]:
        found: dict[str, int] = {}
        for name, obj in snapshot().get("PluginManifest", {}).items():
            runtime = (obj.get("status") or {}).get("runtime") or {}
            pid = runtime.get("pid") if isinstance(runtime, dict) else None
            if isinstance(pid, int) and pid > 0 and runtime.get("state") != "Stopped":
                found[name] = pid
        return found

    return pids
