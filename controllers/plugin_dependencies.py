"""Who depends on whom among plugins, and whether a plugin's dependencies let it run.

``DependencyTracker`` keeps the dependency graph and what the watch last showed of every
plugin (version, whether it serves, whether it is being deleted). Its methods that change
anything say so in their names (``record_*``, ``declare``, ``add_watchers``, ``take_watchers``,
``forget``); the others only read (a cycle search and a constraint check are memoized, which
changes no answer). ``dependents_to_wake`` is a pure function of one watch change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from mfx.api.objects import Obj, generation, is_deleting
from mfx.api.semver import ConstraintError, VersionError
from mfx.errors import NotFoundError
from mfx.store.base import Store
from reconciler import ConditionType, DependencyGraph, get_condition

from .plugin_observed import DependencyConflict, DependencyView
from .plugin_reasons import PluginReason, serves
from .plugin_spec import Requirement, required_dependencies
from .plugin_state import PluginStates

KIND = "PluginManifest"
_SATISFIED_CACHE_LIMIT = 4096

Signature = tuple[Any, ...]  # (generation, Ready as dependents see it, Stalled, deleting, gone)


@dataclass(frozen=True)
class WatchChange:
    """What one watch event changed about a plugin, as its dependents see it."""

    name: str
    old: Signature | None  # None: first seen since the daemon started
    new: Signature
    gone: bool  # deleted and finalized
    stall_reason: str | None  # reason of Stalled=True on the object, if it is stalled

    @property
    def changed(self) -> bool:
        return self.old != self.new


def dependents_to_wake(change: WatchChange, dependents: Iterable[str],
                       dependencies_up: Callable[[str], bool]) -> list[str]:
    """Which of ``change.name``'s dependents must reconcile because of ``change``."""
    if not change.changed:
        return []
    old, new = change.old, change.new
    candidates = list(dependents)
    if old is not None and (old[0], *old[2:]) == (new[0], *new[2:]):
        # Only Ready changed. Dependents wait for Ready=True, so a change between not-Ready
        # states is nothing to them, and becoming Ready matters only to those that wait
        # for no other dependency; losing Ready matters to every one (they stop first).
        if new[1] == "True":
            return [d for d in candidates if dependencies_up(d)]
        if old[1] != "True":
            return []
    return candidates


class DependencyTracker:
    def __init__(self, states: PluginStates) -> None:
        self.graph = DependencyGraph()
        self._states = states
        self._revision = 0  # bumped on every change of the graph
        self._satisfied: dict[tuple[str, str], bool] = {}  # (constraint, version) -> satisfied
        self._cycles: dict[str, list[str] | None] = {}  # name -> the cycle through it, at _cycles_revision
        self._cycles_revision = 0
        self._on_cycles: frozenset[str] = frozenset()  # the nodes on some cycle, at _cycles_revision

    # --- changing what is known ---------------------------------------------------------------

    def record_watch_event(self, obj: Obj) -> WatchChange:
        """Take in one watch event of a plugin: its node, version, readiness and deletion."""
        meta = obj.get("metadata", {})
        name = str(meta.get("name", ""))
        gone = is_deleting(obj) and not meta.get("finalizers")
        watched = self._states.ensure(name).watched
        if gone:
            watched.version = None
            self.declare(name, None)
        else:
            watched.version = str((obj.get("spec") or {}).get("version", ""))
            self.declare(name, required_dependencies(obj))
        stalled = get_condition(obj, ConditionType.STALLED)
        ready = get_condition(obj, ConditionType.READY)
        watched.serves = serves(ready) and not gone
        watched.deleting = bool(meta.get("deletionTimestamp"))
        # Dependents care whether it serves, not how it is not Ready: serving reads as "True".
        shown = "True" if serves(ready) else ready and ready.get("status")
        signature = (generation(obj), shown, stalled and stalled.get("status"),
                     bool(meta.get("deletionTimestamp")), gone)
        old = watched.signature
        watched.signature = None if gone else signature
        stall_reason = (str(stalled.get("reason")) if stalled is not None and stalled.get("status") == "True"
                        else None)
        return WatchChange(name, old, signature, gone, stall_reason)

    def record_spec(self, name: str, version: str, dependencies: Iterable[str]) -> None:
        """What a reconcile read of ``name``'s spec: its version and required dependencies."""
        self._states.ensure(name).watched.version = version
        self.declare(name, dependencies)

    def declare(self, name: str, dependencies: Iterable[str] | None) -> None:
        """Declare (or, with None, forget) ``name`` in the graph; bumps the revision on a change."""
        if dependencies is None:
            if name in self.graph:
                self.graph.remove_node(name)
                self._revision += 1
            return
        wanted = set(dependencies)
        if name in self.graph and sorted(self.graph.dependencies(name)) == sorted(wanted):
            return
        self.graph.set_node(name, wanted)
        self._revision += 1

    def record_serving(self, name: str, serving: bool) -> None:
        """What this daemon just wrote of ``name``'s Ready condition (see ``serves``)."""
        self._states.ensure(name).watched.serves = serving

    def add_watchers(self, watcher: str, targets: Iterable[str]) -> None:
        """``watcher`` is stalled on ``targets``: it is reset when any of them changes."""
        for target in targets:
            self._states.ensure(target).watched.watchers.add(watcher)

    def take_watchers(self, target: str) -> set[str]:
        """The plugins stalled on ``target``, no longer watching it."""
        state = self._states.get(target)
        if state is None:
            return set()
        watchers, state.watched.watchers = state.watched.watchers, set()
        return watchers

    def forget(self, name: str) -> None:
        self.graph.remove_node(name)
        self._revision += 1

    # --- reading --------------------------------------------------------------------------------

    def dependencies(self, name: str) -> list[str]:
        return self.graph.dependencies(name)

    def dependents(self, name: str) -> list[str]:
        return self.graph.dependents(name)

    def serving(self, name: str) -> bool:
        state = self._states.get(name)
        return state is not None and state.watched.serves

    def dependencies_up(self, name: str) -> bool:
        """Whether every required dependency of ``name`` is Ready and running here."""
        return all(self.serving(d) and self._states.is_running(d) for d in self.graph.dependencies(name))

    def cycle_through(self, name: str) -> list[str] | None:
        """The dependency cycle ``name`` is on, if any (memoized per graph revision)."""
        if self._cycles_revision != self._revision:
            self._cycles.clear()
            self._cycles_revision = self._revision
            # One linear pass per revision finds every node on a cycle; the path search
            # below runs only for those (a DAG of hundreds costs no search per node).
            self._on_cycles = self.graph.on_cycles()
        if name not in self._on_cycles:
            return None
        if name not in self._cycles:
            self._cycles[name] = self.graph.cycle_through(name)
        return self._cycles[name]

    def satisfied(self, requirement: Requirement, version: str) -> bool:
        """Whether ``version`` meets ``requirement``; raises VersionError for a bad version."""
        key = (requirement.version, version)
        ok = self._satisfied.get(key)
        if ok is None:
            assert requirement.constraint is not None
            ok = requirement.constraint.satisfied_by(version)
            if len(self._satisfied) >= _SATISFIED_CACHE_LIMIT:
                self._satisfied.clear()
            self._satisfied[key] = ok
        return ok

    async def observe(self, name: str, requirements: tuple[Requirement, ...], store: Store) -> DependencyView:
        """Where ``name``'s required dependencies stand; reads the store for ones the watch has
        not shown yet."""
        cycle = self.cycle_through(name)
        if cycle is not None:
            watch = tuple(dict.fromkeys(t for member in cycle for t in self.graph.dependencies(member)))
            return DependencyView(cycle=tuple(cycle), watch=watch)
        missing: list[str] = []
        waiting: list[str] = []
        for dep in requirements:
            state = self._states.get(dep.name)
            version = state.watched.version if state is not None else None
            if version is None or dep.name not in self.graph:
                try:  # not seen by the watch (yet): ask the store
                    other = await store.get(KIND, dep.name)
                except NotFoundError:
                    missing.append(dep.name)
                    continue
                version = str((other.get("spec") or {}).get("version", ""))
            try:
                if dep.constraint is None:
                    raise ConstraintError(dep.version, dep.error)
                ok = self.satisfied(dep, version)
            except (ConstraintError, VersionError, ValueError) as exc:
                return DependencyView(conflict=DependencyConflict(
                    PluginReason.INVALID_SPEC, f"spec.dependencies[{dep.name}].version: {dep.error or exc}"))
            if not ok:
                message = f"{name} requires {dep.name} {dep.version}, but {dep.name} is version {version}"
                return DependencyView(conflict=DependencyConflict(
                    PluginReason.VERSION_CONSTRAINT_UNSATISFIED, message), watch=(dep.name,))
            # Ready means running in this process: a Ready=True left in the store by an earlier
            # daemon (killed before it could say otherwise) does not count.
            if not self._states.is_running(dep.name) or not self.serving(dep.name):
                waiting.append(dep.name)
        deleting = next((dep.name for dep in requirements
                         if (s := self._states.get(dep.name)) is not None and s.watched.deleting), None)
        return DependencyView(missing=tuple(missing), waiting=tuple(waiting), deleting=deleting,
                              required=tuple(r.name for r in requirements))
