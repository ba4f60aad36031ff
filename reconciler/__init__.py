"""The reconciler engine, kind-agnostic: kopf-style handlers on a controller-runtime core.

Public names are re-exported here; the modules behind them are private details.
"""

from mfx.reconciler.breaker import BreakerSettings, BreakerState, CircuitBreaker
from mfx.reconciler.clock import Clock, FakeClock, MonotonicClock
from mfx.reconciler.conditions import (
    ConditionStatus,
    ConditionType,
    KStatus,
    Reason,
    Transition,
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
from mfx.reconciler.context import Context, StatusPatcher
from mfx.reconciler.controller import Controller, ControllerOptions, brief_handler
from mfx.reconciler.eventbus import ALL_TOPICS, EventBus, Message, Subscription
from mfx.reconciler.events import EventRecorder, EventType
from mfx.reconciler.graph import CriticalChain, DependencyCycleError, DependencyGraph, format_cycle
from mfx.reconciler.informer import Informer, list_all
from mfx.reconciler.manager import Manager
from mfx.reconciler.outcomes import (
    RECONCILE_TOPIC,
    PermanentError,
    ReconcileOutcome,
    ReconcileResult,
    Result,
    TemporaryError,
)
from mfx.reconciler.probes import ProbeResult, ProbeScheduler, ProbeSpec, ProbeStatus
from mfx.reconciler.ratelimit import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
    default_rate_limiter,
)
from mfx.reconciler.registry import Registry, parse_interval
from mfx.reconciler.services import (
    SERVICES_TOPIC,
    ChangeType,
    Provider,
    ServiceChange,
    ServiceRegistry,
)
from mfx.reconciler.supervisor import TaskState, TaskStatus, TaskSupervisor
from mfx.reconciler.workqueue import QueueShutDown, WorkQueue

__all__ = [
    "ALL_TOPICS", "RECONCILE_TOPIC", "SERVICES_TOPIC", "ReconcileOutcome",
    "BreakerSettings", "BreakerState", "BucketRateLimiter", "ChangeType", "CircuitBreaker", "Clock",
    "ConditionStatus", "ConditionType", "Context", "Controller", "ControllerOptions", "CriticalChain",
    "DependencyCycleError", "DependencyGraph", "EventBus", "EventRecorder", "EventType", "FakeClock",
    "Informer", "ItemExponentialFailureRateLimiter", "KStatus", "Manager", "MaxOfRateLimiter", "Message",
    "MonotonicClock", "PermanentError", "ProbeResult", "ProbeScheduler", "ProbeSpec", "ProbeStatus",
    "Provider", "QueueShutDown", "RateLimiter", "Reason", "ReconcileResult", "Registry", "Result",
    "ServiceChange", "ServiceRegistry", "StatusPatcher", "Subscription", "TaskState", "TaskStatus",
    "TaskSupervisor", "TemporaryError", "Transition", "WorkQueue", "brief_handler",
    "clear_reconciling", "clear_stalled", "default_rate_limiter", "format_cycle", "get_condition",
    "is_true", "kstatus", "list_all", "mark_not_ready", "mark_ready", "mark_reconciling", "mark_stalled",
    "parse_interval", "remove_condition", "set_condition",
]
