"""``mfx analyze critical-chain`` beside a dependency cycle: plugins on a cycle never start,
so they are never on the chain; the chain of everything else is still shown, and the cycle
is named on its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mfx.server.services import default_services
from reconciler import DependencyGraph
from tests.daemon_harness import ThreadDaemon, run_cli
from tests.plugin_fixtures import apply, manifest, plugin_root, wait_ready, wait_reason


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    root = plugin_root(tmp_path, "a", "b", "c", "d")
    with ThreadDaemon(home, services=default_services(), plugin_paths=[root]).running():
        yield home


def chain_lines(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if line.strip().lstrip("└─").startswith("pm/")]


def test_a_cycle_elsewhere_leaves_the_chain_of_other_plugins_alone(home: Path) -> None:
    apply(home, manifest("c"), manifest("d", deps=["c"]))
    wait_ready(home, "d")
    # a and b become Ready first (their start times are the latest), then a cycle stalls them
    apply(home, manifest("a", deps=["b"]), manifest("b"))
    wait_ready(home, "a")
    apply(home, manifest("b", deps=["a"]))
    wait_reason(home, "a", "Stalled", "True", "DependencyCycle")
    wait_reason(home, "b", "Stalled", "True", "DependencyCycle")

    one = run_cli(home, "analyze", "critical-chain", "pm/d")
    assert one.exit_code == 0, one.output
    assert [line.split(" @")[0] for line in chain_lines(one.output)] == ["pm/d", "└─pm/c"]
    assert "cycle" not in one.output

    whole = run_cli(home, "analyze", "critical-chain")
    assert whole.exit_code == 0, whole.output
    assert [line.split(" @")[0] for line in chain_lines(whole.output)] == ["pm/d", "└─pm/c"]
    cycles = whole.output.split("Dependency cycles", 1)[1]
    assert "a -> b -> a" in cycles

    inside = run_cli(home, "analyze", "critical-chain", "pm/a")
    assert inside.exit_code == 1
    assert "a -> b -> a" in inside.output


def test_the_duration_chain_skips_cycles_and_what_depends_on_them() -> None:
    g = DependencyGraph()
    for name, deps in {"a": ["b"], "b": ["a"], "top": ["a"], "c": [], "d": ["c"]}.items():
        g.set_node(name, deps)
    assert g.cycles() == [["a", "b", "a"]]
    assert g.blocked() == {"a", "b", "top"}
    chain = g.critical_chain({"a": 9.0, "b": 9.0, "top": 9.0, "c": 1.0, "d": 2.0})
    assert chain.nodes == ["c", "d"] and chain.duration == pytest.approx(3.0)
    assert g.chain_to("d", {"c": 1.0, "d": 2.0, "a": 5.0}) == ["d", "c"]
    assert g.cycles_reached_by("top") == [["a", "b", "a"]] and g.cycles_reached_by("d") == []
