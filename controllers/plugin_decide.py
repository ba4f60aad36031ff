"""The PluginManifest controller's decisions: ``decide(observed, desired) -> Action``.

Pure: no I/O, no clock (the time is ``Observed.now``), no mutation. The reconcile observes
(the object, the instance, the tracked tasks, the dependencies: ``plugin_observed``), calls
``decide``, and executes the action; actions that take in finished work (``Absorb``) are
followed by another decision in the same reconcile, the others end it. Every situation the controller can be in is one
``Observed``/``Desired`` pair, so tests table-drive this function.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mfx.api.models import RestartPolicy
from mfx.backoff import exponential_delay
from mfx.errors import MfxError, PluginCrashedError, PluginTimeoutError

from .plugin_observed import Desired, InstanceView, Observed, TaskPhase
from .plugin_reasons import PluginReason
from .plugin_runtime import plugin_error_reason

# --- what to do -----------------------------------------------------------------------------


class StopStep(enum.StrEnum):
    """How far stopping the instance is, when it should not run."""

    STOPPED = "Stopped"  # nothing runs and no stop is in flight
    STOPPING = "Stopping"  # a stop is in flight
    WAIT_FOR_DEPENDENTS = "WaitForDependents"  # dependents run: they stop first
    STOP_NOW = "StopNow"


class Action:
    """What one decision asks for."""


class Absorb(Action):
    """Take in finished work (or a reset), then decide again."""


class Converge(Action):
    """A step towards the spec once the dependencies allow it to run."""


@dataclass(frozen=True)
class Suspend(Action):
    pass


@dataclass(frozen=True)
class Delete(Action):
    stop: StopStep


@dataclass(frozen=True)
class ResetFailed(Absorb):
    stamp: str


@dataclass(frozen=True)
class NoteRestart(Absorb):
    """A restart was asked for (mfx rollout restart) while no instance can be restarted: the
    request is recorded as handled, so a later start does not restart again."""

    stamp: str
    why: str


@dataclass(frozen=True)
class RejectSpec(Action):
    message: str


@dataclass(frozen=True)
class StallOnDependencies(Action):
    reason: str
    condition_message: str
    message: str
    watch: tuple[str, ...]
    stop: StopStep


@dataclass(frozen=True)
class WaitForDependencies(Action):
    reason: str
    message: str
    stop: StopStep


@dataclass(frozen=True)
class AwaitStart(Converge):
    version: str


@dataclass(frozen=True)
class AdoptStart(Absorb, Converge):
    pass


@dataclass(frozen=True)
class DropCancelledStart(Absorb, Converge):
    pass


@dataclass(frozen=True)
class Failure:
    """A failed start or an ended instance, and when the next start may be."""

    reason: str
    message: str
    failures: int  # consecutive, after this one
    not_before: float  # monotonic


@dataclass(frozen=True)
class RecordStartFailure(Absorb, Converge):
    failure: Failure
    permanent: bool  # the error will not heal by retrying: stall


@dataclass(frozen=True)
class EndInstance(Absorb, Converge):
    failure: Failure
    clean: bool  # exit status 0


@dataclass(frozen=True)
class AwaitStop(Converge):
    message: str


@dataclass(frozen=True)
class GiveUp(Converge):
    reason: str
    message: str


@dataclass(frozen=True)
class Complete(Converge):
    message: str


@dataclass(frozen=True)
class StallStartLimit(Converge):
    healthy_reason: str
    healthy_message: str
    message: str


@dataclass(frozen=True)
class BackOff(Converge):
    wait: float
    message: str


@dataclass(frozen=True)
class Start(Converge):
    version: str


@dataclass(frozen=True)
class StallUpgradeFailed(Converge):
    message: str


@dataclass(frozen=True)
class StartReplacement(Converge):
    identity: str
    doing: str


@dataclass(frozen=True)
class AwaitReplacement(Converge):
    doing: str


@dataclass(frozen=True)
class AdoptReplacement(Converge):
    pass


@dataclass(frozen=True)
class StartRestart(Converge):
    """A restart on request: a new instance of the same spec starts beside the running one,
    which serves until the new one is Ready (a replacement, like kubectl rollout restart)."""

    stamp: str


@dataclass(frozen=True)
class AwaitRestart(Converge):
    pass


@dataclass(frozen=True)
class RestartFailed(Absorb, Converge):
    message: str


@dataclass(frozen=True)
class RollBack(Converge):
    identity: str
    message: str
    error: str


@dataclass(frozen=True)
class RejectConfig(Converge):
    why: str
    remember: bool  # record it as the refused config of this generation
    absorb: bool  # a finished config task is taken in first


@dataclass(frozen=True)
class AwaitConfig(Converge):
    pass


@dataclass(frozen=True)
class ConfigApplied(Converge):
    pass


@dataclass(frozen=True)
class RetryConfig(Converge):
    message: str


@dataclass(frozen=True)
class ApplyConfig(Converge):
    config: Mapping[str, Any]
    absorb: bool  # a finished config task is taken in first


@dataclass(frozen=True)
class Steady(Converge):
    pass


# --- deciding --------------------------------------------------------------------------------


def plan_stop(observed: Observed) -> StopStep:
    """How to get the instance stopped: dependents first, one stop at a time."""
    if observed.instance is None:
        return StopStep.STOPPED if not observed.tasks.stop.phase == TaskPhase.RUNNING else StopStep.STOPPING
    if observed.dependents_running:
        return StopStep.WAIT_FOR_DEPENDENTS
    return StopStep.STOP_NOW


def decide(observed: Observed, desired: Desired) -> Action:
    if observed.deleting:
        return Delete(plan_stop(observed))
    action = _decide(observed, desired)
    wanted = observed.restart_wanted
    if wanted is not None and not isinstance(action, Absorb | StartRestart):
        # Whatever else happens, a restart request is acted on once: when no running instance
        # can be restarted now, it is only recorded (a later start is a fresh instance anyway).
        return NoteRestart(wanted, _not_restarted(action))
    return action


def _decide(observed: Observed, desired: Desired) -> Action:
    if desired.suspend:
        return Suspend()
    if observed.reset_wanted is not None:
        return ResetFailed(observed.reset_wanted)
    blocked = _dependencies(observed)
    if blocked is not None:
        return blocked
    return _converge(observed, desired)


def _not_restarted(action: Action) -> str:
    """Why a restart request finds nothing to restart, as the event tells it."""
    match action:
        case Suspend():
            return "suspended (spec.suspend)"
        case WaitForDependencies() | StallOnDependencies():
            return "its dependencies are not Ready"
        case AwaitStart():
            return "a new instance is starting"
        case StartReplacement() | AwaitReplacement() | AdoptReplacement() | AwaitRestart():
            return "a new instance is already replacing the running one"
        case StallUpgradeFailed() | RollBack():
            return "its upgrade failed; the previous version keeps running"
        case RejectSpec() | RejectConfig() | RetryConfig():
            return "its spec or config is not accepted"
        case _:
            return "not running"


def _dependencies(observed: Observed) -> Action | None:
    deps = observed.dependencies
    if deps.cycle is not None:
        path = " -> ".join(deps.cycle)
        return StallOnDependencies(PluginReason.DEPENDENCY_CYCLE, path, f"dependency cycle: {path}", deps.watch,
                                   plan_stop(observed))
    if deps.conflict is not None:
        if deps.conflict.reason == PluginReason.INVALID_SPEC:
            return RejectSpec(deps.conflict.message)
        return StallOnDependencies(deps.conflict.reason, deps.conflict.message, deps.conflict.message, deps.watch,
                                   plan_stop(observed))
    if deps.missing:
        return WaitForDependencies(PluginReason.DEPENDENCY_MISSING,
                                   "dependency not found: " + ", ".join(deps.missing), plan_stop(observed))
    if deps.not_placed:
        names = ", ".join(deps.not_placed)
        return WaitForDependencies(PluginReason.DEPENDENCY_NOT_ON_NODE,
                                   f"{names} not placed on node {deps.node}: its spec.nodeSelector does not "
                                   "select this node; label the node or widen the selector", plan_stop(observed))
    if deps.waiting:
        return WaitForDependencies(PluginReason.DEPENDENCY_NOT_READY,
                                   "waiting for " + ", ".join(deps.waiting) + " to become Ready", plan_stop(observed))
    if deps.deleting is not None:
        return WaitForDependencies(PluginReason.DEPENDENCY_NOT_READY, f"{deps.deleting} is being deleted",
                                   plan_stop(observed))
    return None


def _converge(observed: Observed, desired: Desired) -> Action:
    start = observed.tasks.start
    if start.phase is TaskPhase.RUNNING:
        return AwaitStart(desired.version)
    if start.phase is TaskPhase.DONE:
        return AdoptStart()
    if start.phase is TaskPhase.FAILED and start.error is not None:
        error = start.error
        reason = plugin_error_reason(error)
        failure = _failure(observed, desired, reason, f"start of {desired.version} failed: {error}")
        return RecordStartFailure(failure, isinstance(error, MfxError) and getattr(error, "retryable", True) is False)
    if start.finished:
        return DropCancelledStart()

    instance = observed.instance
    if instance is None:
        return _start_if_allowed(observed, desired)
    ended = _ended(observed, instance)
    if ended is not None:
        reason, message = ended
        return EndInstance(_failure(observed, desired, reason, message, instance.ran_seconds),
                           reason == PluginReason.COMPLETED)
    if observed.wanted_identity is not None and observed.wanted_identity != instance.identity:
        return _replace(observed, desired, instance, observed.wanted_identity)
    restart = _restart(observed, desired)
    if restart is not None:
        return restart
    if dict(desired.config) != dict(instance.config):
        return _update_config(observed, desired, instance)
    return Steady()


def _ended(observed: Observed, instance: InstanceView) -> tuple[str, str] | None:
    """Why the instance must go, if it must: it ended by itself, or failed its health checks."""
    if instance.exited is not None:
        # From the exit status, never the wording.
        return (PluginReason.COMPLETED if instance.exited_cleanly else PluginReason.CRASHED), instance.exited
    probe = observed.probe
    if probe is not None and not probe.healthy:
        return PluginReason.HEALTH_CHECK_FAILED, (f"health check failed {probe.consecutive_failures} times in a row: "
                                                  f"{probe.error}")
    return None


def _failure(observed: Observed, desired: Desired, reason: str, message: str, ran_seconds: float = 0.0) -> Failure:
    if ran_seconds >= desired.backoff_max:
        # A crash after a healthy run restarts at once (Kubernetes restarts a container at once
        # the first time); crashes that follow it back off from backoff.initial again.
        return Failure(reason, message, 0, observed.now)
    failures = observed.history.failures + 1
    delay = exponential_delay(failures, desired.backoff_initial, desired.backoff_max)
    return Failure(reason, message, failures, observed.now + delay)


def _start_if_allowed(observed: Observed, desired: Desired) -> Action:
    history = observed.history
    if observed.tasks.stop.phase is TaskPhase.RUNNING:
        return AwaitStop(history.last_failure or "stopping the previous instance")
    policy = desired.restart_policy
    if history.ended and policy is RestartPolicy.NEVER:
        return GiveUp(history.last_failure_reason or PluginReason.START_FAILED,
                      f"{history.last_failure}; restartPolicy is Never, so it is not restarted")
    if history.ended and policy is RestartPolicy.ON_FAILURE and history.clean_exit:
        return Complete(f"{history.last_failure}; restartPolicy OnFailure does not restart a clean exit")
    recent = [t for t in history.start_times if t > observed.now - desired.start_limit_seconds]
    if len(recent) >= desired.start_limit_burst:
        return StallStartLimit(
            history.last_failure_reason or PluginReason.START_FAILED, history.last_failure or "not running",
            f"{len(recent)} starts within {desired.start_limit_text} (startLimit.burst {desired.start_limit_burst}); "
            f"last failure: {history.last_failure or 'none'}; run `mfx reset-failed pm/{desired.name}` to try again")
    if observed.now < history.not_before:
        wait = history.not_before - observed.now
        return BackOff(wait, f"restarting in {wait:.2f} s (backoff); last failure: {history.last_failure}")
    return Start(desired.version)


def _replace(observed: Observed, desired: Desired, instance: InstanceView, identity: str) -> Action:
    history = observed.history
    if history.failed_upgrade == (observed.generation, identity):
        return StallUpgradeFailed(history.failed_upgrade_message)
    task = observed.tasks.replace
    doing = (f"upgrading to {desired.version}" if desired.version != instance.version
             else f"replacing the {instance.version} instance (its spec changed)")
    if task.phase is TaskPhase.NONE:
        return StartReplacement(identity, doing)
    if task.phase is TaskPhase.RUNNING:
        return AwaitReplacement(doing)
    if task.phase is TaskPhase.DONE:
        return AdoptReplacement()
    message = (f"{desired.version} failed to start or pass its health check ({task.error}); "
               f"rolled back: {instance.version} keeps running")
    return RollBack(identity, message, str(task.error))


def _restart(observed: Observed, desired: Desired) -> Action | None:
    """A restart on request of the running instance: a replacement by one of the same spec."""
    task = observed.tasks.replace
    if task.phase is TaskPhase.RUNNING:
        return AwaitRestart()
    if task.phase is TaskPhase.DONE:
        return AdoptReplacement()
    if task.finished:
        why = f"failed to start: {task.error}" if task.phase is TaskPhase.FAILED else "was cancelled"
        return RestartFailed(f"restart: the new {desired.version} instance {why}; the running one keeps serving")
    if observed.restart_wanted is not None and desired.config_problem is None:
        return StartRestart(observed.restart_wanted)
    return None


def _update_config(observed: Observed, desired: Desired, instance: InstanceView) -> Action:
    history = observed.history
    config = dict(desired.config)
    failed = history.failed_config
    if failed is not None and failed[0] == observed.generation and dict(failed[1]) == config:
        return RejectConfig(history.failed_config_message, remember=False, absorb=False)
    if desired.config_problem is not None:
        return RejectConfig(desired.config_problem, remember=True, absorb=False)
    task = observed.tasks.config
    if task.phase is TaskPhase.RUNNING:
        # One config update at a time: a newer config waits for the running one (cancelling
        # a call into the plugin midway would leave its config unknown), then goes next.
        return AwaitConfig()
    if task.phase is TaskPhase.NONE:
        return ApplyConfig(config, absorb=False)
    tried = history.applying_config
    if task.phase is TaskPhase.DONE:
        running = observed.config_result if observed.config_result is not None else instance.config
        if dict(running) == config:
            return ConfigApplied()
        return ApplyConfig(config, absorb=True)
    # An update superseded before it finished (a newer config arrived, or it was cancelled)
    # is no failure: the newest config goes next.
    if task.phase is not TaskPhase.FAILED or tried is None or dict(tried) != config:
        return ApplyConfig(config, absorb=True)
    if isinstance(task.error, (PluginTimeoutError, PluginCrashedError)):
        return RetryConfig(f"applying the new config failed: {task.error}")  # retry with backoff
    return RejectConfig(f"the plugin refused it: {task.error}", remember=True, absorb=True)
