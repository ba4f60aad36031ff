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

    def on_cycles(self) -> frozenset[str]:
        """Every node that lies on some cycle (one linear pass over the graph)."""
        found: set[str] = set()
        for group in nx.strongly_connected_components(self._g):
            if len(group) > 1:
                found.update(group)
            else:
                (only,) = group
                if self._g.has_edge(only, only):
                    found.add(only)
        return frozenset(found)

    def cycles(self) -> list[list[str]]:
        """Every cycle, one closed path per strongly connected group (``[a, b, a]``), sorted."""
        out: list[list[str]] = []
        for group in nx.strongly_connected_components(self._g):
            first = min(group)
            if len(group) > 1 or self._g.has_edge(first, first):
                out.append(self.cycle_through(first) or [first, first])
        return sorted(out)

    def blocked(self) -> set[str]:
        """Nodes that can never start: those on a cycle and those that depend on one."""
        on_cycle = {n for cycle in self.cycles() for n in cycle}
        above = set(on_cycle)
        for name in on_cycle:
            above |= nx.ancestors(self._g, name)
        return above

    def cycles_reached_by(self, name: str) -> list[list[str]]:
        """The cycles ``name`` is on or depends on (what keeps it from ever starting)."""
        if name not in self._g:
            return []
        reach = nx.descendants(self._g, name) | {name}
        return [c for c in self.cycles() if reach.intersection(c)]

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
        """The chain whose durations add up to the latest finish (missing durations: 0).

        Nodes on a cycle, or depending on one, never start, so they are never on the chain
        (``cycles()`` names them); the rest is a DAG and has a chain.
        """
        blocked = self.blocked()
        dag = self._g.subgraph(n for n in self._g if n not in blocked)
        finish: dict[str, float] = {}
        via: dict[str, str | None] = {}
        for name in nx.lexicographical_topological_sort(dag.reverse(copy=False)):
            if name not in self._declared:
                continue
            deps = [d for d in dag.successors(name) if d in finish]
            before = max(deps, key=lambda d: finish[d], default=None)
            finish[name] = (finish[before] if before else 0.0) + float(durations.get(name, 0.0))
            via[name] = before
        if not finish:
            return CriticalChain([], 0.0)
        last = max(finish, key=lambda n: finish[n])
        return CriticalChain(list(reversed(self._walk(last, via))), finish[last])

    def chain_to(self, target: str, ready_at: Mapping[str, float]) -> list[str]:
        """systemd-analyze's chain: from ``target`` down through the dependency that became
        Ready last, at each step; only nodes in ``ready_at`` and not blocked by a cycle."""
        blocked = self.blocked()
        via: dict[str, str | None] = {}
        node: str | None = target
        while node is not None and node not in via:
            deps = [d for d in self.dependencies(node) if d in ready_at and d not in blocked]
            via[node] = max(deps, key=lambda d: ready_at[d], default=None)
            node = via[node]
        return self._walk(target, via)

    @staticmethod
    def _walk(start: str, via: Mapping[str, str | None]) -> list[str]:
        chain: list[str] = []
        node: str | None = start
        while node is not None:
            chain.append(node)
            node = via.get(node)
        return chain
