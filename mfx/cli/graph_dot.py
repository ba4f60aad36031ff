"""The plugin dependency graph as Graphviz DOT, from PluginManifests as the API lists them.

Nodes are plugins with their version and state (Ready green, not Ready yellow, Stalled red,
Suspended or not reconciled yet grey); edges go from a dependent to its dependency, labelled
with the version constraint, dashed when optional; a dependency no PluginManifest declares is
a dashed red node. The critical chain (``reconciler.graph``'s, over required dependencies and
each plugin's own start time) is drawn bold blue, with its time in the graph's label.

Every name and label is a quoted DOT string with its quotes, backslashes and line breaks
escaped: versions, constraints and condition reasons are user text.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mfx.api.objects import Obj, condition
from reconciler import DependencyGraph
from reconciler.graph import CriticalChain

CHAIN_COLOUR = "blue"


class NodeState(enum.Enum):
    READY = ("Ready", "palegreen")
    NOT_READY = ("not Ready", "khaki")
    STALLED = ("Stalled", "lightcoral")
    SUSPENDED = ("Suspended", "lightgrey")
    UNKNOWN = ("not reconciled yet", "lightgrey")

    @property
    def text(self) -> str:
        return self.value[0]

    @property
    def colour(self) -> str:
        return self.value[1]


@dataclass(frozen=True)
class PluginNode:
    name: str
    version: str
    state: NodeState
    reason: str  # the Ready (or Stalled) reason, for a plugin that is not Ready
    start_seconds: float | None  # its own start: status.startedAt -> status.readyAt


@dataclass(frozen=True)
class DependencyEdge:
    dependent: str
    dependency: str
    constraint: str
    optional: bool


@dataclass(frozen=True)
class PluginGraph:
    nodes: list[PluginNode]
    edges: list[DependencyEdge]
    missing: list[str]  # dependencies no PluginManifest declares
    chain: CriticalChain


def quote(text: str) -> str:
    """``text`` as a DOT quoted string: its quotes and backslashes escaped, line breaks as
    ``\\n`` and other control characters dropped, so no text can end the string early."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return '"' + "".join(c for c in escaped if c >= " " or c == "\t") + '"'


def _seconds(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _state(obj: Obj) -> tuple[NodeState, str]:
    ready = condition(obj, "Ready") or {}
    stalled = condition(obj, "Stalled") or {}
    if (obj.get("spec") or {}).get("suspend"):
        return NodeState.SUSPENDED, ""
    if stalled.get("status") == "True":
        return NodeState.STALLED, str(stalled.get("reason") or "")
    if not ready:
        return NodeState.UNKNOWN, ""
    if ready.get("status") == "True":
        return NodeState.READY, ""
    return NodeState.NOT_READY, str(ready.get("reason") or "")


def _node(obj: Obj) -> PluginNode:
    status = obj.get("status") or {}
    state, reason = _state(obj)
    started, ready = _seconds(status.get("startedAt")), _seconds(status.get("readyAt"))
    own = ready - started if started is not None and ready is not None and ready >= started else None
    version = str((obj.get("spec") or {}).get("version") or "")
    return PluginNode(obj["metadata"]["name"], version, state, reason, own)


def build(items: Sequence[Obj]) -> PluginGraph:
    """The graph of these PluginManifests, with the critical chain of the Ready ones."""
    ordered = sorted(items, key=lambda o: str(o["metadata"]["name"]))
    nodes = [_node(obj) for obj in ordered]
    declared = {n.name for n in nodes}
    edges: list[DependencyEdge] = []
    for obj in ordered:
        name = obj["metadata"]["name"]
        deps = [d for d in (obj.get("spec") or {}).get("dependencies") or [] if isinstance(d, dict)]
        edges.extend(DependencyEdge(name, str(d.get("name", "")), str(d.get("version") or ""),
                                    bool(d.get("optional"))) for d in deps)
    missing = sorted({e.dependency for e in edges} - declared)
    # The chain of what started: Ready plugins, each with its own start time (startedAt ->
    # readyAt), over their required dependencies.
    durations = {n.name: n.start_seconds for n in nodes if n.state is NodeState.READY and n.start_seconds is not None}
    graph = DependencyGraph()
    for name in durations:
        graph.set_node(name, [e.dependency for e in edges
                              if e.dependent == name and not e.optional and e.dependency in durations])
    chain = graph.critical_chain(durations) if durations else CriticalChain([], 0.0)
    return PluginGraph(nodes, edges, missing, chain)


def _label(node: PluginNode, on_chain: bool) -> str:
    lines = [node.name]
    if node.version:
        lines.append(node.version)
    lines.append(f"{node.state.text}: {node.reason}" if node.reason else node.state.text)
    if on_chain and node.start_seconds is not None:
        lines.append(f"+{node.start_seconds:.3f}s")
    return "\n".join(lines)


def _attributes(attrs: Mapping[str, str]) -> str:
    return "[" + ", ".join(f"{key}={value}" for key, value in attrs.items()) + "]"


def to_dot(graph: PluginGraph) -> str:
    chain = graph.chain.nodes
    on_chain = set(chain)
    chain_edges = set(zip(chain[1:], chain, strict=False))  # (dependent, dependency): dependencies come first
    out = ["digraph plugins {", '  graph [fontname="sans-serif"];',
           '  node [shape=box, style="rounded,filled", fontname="sans-serif"];',
           '  edge [fontname="sans-serif", fontsize=10];']
    if chain:
        caption = f"critical chain: {' -> '.join(reversed(chain))} ({graph.chain.duration:.3f} s)"
        out.append(f"  label={quote(caption)}; labelloc=t;")
    for node in graph.nodes:
        attrs = {"label": quote(_label(node, node.name in on_chain)), "fillcolor": quote(node.state.colour)}
        if node.name in on_chain:
            attrs.update(color=quote(CHAIN_COLOUR), penwidth="3")
        out.append(f"  {quote(node.name)} {_attributes(attrs)};")
    for name in graph.missing:
        attrs = {"label": quote(f"{name}\nmissing"), "style": quote("dashed"), "color": quote("red"),
                 "fontcolor": quote("red")}
        out.append(f"  {quote(name)} {_attributes(attrs)};")
    for edge in graph.edges:
        attrs = {}
        if edge.constraint not in ("", "*"):  # "*", any version, goes without saying
            attrs["label"] = quote(edge.constraint)
        styles = ["dashed"] if edge.optional or edge.dependency in graph.missing else []
        if (edge.dependent, edge.dependency) in chain_edges and not edge.optional:
            styles.append("bold")
            attrs.update(color=quote(CHAIN_COLOUR), penwidth="3")
        elif edge.dependency in graph.missing:
            attrs["color"] = quote("red")
        if styles:
            attrs["style"] = quote(",".join(styles))
        suffix = f" {_attributes(attrs)}" if attrs else ""
        out.append(f"  {quote(edge.dependent)} -> {quote(edge.dependency)}{suffix};")
    out.append("}")
    return "\n".join(out) + "\n"
