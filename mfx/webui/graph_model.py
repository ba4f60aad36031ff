"""The dependency graph as the page draws it: nodes with their state, edges, critical chain.

The chain is the one ``mfx analyze critical-chain`` prints, from the same
``reconciler.DependencyGraph`` and the plugins' ``startedAt``/``readyAt``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from reconciler import DependencyGraph


def _time(text: Any) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def critical_chain(plugins: Iterable[dict[str, Any]]) -> list[str]:
    """The chain of plugins that bounds convergence (dependencies first), [] before any is Ready."""
    graph = DependencyGraph()
    ready: dict[str, float] = {}
    for obj in plugins:
        name = obj["metadata"]["name"]
        deps = [d["name"] for d in (obj.get("spec") or {}).get("dependencies") or [] if not d.get("optional")]
        graph.set_node(name, deps)
        status = obj.get("status") or {}
        started, done = _time(status.get("startedAt")), _time(status.get("readyAt"))
        if started is not None and done is not None:
            ready[name] = done
    for name in graph.blocked():  # on or above a cycle: never starts, never on the chain
        ready.pop(name, None)
    if not ready:
        return []
    target = max(ready, key=lambda n: ready[n])
    return list(graph.chain_to(target, ready))
