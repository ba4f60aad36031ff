"""The PluginManifest controller's dependency tracking: what a watch event records, which
dependents it wakes, and where a plugin's dependencies stand."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from controllers.plugin_dependencies import DependencyTracker, WatchChange, dependents_to_wake
from controllers.plugin_observed import DependencyConflict, DependencyView
from controllers.plugin_reasons import PluginReason
from controllers.plugin_spec import Requirement
from controllers.plugin_state import PluginStates
from mfx.api.semver import Constraint
from mfx.errors import NotFoundError


def manifest(name: str, version: str = "1.0.0", deps: tuple[str, ...] = (), *, generation: int = 1,
             ready: str | None = None, deleting: bool = False, finalizers: tuple[str, ...] = ("f",)) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "generation": generation, "finalizers": list(finalizers)}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    obj: dict[str, Any] = {"kind": "PluginManifest", "metadata": meta,
                           "spec": {"version": version, "dependencies": [{"name": d, "version": "^1"} for d in deps]}}
    if ready is not None:
        obj["status"] = {"conditions": [{"type": "Ready", "status": ready, "reason": "Running"}]}
    return obj


class NoStore:
    async def get(self, kind: str, name: str) -> dict[str, Any]:
        raise NotFoundError(f"{kind}/{name} not found")


def change(old: tuple[Any, ...] | None, new: tuple[Any, ...]) -> WatchChange:
    return WatchChange("codec", old, new, gone=False, stall_reason=None)


@pytest.mark.parametrize(("old", "new", "up", "woken"), [
    ((1, "False", None, False, False), (1, "False", None, False, False), {"a", "b"}, []),
    ((1, "False", None, False, False), (1, "True", None, False, False), {"a"}, ["a"]),
    ((1, "True", None, False, False), (1, "False", None, False, False), set(), ["a", "b"]),
    ((1, "False", None, False, False), (1, "Unknown", None, False, False), {"a", "b"}, []),
    ((1, "True", None, False, False), (2, "True", None, False, False), set(), ["a", "b"]),
    (None, (1, "True", None, False, False), set(), ["a", "b"]),
], ids=["unchanged", "became Ready", "lost Ready", "not Ready either way", "new generation", "first seen"])
def test_dependents_to_wake(old: tuple[Any, ...] | None, new: tuple[Any, ...], up: set[str],
                            woken: list[str]) -> None:
    assert dependents_to_wake(change(old, new), ["a", "b"], lambda d: d in up) == woken


def test_a_watch_event_records_the_node_and_a_gone_object_leaves_the_graph() -> None:
    tracker = DependencyTracker(PluginStates())
    first = tracker.record_watch_event(manifest("eq", deps=("codec",), ready="True"))
    assert first.old is None and first.changed
    assert tracker.dependencies("eq") == ["codec"]
    assert tracker.dependents("codec") == ["eq"]
    assert tracker.serving("eq")
    again = tracker.record_watch_event(manifest("eq", deps=("codec",), ready="True"))
    assert not again.changed
    gone = tracker.record_watch_event(manifest("eq", deps=("codec",), deleting=True, finalizers=()))
    assert gone.gone and "eq" not in tracker.graph and not tracker.serving("eq")


def test_queries_change_nothing() -> None:
    states = PluginStates()
    tracker = DependencyTracker(states)
    tracker.declare("a", ["b"])
    assert tracker.cycle_through("a") is None
    assert not tracker.dependencies_up("a")
    assert states.get("a") is None and states.get("b") is None


def test_a_cycle_is_found_and_forgotten_once_broken() -> None:
    tracker = DependencyTracker(PluginStates())
    tracker.declare("a", ["b"])
    tracker.declare("b", ["a"])
    assert tracker.cycle_through("a") == ["a", "b", "a"]
    tracker.declare("b", [])
    assert tracker.cycle_through("a") is None


def test_watchers_are_taken_once() -> None:
    tracker = DependencyTracker(PluginStates())
    tracker.add_watchers("eq", ["codec"])
    assert tracker.take_watchers("codec") == {"eq"}
    assert tracker.take_watchers("codec") == set()


def requirement(name: str, text: str) -> Requirement:
    return Requirement(name, text, Constraint.parse(text))


@pytest.mark.parametrize(("watched", "requirements", "view"), [
    ([], (requirement("codec", "^1.0"),), DependencyView(missing=("codec",), required=("codec",))),
    ([manifest("codec", "1.2.0", ready="True")], (requirement("codec", "^1.0"),),
     DependencyView(waiting=("codec",), required=("codec",))),
    ([manifest("codec", "2.0.0")], (requirement("codec", "^1.0"),),
     DependencyView(conflict=DependencyConflict(PluginReason.VERSION_CONSTRAINT_UNSATISFIED,
                                                "eq requires codec ^1.0, but codec is version 2.0.0"),
                    watch=("codec",))),
    ([manifest("codec", "1.0.0")], (Requirement("codec", "^^", None, "bad constraint"),),
     DependencyView(conflict=DependencyConflict(PluginReason.INVALID_SPEC,
                                                "spec.dependencies[codec].version: bad constraint"))),
    ([manifest("eq", deps=("codec",)), manifest("codec", deps=("eq",))], (requirement("codec", "^1.0"),),
     DependencyView(cycle=("eq", "codec", "eq"), watch=("codec", "eq"))),
], ids=["missing", "not running here", "version unsatisfied", "constraint does not parse", "cycle"])
def test_observe(watched: list[dict[str, Any]], requirements: tuple[Requirement, ...], view: DependencyView) -> None:
    tracker = DependencyTracker(PluginStates())
    for obj in watched:
        tracker.record_watch_event(obj)

    async def observe() -> DependencyView:
        return await tracker.observe("eq", requirements, NoStore())  # type: ignore[arg-type]

    assert anyio.run(observe) == view
