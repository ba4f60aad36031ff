"""A cgroup v2 of its own for each plugin: its memory and CPU limits, and the handle that
kills every process the plugin started, wherever it went in the process tree."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import uuid
from dataclasses import dataclass
from pathlib import Path

from mfx.runtimes.base import Limits

CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PARENT = "mfx-plugins"


@dataclass(frozen=True)
class Cgroup:
    path: Path

    @property
    def procs(self) -> Path:
        return self.path / "cgroup.procs"

    def oom_killed(self) -> bool:
        try:
            text = (self.path / "memory.events").read_text()
        except OSError:
            return False
        counts = dict(line.split() for line in text.splitlines() if line.count(" ") == 1)
        return int(counts.get("oom_kill", "0")) > 0

    def kill(self) -> None:
        """SIGKILL every process in the cgroup, wherever it went in the process tree."""
        try:
            (self.path / "cgroup.kill").write_text("1")  # Linux 5.14+
            return
        except OSError:
            pass
        try:
            pids = [int(line) for line in self.procs.read_text().split()]
        except (OSError, ValueError):
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.rmdir()


def create_cgroup(name: str, limits: Limits, root: Path = CGROUP_ROOT) -> Cgroup | None:
    """A cgroup of its own for one plugin, with ``memory.max``/``cpu.max`` when limited, or
    None where that is impossible. Unlimited plugins get one too: it holds every process the
    plugin starts, so all of them can be killed together."""
    try:
        available = (root / "cgroup.controllers").read_text().split()
    except OSError:
        return None  # not cgroup v2 (or not mounted here)
    limited = limits.memory_bytes is not None or limits.cpu_millis is not None
    wanted: list[str] = [c for c in ("memory", "cpu") if c in available] if limited else []
    if "memory" not in wanted and limits.memory_bytes is not None:
        return None
    try:
        parent = root / CGROUP_PARENT
        _enable_controllers(root, wanted)
        parent.mkdir(exist_ok=True)
        _enable_controllers(parent, wanted)
        leaf = parent / f"{_safe(name)}-{uuid.uuid4().hex[:8]}"
        leaf.mkdir()
        cgroup = Cgroup(leaf)
        try:
            if limits.memory_bytes is not None:
                (leaf / "memory.max").write_text(str(limits.memory_bytes))
                with contextlib.suppress(OSError):
                    (leaf / "memory.swap.max").write_text("0")
            if limits.cpu_millis is not None and "cpu" in wanted:
                period = 100_000
                (leaf / "cpu.max").write_text(f"{max(1000, limits.cpu_millis * period // 1000)} {period}")
        except OSError:
            cgroup.remove()
            return None
        return cgroup
    except OSError:
        return None


def _enable_controllers(group: Path, controllers: list[str]) -> None:
    control = group / "cgroup.subtree_control"
    enabled = control.read_text().split()
    missing = [c for c in controllers if c not in enabled]
    if missing:
        control.write_text(" ".join(f"+{c}" for c in missing))


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:64]
