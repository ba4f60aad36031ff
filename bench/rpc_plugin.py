"""The ``plugins/hello-rpc`` plugin on a bench daemon, followed on the store's watch: started
fresh, and waited for until Ready with a new pid (what the recovery and restart benches time)."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from bench.daemon import BenchDaemon
from mfx.api.objects import Obj

REPO = Path(__file__).resolve().parents[1]
HELLO = REPO / "plugins" / "hello-rpc"
KIND = "PluginManifest"
# A run of 1 s counts as healthy (backoff.max), so a crash after it restarts at once; and 100
# starts a minute are no crash loop for the start limit.
RESTART_POLICY = {"backoff": {"max": "1s"}, "startLimit": {"burst": 100}}
HEALTHY_SECONDS = 1.0


def manifest(name: str) -> Obj:
    obj: Obj = yaml.safe_load((HELLO / "plugin.yaml").read_text())
    obj["metadata"] = {"name": name}
    obj["spec"]["restartPolicy"] = RESTART_POLICY
    return obj


def ready_pid(obj: Obj) -> int | None:
    """The plugin's pid when the object says Ready=True, else None."""
    status = obj.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    pid = (status.get("runtime") or {}).get("pid")
    return int(pid) if ready and pid is not None else None


async def until_ready(store: Any, name: str, rv: str | None, other_than: int | None) -> int:
    """Follow the watch from ``rv`` until ``name`` is Ready with a pid other than ``other_than``."""
    async for event in store.watch(KIND, rv):
        obj = event.object
        if obj["metadata"]["name"] != name:
            continue
        pid = ready_pid(obj)
        if pid is not None and pid != other_than:
            return pid
    raise RuntimeError("watch ended")


async def fresh_start(store: Any, name: str) -> tuple[float, int]:
    """apply -> Ready of a plugin that never ran: (seconds, its pid)."""
    rv = (await store.list(KIND, limit=1)).resource_version
    started = time.perf_counter()
    await store.create(manifest(name))
    pid = await until_ready(store, name, rv, None)
    return time.perf_counter() - started, pid


@contextmanager
def hello_rpc_daemon(prefix: str, names: list[str]) -> Iterator[BenchDaemon]:
    """A bench daemon whose plugin path holds a copy of hello-rpc under each of ``names``."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        base = Path(tmp)
        root = base / "plugins"
        root.mkdir()
        for name in names:
            os.symlink(HELLO, root / name)
        home = base / "home"
        home.mkdir()
        with BenchDaemon(home, root) as daemon:
            yield daemon


def fresh_starts(daemon: BenchDaemon, count: int) -> list[float]:
    """Seconds from apply to Ready of ``count`` copies ``fresh00``... that never ran, after one
    unmeasured start (``warm``) that starts the rpc runtime's zygote."""
    daemon.portal.call(fresh_start, daemon.store, "warm")
    return [daemon.portal.call(fresh_start, daemon.store, f"fresh{i:02d}")[0] for i in range(count)]
