"""The ``plugins/hello-rpc`` plugin on a bench daemon, followed on the store's watch: started
fresh, and waited for until Ready with a new pid (what the recovery and restart benches time)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

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
