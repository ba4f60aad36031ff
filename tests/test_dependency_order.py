"""PluginManifests start in dependency order, in parallel where they can, through a real daemon."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_harness import run_cli
from tests.plugin_fixtures import (
    apply,
    condition,
    events_of,
    get,
    manifest,
    running_daemon,
    wait_for,
    wait_ready,
    wait_reason,
)

NAMES = ("a", "b", "c", "d", "x", "y", "ghost", "lib", "app", "base", "top", "mid", "p", "q", "r")


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    with running_daemon(tmp_path, *NAMES) as (home, rec, _):
        yield home, rec


def test_independent_plugins_start_in_parallel_and_the_dependent_waits_for_all(env: tuple[Path, Path]) -> None:
    home, rec = env
    apply(home, *(manifest(n, record=rec, startDelay=1) for n in "abc"),
          manifest("d", deps=["a", "b", "c"], record=rec))
    wait_ready(home, "d")
    begins = {n: events_of(rec, n, "start_begin")[0] for n in "abcd"}
    ends = {n: events_of(rec, n, "start_end")[0] for n in "abc"}
    # the three 1 s starts overlap: each one began before any of them ended
    assert max(begins[n] for n in "abc") < min(ends.values())
    # the dependent started only after the last of them was done
    assert begins["d"] > max(ends.values())
    status = get(home, "d")["status"]
    assert condition(get(home, "d"), "DependenciesReady")["status"] == "True"
    assert status["resolvedVersion"] == "1.0.0" and status["restartCount"] == 0
    assert {"startedAt", "readyAt", "lastStartDurationSeconds"} <= set(status)


def test_a_cycle_stalls_every_member_with_the_path(env: tuple[Path, Path]) -> None:
    home, _ = env
    apply(home, manifest("p", deps=["q"]), manifest("q", deps=["r"]), manifest("r", deps=["p"]))
    for name in ("p", "q", "r"):
        obj = wait_reason(home, name, "Stalled", "True", "DependencyCycle")
        message = condition(obj, "Stalled")["message"]
        path = message.split(": ", 1)[1]
        hops = path.split(" -> ")
        assert hops[0] == hops[-1] == name and set(hops) == {"p", "q", "r"}, message
        assert condition(obj, "DependenciesReady")["reason"] == "DependencyCycle"
    # breaking the cycle heals all three
    apply(home, manifest("r"))
    wait_ready(home, "p", "q", "r")


def test_a_missing_dependency_waits_and_starts_when_it_appears(env: tuple[Path, Path]) -> None:
    home, _ = env
    apply(home, manifest("x", deps=["ghost"]))
    obj = wait_reason(home, "x", "DependenciesReady", "False", "DependencyMissing")
    assert "ghost" in condition(obj, "DependenciesReady")["message"]
    assert condition(obj, "Ready")["reason"] == "DependencyMissing"
    assert condition(obj, "Stalled").get("status") != "True"  # a requeue, not a failure
    apply(home, manifest("ghost"))
    wait_ready(home, "x")


def test_an_optional_dependency_never_blocks(env: tuple[Path, Path]) -> None:
    home, _ = env
    apply(home, manifest("y", deps=[{"name": "nothing-here", "optional": True}]))
    wait_ready(home, "y")


def test_an_unsatisfied_version_constraint_stalls_naming_both(env: tuple[Path, Path]) -> None:
    home, _ = env
    apply(home, manifest("lib", version="1.4.0"),
          manifest("app", deps=[{"name": "lib", "version": "^2.0.0"}]))
    obj = wait_reason(home, "app", "Stalled", "True", "VersionConstraintUnsatisfied")
    message = condition(obj, "Stalled")["message"]
    assert "lib" in message and "^2.0.0" in message and "1.4.0" in message and "app" in message
    apply(home, manifest("lib", version="2.1.0"))  # the dependency's change heals the stall
    wait_ready(home, "app")


def test_deleting_a_dependency_stops_dependents_first_and_they_return_with_it(env: tuple[Path, Path]) -> None:
    home, rec = env
    apply(home, manifest("base", record=rec), manifest("mid", deps=["base"], record=rec),
          manifest("top", deps=["mid"], record=rec))
    wait_ready(home, "top")
    assert run_cli(home, "delete", "pm", "base").exit_code == 0
    wait_for(home, "base", lambda o: o is None)
    stops = {n: events_of(rec, n, "stop")[0] for n in ("base", "mid", "top")}
    assert stops["top"] < stops["mid"] < stops["base"]  # reverse dependency order
    obj = wait_reason(home, "mid", "DependenciesReady", "False", "DependencyMissing")
    assert "base" in condition(obj, "DependenciesReady")["message"]
    assert condition(get(home, "top"), "Ready")["status"] == "False"
    apply(home, manifest("base", record=rec))
    wait_ready(home, "base", "mid", "top")
    assert len(events_of(rec, "top", "start_begin")) == 2
