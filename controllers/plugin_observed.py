"""What the PluginManifest controller's decisions are made from: ``Observed`` (the instance,
its tracked tasks, its dependencies, what earlier reconciles left behind, the time) and
``Desired`` (what the spec asks for). Plain frozen data, built by the reconcile and by tests."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mfx.api.models import RestartPolicy


class TaskPhase(enum.StrEnum):
    NONE = "None"  # no such task
    RUNNING = "Running"
    DONE = "Done"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


@dataclass(frozen=True)
class TaskView:
    """One tracked task of the plugin ("start", "stop", "replace", "config")."""

    phase: TaskPhase = TaskPhase.NONE
    error: BaseException | None = None  # of a failed task

    @property
    def finished(self) -> bool:
        return self.phase in (TaskPhase.DONE, TaskPhase.FAILED, TaskPhase.CANCELLED)


IDLE = TaskView()


@dataclass(frozen=True)
class Tasks:
    start: TaskView = IDLE
    stop: TaskView = IDLE
    replace: TaskView = IDLE
    config: TaskView = IDLE


@dataclass(frozen=True)
class DependencyConflict:
    """A required dependency that cannot be met as the spec stands."""

    reason: str  # InvalidSpec (a constraint that does not parse) or VersionConstraintUnsatisfied
    message: str


@dataclass(frozen=True)
class DependencyView:
    """Where the plugin's required dependencies stand."""

    cycle: tuple[str, ...] | None = None  # the dependency cycle it is on
    conflict: DependencyConflict | None = None
    missing: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()  # present, not Ready and running here
    deleting: str | None = None  # a dependency being deleted
    watch: tuple[str, ...] = ()  # whose change may heal a cycle or conflict
    required: tuple[str, ...] = ()  # every required dependency
    not_placed: tuple[str, ...] = ()  # waiting ones whose nodeSelector does not select this node
    node: str = ""  # this node's name, for the message about ``not_placed``


@dataclass(frozen=True)
class InstanceView:
    """The instance that runs (or ran until it ended by itself)."""

    version: str
    identity: str
    config: Mapping[str, Any]
    exited: str | None = None  # why it ended by itself
    exited_cleanly: bool = False  # its process exited with status 0
    ran_seconds: float = 0.0


@dataclass(frozen=True)
class ProbeView:
    healthy: bool
    consecutive_failures: int = 0
    error: str | None = None


@dataclass(frozen=True)
class History:
    """What earlier reconciles and instances left behind."""

    failures: int = 0  # consecutive failures (the backoff's exponent)
    ended: bool = False  # an instance ended or a start failed: the next start is a restart
    clean_exit: bool = False
    last_failure: str = ""
    last_failure_reason: str = ""
    start_times: tuple[float, ...] = ()  # monotonic
    not_before: float = 0.0  # monotonic: no start before this
    failed_upgrade: tuple[int, str] | None = None  # (generation, identity) that failed to start
    failed_upgrade_message: str = ""
    failed_config: tuple[int, Mapping[str, Any]] | None = None  # (generation, config) refused
    failed_config_message: str = ""
    applying_config: Mapping[str, Any] | None = None  # what the config task applies


@dataclass(frozen=True)
class Observed:
    generation: int
    now: float  # monotonic seconds
    deleting: bool = False
    reset_wanted: str | None = None  # an mfx reset-failed stamp not handled yet
    restart_wanted: str | None = None  # an mfx rollout restart stamp not acted on yet
    dependencies: DependencyView = field(default_factory=DependencyView)
    instance: InstanceView | None = None
    probe: ProbeView | None = None
    wanted_identity: str | None = None  # the identity the spec asks for (when an instance runs)
    tasks: Tasks = field(default_factory=Tasks)
    config_result: Mapping[str, Any] | None = None  # what a finished config task left running
    history: History = field(default_factory=History)
    dependents_running: tuple[str, ...] = ()


@dataclass(frozen=True)
class Desired:
    name: str
    version: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)
    suspend: bool = False
    config_problem: str | None = None  # why spec.config does not fit spec.configSchema
    restart_policy: RestartPolicy = RestartPolicy.ALWAYS
    start_limit_burst: int = 5
    start_limit_seconds: float = 10.0
    start_limit_text: str = "10s"  # spec.restartPolicy.startLimit.interval as written
    backoff_initial: float = 1.0
    backoff_max: float = 300.0
