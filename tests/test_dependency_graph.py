"""The dependency graph orders starts and stops, reports cycles as paths, finds missing
dependencies, dependents and the critical chain."""

from __future__ import annotations

import random

import pytest

from reconciler import DependencyCycleError, DependencyGraph, format_cycle


def graph(edges: dict[str, list[str]]) -> DependencyGraph:
    g = DependencyGraph()
    for name, deps in edges.items():
        g.set_node(name, deps)
    return g


def test_start_order_puts_dependencies_first_and_stop_order_reverses_it() -> None:
    g = graph({"player": ["codec", "source"], "source": ["codec"], "codec": [], "eq": []})
    order = g.start_order()
    assert order.index("codec") < order.index("source") < order.index("player")
    assert set(order) == {"player", "source", "codec", "eq"}
    assert g.stop_order() == list(reversed(order))


def test_a_cycle_is_reported_as_a_closed_path() -> None:
    g = graph({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]})
    cycle = g.find_cycle()
    assert cycle is not None and cycle[0] == cycle[-1] and len(cycle) == 4
    assert set(cycle) == {"a", "b", "c"}
    # the path follows "depends on" edges
    for here, there in zip(cycle, cycle[1:], strict=False):
        assert there in g.dependencies(here)
    through = g.cycle_through("a")
    assert through is not None and format_cycle(through) == "a -> b -> c -> a"
    assert g.cycle_through("d") is None, "d reaches the cycle but is not on it"
    assert g.on_cycles() == {"a", "b", "c"}
    with pytest.raises(DependencyCycleError) as err:
        g.start_order()
    assert " -> " in str(err.value) and err.value.reason == "DependencyCycle"


def test_self_dependency_is_a_cycle() -> None:
    g = graph({"a": ["a"]})
    assert g.cycle_through("a") == ["a", "a"]
    assert g.find_cycle() == ["a", "a"]
    assert g.on_cycles() == {"a"}
    assert graph({"a": ["b"], "b": []}).on_cycles() == frozenset()


def test_missing_dependencies_and_removing_nodes() -> None:
    g = graph({"player": ["codec"], "source": []})
    assert g.missing() == {"player": ["codec"]}
    g.set_node("codec", [])
    assert g.missing() == {}
    g.remove_node("codec")
    assert g.missing() == {"player": ["codec"]}, "a removed dependency is missing again"
    assert "codec" not in g
    g.remove_node("player")
    assert g.nodes() == ["source"]
    assert g.dependencies("player") == []


def test_set_node_replaces_dependencies() -> None:
    g = graph({"a": ["b", "c"], "b": [], "c": []})
    g.set_node("a", ["c"])
    assert g.dependencies("a") == ["c"]
    assert g.dependents("b") == []


def test_dependents_direct_and_transitive_in_stop_order() -> None:
    g = graph({"app": ["source"], "source": ["codec"], "eq": ["codec"], "codec": []})
    assert g.dependents("codec") == ["eq", "source"]
    transitive = g.dependents("codec", transitive=True)
    assert set(transitive) == {"app", "source", "eq"}
    assert transitive.index("app") < transitive.index("source"), "outermost dependents stop first"


def test_critical_chain_is_the_longest_by_duration() -> None:
    g = graph({"a": [], "b": ["a"], "c": ["b"], "d": ["a"], "e": []})
    chain = g.critical_chain({"a": 1.0, "b": 2.0, "c": 0.5, "d": 3.0, "e": 4.5})
    assert chain.nodes == ["e"] and chain.duration == pytest.approx(4.5)
    chain = g.critical_chain({"a": 1.0, "b": 2.0, "c": 0.5, "d": 3.0, "e": 1.0})
    assert chain.nodes == ["a", "d"] and chain.duration == pytest.approx(4.0)
    assert "a -> d" in str(chain)
    assert DependencyGraph().critical_chain({}).nodes == []


def test_depth_of_a_random_dag_matches_the_unit_duration_critical_chain() -> None:
    rng = random.Random(3)
    names = [f"p{i}" for i in range(200)]
    g = DependencyGraph()
    for i, name in enumerate(names):
        g.set_node(name, rng.sample(names[:i], min(i, rng.randint(0, 3))))
    order = g.start_order()
    pos = {n: i for i, n in enumerate(order)}
    for name in names:
        for dep in g.dependencies(name):
            assert pos[dep] < pos[name]
    chain = g.critical_chain({n: 1.0 for n in names})
    assert chain.duration == max(g.depth(n) for n in names) + 1
