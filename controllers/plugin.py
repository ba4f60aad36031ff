"""The PluginManifest controller: every plugin driven to its spec, in dependency order.

Level-triggered (DESIGN.md section 1), shaped like a controller-runtime reconciler: each
reconcile observes (the object, the in-process instance, the tracked tasks of the key, the
dependencies), asks the pure ``plugin_decide.decide`` for the next step, and carries it out
(``plugin_actions``). Long steps (start, stop, replace, config update) run as tracked tasks on
the engine's ``TaskSupervisor`` (``plugin_execution``); their completion re-enqueues the key.
Health probes run on the engine's ``ProbeScheduler``. Whatever finishes outside a reconcile
(a probe result, a crash reported through ``LoadRequest.on_exit``, a hot reload, the circuit
breaker) is recorded in the plugin's ``PluginState`` and re-enqueues the key ("kicks" it, see
``PluginController.kick``): status and events are written by the reconcile that follows,
through its context, and nowhere else.

Dependencies are tracked by ``plugin_dependencies`` from every watch event, so cycles are
found with the path, a dependency that becomes Ready enqueues its dependents at once, and
stops go in reverse order (dependents first).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable

from mfx.api.objects import (
    RESTARTED_AT_ANNOTATION,
    RESTARTED_AT_FIELD,
    Obj,
    ObjectKey,
    annotations_of,
)
from mfx.errors import NotFoundError
from reconciler import (
    BreakerState,
    CircuitBreaker,
    ConditionType,
    Context,
    ProbeScheduler,
    ProbeStatus,
    Registry,
    Result,
    TaskState,
    TaskStatus,
)
from reconciler.controller import brief_handler

from .plugin_actions import ActionExecutor, write_dependencies_ready
from .plugin_decide import Absorb, Action, Converge, Delete, NoteRestart, StopStep, Suspend, decide
from .plugin_dependencies import KIND, DependencyTracker, dependents_to_wake
from .plugin_env import PluginEnv
from .plugin_execution import PluginRunner
from .plugin_logging import log, say
from .plugin_observed import (
    DependencyView,
    Desired,
    History,
    InstanceView,
    Observed,
    ProbeView,
    TaskPhase,
    Tasks,
    TaskView,
)
from .plugin_reasons import WORLD_STALLS, PluginReason, serves
from .plugin_runtime import PluginHandle, breaker_state_name
from .plugin_spec import ParsedSpec, parse_manifest, required_dependencies, validate_config
from .plugin_state import PendingEvent, PluginState, PluginStates, ProbeRecord, RunState
from .plugin_status import record_events, write_common

__all__ = ["KIND", "PluginController", "PluginReason", "serves", "validate_config"]

RESET_FAILED_ANNOTATION = "mfx.musicfox.io/reset-failed-at"
# Absorbing finished work is followed by another decision in the same reconcile; a handful
# settle any situation (reset, a finished start, an ended instance, then a step).
_MAX_DECISIONS = 8

_PHASES = {TaskState.DONE: TaskPhase.DONE, TaskState.FAILED: TaskPhase.FAILED,
           TaskState.CANCELLED: TaskPhase.CANCELLED}


def _task_view(status: TaskStatus | None) -> TaskView:
    if status is None:
        return TaskView()
    if not status.finished:
        return TaskView(TaskPhase.RUNNING)
    return TaskView(_PHASES.get(status.state, TaskPhase.CANCELLED), status.error)


def desired_of(name: str, parsed: ParsedSpec) -> Desired:
    spec = parsed.spec
    policy = spec.restart_policy
    return Desired(
        name=name, version=spec.version, config=dict(spec.config), suspend=bool(spec.suspend),
        config_problem=parsed.config_problem, restart_policy=policy.policy,
        start_limit_burst=policy.start_limit.burst, start_limit_seconds=policy.start_limit.interval_seconds,
        start_limit_text=str(policy.start_limit.interval), backoff_initial=policy.backoff.initial_seconds,
        backoff_max=policy.backoff.max_seconds,
    )


class PluginController:
    def __init__(self, env: PluginEnv) -> None:
        self.env = env
        self.states = PluginStates()
        self.dependencies = DependencyTracker(self.states)
        self.probes = ProbeScheduler(metrics=env.metrics, on_result=self._on_probe, logger=log)
        self.runner = PluginRunner(env, self.states, self.dependencies, self.probes, self.kick)
        self.actions = ActionExecutor(self.runner, self.dependencies)
        env.runtimes.add_reload_listener(self._on_reload)

    # --- wiring -------------------------------------------------------------------------------

    def register(self, on: Registry) -> None:
        on.reconcile(KIND)(self.reconcile)
        on.delete(KIND)(self.finalize)
        on.related(KIND)(self.related)
        on.urgent(KIND)(self.urgent)
        on.gone(KIND)(self.release)

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

    def _enqueue(self, name: str) -> None:
        if self.env.manager is not None:
            self.env.manager.enqueue(self.key(name))

    def _reset(self, name: str) -> None:
        manager = self.env.manager
        if manager is not None and KIND in manager.controllers:
            manager.reset(self.key(name))

    def related(self, obj: Obj) -> Iterable[ObjectKey]:
        """Called on every watch event: records it with the dependency tracker, heals
        dependency stalls, and names the dependents to reconcile."""
        change = self.dependencies.record_watch_event(obj)
        name = change.name
        # mfx reset-failed: an annotation the controller has not handled yet
        wanted = annotations_of(obj).get(RESET_FAILED_ANNOTATION)
        handled = (obj.get("status") or {}).get("resetFailedAt")
        run = self.states.run_of(name)
        if wanted and wanted != handled and (run is None or run.reset_handled != wanted):
            self._reset(name)
        # mfx rollout restart: a stalled plugin is looked at once too, to record the request
        restart = annotations_of(obj).get(RESTARTED_AT_ANNOTATION)
        if (restart and restart != (obj.get("status") or {}).get(RESTARTED_AT_FIELD)
                and (run is None or run.restart_handled != restart)):
            self.kick(name)
        # after a restart: a stall the world can heal is looked at again once (it may have changed)
        if change.old is None and change.stall_reason in WORLD_STALLS:
            self._reset(name)
        if not change.changed:
            return []
        for watcher in self.dependencies.take_watchers(name):
            self._reset(watcher)
        wake = dependents_to_wake(change, self.dependencies.dependents(name), self.dependencies.dependencies_up)
        return [self.key(d) for d in wake]

    @staticmethod
    def urgent(obj: Obj) -> bool:
        """A relisted plugin without dependencies can start at once; the others would report
        that they wait, and are woken as their dependencies become Ready."""
        return not required_dependencies(obj)

    def is_running(self, name: str) -> bool:
        return self.states.is_running(name)

    # --- state ----------------------------------------------------------------------------------

    def _run_state(self, state: PluginState, parsed: ParsedSpec, obj: Obj) -> RunState:
        name, settings = state.name, parsed.breaker
        run = state.run
        if run is None:
            breaker = CircuitBreaker(name, settings, on_state_change=self._on_breaker)
            run = RunState(name, PluginHandle(name, breaker, self.env.metrics), settings)
            status = obj.get("status") or {}
            run.restart_count = int(status.get("restartCount") or 0)
            run.history = list(status.get("history") or [])
            run.reset_handled = status.get("resetFailedAt")
            run.restart_handled = status.get(RESTARTED_AT_FIELD)
            state.run = run
            self.env.metrics.plugin_circuit_breaker_state.labels(name).set(0)
        elif run.breaker_settings != settings:
            run.breaker_settings = settings
            run.handle.breaker = CircuitBreaker(name, settings, on_state_change=self._on_breaker)
            self.env.metrics.plugin_circuit_breaker_state.labels(name).set(0)
        run.handle.timeout = parsed.call_timeout
        return run

    # --- reconcile ------------------------------------------------------------------------------

    @brief_handler  # starts, stops and probes run as tracked tasks; the handler itself never waits long
    async def reconcile(self, obj: Obj, ctx: Context) -> Result | None:
        name = ctx.key.name
        state = self.states.ensure(name)
        parsed = state.parsed = parse_manifest(obj, state.parsed)
        spec = parsed.spec
        run = self._run_state(state, parsed, obj)
        self.dependencies.record_spec(name, spec.version, [r.name for r in parsed.requirements])
        if state.desired is None or state.desired[0] is not parsed:
            # per parse of the spec, not per reconcile: its durations are parsed from text
            state.desired = (parsed, desired_of(name, parsed))
        desired = state.desired[1]
        placement = self.env.placement
        if placement is not None and not placement.selects(obj):
            return await self._not_placed(obj, ctx, state, run)
        if spec.suspend:
            action = decide(self._observe(obj, ctx, state, run, DependencyView()), desired)
            if isinstance(action, NoteRestart):
                await self.actions.execute(action, obj, ctx, state, run, parsed)
                action = decide(self._observe(obj, ctx, state, run, DependencyView()), desired)
            assert isinstance(action, Suspend)
            try:
                return await self.actions.execute(action, obj, ctx, state, run, parsed)
            finally:
                self._record_events(ctx, state)
        try:
            dependencies = await self.dependencies.observe(name, parsed.requirements, ctx.store)
            if dependencies.waiting and placement is not None:
                dependencies = await self._placed_dependencies(dependencies, ctx)
            result = await self._step(obj, ctx, state, run, parsed, desired, dependencies)
        finally:
            write_common(ctx.status, run)
            self._record_events(ctx, state)
        now_ready = serves(ctx.status.condition_view(ConditionType.READY))
        self.dependencies.record_serving(name, now_ready)
        if now_ready and not run.serving_told:
            await ctx.status.flush(settled=True)  # written (as the reconcile ends it) before the dependents are woken
            for dependent in self.dependencies.dependents(name):
                if self.dependencies.dependencies_up(dependent):  # the others wait for another dependency
                    self.kick(dependent)
        run.serving_told = now_ready
        return result

    async def _step(self, obj: Obj, ctx: Context, state: PluginState, run: RunState, parsed: ParsedSpec,
                    desired: Desired, dependencies: DependencyView) -> Result | None:
        """Decide and act until an action ends the reconcile."""
        dependencies_written = False
        for _ in range(_MAX_DECISIONS):
            action: Action = decide(self._observe(obj, ctx, state, run, dependencies), desired)
            if isinstance(action, Converge) and not dependencies_written:
                write_dependencies_ready(ctx, parsed)
                dependencies_written = True
            result = await self.actions.execute(action, obj, ctx, state, run, parsed)
            if not isinstance(action, Absorb):
                return result
        raise RuntimeError(f"{ctx.key.name}: no decision settled after {_MAX_DECISIONS} steps")

    async def _not_placed(self, obj: Obj, ctx: Context, state: PluginState, run: RunState) -> Result | None:
        """Not for this node (spec.nodeSelector): stopped here, dependents first, and said so."""
        placement = self.env.placement
        assert placement is not None
        name = ctx.key.name
        message = placement.not_placed_message(obj)
        action = decide(self._observe(obj, ctx, state, run, DependencyView(), deleting=True), Desired(name))
        assert isinstance(action, Delete)
        self.runner.advance_stop(ctx, run, action.stop, f"not placed on node {placement.node_name}")
        self.dependencies.record_serving(name, False)
        stopped = action.stop is StopStep.STOPPED
        ctx.status.condition(ConditionType.READY, False, PluginReason.NOT_SCHEDULED,
                             message if stopped else f"{message}; stopping (dependents first)")
        ctx.status.remove_condition(ConditionType.RECONCILING)
        ctx.status.remove_condition(ConditionType.HEALTHY)
        write_common(ctx.status, run)
        self._record_events(ctx, state)
        if stopped:
            return None
        await ctx.status.flush()  # dependents see it and stop first
        for dependent in self.dependencies.dependents(name):
            self.kick(dependent)
        return Result(requeue_after=5.0)

    async def _placed_dependencies(self, view: DependencyView, ctx: Context) -> DependencyView:
        """Which of the dependencies waited for are not placed on this node at all."""
        placement = self.env.placement
        assert placement is not None
        elsewhere: list[str] = []
        for dependency in view.waiting:
            try:
                other = await ctx.store.get(KIND, dependency)
            except NotFoundError:
                continue
            if not placement.selects(other):
                elsewhere.append(dependency)
        return dataclasses.replace(view, not_placed=tuple(elsewhere), node=placement.node_name)

    def _observe(self, obj: Obj, ctx: Context, state: PluginState, run: RunState,
                 dependencies: DependencyView, *, deleting: bool = False) -> Observed:
        key, sup = ctx.key, ctx.supervisor
        now = time.monotonic()
        tasks = Tasks(start=_task_view(sup.status(key, "start")), stop=_task_view(sup.status(key, "stop")),
                      replace=_task_view(sup.status(key, "replace")), config=_task_view(sup.status(key, "config")))
        current = run.current
        instance = probe = wanted_identity = config_result = None
        if current is not None:
            instance = InstanceView(current.version, current.identity, dict(current.config), current.exited,
                                    current.exited_cleanly, now - current.started_mono)
            probe_status = self.probes.status(key)
            if probe_status is not None:
                probe = ProbeView(probe_status.healthy, probe_status.consecutive_failures, probe_status.last.error)
            clear = not (dependencies.cycle or dependencies.conflict or dependencies.missing
                         or dependencies.waiting or dependencies.deleting)
            alive = current.exited is None and (probe is None or probe.healthy)
            if (not deleting and clear and alive and tasks.start.phase is TaskPhase.NONE
                    and state.parsed is not None):
                wanted_identity, _ = self.runner.steady_identity(state, ctx.generation, state.parsed.spec, current)
            config_task = sup.status(key, "config")
            if config_task is not None and config_task.state is TaskState.DONE:
                instance_done, done = config_task.result
                if instance_done is current.instance:
                    config_result = done
        wanted = annotations_of(obj).get(RESET_FAILED_ANNOTATION)
        restart = annotations_of(obj).get(RESTARTED_AT_ANNOTATION)
        history = History(
            failures=run.failures, ended=run.ended, clean_exit=run.clean_exit, last_failure=run.last_failure,
            last_failure_reason=run.last_failure_reason, start_times=tuple(run.start_times),
            not_before=run.not_before, failed_upgrade=run.failed_upgrade,
            failed_upgrade_message=run.failed_upgrade_message, failed_config=run.failed_config,
            failed_config_message=run.failed_config_message, applying_config=run.applying_config,
        )
        return Observed(
            generation=ctx.generation, now=now, deleting=deleting,
            reset_wanted=wanted if wanted and wanted != run.reset_handled else None,
            restart_wanted=restart if restart and restart != run.restart_handled else None,
            dependencies=dependencies, instance=instance, probe=probe, wanted_identity=wanted_identity,
            tasks=tasks, config_result=config_result, history=history,
            dependents_running=tuple(d for d in self.dependencies.dependents(run.name) if self.is_running(d)),
        )

    @staticmethod
    def _record_events(ctx: Context, state: PluginState) -> None:
        record_events(ctx.status, state)

    # --- what happens outside a reconcile ---------------------------------------------------------

    def _on_probe(self, status: ProbeStatus) -> None:
        name = status.key.name
        run = self.states.run_of(name)
        if run is None:
            return
        result = "Healthy" if status.last.ok else ("Timeout" if status.last.timed_out else "Unhealthy")
        run.last_probe = ProbeRecord(time.time(), result, status.last.duration)
        if not status.last.ok:
            say(name, "warning", f"health probe failed ({status.consecutive_failures} in a row): "
                                 f"{status.last.error}")
        if status.changed or not status.healthy:
            self.kick(name)  # the reconcile writes lastHealthProbe with the conditions
        elif run.probe_written != result:
            run.probe_written = result
            # The next reconcile writes lastHealthProbe. A stalled plugin is not reset for it:
            # that would count a failed reconcile for a probe result.
            self._enqueue(name)
        # A steady result costs no reconcile and no write: every probe of every plugin would
        # otherwise be a status write, a watch event and a reconcile. The plugin's next status
        # write for any other reason (at the latest the periodic resync) carries it.

    def _on_breaker(self, name: str, old: BreakerState, new: BreakerState) -> None:
        self.env.metrics.plugin_circuit_breaker_state.labels(name).set(new.metric_value)
        say(name, "warning" if new is BreakerState.OPEN else "info",
            f"circuit breaker {breaker_state_name(old)} -> {breaker_state_name(new)}")
        # The reconcile writes status.circuitBreaker and the CircuitOpen condition from the
        # breaker's state (its turning True is evented with the condition); a removed
        # condition is no event, so closing is told here.
        if new is BreakerState.CLOSED:
            self._tell(name, PendingEvent("Normal", PluginReason.CIRCUIT_CLOSED,
                                          f"circuit breaker closed after {breaker_state_name(old)}: calls pass again"))
        self.kick(name)

    def _on_reload(self, name: str, ok: bool, message: str) -> None:
        run = self.states.run_of(name)
        if run is None:
            return
        run.ready_reason = PluginReason.RELOADED if ok else PluginReason.RELOAD_FAILED
        run.note = message if ok else f"reload failed: {message}; the previous version keeps running"
        say(name, "info" if ok else "error", run.note)
        self._tell(name, PendingEvent("Normal" if ok else "Warning", run.ready_reason, run.note))
        self.kick(name)

    def _tell(self, name: str, event: PendingEvent) -> None:
        """An event for the next reconcile of ``name`` to record."""
        if self.env.manager is not None:
            self.states.ensure(name).events.append(event)

    # --- delete and shutdown ----------------------------------------------------------------------

    async def finalize(self, obj: Obj, ctx: Context) -> Result | None:
        name = ctx.key.name
        state = self.states.get(name)
        run = state.run if state is not None else None
        ctx.status.condition(ConditionType.READY, False, PluginReason.DELETING, "stopping before deletion")
        ctx.status.remove_condition(ConditionType.RECONCILING)
        if state is not None and run is not None:
            action = decide(self._observe(obj, ctx, state, run, DependencyView(), deleting=True), Desired(name))
            assert isinstance(action, Delete)
            self.runner.advance_stop(ctx, run, action.stop, "deleted")
            self._record_events(ctx, state)
            if action.stop is not StopStep.STOPPED:
                await ctx.status.flush()  # dependents see it and stop first
                for dependent in self.dependencies.dependents(name):
                    self.kick(dependent)
                return Result(requeue_after=5.0)
        for task in ("stop-old", "entry-point"):
            ctx.supervisor.cancel(ctx.key, task)
        self._forget(name)
        return None

    def release(self, key: ObjectKey, finished: dict[str, TaskStatus]) -> None:
        """The PluginManifest went without ``finalize``: deleted while its first start was
        held (the ``Start`` case of ``ActionExecutor.execute``), or its finalizer removed by
        hand. Its instances are stopped, a start that ended but was not taken over as well;
        a start still running was cancelled, and stops what it started itself."""
        state = self.states.get(key.name)
        run = state.run if state is not None else None
        if run is None:
            return  # never started here, or finalized already
        why = "its PluginManifest is gone"
        for task in ("start", "replace"):
            status = finished.get(task)
            if status is not None and status.state is TaskState.DONE:
                self.runner.stop_task(key, status.result, why, task=f"stop-{task}")
        if run.current is not None:
            say(key.name, "warning", f"{why} without the controller's cleanup; stopping {run.current.version}")
            self.runner.launch_stop(key, run, why)
        self._forget(key.name)

    def _forget(self, name: str) -> None:
        self.env.services.unregister(name)
        self.probes.unschedule(self.key(name))
        state = self.states.get(name)
        if state is not None:
            state.run, state.parsed, state.desired, state.resolved, state.events = None, None, None, None, []
        self.env.metrics.forget("name", name)
        self.dependencies.forget(name)
        say(name, "info", "deleted")

    async def stop_all(self) -> None:
        """Stop every running plugin, dependents first; independent ones at the same time."""
        await self.runner.stop_all()

