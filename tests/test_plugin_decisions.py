"""The PluginManifest controller's decisions, table-driven: one row per situation, each
asserting the exact action ``decide`` chooses for an observed state and a spec."""

from __future__ import annotations

from dataclasses import replace

import pytest

from controllers.plugin_decide import (
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
    Delete,
    DropCancelledStart,
    EndInstance,
    Failure,
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
    decide,
)
from controllers.plugin_observed import (
    DependencyConflict,
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
from controllers.plugin_reasons import PluginReason
from mfx.api.models import RestartPolicy
from mfx.errors import EntryPointNotFoundError, PluginCrashedError, PluginError, PluginTimeoutError

NOW = 1000.0
STAMP = "2026-12-06T02:00:00.000001Z"
CONFIG = {"volume": 3}

WANTED = Desired(name="eq", version="1.0.0", config=CONFIG, backoff_initial=1.0, backoff_max=60.0,
                 start_limit_burst=3, start_limit_seconds=10.0, start_limit_text="10s")
RUNNING = InstanceView(version="1.0.0", identity="id-1", config=CONFIG, ran_seconds=5.0)
# A plugin that runs as its spec says, healthy, with nothing in flight.
STEADY = Observed(generation=2, now=NOW, instance=RUNNING, probe=ProbeView(healthy=True), wanted_identity="id-1")
# Nothing runs and nothing ever did.
NEW = Observed(generation=1, now=NOW)


def tasks(**phases: TaskView) -> Tasks:
    return Tasks(**phases)


def done() -> TaskView:
    return TaskView(TaskPhase.DONE)


def running() -> TaskView:
    return TaskView(TaskPhase.RUNNING)


def failed(error: BaseException) -> TaskView:
    return TaskView(TaskPhase.FAILED, error)


TIMEOUT = PluginTimeoutError("eq.update_config did not finish within 5 s")
REFUSED = PluginError("volume must be at most 2")
BOOM = PluginCrashedError("exit status 1")

ROWS: list[tuple[str, Observed, Desired, object]] = [
    # --- dependencies ---
    ("missing dependency, nothing runs",
     replace(NEW, dependencies=DependencyView(missing=("codec", "sink"))), WANTED,
     WaitForDependencies(PluginReason.DEPENDENCY_MISSING, "dependency not found: codec, sink", StopStep.STOPPED)),
    ("missing dependency, it runs: stop it",
     replace(STEADY, dependencies=DependencyView(missing=("codec",))), WANTED,
     WaitForDependencies(PluginReason.DEPENDENCY_MISSING, "dependency not found: codec", StopStep.STOP_NOW)),
    ("missing dependency, its dependents run: they stop first",
     replace(STEADY, dependencies=DependencyView(missing=("codec",)), dependents_running=("ui",)), WANTED,
     WaitForDependencies(PluginReason.DEPENDENCY_MISSING, "dependency not found: codec",
                         StopStep.WAIT_FOR_DEPENDENTS)),
    ("dependency not Ready, its stop in flight",
     replace(NEW, dependencies=DependencyView(waiting=("codec",)), tasks=tasks(stop=running())), WANTED,
     WaitForDependencies(PluginReason.DEPENDENCY_NOT_READY, "waiting for codec to become Ready",
                         StopStep.STOPPING)),
    ("dependency being deleted",
     replace(NEW, dependencies=DependencyView(deleting="codec")), WANTED,
     WaitForDependencies(PluginReason.DEPENDENCY_NOT_READY, "codec is being deleted", StopStep.STOPPED)),
    ("dependency cycle",
     replace(STEADY, dependencies=DependencyView(cycle=("eq", "codec", "eq"), watch=("codec", "eq"))), WANTED,
     StallOnDependencies(PluginReason.DEPENDENCY_CYCLE, "eq -> codec -> eq", "dependency cycle: eq -> codec -> eq",
                         ("codec", "eq"), StopStep.STOP_NOW)),
    ("cycle wins over a missing dependency",
     replace(NEW, dependencies=DependencyView(cycle=("eq", "eq"), missing=("x",))), WANTED,
     StallOnDependencies(PluginReason.DEPENDENCY_CYCLE, "eq -> eq", "dependency cycle: eq -> eq", (),
                         StopStep.STOPPED)),
    ("dependency version constraint unsatisfied",
     replace(NEW, dependencies=DependencyView(conflict=DependencyConflict(
         PluginReason.VERSION_CONSTRAINT_UNSATISFIED, "eq requires codec ^2, but codec is version 1.0.0"),
         watch=("codec",))), WANTED,
     StallOnDependencies(PluginReason.VERSION_CONSTRAINT_UNSATISFIED,
                         "eq requires codec ^2, but codec is version 1.0.0",
                         "eq requires codec ^2, but codec is version 1.0.0", ("codec",), StopStep.STOPPED)),
    ("dependency constraint that does not parse",
     replace(NEW, dependencies=DependencyView(conflict=DependencyConflict(
         PluginReason.INVALID_SPEC, "spec.dependencies[codec].version: bad"))), WANTED,
     RejectSpec("spec.dependencies[codec].version: bad")),
    # --- starting ---
    ("first start", NEW, WANTED, Start("1.0.0")),
    ("start in flight", replace(NEW, tasks=tasks(start=running())), WANTED, AwaitStart("1.0.0")),
    ("start finished", replace(NEW, tasks=tasks(start=done())), WANTED, AdoptStart()),
    ("start cancelled", replace(NEW, tasks=tasks(start=TaskView(TaskPhase.CANCELLED))), WANTED,
     DropCancelledStart()),
    ("start failed: backoff from the initial delay",
     replace(NEW, tasks=tasks(start=failed(BOOM))), WANTED,
     RecordStartFailure(Failure(PluginReason.CRASHED, "start of 1.0.0 failed: exit status 1", 1, NOW + 1.0),
                        permanent=False)),
    ("start failed for good",
     replace(NEW, tasks=tasks(start=failed(EntryPointNotFoundError("no eq.so"))),
             history=History(failures=2)), WANTED,
     RecordStartFailure(Failure(PluginReason.ENTRY_POINT_NOT_FOUND, "start of 1.0.0 failed: no eq.so", 3,
                                NOW + 4.0), permanent=True)),
    ("start failed without a reason of its own",
     replace(NEW, tasks=tasks(start=failed(RuntimeError("oops")))), WANTED,
     RecordStartFailure(Failure(PluginReason.START_FAILED, "start of 1.0.0 failed: oops", 1, NOW + 1.0),
                        permanent=False)),
    # --- crash and restart ---
    ("crash",
     replace(STEADY, instance=replace(RUNNING, exited="exit status 1"), history=History(failures=2)), WANTED,
     EndInstance(Failure(PluginReason.CRASHED, "exit status 1", 3, NOW + 4.0), clean=False)),
    ("crash after running longer than the backoff cap: restarted at once, the backoff starts over",
     replace(STEADY, instance=replace(RUNNING, exited="exit status 1", ran_seconds=60.0),
             history=History(failures=6)), WANTED,
     EndInstance(Failure(PluginReason.CRASHED, "exit status 1", 0, NOW), clean=False)),
    ("crash soon after that restart: backoff from the initial delay",
     replace(STEADY, instance=replace(RUNNING, exited="exit status 1", ran_seconds=0.5)), WANTED,
     EndInstance(Failure(PluginReason.CRASHED, "exit status 1", 1, NOW + 1.0), clean=False)),
    ("clean exit",
     replace(STEADY, instance=replace(RUNNING, exited="exit status 0", exited_cleanly=True)), WANTED,
     EndInstance(Failure(PluginReason.COMPLETED, "exit status 0", 1, NOW + 1.0), clean=True)),
    ("health checks failed",
     replace(STEADY, probe=ProbeView(healthy=False, consecutive_failures=3, error="timed out")), WANTED,
     EndInstance(Failure(PluginReason.HEALTH_CHECK_FAILED, "health check failed 3 times in a row: timed out",
                         1, NOW + 1.0), clean=False)),
    ("crash, its stop in flight",
     replace(NEW, tasks=tasks(stop=running()), history=History(ended=True, last_failure="exit status 1")), WANTED,
     AwaitStop("exit status 1")),
    ("crash, in backoff",
     replace(NEW, history=History(ended=True, last_failure="exit status 1", not_before=NOW + 2.5)), WANTED,
     BackOff(2.5, "restarting in 2.50 s (backoff); last failure: exit status 1")),
    ("crash, backoff over: restart", replace(NEW, history=History(ended=True, not_before=NOW - 0.1)), WANTED,
     Start("1.0.0")),
    ("start limit hit",
     replace(NEW, history=History(ended=True, last_failure="exit status 1", last_failure_reason="Crashed",
                                  start_times=(NOW - 9.0, NOW - 5.0, NOW - 1.0))), WANTED,
     StallStartLimit("Crashed", "exit status 1",
                     "3 starts within 10s (startLimit.burst 3); last failure: exit status 1; "
                     "run `mfx reset-failed pm/eq` to try again")),
    ("start limit not hit: the oldest start is outside the interval",
     replace(NEW, history=History(ended=True, start_times=(NOW - 10.0, NOW - 5.0, NOW - 1.0))), WANTED,
     Start("1.0.0")),
    ("restartPolicy Never",
     replace(NEW, history=History(ended=True, last_failure="exit status 1", last_failure_reason="Crashed")),
     replace(WANTED, restart_policy=RestartPolicy.NEVER),
     GiveUp("Crashed", "exit status 1; restartPolicy is Never, so it is not restarted")),
    ("restartPolicy OnFailure after a clean exit",
     replace(NEW, history=History(ended=True, clean_exit=True, last_failure="exit status 0")),
     replace(WANTED, restart_policy=RestartPolicy.ON_FAILURE),
     Complete("exit status 0; restartPolicy OnFailure does not restart a clean exit")),
    ("reset-failed", replace(NEW, reset_wanted="2026-01-01T00:00:00Z",
                             history=History(start_times=(NOW, NOW, NOW))), WANTED,
     ResetFailed("2026-01-01T00:00:00Z")),
    # --- version and spec changes ---
    ("version change: upgrade", replace(STEADY, wanted_identity="id-2"), replace(WANTED, version="2.0.0"),
     StartReplacement("id-2", "upgrading to 2.0.0")),
    ("spec change, same version: replace", replace(STEADY, wanted_identity="id-2"), WANTED,
     StartReplacement("id-2", "replacing the 1.0.0 instance (its spec changed)")),
    ("upgrade in flight", replace(STEADY, wanted_identity="id-2", tasks=tasks(replace=running())),
     replace(WANTED, version="2.0.0"), AwaitReplacement("upgrading to 2.0.0")),
    ("upgrade started and healthy", replace(STEADY, wanted_identity="id-2", tasks=tasks(replace=done())),
     replace(WANTED, version="2.0.0"), AdoptReplacement()),
    ("upgrade failed: roll back", replace(STEADY, wanted_identity="id-2", tasks=tasks(replace=failed(BOOM))),
     replace(WANTED, version="2.0.0"),
     RollBack("id-2", "2.0.0 failed to start or pass its health check (exit status 1); "
                      "rolled back: 1.0.0 keeps running", "exit status 1")),
    ("upgrade that failed before, same generation",
     replace(STEADY, wanted_identity="id-2", history=History(failed_upgrade=(2, "id-2"),
                                                             failed_upgrade_message="rolled back")),
     replace(WANTED, version="2.0.0"), StallUpgradeFailed("rolled back")),
    # --- config changes ---
    ("config change", replace(STEADY, instance=replace(RUNNING, config={"volume": 1})), WANTED,
     ApplyConfig(CONFIG, absorb=False)),
    ("config change against the schema", replace(STEADY, instance=replace(RUNNING, config={"volume": 1})),
     replace(WANTED, config_problem="volume: 3 is greater than 2"),
     RejectConfig("volume: 3 is greater than 2", remember=True, absorb=False)),
    ("config refused before, same generation",
     replace(STEADY, instance=replace(RUNNING, config={"volume": 1}),
             history=History(failed_config=(2, CONFIG), failed_config_message="the plugin refused it: no")),
     WANTED, RejectConfig("the plugin refused it: no", remember=False, absorb=False)),
    ("config update in flight",
     replace(STEADY, instance=replace(RUNNING, config={"volume": 1}), tasks=tasks(config=running())), WANTED,
     AwaitConfig()),
    ("config update done",
     replace(STEADY, instance=replace(RUNNING, config={"volume": 1}), tasks=tasks(config=done()),
             config_result=CONFIG), WANTED, ConfigApplied()),
    ("config update done, a newer config is wanted",
     replace(STEADY, instance=replace(RUNNING, config={"volume": 1}), tasks=tasks(config=done()),
             config_result={"volume": 2}), WANTED, ApplyConfig(CONFIG, absorb=True)),
    ("config update timed out: retry",
     replace(STEADY, instance=replace(RUNNING, config={"volume": 1}), tasks=tasks(config=failed(TIMEOUT)),
             history=History(applying_config=CONFIG)), WANTED,
     RetryConfig("applying the new config failed: eq.update_config did not finish within 5 s")),
    ("config refused by the plugin",
     replace(STEADY, instance=replace(RUNNING, config={"volume": 1}), tasks=tasks(config=failed(REFUSED)),
             history=History(applying_config=CONFIG)), WANTED,
     RejectConfig("the plugin refused it: volume must be at most 2", remember=True, absorb=True)),
    ("config superseded while it was applied",
     replace(STEADY, instance=replace(RUNNING, config={"volume": 1}), tasks=tasks(config=failed(REFUSED)),
             history=History(applying_config={"volume": 2})), WANTED, ApplyConfig(CONFIG, absorb=True)),
    ("nothing to do", STEADY, WANTED, Steady()),
    # --- restart on request (mfx rollout restart) ---
    ("restart requested while it runs", replace(STEADY, restart_wanted=STAMP), WANTED, StartRestart(STAMP)),
    ("restart in flight", replace(STEADY, tasks=tasks(replace=running())), WANTED, AwaitRestart()),
    ("restart started and healthy", replace(STEADY, tasks=tasks(replace=done())), WANTED, AdoptReplacement()),
    ("restart failed: the running instance keeps serving", replace(STEADY, tasks=tasks(replace=failed(BOOM))),
     WANTED, RestartFailed("restart: the new 1.0.0 instance failed to start: exit status 1; "
                           "the running one keeps serving")),
    ("restart requested, nothing runs: only recorded", replace(NEW, restart_wanted=STAMP), WANTED,
     NoteRestart(STAMP, "not running")),
    ("restart requested while suspended: only recorded", replace(STEADY, restart_wanted=STAMP),
     replace(WANTED, suspend=True), NoteRestart(STAMP, "suspended (spec.suspend)")),
    ("restart requested while the dependencies are not Ready: only recorded",
     replace(STEADY, restart_wanted=STAMP, dependencies=DependencyView(waiting=("codec",))), WANTED,
     NoteRestart(STAMP, "its dependencies are not Ready")),
    ("restart requested during an upgrade: only recorded",
     replace(STEADY, restart_wanted=STAMP, wanted_identity="id-2", tasks=tasks(replace=running())),
     replace(WANTED, version="2.0.0"), NoteRestart(STAMP, "a new instance is already replacing the running one")),
    ("restart requested with a config against the schema: only recorded",
     replace(STEADY, restart_wanted=STAMP, instance=replace(RUNNING, config={"volume": 1})),
     replace(WANTED, config_problem="volume: 3 is greater than 2"),
     NoteRestart(STAMP, "its spec or config is not accepted")),
    # --- suspend and delete ---
    ("suspended", replace(STEADY, dependencies=DependencyView(missing=("codec",))),
     replace(WANTED, suspend=True), Suspend()),
    ("deleted while it runs", replace(STEADY, deleting=True), replace(WANTED, suspend=True),
     Delete(StopStep.STOP_NOW)),
    ("deleted, its dependents run", replace(STEADY, deleting=True, dependents_running=("ui",)), WANTED,
     Delete(StopStep.WAIT_FOR_DEPENDENTS)),
    ("deleted, its stop in flight", replace(NEW, deleting=True, tasks=tasks(stop=running())), WANTED,
     Delete(StopStep.STOPPING)),
    ("deleted, stopped", replace(NEW, deleting=True), WANTED, Delete(StopStep.STOPPED)),
]


@pytest.mark.parametrize(("observed", "desired", "action"), [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_decide(observed: Observed, desired: Desired, action: object) -> None:
    assert decide(observed, desired) == action


def test_every_row_is_a_distinct_situation() -> None:
    names = [row[0] for row in ROWS]
    assert len(names) == len(set(names))


def test_decide_reads_no_clock() -> None:
    """The same observation decides the same, whenever it is decided."""
    observed = replace(NEW, history=History(ended=True, not_before=NOW + 1.0))
    assert decide(observed, WANTED) == decide(observed, WANTED) == BackOff(1.0, "restarting in 1.00 s (backoff); "
                                                                            "last failure: ")
