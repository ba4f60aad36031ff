"""Conditions keep lastTransitionTime across same-status updates, carry observedGeneration, and
follow kstatus (Ready summary, Reconciling/Stalled abnormal-true)."""

from __future__ import annotations

import pytest

from mfx.api.objects import Obj
from reconciler import (
    ConditionStatus,
    ConditionType,
    KStatus,
    Reason,
    clear_reconciling,
    clear_stalled,
    get_condition,
    is_true,
    kstatus,
    mark_not_ready,
    mark_ready,
    mark_reconciling,
    mark_stalled,
    remove_condition,
    set_condition,
)


def obj(gen: int = 1) -> Obj:
    return {"kind": "GitSource", "metadata": {"name": "x", "generation": gen}, "spec": {}}


def test_last_transition_time_changes_only_when_the_status_changes() -> None:
    o = obj()
    first = set_condition(o, "Ready", False, "Starting", "starting", now="2026-01-01T00:00:00Z")
    assert first is not None and first.old_status is None and first.new_status == "False"
    again = set_condition(o, "Ready", False, "StartFailed", "boom", now="2026-01-01T00:01:00Z")
    assert again is not None and not again.status_changed and again.reason_changed
    cond = get_condition(o, "Ready")
    assert cond is not None
    assert cond["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert cond["reason"] == "StartFailed" and cond["message"] == "boom"
    flipped = set_condition(o, "Ready", True, "Started", now="2026-01-01T00:02:00Z")
    assert flipped is not None and flipped.status_changed
    assert get_condition(o, "Ready")["lastTransitionTime"] == "2026-01-01T00:02:00Z"  # type: ignore[index]


def test_setting_the_same_condition_again_is_no_change() -> None:
    o = obj()
    set_condition(o, "Healthy", True, "ProbeSucceeded", "ok")
    assert set_condition(o, "Healthy", True, "ProbeSucceeded", "ok") is None
    assert len(o["status"]["conditions"]) == 1


def test_conditions_carry_the_observed_generation() -> None:
    o = obj(gen=4)
    set_condition(o, "Ready", True, "Started")
    assert get_condition(o, "Ready")["observedGeneration"] == 4  # type: ignore[index]
    change = set_condition(o, "Ready", True, "Started", observed_generation=5)
    assert change is not None, "a new observedGeneration is a change"
    assert get_condition(o, "Ready")["observedGeneration"] == 5  # type: ignore[index]


def test_status_accepts_bools_and_the_three_strings_only() -> None:
    o = obj()
    set_condition(o, "A", "Unknown", "Waiting")
    assert get_condition(o, "A")["status"] == ConditionStatus.UNKNOWN  # type: ignore[index]
    with pytest.raises(ValueError):
        set_condition(o, "A", "yes", "Bad")


def test_kstatus_helpers_and_summary() -> None:
    o = obj(gen=2)
    assert kstatus(o) is KStatus.IN_PROGRESS
    mark_reconciling(o, message="reconciling generation 2")
    assert is_true(o, ConditionType.RECONCILING)
    assert kstatus(o) is KStatus.IN_PROGRESS
    mark_ready(o)
    clear_reconciling(o)
    o["status"]["observedGeneration"] = 2
    assert kstatus(o) is KStatus.CURRENT
    o["metadata"]["generation"] = 3
    assert kstatus(o) is KStatus.IN_PROGRESS, "a newer generation is not observed yet"
    o["status"]["observedGeneration"] = 3
    change = mark_stalled(o, Reason.DEPENDENCY_CYCLE, "a -> b -> a")
    assert change is not None and change.is_warning
    mark_not_ready(o, Reason.DEPENDENCY_CYCLE, "a -> b -> a")
    assert kstatus(o) is KStatus.FAILED
    removed = clear_stalled(o)
    assert removed is not None and removed.new_status is None and not removed.is_warning
    assert get_condition(o, ConditionType.STALLED) is None
    assert remove_condition(o, "Nope") is None


def test_warning_polarity_of_transitions() -> None:
    o = obj()
    ready_false = set_condition(o, "Ready", False, "StartFailed")
    reconciling = set_condition(o, "Reconciling", True, "Progressing")
    healthy = set_condition(o, "Healthy", True, "ProbeSucceeded")
    assert ready_false is not None and ready_false.is_warning
    assert reconciling is not None and not reconciling.is_warning
    assert healthy is not None and not healthy.is_warning


def test_reasons_are_camel_case_enums() -> None:
    for reason in Reason:
        assert reason.value[0].isupper() and " " not in reason.value
