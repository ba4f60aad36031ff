"""What a handler's return value or exception means: the outcome, and the conditions the
engine writes for it where the handler left them alone.

Pure: no queue, no store. ``Controller._switch`` applies the queue actions and writes status.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mfx.errors import MfxError
from reconciler.conditions import ConditionStatus, ConditionType, Reason
from reconciler.context import StatusPatcher
from reconciler.outcomes import PermanentError, ReconcileResult, Result, TemporaryError


@dataclass
class Outcome:
    result: ReconcileResult
    delay: float | None = None
    error: BaseException | None = None


def classify(fn: Any, returned: Any, error: BaseException | None) -> Outcome:
    """The outcome of a handler ``fn`` that returned ``returned`` or raised ``error``."""
    if error is not None:
        if isinstance(error, PermanentError):
            return Outcome(ReconcileResult.STALLED, error=error)
        if isinstance(error, TemporaryError):
            return Outcome(ReconcileResult.RETRY, delay=error.delay, error=error)
        if isinstance(error, MfxError) and getattr(error, "retryable", True) is False:
            return Outcome(ReconcileResult.STALLED, error=error)
        return Outcome(ReconcileResult.ERROR, error=error)
    if returned is None:
        return Outcome(ReconcileResult.SUCCESS)
    if isinstance(returned, Result):
        if returned.requeue_after is not None:
            return Outcome(ReconcileResult.REQUEUE_AFTER, delay=returned.requeue_after)
        if returned.requeue:
            return Outcome(ReconcileResult.REQUEUE)
        return Outcome(ReconcileResult.SUCCESS)
    name = getattr(fn, "__qualname__", repr(fn))
    return Outcome(ReconcileResult.ERROR, error=TypeError(
        f"handler {name} returned {type(returned).__name__}; return None or Result(...)"))


def failure_of(error: BaseException | None) -> tuple[str, str]:
    """The reason and message an error is reported with ("" and "" for none)."""
    reason = str(getattr(error, "reason", "") or Reason.FAILED) if error is not None else ""
    message = str(error) if error is not None else ""
    if isinstance(error, Exception) and not isinstance(error, MfxError):
        reason = Reason.FAILED
        message = f"{type(error).__name__}: {error}"
    return reason, message


def apply_default_conditions(status: StatusPatcher, result: ReconcileResult, reason: str, message: str, *,
                             deleting: bool, gen: int) -> None:
    """The engine's defaults, for the condition types the handler left alone."""
    if result is ReconcileResult.STALLED:
        status.default_condition(ConditionType.STALLED, True, reason, message)
        status.default_condition(ConditionType.READY, False, reason, message)
        status.default_condition(ConditionType.RECONCILING, None)
    elif result in (ReconcileResult.RETRY, ReconcileResult.ERROR):
        status.default_condition(ConditionType.READY, False, reason, message)
        status.default_condition(ConditionType.RECONCILING, True, Reason.PROGRESSING_WITH_RETRY, message)
        status.default_condition(ConditionType.STALLED, None)
    elif not deleting:
        if result is ReconcileResult.SUCCESS:
            status.default_condition(ConditionType.READY, True, Reason.SUCCEEDED, f"generation {gen} reconciled")
        ready = status.condition_view(ConditionType.READY)
        if ready is not None and ready.get("status") == ConditionStatus.TRUE:
            status.default_condition(ConditionType.RECONCILING, None)
        else:
            why = str(ready.get("reason")) if ready else Reason.PROGRESSING
            text = str(ready.get("message", "")) if ready else ""
            status.default_condition(ConditionType.RECONCILING, True, why, text)
        status.default_condition(ConditionType.STALLED, None)
