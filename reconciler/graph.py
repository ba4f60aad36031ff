"""The dependency graph of named objects (plugins), held in networkx.

Edges point from an object to what it depends on (``a -> b``: a requires b), so a cycle
reads the way users think of it: ``a -> b -> c -> a``. Start order is dependencies first;
stop order is dependents first (systemd's Requires/After, reversed for stop).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import networkx as nx

from mfx.errors import MfxError


class DependencyCycleError(MfxError):
    reason = "DependencyCycle"
    code = 422

    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__(f"dependency cycle: {format_cycle(cycle)}; remove one of these dependencies")


def format_cycle(cycle: list[str]) -> str:
    return " -> ".join(cycle)


@dataclass(frozen=True)
class CriticalChain:
    """The longest chain of dependencies by start time (systemd-analyze critical-chain)."""

    nodes: list[str]  # dependencies first
    duration: float  # sum of the chain's durations: the lower bound of a parallel start

    def __str__(self) -> str:
        return f"{' -> '.join(self.nodes)} ({self.duration:.3f} s)"


class DependencyGraph:
    def __init__(self) -> None:
        self._g: nx.DiGraph = nx.DiGraph()
        self._declared: set[str] = set()

    # --- building -----------------------------------------------------------------------------

    def set_node(self, name: str, dependencies: Iterable[str] = ()) -> None:
        """Declare ``name`` with exactly these dependencies (replacing earlier ones)."""
        self._declared.add(name)
        self._g.add_node(name)
        wanted = set(dependencies)
        for old in list(self._g.successors(name)):
            if old not in wanted:
                self._g.remove_edge(name, old)
                self._drop_if_orphan(old)
        for dep in wanted:
            self._g.add_edge(name, dep)

    def remove_node(self, name: str) -> None:
        """Forget ``name``'s own declaration; it stays as a (missing) dependency of others."""
        if name not in self._g:
            return
        self._declared.discard(name)
        for dep in list(self._g.successors(name)):
            self._g.remove_edge(name, dep)
            self._drop_if_orphan(dep)
        self._drop_if_orphan(name)

    def _drop_if_orphan(self, name: str) -> None:
        if name not in self._declared and name in self._g and self._g.in_degree(name) == 0:
            self._g.remove_node(name)

    # --- queries -------------------------------------------------------------------------------

    def __contains__(self, name: object) -> bool:
        return name in self._declared

    def nodes(self) -> list[str]:
        return sorted(self._declared)

    def dependencies(self, name: str) -> list[str]:
        return sorted(self._g.successors(name)) if name in self._g else []

    def missing(self) -> dict[str, list[str]]:
        """Declared nodes whose dependencies are not declared themselves."""
        out: dict[str, list[str]] = {}
        for name in sorted(self._declared):
            gone = [d for d in self.dependencies(name) if d not in self._declared]
            if gone:
                out[name] = gone
        return out

    def dependents(self, name: str, *, transitive: bool = False) -> list[str]:
        """Who depends on ``name``; transitive ones in stop order (outermost first)."""
        if name not in self._g:
            return []
        if not transitive:
            return sorted(self._g.predecessors(name))
        above = nx.ancestors(self._g, name)
        sub = self._g.subgraph(above)
        try:
            # a -> b edges: a topological sort puts dependents before their dependencies
            return list(nx.lexicographical_topological_sort(sub))
        except nx.NetworkXUnfeasible:
            return sorted(above)

    def find_cycle(self, start: str | None = None) -> list[str] | None:
        """A cycle as a closed path ``[a, b, c, a]``, or None."""
        try:
            edges = nx.find_cycle(self._g, source=start) if start is not None else nx.find_cycle(self._g)
        except nx.NetworkXNoCycle:
            return None
        path = [edges[0][0]] + [v for _, v in edges]
        return path

    def cycle_through(self, name: str) -> list[str] | None:
        """A cycle that contains ``name`` (not just one reachable from it), or None."""
        if name not in self._g:
            return None
        for other in self._g.successors(name):
            if other == name:
                return [name, name]
            try:
                back = nx.shortest_path(self._g, other, name)
            except nx.NetworkXNoPath:
                continue
            return [name, *back]
        return None

    def start_order(self) -> list[str]:
        """Declared nodes, dependencies first; raises ``DependencyCycleError``."""
        cycle = self.find_cycle()
        if cycle is not None:
            raise DependencyCycleError(cycle)
        order = list(nx.lexicographical_topological_sort(self._g.reverse(copy=False)))
        return [n for n in order if n in self._declared]

    def topological_order(self) -> list[str]:
        return self.start_order()

    def stop_order(self) -> list[str]:
        return list(reversed(self.start_order()))

    def depth(self, name: str) -> int:
        """Length of the longest dependency chain below ``name`` (0: no dependencies)."""
        if name not in self._g:
            return 0
        below = nx.descendants(self._g, name)
        if not below:
            return 0
        sub = self._g.subgraph(below | {name})
        if not nx.is_directed_acyclic_graph(sub):
            raise DependencyCycleError(self.cycle_through(name) or self.find_cycle() or [name])
        return int(nx.dag_longest_path_length(sub))

    def critical_chain(self, durations: Mapping[str, float]) -> CriticalChain:
        """The chain whose durations add up to the latest finish (missing durations: 0)."""
        finish: dict[str, float] = {}
        via: dict[str, str | None] = {}
        for name in self.start_order():
            deps = [d for d in self._g.successors(name) if d in finish]
            before = max(deps, key=lambda d: finish[d], default=None)
            finish[name] = (finish[before] if before else 0.0) + float(durations.get(name, 0.0))
            via[name] = before
        if not finish:
            return CriticalChain([], 0.0)
        last = max(finish, key=lambda n: finish[n])
        chain: list[str] = []
        node: str | None = last
        while node is not None:
            chain.append(node)
            node = via[node]
        return CriticalChain(list(reversed(chain)), finish[last])
