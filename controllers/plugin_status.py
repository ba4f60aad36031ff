"""How a plugin's state reads in its status: conditions and fields, written through the
reconcile context's ``StatusPatcher`` (the one path status takes)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson

from reconciler import ConditionType, StatusPatcher

from .plugin_reasons import PluginReason
from .plugin_runtime import Running, breaker_state_name
from .plugin_state import PluginState, RunState

HISTORY_LIMIT = 10


def rfc3339(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_ready_running(status: StatusPatcher, run: RunState, current: Running, *,
                        reconciling: str | None = None) -> None:
    """Ready and Healthy for a serving instance; Reconciling while ``reconciling`` goes on."""
    message = f"{current.version} running"
    if run.note:
        message += f"; {run.note}"
    status.condition(ConditionType.READY, True, run.ready_reason, message)
    status.condition(ConditionType.HEALTHY, True, PluginReason.HEALTH_CHECK_PASSED, "health checks pass")
    # Read again at every reconcile: a hot reload changes the generation and last error in place.
    write_runtime(status, current)
    if reconciling:
        reason = (PluginReason.UPGRADING if "upgrading" in reconciling
                  else PluginReason.RESTARTING if reconciling.startswith("restarting") else PluginReason.RUNNING)
        status.condition(ConditionType.RECONCILING, True, reason, reconciling)
    else:
        status.remove_condition(ConditionType.RECONCILING)


def write_rolled_back(status: StatusPatcher, run: RunState, current: Running) -> None:
    write_ready_running(status, run, current)  # the previous version keeps serving ...
    # ... but the wanted generation is not what runs: not Ready (see SERVING_REASONS)
    status.condition(ConditionType.READY, False, PluginReason.ROLLED_BACK, run.failed_upgrade_message)
    status.set("resolvedVersion", current.version)


def write_adopted(status: StatusPatcher, running: Running) -> None:
    """The fields of a newly started instance."""
    status.set("resolvedVersion", running.version)
    write_runtime(status, running)
    status.set("startedAt", rfc3339(running.started_at))
    status.set("readyAt", rfc3339(running.ready_at))
    status.set("lastStartDurationSeconds", round(running.start_seconds, 6))


def write_runtime(status: StatusPatcher, running: Running) -> None:
    status.set("runtime", {**_jsonable(running.instance.details), "directory": str(running.request.plugin_dir)})


def write_common(status: StatusPatcher, run: RunState) -> None:
    """What every reconcile writes: restarts, the circuit breaker, history, the last probe."""
    status.set("restartCount", run.restart_count)
    if run.current is None:  # nothing runs: no version, no process to show
        status.delete("resolvedVersion")
        status.delete("runtime")
    breaker = run.handle.breaker
    status.set("circuitBreaker", {"state": breaker_state_name(breaker.state)})
    circuit = breaker.condition()
    if circuit is None:
        status.remove_condition(ConditionType.CIRCUIT_OPEN)
    else:
        status.condition(ConditionType.CIRCUIT_OPEN, True, *circuit)
    if run.history:
        status.set("history", run.history)
    probe = run.last_probe
    if probe is not None:
        status.set("lastHealthProbe", {"time": rfc3339(probe.wall), "result": probe.result,
                                       "durationSeconds": round(probe.duration, 6)})


def record_events(status: StatusPatcher, state: PluginState) -> None:
    """The events noticed since the last reconcile, recorded with its (next) status write."""
    pending, state.events = state.events, []
    for event in pending:
        status.record_event(event.type, str(event.reason), event.message)


def push_history(run: RunState, version: str, result: str, message: str) -> None:
    run.history.insert(0, {"version": version, "result": result, "message": message,
                           "time": rfc3339(time.time())})
    del run.history[HISTORY_LIMIT:]


def _jsonable(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS))
