"""Carrying out what ``plugin_decide.decide`` chose: status through the reconcile context,
long work through ``PluginRunner``, and the outcome the engine sees (a ``Result``, or a
``PermanentError``/``TemporaryError`` it turns into Stalled or a retry)."""

from __future__ import annotations

from mfx.api.models import PluginManifestSpec
from mfx.api.objects import RESTARTED_AT_FIELD, Obj
from reconciler import (
    ConditionType,
    Context,
    PermanentError,
    Result,
    TaskState,
    TemporaryError,
    get_condition,
)

from .plugin_decide import (
    Action,
    AdoptReplacement,
    AdoptStart,
    ApplyConfig,
    AwaitConfig,
    AwaitReplacement,
    AwaitRestart,
    AwaitStart,
    AwaitStop,
    BackOff,
    Complete,
    ConfigApplied,
    DropCancelledStart,
    EndInstance,
    GiveUp,
    NoteRestart,
    RecordStartFailure,
    RejectConfig,
    RejectSpec,
    ResetFailed,
    RestartFailed,
    RetryConfig,
    RollBack,
    StallOnDependencies,
    StallStartLimit,
    StallUpgradeFailed,
    Start,
    StartReplacement,
    StartRestart,
    Steady,
    StopStep,
    Suspend,
    WaitForDependencies,
)
from .plugin_dependencies import DependencyTracker
from .plugin_execution import PluginRunner
from .plugin_logging import say
from .plugin_reasons import PluginReason
from .plugin_runtime import Running
from .plugin_spec import IDENTITY_FIELDS, ParsedSpec
from .plugin_state import PendingEvent, PluginState, RunState
from .plugin_status import (
    push_history,
    write_ready_running,
    write_rolled_back,
)

DEPENDENCY_POLL_SECONDS = 30.0  # safety net; dependents are enqueued when a dependency changes
STARTING_SHOWN_AFTER = 1.0  # seconds a start runs before its "Starting" status is written
RESTARTING = "restarting on request: a new instance starts beside the running one"


class ActionExecutor:
    """Executes one action for one plugin within a reconcile."""

    def __init__(self, runner: PluginRunner, dependencies: DependencyTracker) -> None:
        self.runner = runner
        self.dependencies = dependencies

    async def execute(self, action: Action, obj: Obj, ctx: Context, state: PluginState, run: RunState,
                      parsed: ParsedSpec) -> Result | None:
        """Do ``action``; the reconcile's result (ignored for ``Absorb`` actions, which are
        followed by another decision)."""
        spec = parsed.spec
        status = ctx.status
        name = ctx.key.name
        match action:
            case Suspend():
                self._suspended(obj, ctx, run)
            case ResetFailed(stamp=stamp):
                run.reset_handled = stamp
                run.start_times.clear()
                run.failures = 0
                run.not_before = 0.0
                run.ended = False if run.current is not None else run.ended
                status.set("resetFailedAt", stamp)
                say(name, "info", f"reset-failed at {stamp}: start history and backoff cleared")
                state.events.append(PendingEvent("Normal", PluginReason.RESET_FAILED,
                                                 "start history cleared by mfx reset-failed"))
            case NoteRestart(stamp=stamp, why=why):
                run.restart_handled = stamp
                status.set(RESTARTED_AT_FIELD, stamp)
                message = f"restart requested ({stamp}): nothing to restart, {why}"
                say(name, "info", message)
                state.events.append(PendingEvent("Normal", PluginReason.RESTART_REQUESTED, message))
            case StartRestart(stamp=stamp):
                # Recorded when the new instance is launched, not when it is Ready: a request
                # is acted on once, and a daemon restarted meanwhile starts a fresh one anyway.
                run.restart_handled = run.restarting = stamp
                status.set(RESTARTED_AT_FIELD, stamp)
                message = (f"restart requested ({stamp}): starting a new {spec.version} instance; "
                           "the running one serves until it is Ready")
                say(name, "info", message)
                state.events.append(PendingEvent("Normal", PluginReason.RESTART_REQUESTED, message))
                self.runner.launch_start(ctx, state, run, spec, "replace")
                self._ready_running(ctx, run, reconciling=RESTARTING)
            case AwaitRestart():
                self._ready_running(ctx, run, reconciling=RESTARTING)
            case RestartFailed(message=message):
                ctx.supervisor.forget(ctx.key, "replace")
                run.restarting = None
                say(name, "error", message)
                state.events.append(PendingEvent("Warning", PluginReason.RESTART_FAILED, message))
            case RejectSpec(message=message):
                raise PermanentError(PluginReason.INVALID_SPEC, message)
            case StallOnDependencies():
                self.dependencies.add_watchers(name, action.watch)
                status.condition(ConditionType.DEPENDENCIES_READY, False, action.reason, action.condition_message)
                self.runner.advance_stop(ctx, run, action.stop, "dependencies cannot be met")
                raise PermanentError(action.reason, action.message)
            case WaitForDependencies(reason=reason, message=message, stop=stop):
                status.condition(ConditionType.DEPENDENCIES_READY, False, reason, message)
                self.runner.advance_stop(ctx, run, stop, f"dependencies not Ready: {message}")
                stopped = stop is StopStep.STOPPED
                status.condition(ConditionType.READY, False, reason,
                                 message if stopped else f"{message}; stopping (dependents first)")
                if stopped and status.condition_view(ConditionType.HEALTHY) is not None:
                    status.condition(ConditionType.HEALTHY, "Unknown", PluginReason.NOT_RUNNING, "not running")
                return Result(requeue_after=DEPENDENCY_POLL_SECONDS)
            case Start(version=version):
                begin = self.runner.prepare_start(ctx, state, run, spec, "start")
                status.condition(ConditionType.READY, False, PluginReason.STARTING, f"starting {version}")
                # Most starts end within milliseconds: "Starting" is written only if this one
                # is still running after STARTING_SHOWN_AFTER (its event is still told). A new
                # object's finalizer goes with that write too: deleted before it, the object is
                # released by PluginController.release, which stops what this start began.
                status.hold(STARTING_SHOWN_AFTER)
                ctx.supervisor.start(ctx.key, "start", begin)
            case AwaitStart(version=version):
                status.condition(ConditionType.READY, False, PluginReason.STARTING, f"starting {version}")
            case AdoptStart():
                task = ctx.supervisor.status(ctx.key, "start")
                ctx.supervisor.forget(ctx.key, "start")
                assert task is not None and task.state is TaskState.DONE
                self.runner.adopt(ctx, run, task.result, spec)
            case DropCancelledStart():
                ctx.supervisor.forget(ctx.key, "start")
            case RecordStartFailure(failure=failure, permanent=permanent):
                ctx.supervisor.forget(ctx.key, "start")
                self.runner.record_failure(run, failure)
                say(name, "error", failure.message)
                state.events.append(PendingEvent("Warning", failure.reason, failure.message))
                if permanent:
                    status.condition(ConditionType.HEALTHY, "Unknown", PluginReason.NOT_RUNNING, "not running")
                    raise PermanentError(failure.reason, failure.message)
                status.condition(ConditionType.HEALTHY, False, failure.reason, failure.message)
            case EndInstance(failure=failure, clean=clean):
                running = run.current
                assert running is not None
                self.runner.record_failure(run, failure)
                run.clean_exit = clean
                status.condition(ConditionType.HEALTHY, False, failure.reason, failure.message)
                say(name, "info" if clean else "warning", f"{running.version}: {failure.message}")
                state.events.append(PendingEvent("Normal" if clean else "Warning", failure.reason, failure.message))
                self.runner.launch_stop(ctx.key, run, failure.message)
            case AwaitStop(message=message):
                status.condition(ConditionType.READY, False, PluginReason.STOPPING, message)
            case GiveUp(reason=reason, message=message):
                raise PermanentError(reason, message)
            case Complete(message=message):
                status.condition(ConditionType.READY, False, PluginReason.COMPLETED, message)
            case StallStartLimit():
                status.condition(ConditionType.HEALTHY, False, action.healthy_reason, action.healthy_message)
                raise PermanentError(PluginReason.START_LIMIT_HIT, action.message)
            case BackOff(wait=wait, message=message):
                status.condition(ConditionType.READY, False, PluginReason.BACK_OFF, message)
                return Result(requeue_after=wait)
            case StallUpgradeFailed(message=message):
                self.runner.register(run)
                write_rolled_back(status, run, self._current(run))
                raise PermanentError(PluginReason.UPGRADE_FAILED, message)
            case StartReplacement(doing=doing):
                self.runner.launch_start(ctx, state, run, spec, "replace")
                self._ready_running(ctx, run, reconciling=doing)
            case AwaitReplacement(doing=doing):
                self._ready_running(ctx, run, reconciling=doing)
            case AdoptReplacement():
                self._adopt_replacement(ctx, state, run, spec)
            case RollBack():
                ctx.supervisor.forget(ctx.key, "replace")
                run.failed_upgrade = (ctx.generation, action.identity)
                run.failed_upgrade_message = action.message
                push_history(run, spec.version, "RolledBack", action.error)
                say(name, "error", action.message)
                state.events.append(PendingEvent("Warning", PluginReason.ROLLED_BACK, action.message))
                self.runner.register(run)
                write_rolled_back(status, run, self._current(run))
                raise PermanentError(PluginReason.UPGRADE_FAILED, action.message)
            case RejectConfig(why=why, remember=remember, absorb=absorb):
                if absorb:
                    self._absorb_config(ctx, run)
                if remember:
                    run.failed_config, run.failed_config_message = (ctx.generation, dict(spec.config)), why
                message = f"the new config is invalid: {why}; the previous config keeps running"
                say(name, "error", message)
                self._ready_running(ctx, run)  # the previous config keeps serving, but is not the wanted one
                status.condition(ConditionType.READY, False, PluginReason.INVALID_CONFIG, message)
                raise PermanentError(PluginReason.INVALID_CONFIG, message)
            case AwaitConfig():
                self._ready_running(ctx, run, reconciling="applying the new config")
            case ConfigApplied():
                self._absorb_config(ctx, run)
                say(name, "info", "config updated without a restart")
                state.events.append(PendingEvent("Normal", PluginReason.CONFIG_UPDATED,
                                                 "config applied without a restart"))
                self._steady(ctx, run, spec)
            case RetryConfig(message=message):
                self._absorb_config(ctx, run)
                raise TemporaryError(message)
            case ApplyConfig(config=config, absorb=absorb):
                if absorb:
                    self._absorb_config(ctx, run)
                self.runner.apply_config(ctx, run, self._current(run), dict(config), spec.limits.timeout_seconds)
                self._ready_running(ctx, run, reconciling="applying the new config")
            case Steady():
                self._steady(ctx, run, spec)
            case _:
                raise AssertionError(f"no way to execute {action!r}")
        return None

    @staticmethod
    def _current(run: RunState) -> Running:
        current = run.current
        assert current is not None
        return current

    def _ready_running(self, ctx: Context, run: RunState, *, reconciling: str | None = None) -> None:
        self.runner.register(run)
        write_ready_running(ctx.status, run, self._current(run), reconciling=reconciling)

    def _steady(self, ctx: Context, run: RunState, spec: PluginManifestSpec) -> None:
        run.interfaces = tuple(spec.interfaces)
        self.runner.register(run, spec.priority)
        write_ready_running(ctx.status, run, self._current(run))

    @staticmethod
    def _absorb_config(ctx: Context, run: RunState) -> None:
        """Take in a finished config update: what it left running is recorded."""
        task = ctx.supervisor.status(ctx.key, "config")
        ctx.supervisor.forget(ctx.key, "config")
        run.applying_config = None
        current = run.current
        if task is not None and task.state is TaskState.DONE and current is not None:
            instance, done = task.result
            if instance is current.instance:
                current.config = done  # what the plugin runs now, wanted or not

    def _adopt_replacement(self, ctx: Context, state: PluginState, run: RunState, spec: PluginManifestSpec) -> None:
        key, name = ctx.key, ctx.key.name
        task = ctx.supervisor.status(key, "replace")
        ctx.supervisor.forget(key, "replace")
        assert task is not None and task.state is TaskState.DONE
        new: Running = task.result
        old = self._current(run)
        restarted, run.restarting = run.restarting, None
        why = "restarted on request" if restarted else f"replaced by {new.version}"
        push_history(run, old.version, "Restarted" if restarted else "Replaced", why)
        run.current = None
        self.runner.stop_replaced(key, old, why)
        self.runner.adopt(ctx, run, new, spec)
        reason, message = replacement_change(old, new)
        if restarted and old.identity == new.identity and old.config == new.config:  # the spec did not change
            reason, message = PluginReason.RESTARTED, (f"restarted on request ({restarted}): a new {new.version} "
                                                       "instance replaced the previous one")
        say(name, "info", message)
        state.events.append(PendingEvent("Normal", reason, message))
        self._steady(ctx, run, spec)

    @staticmethod
    def _suspended(obj: Obj, ctx: Context, run: RunState) -> None:
        ready = get_condition(obj, ConditionType.READY)
        if ready is not None:
            ctx.status.condition(ConditionType.READY, ready["status"], ready.get("reason", ""), ready.get("message", ""))
        else:
            ctx.status.condition(ConditionType.READY, False, PluginReason.SUSPENDED,
                                 "suspended (spec.suspend) before it started")
        ctx.status.remove_condition(ConditionType.RECONCILING)
        if (obj.get("status") or {}).get("observedGeneration") != ctx.generation:
            say(run.name, "info", "suspended: not reconciled until spec.suspend is false")


def write_dependencies_ready(ctx: Context, parsed: ParsedSpec) -> None:
    if parsed.spec.dependencies:
        ctx.status.condition(ConditionType.DEPENDENCIES_READY, True, PluginReason.DEPENDENCIES_READY,
                             "all required dependencies are Ready: " + ", ".join(r.name for r in parsed.requirements))
    else:
        ctx.status.condition(ConditionType.DEPENDENCIES_READY, True, PluginReason.NO_DEPENDENCIES, "no dependencies")


def replacement_change(old: Running, new: Running) -> tuple[str, str]:
    """The reason and message of a finished replacement: an upgrade only when the version
    changed; otherwise which parts of the spec did, and whether the config did too."""
    changed = [label for key, label in IDENTITY_FIELDS.items()
               if key != "version" and old.identity_parts.get(key) != new.identity_parts.get(key)]
    config = "; config updated" if old.config != new.config else ""
    if old.version != new.version:
        return PluginReason.UPGRADED, f"upgraded from {old.version} to {new.version}{config}"
    what = ", ".join(changed) or "its spec"
    return PluginReason.REPLACED, f"replaced the {new.version} instance: {what} changed{config}"
