"""The PluginManifest controller: every plugin driven to its spec, in dependency order.

Level-triggered (DESIGN.md section 1): each reconcile reads the object, the in-process
instance (if any) and the tracked tasks of the key, and takes the next step. Long steps
(start, stop, replace, config update) run as tracked tasks on the engine's
``TaskSupervisor``; their completion re-enqueues the key. Health probes run on the engine's
``ProbeScheduler``; a flip of health, a crash reported through ``LoadRequest.on_exit`` or a
hot reload re-enqueues the key ("kicks" it, see ``PluginController.kick``).

Dependencies live in a ``DependencyGraph`` fed by the ``related`` hook from every watch
event, so cycles are found with the path, a dependency that becomes Ready enqueues its
dependents at once, and stops go in reverse order (dependents first).
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import time
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import anyio

from mfx.api.models import PluginManifestSpec, RestartPolicy, parse_spec
from mfx.api.objects import Obj, ObjectKey, annotations_of, generation, is_deleting
from mfx.api.semver import Constraint, ConstraintError, VersionError
from mfx.api.validation import config_problems
from mfx.errors import (
    EntryPointNotFoundError,
    InvalidConfigError,
    MfxError,
    NotFoundError,
    PluginCrashedError,
    PluginError,
    PluginTimeoutError,
    ValidationError,
)
from mfx.runtimes.base import (
    AllowedPath,
    Limits,
    LoadRequest,
    PluginLogRecord,
    PluginType,
)
from reconciler import (
    BreakerSettings,
    BreakerState,
    CircuitBreaker,
    ConditionType,
    Context,
    DependencyGraph,
    EventRecorder,
    PermanentError,
    ProbeScheduler,
    ProbeSpec,
    ProbeStatus,
    Registry,
    Result,
    StatusPatcher,
    TaskState,
    TaskStatus,
    TemporaryError,
    get_condition,
)
from reconciler.controller import brief_handler

from .plugin_resolve import copies, resolve_plugin_dir
from .plugin_runtime import (
    PluginHandle,
    PluginRuntimes,
    Running,
    bounded,
    breaker_state_name,
    plugin_error_reason,
    start_instance,
    stop_instance,
)

KIND = "PluginManifest"
RESET_FAILED_ANNOTATION = "mfx.musicfox.io/reset-failed-at"
HISTORY_LIMIT = 10
PROBE_STATUS_REFRESH_SECONDS = 10.0  # a steady probe result is written to status at most this often
DEPENDENCY_POLL_SECONDS = 30.0  # safety net; dependents are enqueued when a dependency changes
# A running plugin's directory is looked up again at most this often (and at every start):
# the lookup stats several files, and a steady reconcile must stay cheap.
PLUGIN_DIR_RECHECK_SECONDS = 5.0
# A plugin stalled on a missing entry point looks for it again after this long, doubling up
# to the cap: the files may appear without a spec change (a package installed, a directory filled).
ENTRY_POINT_RECHECK_FIRST_SECONDS = 0.25
ENTRY_POINT_RECHECK_MAX_SECONDS = 10.0
_SATISFIED_CACHE_LIMIT = 4096

log = logging.getLogger("mfx.controllers.plugin")


class PluginReason(enum.StrEnum):
    RUNNING = "Running"
    STARTING = "Starting"
    UPGRADING = "Upgrading"
    BACK_OFF = "BackOff"
    START_FAILED = "StartFailed"
    CRASHED = "Crashed"
    HEALTH_CHECK_PASSED = "HealthCheckPassed"
    HEALTH_CHECK_FAILED = "HealthCheckFailed"
    NOT_RUNNING = "NotRunning"
    NO_DEPENDENCIES = "NoDependencies"
    DEPENDENCIES_READY = "DependenciesReady"
    DEPENDENCY_MISSING = "DependencyMissing"
    DEPENDENCY_NOT_READY = "DependencyNotReady"
    DEPENDENCY_CYCLE = "DependencyCycle"
    VERSION_CONSTRAINT_UNSATISFIED = "VersionConstraintUnsatisfied"
    ENTRY_POINT_NOT_FOUND = "EntryPointNotFound"
    CHECKSUM_MISMATCH = "ChecksumMismatch"
    INVALID_CONFIG = "InvalidConfig"
    INVALID_SPEC = "InvalidSpec"
    START_LIMIT_HIT = "StartLimitHit"
    UPGRADE_FAILED = "UpgradeFailed"
    ROLLED_BACK = "RolledBack"
    UPGRADED = "Upgraded"
    REPLACED = "Replaced"
    CONFIG_UPDATED = "ConfigUpdated"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    COMPLETED = "Completed"
    DELETING = "Deleting"
    SUSPENDED = "Suspended"
    RELOADED = "Reloaded"
    RELOAD_FAILED = "ReloadFailed"
    RESET_FAILED = "ResetFailed"
    RESTARTING = "Restarting"
    CIRCUIT_CLOSED = "CircuitClosed"
    SHADOWED_COPY = "ShadowedCopy"
    STARTED = "Started"


# Stalls that a change of *another* object can heal: re-checked when that object changes.
_DEPENDENCY_STALLS = frozenset({PluginReason.DEPENDENCY_CYCLE, PluginReason.VERSION_CONSTRAINT_UNSATISFIED})
# Stalls the world outside the spec can heal: looked at again once after a daemon restart.
_WORLD_STALLS = _DEPENDENCY_STALLS | {PluginReason.ENTRY_POINT_NOT_FOUND}

# Ready=False reasons under which the previous instance keeps running and serving: the wanted
# generation is not what runs, so the plugin is not Ready (kstatus; `mfx wait` says so), yet
# callers and dependents are served as before.
_SERVING_REASONS = frozenset({PluginReason.ROLLED_BACK, PluginReason.INVALID_CONFIG})


def serves(ready: dict[str, Any] | None) -> bool:
    """Whether a plugin with this Ready condition serves its dependents."""
    return ready is not None and (ready.get("status") == "True" or ready.get("reason") in _SERVING_REASONS)


def rfc3339(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def required_dependencies(obj: Obj) -> list[str]:
    deps = (obj.get("spec") or {}).get("dependencies") or []
    return [str(d["name"]) for d in deps if isinstance(d, dict) and d.get("name") and not d.get("optional")]


@dataclass(frozen=True)
class _Requirement:
    """A required dependency, its constraint parsed once per generation (or why it cannot be)."""

    name: str
    version: str
    constraint: Constraint | None
    error: str = ""


@dataclass(frozen=True)
class _Parsed:
    """What a reconcile needs from the spec; parsed once per (uid, generation)."""

    uid: str
    generation: int
    spec: PluginManifestSpec
    requirements: tuple[_Requirement, ...]
    identity_base: dict[str, Any]  # what of the spec goes into the identity digest
    breaker: BreakerSettings
    call_timeout: float  # spec.resources.limits.timeout, in seconds


def _breaker_settings(spec: PluginManifestSpec) -> BreakerSettings:
    return BreakerSettings(
        failure_ratio=spec.circuit_breaker.failure_ratio,
        minimum_requests=spec.circuit_breaker.minimum_requests,
        open_duration=spec.circuit_breaker.open_duration_seconds,
        half_open_probes=spec.circuit_breaker.half_open_probes,
    )


def _identity_base(spec: PluginManifestSpec) -> dict[str, Any]:
    return {
        "version": spec.version, "type": str(spec.type), "entryPoint": spec.entry_point,
        "security": spec.security.to_dict(), "limits": spec.limits.to_dict(), "env": spec.env,
    }


@dataclass(frozen=True)
class _Resolved:
    """A plugin's identity digest and directory, for one (uid, generation)."""

    uid: str
    generation: int
    identity: str
    plugin_dir: Path
    at: float  # monotonic time of the lookup


def _requirements(spec: PluginManifestSpec) -> tuple[_Requirement, ...]:
    out: list[_Requirement] = []
    for dep in spec.dependencies:
        if dep.optional:
            continue  # optional dependencies never block
        try:
            out.append(_Requirement(dep.name, dep.version, Constraint.parse(dep.version)))
        except (ConstraintError, VersionError, ValueError) as exc:
            out.append(_Requirement(dep.name, dep.version, None, str(exc)))
    return tuple(out)


@dataclass
class _State:
    """What the controller knows about one plugin beyond its object (in memory)."""

    name: str
    handle: PluginHandle
    breaker_settings: BreakerSettings
    current: Running | None = None
    failures: int = 0  # consecutive failures (exponential backoff)
    start_times: deque[float] = field(default_factory=deque)  # monotonic, for the start limit
    not_before: float = 0.0  # monotonic: no start before this
    ended: bool = False  # an instance ended or a start failed: the next start is a restart
    clean_exit: bool = False
    last_failure: str = ""
    last_failure_reason: str = ""
    restart_count: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    failed_upgrade: tuple[int, str] | None = None
    failed_upgrade_message: str = ""
    failed_config: tuple[int, dict[str, Any]] | None = None
    failed_config_message: str = ""
    applying_config: dict[str, Any] | None = None  # the config the running "config" task applies
    ready_reason: str = PluginReason.RUNNING
    note: str = ""
    last_probe: dict[str, Any] | None = None
    probe_written: tuple[str, float] | None = None  # (result, monotonic) of the last probe status write
    interfaces: tuple[str, ...] = ()
    reset_handled: str | None = None
    told_copies: tuple[str, ...] | None = None  # the directory used and the unused ones, as last evented


class PluginController:
    def __init__(self, env: Any) -> None:
        self.env = env
        self.graph = DependencyGraph()
        self.states: dict[str, _State] = {}
        self.events = EventRecorder(env.store, "pluginmanifest-controller", logger=log)
        self.probes = ProbeScheduler(metrics=env.metrics, on_result=self._on_probe, logger=log)
        self._seen: dict[str, tuple[Any, ...]] = {}
        self._watchers: dict[str, set[str]] = defaultdict(set)
        self._versions: dict[str, str] = {}  # name -> spec.version, from the watch
        self._graph_revision = 0
        self._ready: dict[str, bool] = {}  # name -> serves (see ``serves``), as last written or seen on the watch
        self._deleting: dict[str, bool] = {}
        self._cycles: dict[str, tuple[int, list[str] | None]] = {}
        self._parsed: dict[str, _Parsed] = {}
        self._resolved: dict[str, _Resolved] = {}
        self._satisfied: dict[tuple[str, str], bool] = {}  # (constraint, version) -> satisfied
        runtimes: PluginRuntimes = env.runtimes
        runtimes.add_reload_listener(self._on_reload)

    # --- wiring -------------------------------------------------------------------------------

    def register(self, on: Registry) -> None:
        on.reconcile(KIND)(self.reconcile)
        on.delete(KIND)(self.finalize)
        on.related(KIND)(self.related)

    @staticmethod
    def key(name: str) -> ObjectKey:
        return ObjectKey(KIND, name)

    def kick(self, name: str) -> None:
        """Something about ``name``'s world changed: reconcile it now, even if it is stalled."""
        manager = self.env.manager
        if manager is None:
            return
        key = self.key(name)
        controller = manager.controllers.get(KIND)
        if controller is not None and controller.stalled_generation(key) is not None:
            manager.reset(key)
        else:
            manager.enqueue(key)

    def _reset(self, name: str) -> None:
        manager = self.env.manager
        if manager is not None and KIND in manager.controllers:
            manager.reset(self.key(name))

    def related(self, obj: Obj) -> Iterable[ObjectKey]:
        """Called on every watch event: keeps the graph, heals dependency stalls, finds dependents."""
        meta = obj.get("metadata", {})
        name = str(meta.get("name", ""))
        gone = is_deleting(obj) and not meta.get("finalizers")
        if gone:
            self._versions.pop(name, None)
            self._set_node(name, None)
        else:
            self._versions[name] = str((obj.get("spec") or {}).get("version", ""))
            self._set_node(name, required_dependencies(obj))
        stalled = get_condition(obj, ConditionType.STALLED)
        ready = get_condition(obj, ConditionType.READY)
        self._ready[name] = serves(ready) and not gone
        self._deleting[name] = bool(meta.get("deletionTimestamp"))
        # Dependents care whether it serves, not how it is not Ready: serving reads as "True".
        shown = "True" if serves(ready) else ready and ready.get("status")
        signature = (generation(obj), shown, stalled and stalled.get("status"),
                     bool(meta.get("deletionTimestamp")), gone)
        old = self._seen.get(name)
        self._seen[name] = signature
        if gone:
            self._seen.pop(name, None)
        # mfx reset-failed: an annotation the controller has not handled yet
        wanted = annotations_of(obj).get(RESET_FAILED_ANNOTATION)
        handled = (obj.get("status") or {}).get("resetFailedAt")
        state = self.states.get(name)
        if wanted and wanted != handled and (state is None or state.reset_handled != wanted):
            self._reset(name)
        # after a restart: a stall the world can heal is looked at again once (it may have changed)
        if (old is None and stalled is not None and stalled.get("status") == "True"
                and stalled.get("reason") in _WORLD_STALLS):
            self._reset(name)
        if old == signature:
            return []
        for watcher in self._watchers.pop(name, set()):
            self._reset(watcher)
        dependents = self.graph.dependents(name)
        if old is not None and (old[0], *old[2:]) == (signature[0], *signature[2:]):
            # Only Ready changed. Dependents wait for Ready=True, so a change between not-Ready
            # states is nothing to them, and becoming Ready matters only to those that wait
            # for no other dependency; losing Ready matters to every one (they stop first).
            if signature[1] == "True":
                dependents = [d for d in dependents if self._dependencies_up(d)]
            elif old[1] != "True":
                dependents = []
        return [self.key(d) for d in dependents]

    def _dependencies_up(self, name: str) -> bool:
        """Whether every required dependency of ``name`` is Ready and running here."""
        return all(self._ready.get(d) is True and self.is_running(d) for d in self.graph.dependencies(name))

    def _set_node(self, name: str, dependencies: list[str] | None) -> None:
        """Declare (or, with None, forget) ``name`` in the graph; bumps the revision on a change."""
        if dependencies is None:
            if name in self.graph:
                self.graph.remove_node(name)
                self._graph_revision += 1
            return
        if name in self.graph and sorted(self.graph.dependencies(name)) == sorted(set(dependencies)):
            return
        self.graph.set_node(name, dependencies)
        self._graph_revision += 1

    def _cycle_through(self, name: str) -> list[str] | None:
        cached = self._cycles.get(name)
        if cached is not None and cached[0] == self._graph_revision:
            return cached[1]
        cycle = self.graph.cycle_through(name)
        self._cycles[name] = (self._graph_revision, cycle)
        return cycle

    def _watch(self, watcher: str, target: str) -> None:
        self._watchers[target].add(watcher)

    # --- state ----------------------------------------------------------------------------------

    def _state(self, name: str, parsed: _Parsed, obj: Obj) -> _State:
        settings = parsed.breaker
        state = self.states.get(name)
        if state is None:
            breaker = CircuitBreaker(name, settings, on_state_change=self._on_breaker)
            state = _State(name, PluginHandle(name, breaker, self.env.metrics), settings)
            status = obj.get("status") or {}
            state.restart_count = int(status.get("restartCount") or 0)
            state.history = list(status.get("history") or [])
            state.reset_handled = status.get("resetFailedAt")
            self.states[name] = state
            self.env.metrics.plugin_circuit_breaker_state.labels(name).set(0)
        elif state.breaker_settings != settings:
            state.breaker_settings = settings
            state.handle.breaker = CircuitBreaker(name, settings, on_state_change=self._on_breaker)
            self.env.metrics.plugin_circuit_breaker_state.labels(name).set(0)
        state.handle.timeout = parsed.call_timeout
        return state

    def is_running(self, name: str) -> bool:
        state = self.states.get(name)
        return state is not None and state.current is not None and state.current.exited is None

    # --- reconcile ------------------------------------------------------------------------------

    def _parse(self, name: str, obj: Obj) -> _Parsed:
        uid, gen = str(obj.get("metadata", {}).get("uid", "")), generation(obj)
        parsed = self._parsed.get(name)
        if parsed is not None and parsed.uid == uid and parsed.generation == gen:
            return parsed
        try:
            spec = parse_spec(obj)
        except ValidationError as exc:
            raise PermanentError(PluginReason.INVALID_SPEC, str(exc)) from None
        assert isinstance(spec, PluginManifestSpec)
        parsed = _Parsed(uid, gen, spec, _requirements(spec), _identity_base(spec), _breaker_settings(spec),
                         spec.limits.timeout_seconds)
        self._parsed[name] = parsed
        return parsed

    def _is_satisfied(self, requirement: _Requirement, version: str) -> bool:
        key = (requirement.version, version)
        ok = self._satisfied.get(key)
        if ok is None:
            assert requirement.constraint is not None
            ok = requirement.constraint.satisfied_by(version)  # VersionError: the caller reports it
            if len(self._satisfied) >= _SATISFIED_CACHE_LIMIT:
                self._satisfied.clear()
            self._satisfied[key] = ok
        return ok

    @brief_handler  # starts, stops and probes run as tracked tasks; the handler itself never waits long
    async def reconcile(self, obj: Obj, ctx: Context) -> Result | None:
        name = ctx.key.name
        parsed = self._parse(name, obj)
        spec = parsed.spec
        state = self._state(name, parsed, obj)
        self._versions[name] = spec.version
        self._set_node(name, [r.name for r in parsed.requirements])
        if spec.suspend:
            self._suspended(obj, ctx, state)
            return None
        self._handle_reset(obj, ctx, state)
        try:
            problem = await self._check_dependencies(name, parsed, ctx)
            if problem is not None:
                return await self._dependencies_not_ready(ctx, state, *problem)
            if spec.dependencies:
                ctx.status.condition(ConditionType.DEPENDENCIES_READY, True, PluginReason.DEPENDENCIES_READY,
                                     "all required dependencies are Ready: "
                                     + ", ".join(r.name for r in parsed.requirements))
            else:
                ctx.status.condition(ConditionType.DEPENDENCIES_READY, True, PluginReason.NO_DEPENDENCIES,
                                     "no dependencies")
            result = await self._converge(obj, spec, ctx, state)
        finally:
            self._write_common(ctx, state)
        was_ready = serves(get_condition(obj, ConditionType.READY))
        now_ready = serves(ctx.status.condition_view(ConditionType.READY))
        self._ready[name] = now_ready
        if now_ready and not was_ready:
            await ctx.status.flush()  # written before the dependents are woken
            for dependent in self.graph.dependents(name):
                if self._dependencies_up(dependent):  # the others wait for another dependency
                    self.kick(dependent)
        return result

    def _suspended(self, obj: Obj, ctx: Context, state: _State) -> None:
        ready = get_condition(obj, ConditionType.READY)
        if ready is not None:
            ctx.status.condition(ConditionType.READY, ready["status"], ready.get("reason", ""), ready.get("message", ""))
        else:
            ctx.status.condition(ConditionType.READY, False, PluginReason.SUSPENDED,
                                 "suspended (spec.suspend) before it started")
        ctx.status.remove_condition(ConditionType.RECONCILING)
        if (obj.get("status") or {}).get("observedGeneration") != ctx.generation:
            self._say(state.name, "info", "suspended: not reconciled until spec.suspend is false")

    def _handle_reset(self, obj: Obj, ctx: Context, state: _State) -> None:
        wanted = annotations_of(obj).get(RESET_FAILED_ANNOTATION)
        if not wanted or wanted == state.reset_handled:
            return
        state.reset_handled = wanted
        state.start_times.clear()
        state.failures = 0
        state.not_before = 0.0
        state.ended = False if state.current is not None else state.ended
        ctx.status.set("resetFailedAt", wanted)
        self._say(state.name, "info", f"reset-failed at {wanted}: start history and backoff cleared")
        self._event_soon(state.name, "Normal", PluginReason.RESET_FAILED,
                         "start history cleared by mfx reset-failed")

    async def _check_dependencies(self, name: str, parsed: _Parsed, ctx: Context) -> tuple[str, str] | None:
        cycle = self._cycle_through(name)
        if cycle is not None:
            path = " -> ".join(cycle)
            for member in cycle:
                for target in self.graph.dependencies(member):
                    self._watch(name, target)
            ctx.status.condition(ConditionType.DEPENDENCIES_READY, False, PluginReason.DEPENDENCY_CYCLE, path)
            await self._stop_quietly(ctx, name)
            raise PermanentError(PluginReason.DEPENDENCY_CYCLE, f"dependency cycle: {path}")
        missing: list[str] = []
        waiting: list[str] = []
        for dep in parsed.requirements:
            version = self._versions.get(dep.name)
            if version is None or dep.name not in self.graph:
                try:  # not seen by the watch (yet): ask the store
                    other = await ctx.store.get(KIND, dep.name)
                except NotFoundError:
                    missing.append(dep.name)
                    continue
                version = str((other.get("spec") or {}).get("version", ""))
            try:
                if dep.constraint is None:
                    raise ConstraintError(dep.version, dep.error)
                ok = self._is_satisfied(dep, version)
            except (ConstraintError, VersionError, ValueError) as exc:
                raise PermanentError(PluginReason.INVALID_SPEC,
                                     f"spec.dependencies[{dep.name}].version: {dep.error or exc}") from None
            if not ok:
                self._watch(name, dep.name)
                message = (f"{name} requires {dep.name} {dep.version}, but {dep.name} is version {version}")
                ctx.status.condition(ConditionType.DEPENDENCIES_READY, False,
                                     PluginReason.VERSION_CONSTRAINT_UNSATISFIED, message)
                await self._stop_quietly(ctx, name)
                raise PermanentError(PluginReason.VERSION_CONSTRAINT_UNSATISFIED, message)
            # Ready means running in this process: a Ready=True left in the store by an earlier
            # daemon (killed before it could say otherwise) does not count.
            if not self.is_running(dep.name) or self._ready.get(dep.name) is not True:
                waiting.append(dep.name)
                continue
        if missing:
            return PluginReason.DEPENDENCY_MISSING, "dependency not found: " + ", ".join(missing)
        if waiting:
            return PluginReason.DEPENDENCY_NOT_READY, "waiting for " + ", ".join(waiting) + " to become Ready"
        for dep in parsed.requirements:  # all look Ready: make sure none is being deleted
            if self._deleting.get(dep.name):
                return PluginReason.DEPENDENCY_NOT_READY, f"{dep.name} is being deleted"
        return None

    async def _stop_quietly(self, ctx: Context, name: str) -> None:
        state = self.states.get(name)
        if state is not None:
            self._begin_stop(ctx, state, "dependencies cannot be met")

    async def _dependencies_not_ready(self, ctx: Context, state: _State, reason: str, message: str) -> Result:
        ctx.status.condition(ConditionType.DEPENDENCIES_READY, False, reason, message)
        stopped = self._begin_stop(ctx, state, f"dependencies not Ready: {message}")
        ctx.status.condition(ConditionType.READY, False, reason, message if stopped else
                             f"{message}; stopping (dependents first)")
        if stopped and ctx.status.condition_view(ConditionType.HEALTHY) is not None:
            ctx.status.condition(ConditionType.HEALTHY, "Unknown", PluginReason.NOT_RUNNING, "not running")
        return Result(requeue_after=DEPENDENCY_POLL_SECONDS)

    # --- stopping -------------------------------------------------------------------------------

    def _begin_stop(self, ctx: Context, state: _State, why: str) -> bool:
        """Stop ``state``'s instance once its dependents have stopped; True when nothing runs."""
        key = ctx.key
        for task in ("start", "replace", "config"):
            status = ctx.supervisor.status(key, task)
            if status is not None and not status.finished:
                ctx.supervisor.cancel(key, task)
        stop = ctx.supervisor.status(key, "stop")
        if state.current is None:
            return stop is None or stop.finished
        waiting = [d for d in self.graph.dependents(state.name) if self.is_running(d)]
        if waiting:
            for dependent in waiting:
                self.kick(dependent)
            return False
        self._launch_stop(ctx, state, why)
        return False

    def _launch_stop(self, ctx: Context, state: _State, why: str, *, task: str = "stop") -> None:
        running = state.current
        assert running is not None
        state.current = None
        state.handle.running = None
        self._unregister(state)
        self.probes.unschedule(ctx.key)
        self._stop_task(ctx.key, running, why, task=task)

    def _stop_task(self, key: ObjectKey, running: Running, why: str, *, task: str) -> None:
        name = key.name
        dependencies = self.graph.dependencies(name)

        async def stop() -> str | None:
            problem = await stop_instance(name, running.instance, call_seconds=running.request.limits.timeout_seconds,
                                          stop=running.exited is None)
            self._say(name, "info", f"stopped {running.version} ({why})" + (f"; {problem}" if problem else ""))
            for dependency in dependencies:
                self.kick(dependency)  # it may be waiting for its dependents to stop
            return problem

        self.env.manager.supervisor.start(key, task, stop, replace=False)

    # --- converging -----------------------------------------------------------------------------

    async def _converge(self, obj: Obj, spec: PluginManifestSpec, ctx: Context, state: _State) -> Result | None:
        key, sup, name = ctx.key, ctx.supervisor, ctx.key.name
        start = sup.status(key, "start")
        if start is not None:
            if not start.finished:
                ctx.status.condition(ConditionType.READY, False, PluginReason.STARTING, f"starting {spec.version}")
                return None
            sup.forget(key, "start")
            if start.state is TaskState.DONE:
                self._adopt(ctx, state, start.result, spec)
            elif start.state is TaskState.FAILED and start.error is not None:
                self._start_failed(ctx, spec, state, start.error)

        current = state.current
        if current is not None:
            ended = current.exited
            reason = PluginReason.COMPLETED if current.exited_cleanly else PluginReason.CRASHED
            probe = self.probes.status(key)
            if ended is None and probe is not None and not probe.healthy:
                ended = (f"health check failed {probe.consecutive_failures} times in a row: "
                         f"{probe.last.error}")
                reason = PluginReason.HEALTH_CHECK_FAILED
            if ended is not None:
                self._instance_ended(ctx, spec, state, reason, ended)
                current = None

        if current is None:
            return self._start_if_allowed(obj, spec, ctx, state)

        identity, plugin_dir = self._steady_identity(name, ctx.generation, spec, current)
        if identity != current.identity:
            return self._replace(obj, spec, ctx, state, identity, plugin_dir)
        config = dict(spec.config)
        if config != current.config:
            return await self._update_config(spec, ctx, state, config)
        self._steady(spec, ctx, state)
        return None

    def _start_if_allowed(self, obj: Obj, spec: PluginManifestSpec, ctx: Context, state: _State) -> Result | None:
        key, sup, name = ctx.key, ctx.supervisor, ctx.key.name
        stop = sup.status(key, "stop")
        if stop is not None and not stop.finished:
            ctx.status.condition(ConditionType.READY, False, PluginReason.STOPPING,
                                 state.last_failure or "stopping the previous instance")
            return None
        policy = spec.restart_policy.policy
        if state.ended and policy is RestartPolicy.NEVER:
            raise PermanentError(state.last_failure_reason or PluginReason.START_FAILED,
                                 f"{state.last_failure}; restartPolicy is Never, so it is not restarted")
        if state.ended and policy is RestartPolicy.ON_FAILURE and state.clean_exit:
            ctx.status.condition(ConditionType.READY, False, PluginReason.COMPLETED,
                                 f"{state.last_failure}; restartPolicy OnFailure does not restart a clean exit")
            return None
        limit = spec.restart_policy.start_limit
        now = time.monotonic()
        while state.start_times and state.start_times[0] <= now - limit.interval_seconds:
            state.start_times.popleft()
        if len(state.start_times) >= limit.burst:
            ctx.status.condition(ConditionType.HEALTHY, False, state.last_failure_reason or PluginReason.START_FAILED,
                                 state.last_failure or "not running")
            raise PermanentError(
                PluginReason.START_LIMIT_HIT,
                f"{len(state.start_times)} starts within {limit.interval} (startLimit.burst {limit.burst}); "
                f"last failure: {state.last_failure or 'none'}; run `mfx reset-failed pm/{name}` to try again")
        if now < state.not_before:
            wait = state.not_before - now
            ctx.status.condition(ConditionType.READY, False, PluginReason.BACK_OFF,
                                 f"restarting in {wait:.2f} s (backoff); last failure: {state.last_failure}")
            return Result(requeue_after=wait)
        self._launch_start(ctx, spec, state, "start")
        ctx.status.condition(ConditionType.READY, False, PluginReason.STARTING, f"starting {spec.version}")
        return None

    def _steady_identity(self, name: str, gen: int, spec: PluginManifestSpec,
                         current: Running) -> tuple[str, Path]:
        """``_identity`` for a running plugin, looked up again at most every few seconds."""
        uid = self._parsed[name].uid if name in self._parsed else ""
        cached = self._resolved.get(name)
        if (cached is not None and cached.uid == uid and cached.generation == gen
                and time.monotonic() - cached.at < PLUGIN_DIR_RECHECK_SECONDS):
            return cached.identity, cached.plugin_dir
        identity, plugin_dir = self._identity(name, spec, fallback=current.request.plugin_dir)
        self._resolved[name] = _Resolved(uid, gen, identity, plugin_dir, time.monotonic())
        return identity, plugin_dir

    def _identity(self, name: str, spec: PluginManifestSpec, *,
                  fallback: Path | None = None) -> tuple[str, Path]:
        """A digest of what forces a new instance when it changes, and the plugin directory."""
        try:
            plugin_dir = resolve_plugin_dir(name, spec.version, str(spec.type), spec.entry_point,
                                            home=self.env.home, plugin_paths=self.env.plugin_paths)
        except MfxError:
            if fallback is None:
                raise
            plugin_dir = fallback
        parts = self._identity_parts(name, spec, plugin_dir)
        digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return digest, plugin_dir

    def _identity_parts(self, name: str, spec: PluginManifestSpec, plugin_dir: Path) -> dict[str, Any]:
        parsed = self._parsed.get(name)
        base = parsed.identity_base if parsed is not None and parsed.spec is spec else _identity_base(spec)
        return {**base, "dir": str(plugin_dir)}

    def _request(self, name: str, spec: PluginManifestSpec, plugin_dir: Path, holder: dict[str, Any]) -> LoadRequest:
        lim = spec.limits
        limits = Limits(
            memory_bytes=lim.memory_bytes, cpu_millis=lim.cpu_millis, timeout_seconds=lim.timeout_seconds,
            max_concurrency=lim.max_concurrency, open_files=lim.open_files, fuel=lim.fuel,
            max_message_bytes=lim.max_message_bytes,
        )

        def on_exit(error: PluginError) -> None:
            reason = str(error)
            holder["exited"], holder["exit_error"] = reason, error
            running = holder.get("running")
            if running is not None and running.exited is None:
                running.exited, running.exit_error = reason, error
                state = self.states.get(name)
                if state is not None and state.current is running:
                    self._say(name, "warning", f"instance ended: {reason}")
                    self.kick(name)

        return LoadRequest(
            name=name, version=spec.version, type=PluginType(str(spec.type)), entry_point=spec.entry_point or "",
            plugin_dir=plugin_dir, state_dir=self.env.home / "state" / name, config=dict(spec.config),
            limits=limits, checksum=spec.security.checksum,
            allowed_paths=tuple(AllowedPath(Path(p.path), p.writable) for p in spec.security.allowed_paths),
            allowed_networks=tuple(spec.security.allowed_networks), env=dict(spec.env),
            start_timeout_seconds=max(10.0, lim.timeout_seconds), log=self._plugin_log, on_exit=on_exit,
        )

    def _launch_start(self, ctx: Context, spec: PluginManifestSpec, state: _State, task: str) -> None:
        name = ctx.key.name
        try:
            identity, plugin_dir = self._identity(name, spec)
        except EntryPointNotFoundError:
            self._await_entry_point(ctx, spec)
            raise  # Stalled, until the spec changes or the files appear
        ctx.supervisor.cancel(ctx.key, "entry-point")
        self._tell_copies(state, spec, plugin_dir)
        parts = self._identity_parts(name, spec, plugin_dir)
        uid = self._parsed[name].uid if name in self._parsed else ""
        self._resolved[name] = _Resolved(uid, ctx.generation, identity, plugin_dir, time.monotonic())
        holder: dict[str, Any] = {}
        request = self._request(name, spec, plugin_dir, holder)
        runtime = self.env.runtimes.for_type(spec.type)
        gen = ctx.generation
        if task == "start":
            if state.ended:
                state.restart_count += 1
                self.env.metrics.plugin_restarts_total.labels(name).inc()
            state.ended = False
            state.clean_exit = False
            state.start_times.append(time.monotonic())
        self._say(name, "info", f"{'starting' if task == 'start' else 'starting replacement'} {spec.version} "
                                f"({spec.type}) from {plugin_dir}")

        async def run() -> Running:
            began = time.time()
            instance, health_seconds = await start_instance(runtime, request,
                                                            call_timeout=spec.health_check.timeout_seconds)
            running = Running(instance, request, identity, spec.version, dict(spec.config), gen, began, time.time(),
                              exited=holder.get("exited"), exit_error=holder.get("exit_error"),
                              health_seconds=health_seconds, identity_parts=parts)
            holder["running"] = running
            return running

        ctx.supervisor.start(ctx.key, task, run)

    def _await_entry_point(self, ctx: Context, spec: PluginManifestSpec) -> None:
        """Look for the missing entry point again with a capped backoff; kick the plugin (out
        of its stall) once it is there. One look-out per plugin, for its latest spec."""
        name, home, paths = ctx.key.name, self.env.home, self.env.plugin_paths
        version, plugin_type, entry = spec.version, str(spec.type), spec.entry_point

        async def look() -> None:
            delay = ENTRY_POINT_RECHECK_FIRST_SECONDS
            while True:
                await anyio.sleep(delay)
                if copies(name, version, plugin_type, entry, home=home, plugin_paths=paths):
                    self._say(name, "info", f"entry point {entry!r} found: starting")
                    self.kick(name)
                    return
                delay = min(delay * 2, ENTRY_POINT_RECHECK_MAX_SECONDS)

        ctx.supervisor.start(ctx.key, "entry-point", look, replace=True, notify=False)

    def _tell_copies(self, state: _State, spec: PluginManifestSpec, plugin_dir: Path) -> None:
        """An event when other directories hold the plugin too: which copy is used and which
        are not (once per choice)."""
        found = copies(state.name, spec.version, str(spec.type), spec.entry_point,
                       home=self.env.home, plugin_paths=self.env.plugin_paths)
        unused = tuple(str(d) for d in found if d != plugin_dir)
        choice = (str(plugin_dir), *unused)
        if not unused or state.told_copies == choice:
            return
        state.told_copies = choice
        message = (f"loading {spec.version} from {plugin_dir}; also found in {', '.join(unused)}, "
                   "not used (the installed package comes first, then each --plugin-path in order)")
        self._say(state.name, "info", message)
        self._event_soon(state.name, "Normal", PluginReason.SHADOWED_COPY, message)

    def _adopt(self, ctx: Context, state: _State, running: Running, spec: PluginManifestSpec) -> None:
        name = ctx.key.name
        state.current = running
        state.handle.running = running
        state.ready_reason, state.note = PluginReason.RUNNING, ""
        hc = spec.health_check
        instance = running.instance
        # start_instance has just passed a health check: the first periodic one waits an interval.
        self.probes.schedule(ctx.key, instance.health,
                             ProbeSpec(hc.interval_seconds, hc.timeout_seconds, hc.failure_threshold),
                             delay_first=True)
        ctx.status.set("resolvedVersion", running.version)
        ctx.status.set("runtime", {**_jsonable(instance.details), "directory": str(running.request.plugin_dir)})
        ctx.status.set("startedAt", rfc3339(running.started_at))
        ctx.status.set("readyAt", rfc3339(running.ready_at))
        ctx.status.set("lastStartDurationSeconds", round(running.start_seconds, 6))
        state.last_probe = {"time": rfc3339(running.ready_at), "result": "Healthy",
                            "durationSeconds": round(running.health_seconds, 6)}
        state.probe_written = ("Healthy", time.monotonic())
        self._push_history(state, running.version, "Running", f"started in {running.start_seconds:.3f} s")
        self.env.metrics.init_plugin(name, process=spec.type == "rpc", wasm=spec.type == "webassembly")
        self._say(name, "info", f"{running.version} is running (ready in {running.start_seconds:.3f} s)")

    def _start_failed(self, ctx: Context, spec: PluginManifestSpec, state: _State, error: BaseException) -> None:
        name = ctx.key.name
        reason = plugin_error_reason(error)
        message = f"start of {spec.version} failed: {error}"
        self._failure(spec, state, reason, message)
        self._say(name, "error", message)
        self._event_soon(name, "Warning", reason, message)
        if isinstance(error, MfxError) and getattr(error, "retryable", True) is False:
            ctx.status.condition(ConditionType.HEALTHY, "Unknown", PluginReason.NOT_RUNNING, "not running")
            raise PermanentError(reason, message)
        ctx.status.condition(ConditionType.HEALTHY, False, reason, message)

    def _failure(self, spec: PluginManifestSpec, state: _State, reason: str, message: str,
                 ran_seconds: float = 0.0) -> None:
        backoff = spec.restart_policy.backoff
        if ran_seconds >= backoff.max_seconds:
            state.failures = 0  # it ran long enough: start the backoff over
        state.failures += 1
        delay = min(backoff.max_seconds, backoff.initial_seconds * 2 ** min(state.failures - 1, 30))
        state.not_before = time.monotonic() + delay
        state.ended = True
        state.last_failure = message
        state.last_failure_reason = reason

    def _instance_ended(self, ctx: Context, spec: PluginManifestSpec, state: _State, reason: str,
                        message: str) -> None:
        running = state.current
        assert running is not None
        name = ctx.key.name
        self._failure(spec, state, reason, message, time.monotonic() - running.started_mono)
        state.clean_exit = reason == PluginReason.COMPLETED  # from the exit status, never the wording
        ctx.status.condition(ConditionType.HEALTHY, False, reason, message)
        self._say(name, "info" if state.clean_exit else "warning", f"{running.version}: {message}")
        self._event_soon(name, "Normal" if state.clean_exit else "Warning", reason, message)
        self._launch_stop(ctx, state, message)

    def _replace(self, obj: Obj, spec: PluginManifestSpec, ctx: Context, state: _State, identity: str,
                 plugin_dir: Path) -> Result | None:
        key, sup, name = ctx.key, ctx.supervisor, ctx.key.name
        current = state.current
        assert current is not None
        if state.failed_upgrade == (ctx.generation, identity):
            self._ready_rolled_back(ctx, state, current)
            raise PermanentError(PluginReason.UPGRADE_FAILED, state.failed_upgrade_message)
        task = sup.status(key, "replace")
        doing = (f"upgrading to {spec.version}" if spec.version != current.version
                 else f"replacing the {current.version} instance (its spec changed)")
        if task is None:
            self._launch_start(ctx, spec, state, "replace")
            self._ready_running(ctx, state, current, reconciling=doing)
            return None
        if not task.finished:
            self._ready_running(ctx, state, current, reconciling=doing)
            return None
        sup.forget(key, "replace")
        if task.state is TaskState.DONE:
            new: Running = task.result
            old = current
            self._push_history(state, old.version, "Replaced", f"replaced by {new.version}")
            state.current = None
            self.probes.unschedule(key)
            self._stop_task(key, old, f"replaced by {new.version}", task="stop-old")
            self._adopt(ctx, state, new, spec)
            reason, message = _replacement_change(old, new)
            self._say(name, "info", message)
            self._event_soon(name, "Normal", reason, message)
            self._steady(spec, ctx, state)
            return None
        error = task.error
        message = (f"{spec.version} failed to start or pass its health check ({error}); "
                   f"rolled back: {current.version} keeps running")
        state.failed_upgrade = (ctx.generation, identity)
        state.failed_upgrade_message = message
        self._push_history(state, spec.version, "RolledBack", str(error))
        self._say(name, "error", message)
        self._event_soon(name, "Warning", PluginReason.ROLLED_BACK, message)
        self._ready_rolled_back(ctx, state, current)
        raise PermanentError(PluginReason.UPGRADE_FAILED, message)

    def _ready_rolled_back(self, ctx: Context, state: _State, current: Running) -> None:
        self._ready_running(ctx, state, current)  # the previous version keeps serving ...
        # ... but the wanted generation is not what runs: not Ready (see _SERVING_REASONS)
        ctx.status.condition(ConditionType.READY, False, PluginReason.ROLLED_BACK, state.failed_upgrade_message)
        ctx.status.set("resolvedVersion", current.version)

    async def _update_config(self, spec: PluginManifestSpec, ctx: Context, state: _State,
                             config: dict[str, Any]) -> Result | None:
        key, sup, name = ctx.key, ctx.supervisor, ctx.key.name
        current = state.current
        assert current is not None
        if state.failed_config == (ctx.generation, config):
            self._config_rejected(ctx, state, current, state.failed_config_message)
        try:
            validate_config(spec)
        except InvalidConfigError as exc:
            state.failed_config, state.failed_config_message = (ctx.generation, config), str(exc)
            self._config_rejected(ctx, state, current, str(exc))
        task = sup.status(key, "config")
        if task is not None and not task.finished:
            # One config update at a time: a newer config waits for the running one (cancelling
            # a call into the plugin midway would leave its config unknown), then goes next.
            self._ready_running(ctx, state, current, reconciling="applying the new config")
            return None
        if task is not None:
            sup.forget(key, "config")
            if self._config_task_done(ctx, spec, state, current, task, config):
                return None
        instance, timeout = current.instance, spec.limits.timeout_seconds

        async def apply() -> tuple[Any, dict[str, Any]]:
            await bounded(f"{name}.update_config", timeout, instance.update_config(config))
            return instance, config

        state.applying_config = config
        sup.start(key, "config", apply)
        self._ready_running(ctx, state, current, reconciling="applying the new config")
        return None

    def _config_task_done(self, ctx: Context, spec: PluginManifestSpec, state: _State, current: Running,
                          task: TaskStatus, config: dict[str, Any]) -> bool:
        """Take in a finished config update; True when the wanted ``config`` runs now, False
        when it must be applied next.

        An update superseded before it finished (a newer config arrived, or it was cancelled)
        is no failure: whatever it left running is recorded, and the newest config goes next.
        """
        name = ctx.key.name
        tried, state.applying_config = state.applying_config, None
        if task.state is TaskState.DONE:
            instance, done = task.result
            if instance is current.instance:
                current.config = done  # what the plugin runs now, wanted or not
            if current.config != config:
                return False
            self._say(name, "info", "config updated without a restart")
            self._event_soon(name, "Normal", PluginReason.CONFIG_UPDATED, "config applied without a restart")
            self._steady(spec, ctx, state)
            return True
        if task.state is not TaskState.FAILED or tried != config:
            return False  # cancelled, or a config nobody wants any more failed
        error = task.error
        if isinstance(error, (PluginTimeoutError, PluginCrashedError)):
            raise TemporaryError(f"applying the new config failed: {error}")  # retry with backoff
        state.failed_config = (ctx.generation, config)
        state.failed_config_message = f"the plugin refused it: {error}"
        self._config_rejected(ctx, state, current, state.failed_config_message)

    def _config_rejected(self, ctx: Context, state: _State, current: Running, why: str) -> NoReturn:
        message = f"the new config is invalid: {why}; the previous config keeps running"
        self._say(ctx.key.name, "error", message)
        self._ready_running(ctx, state, current)  # the previous config keeps serving, but is not the wanted one
        ctx.status.condition(ConditionType.READY, False, PluginReason.INVALID_CONFIG, message)
        raise PermanentError(PluginReason.INVALID_CONFIG, message)

    def _ready_running(self, ctx: Context, state: _State, current: Running, *, reconciling: str | None = None) -> None:
        self._register(state)
        message = f"{current.version} running"
        if state.note:
            message += f"; {state.note}"
        ctx.status.condition(ConditionType.READY, True, state.ready_reason, message)
        ctx.status.condition(ConditionType.HEALTHY, True, PluginReason.HEALTH_CHECK_PASSED, "health checks pass")
        if reconciling:
            ctx.status.condition(ConditionType.RECONCILING, True, PluginReason.UPGRADING
                                 if "upgrading" in reconciling else PluginReason.RUNNING, reconciling)
        else:
            ctx.status.remove_condition(ConditionType.RECONCILING)

    def _steady(self, spec: PluginManifestSpec, ctx: Context, state: _State) -> None:
        current = state.current
        assert current is not None
        state.interfaces = tuple(spec.interfaces)
        self._priority = spec.priority
        self._register(state, spec.priority)
        self._ready_running(ctx, state, current)

    # --- services, status, logs ---------------------------------------------------------------------

    def _register(self, state: _State, priority: int | None = None) -> None:
        registry = self.env.services
        if priority is not None:
            state.handle.interfaces = state.interfaces
            state.handle.priority = priority  # type: ignore[attr-defined]
        prio = getattr(state.handle, "priority", 0)
        for interface in state.interfaces:
            registry.register(interface, state.name, priority=prio, instance=state.handle)
        for interface in registry.provided_by(state.name):
            if interface not in state.interfaces:
                registry.unregister(state.name, interface)

    def _unregister(self, state: _State) -> None:
        self.env.services.unregister(state.name)

    def _write_common(self, ctx: Context, state: _State) -> None:
        ctx.status.set("restartCount", state.restart_count)
        if state.current is None:  # nothing runs: no version, no process to show
            ctx.status.delete("resolvedVersion")
            ctx.status.delete("runtime")
        breaker = state.handle.breaker
        ctx.status.set("circuitBreaker", {"state": breaker_state_name(breaker.state)})
        circuit = breaker.condition()
        if circuit is None:
            ctx.status.remove_condition(ConditionType.CIRCUIT_OPEN)
        else:
            ctx.status.condition(ConditionType.CIRCUIT_OPEN, True, *circuit)
        if state.history:
            ctx.status.set("history", state.history)
        if state.last_probe is not None:
            ctx.status.set("lastHealthProbe", state.last_probe)

    def _push_history(self, state: _State, version: str, result: str, message: str) -> None:
        state.history.insert(0, {"version": version, "result": result, "message": message,
                                 "time": rfc3339(time.time())})
        del state.history[HISTORY_LIMIT:]

    def _on_probe(self, status: ProbeStatus) -> None:
        name = status.key.name
        state = self.states.get(name)
        if state is None:
            return
        result = "Healthy" if status.last.ok else ("Timeout" if status.last.timed_out else "Unhealthy")
        state.last_probe = {"time": rfc3339(time.time()), "result": result,
                            "durationSeconds": round(status.last.duration, 6)}
        if not status.last.ok:
            self._say(name, "warning", f"health probe failed ({status.consecutive_failures} in a row): "
                                       f"{status.last.error}")
        now = time.monotonic()
        if status.changed or not status.healthy:
            self.kick(name)  # the reconcile writes lastHealthProbe with the conditions
        elif (state.probe_written is None or state.probe_written[0] != result
              or now - state.probe_written[1] >= PROBE_STATUS_REFRESH_SECONDS):
            state.probe_written = (result, now)  # a steady result is re-written at most this often
            self._patch_status_soon(name, {"lastHealthProbe": state.last_probe})

    def _on_breaker(self, name: str, old: BreakerState, new: BreakerState) -> None:
        self.env.metrics.plugin_circuit_breaker_state.labels(name).set(new.metric_value)
        self._say(name, "warning" if new is BreakerState.OPEN else "info",
                  f"circuit breaker {breaker_state_name(old)} -> {breaker_state_name(new)}")
        # The reconcile writes status.circuitBreaker and the CircuitOpen condition from the
        # breaker's state (its turning True is evented with the condition); a removed
        # condition is no event, so closing is told here.
        if new is BreakerState.CLOSED:
            self._event_soon(name, "Normal", PluginReason.CIRCUIT_CLOSED,
                             f"circuit breaker closed after {breaker_state_name(old)}: calls pass again")
        self.kick(name)

    def _on_reload(self, name: str, ok: bool, message: str) -> None:
        state = self.states.get(name)
        if state is None:
            return
        state.ready_reason = PluginReason.RELOADED if ok else PluginReason.RELOAD_FAILED
        state.note = message if ok else f"reload failed: {message}; the previous version keeps running"
        self._say(name, "info" if ok else "error", state.note)
        self._event_soon(name, "Normal" if ok else "Warning", state.ready_reason, state.note)
        self.kick(name)

    def _patch_status_soon(self, name: str, fields: dict[str, Any]) -> None:
        manager = self.env.manager
        if manager is None:
            return

        async def write() -> None:
            try:
                obj = await self.env.store.get(KIND, name)
            except NotFoundError:
                return
            if is_deleting(obj):
                return
            patch = StatusPatcher(self.env.store, obj, self.events)
            for field_name, value in fields.items():
                patch.set(field_name, value)
            try:
                await patch.flush()
            except MfxError:
                pass

        manager.supervisor.start(self.key(name), "status-write", write, notify=False)

    def _event_soon(self, name: str, type_: str, reason: str, message: str) -> None:
        manager = self.env.manager
        if manager is None:
            return

        async def record() -> None:
            try:
                obj = await self.env.store.get(KIND, name)
            except NotFoundError:
                return
            await self.events.record(obj, type_, str(reason), message)

        manager.supervisor.start(self.key(name), f"event:{reason}:{time.monotonic_ns()}", record, notify=False)

    def _plugin_log(self, record: PluginLogRecord) -> None:
        store = self.env.log_store
        if store is None:
            return
        stream = record.stream if record.stream in ("stdout", "stderr", "controller") else "stderr"
        fields = dict(record.fields)
        if stream != record.stream:
            fields["source"] = record.stream
        try:
            store.append(record.plugin, str(record.level), record.message, stream, fields or None)
        except Exception:
            log.debug("could not append a log record of %s", record.plugin, exc_info=True)

    def _say(self, name: str, level: str, message: str) -> None:
        """The controller's own message about a plugin: the daemon's log, and (through the
        daemon's ``PluginLogHandler``, which routes records carrying ``plugin``) the plugin's log."""
        levels = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
        log.log(levels.get(level, logging.INFO), "[%s] %s", name, message, extra={"plugin": name})

    # --- delete and shutdown ----------------------------------------------------------------------

    async def finalize(self, obj: Obj, ctx: Context) -> Result | None:
        name = ctx.key.name
        state = self.states.get(name)
        ctx.status.condition(ConditionType.READY, False, PluginReason.DELETING, "stopping before deletion")
        ctx.status.remove_condition(ConditionType.RECONCILING)
        if state is not None and not self._begin_stop(ctx, state, "deleted"):
            await ctx.status.flush()  # dependents see it and stop first
            for dependent in self.graph.dependents(name):
                self.kick(dependent)
            return Result(requeue_after=5.0)
        for task in ("stop-old", "status-write", "entry-point"):
            ctx.supervisor.cancel(ctx.key, task)
        self._forget(name)
        return None

    def _forget(self, name: str) -> None:
        self.env.services.unregister(name)
        self.probes.unschedule(self.key(name))
        self.states.pop(name, None)
        self._parsed.pop(name, None)
        self._resolved.pop(name, None)
        self.env.metrics.forget("name", name)
        self.graph.remove_node(name)
        self._say(name, "info", "deleted")

    async def stop_all(self) -> None:
        """Stop every running plugin, dependents first; independent ones at the same time."""
        running = {name for name, state in self.states.items() if state.current is not None}
        while running:
            wave = [n for n in running if not any(d in running for d in self.graph.dependents(n))] or sorted(running)
            async with anyio.create_task_group() as tg:
                for name in wave:
                    tg.start_soon(self._stop_now, name)
            running.difference_update(wave)

    async def _stop_now(self, name: str) -> None:
        state = self.states.get(name)
        if state is None or state.current is None:
            return
        running, state.current = state.current, None
        state.handle.running = None
        self._unregister(state)
        self.probes.unschedule(self.key(name))
        problem = await stop_instance(name, running.instance, call_seconds=running.request.limits.timeout_seconds,
                                      stop=running.exited is None)
        self._say(name, "info", f"stopped {running.version} (daemon shutdown)" + (f"; {problem}" if problem else ""))


def validate_config(spec: PluginManifestSpec) -> None:
    """``spec.config`` against ``spec.configSchema`` (admission checked it; this is the last line).

    The same check as admission's, so a schema that refers outside itself is refused here too
    and nothing is fetched or read on its behalf.
    """
    problems = config_problems(spec.config_schema, spec.config)
    if problems:
        raise InvalidConfigError("; ".join(str(problem) for problem in problems))


# How the parts of a plugin's identity are named to users.
_IDENTITY_FIELDS = {"version": "spec.version", "type": "spec.type", "entryPoint": "spec.entryPoint",
                    "security": "spec.security", "limits": "spec.resources.limits", "env": "spec.env",
                    "dir": "the plugin directory"}


def _replacement_change(old: Running, new: Running) -> tuple[str, str]:
    """The reason and message of a finished replacement: an upgrade only when the version
    changed; otherwise which parts of the spec did, and whether the config did too."""
    changed = [label for key, label in _IDENTITY_FIELDS.items()
               if key != "version" and old.identity_parts.get(key) != new.identity_parts.get(key)]
    config = "; config updated" if old.config != new.config else ""
    if old.version != new.version:
        return PluginReason.UPGRADED, f"upgraded from {old.version} to {new.version}{config}"
    what = ", ".join(changed) or "its spec"
    return PluginReason.REPLACED, f"replaced the {new.version} instance: {what} changed{config}"


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))

