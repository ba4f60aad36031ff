"""Status conditions, the kstatus way.

``Ready`` is the summary. ``Reconciling=True`` while the controller works towards a new
generation (or retries), ``Stalled=True`` when it cannot converge without a spec change;
both are removed when they no longer apply (kstatus "abnormal-true" conditions).
``lastTransitionTime`` changes only when a condition's status changes; every condition
carries the ``observedGeneration`` it was computed for.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from mfx.api.objects import Obj, generation, now_rfc3339


class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ConditionType(enum.StrEnum):
    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    DEPENDENCIES_READY = "DependenciesReady"
    HEALTHY = "Healthy"
    CIRCUIT_OPEN = "CircuitOpen"  # a circuit breaker fails calls fast (open) or probes (half-open)


class Reason(enum.StrEnum):
    """Reasons the engine itself writes; controllers add their own StrEnums."""

    PROGRESSING = "Progressing"
    PROGRESSING_WITH_RETRY = "ProgressingWithRetry"
    SUCCEEDED = "ReconciliationSucceeded"
    FAILED = "ReconciliationFailed"
    DELETING = "Deleting"
    DEPENDENCY_NOT_READY = "DependencyNotReady"
    DEPENDENCY_CYCLE = "DependencyCycle"


# Conditions whose True status means trouble or work in progress ("abnormal-true"): present
# only while they hold.
ABNORMAL_TRUE: frozenset[str] = frozenset({ConditionType.RECONCILING, ConditionType.STALLED,
                                          ConditionType.CIRCUIT_OPEN})
# ... and those of them whose True status is trouble (a warning), not just work.
TROUBLE_TRUE: frozenset[str] = frozenset({ConditionType.STALLED, ConditionType.CIRCUIT_OPEN})


@dataclass(frozen=True)
class Transition:
    """One condition change, as events report it."""

    type: str
    old_status: str | None  # None: the condition did not exist
    new_status: str | None  # None: the condition was removed
    reason: str
    message: str
    old_reason: str | None = None

    @property
    def status_changed(self) -> bool:
        return self.old_status != self.new_status

    @property
    def reason_changed(self) -> bool:
        return self.old_reason != self.reason

    @property
    def is_warning(self) -> bool:
        """Warning for Ready=False / Stalled=True / CircuitOpen=True / any normal condition going False."""
        if self.new_status is None:
            return False
        if self.type in ABNORMAL_TRUE:
            return self.type in TROUBLE_TRUE and self.new_status == ConditionStatus.TRUE
        return self.new_status == ConditionStatus.FALSE


def conditions_of(obj: Obj) -> list[dict[str, Any]]:
    status = obj.setdefault("status", {})
    conds = status.get("conditions")
    if conds is None:
        conds = []
        status["conditions"] = conds
    return conds  # type: ignore[no-any-return]


def get_condition(obj: Obj, type_: str) -> dict[str, Any] | None:
    for cond in obj.get("status", {}).get("conditions") or []:
        if cond.get("type") == type_:
            return cond  # type: ignore[no-any-return]
    return None


def condition_status(obj: Obj, type_: str) -> str | None:
    cond = get_condition(obj, type_)
    return None if cond is None else str(cond.get("status"))


def is_true(obj: Obj, type_: str) -> bool:
    return condition_status(obj, type_) == ConditionStatus.TRUE


def set_condition(
    obj: Obj,
    type_: str,
    status: str | bool,
    reason: str,
    message: str = "",
    *,
    observed_generation: int | None = None,
    now: str | None = None,
) -> Transition | None:
    """Set a condition in ``obj["status"]["conditions"]``; return the change, or None.

    ``status`` may be a bool. ``lastTransitionTime`` is kept unless the status changes.
    """
    if isinstance(status, bool):
        status = ConditionStatus.TRUE if status else ConditionStatus.FALSE
    status = str(ConditionStatus(str(status)))
    reason = str(reason)
    gen = generation(obj) if observed_generation is None else observed_generation
    conds = conditions_of(obj)
    current = next((c for c in conds if c.get("type") == type_), None)
    new = {
        "type": str(type_),
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now or now_rfc3339(),
        "observedGeneration": gen,
    }
    if current is None:
        conds.append(new)
        return Transition(str(type_), None, status, reason, message, None)
    old_status, old_reason = current.get("status"), current.get("reason")
    if old_status == status:
        new["lastTransitionTime"] = current.get("lastTransitionTime", new["lastTransitionTime"])
    if condition_unchanged(current, status, reason, message, gen):
        return None
    current.clear()
    current.update(new)
    return Transition(str(type_), old_status, status, reason, message, old_reason)


def condition_unchanged(current: dict[str, Any], status: str, reason: str, message: str,
                        observed_generation: int) -> bool:
    """Whether setting the condition ``current`` to these would change nothing (its
    ``lastTransitionTime`` moves only with its status)."""
    return (current.get("status") == status and current.get("reason") == reason
            and current.get("message") == message and current.get("observedGeneration") == observed_generation)


def remove_condition(obj: Obj, type_: str) -> Transition | None:
    conds = obj.get("status", {}).get("conditions")
    if not conds:
        return None
    for i, cond in enumerate(conds):
        if cond.get("type") == type_:
            del conds[i]
            return Transition(str(type_), cond.get("status"), None, str(cond.get("reason", "")),
                              "", cond.get("reason"))
    return None


# --- kstatus helpers ------------------------------------------------------------------------


def mark_reconciling(obj: Obj, reason: str = Reason.PROGRESSING, message: str = "") -> Transition | None:
    return set_condition(obj, ConditionType.RECONCILING, True, reason, message)


def mark_ready(obj: Obj, reason: str = Reason.SUCCEEDED, message: str = "") -> Transition | None:
    return set_condition(obj, ConditionType.READY, True, reason, message)


def mark_not_ready(obj: Obj, reason: str, message: str = "") -> Transition | None:
    return set_condition(obj, ConditionType.READY, False, reason, message)


def mark_stalled(obj: Obj, reason: str, message: str = "") -> Transition | None:
    return set_condition(obj, ConditionType.STALLED, True, reason, message)


def clear_reconciling(obj: Obj) -> Transition | None:
    return remove_condition(obj, ConditionType.RECONCILING)


def clear_stalled(obj: Obj) -> Transition | None:
    return remove_condition(obj, ConditionType.STALLED)


class KStatus(enum.StrEnum):
    """What ``mfx wait`` and GitOps tools compute from any kind's conditions."""

    CURRENT = "Current"
    IN_PROGRESS = "InProgress"
    FAILED = "Failed"


def kstatus(obj: Obj) -> KStatus:
    observed = obj.get("status", {}).get("observedGeneration")
    if observed is not None and int(observed) < generation(obj):
        return KStatus.IN_PROGRESS
    if is_true(obj, ConditionType.STALLED):
        return KStatus.FAILED
    if is_true(obj, ConditionType.RECONCILING):
        return KStatus.IN_PROGRESS
    if is_true(obj, ConditionType.READY):
        return KStatus.CURRENT
    return KStatus.IN_PROGRESS
