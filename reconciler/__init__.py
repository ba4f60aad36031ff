"""The reconciler engine, kind-agnostic: kopf-style handlers on a controller-runtime core.

Public names are re-exported here; the modules behind them are private details.
"""

from reconciler.breaker import BreakerSettings, BreakerState, CircuitBreaker
from reconciler.clock import Clock, FakeClock, MonotonicClock
from reconciler.conditions import (
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
from reconciler.context import Context, StatusPatcher
from reconciler.controller import Controller, ControllerOptions, brief_handler
from reconciler.eventbus import ALL_TOPICS, EventBus, Message, Subscription
from reconciler.events import EventRecorder, EventType
from reconciler.graph import CriticalChain, DependencyCycleError, DependencyGraph, format_cycle
from reconciler.informer import Informer, list_all
from reconciler.manager import Manager
from reconciler.outcomes import (
    RECONCILE_TOPIC,
    PermanentError,
    ReconcileOutcome,
    ReconcileResult,
    Result,
    TemporaryError,
)
from reconciler.probes import ProbeResult, ProbeScheduler, ProbeSpec, ProbeStatus
from reconciler.ratelimit import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
    default_rate_limiter,
)
from reconciler.registry import Registry, parse_interval
from reconciler.services import (
    SERVICES_TOPIC,
    ChangeType,
    Provider,
    ServiceChange,
    ServiceRegistry,
)
from reconciler.supervisor import TaskState, TaskStatus, TaskSupervisor
from reconciler.workqueue import QueueShutDown, WorkQueue

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
