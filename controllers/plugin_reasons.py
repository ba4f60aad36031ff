"""The reasons a PluginManifest's conditions and events carry, and what some of them imply."""

from __future__ import annotations

import enum
from typing import Any


class PluginReason(enum.StrEnum):
    RUNNING = "Running"
    STARTING = "Starting"
    UPGRADING = "Upgrading"
    BACK_OFF = "BackOff"
    START_FAILED = "StartFailed"
    CRASHED = "Crashed"
    HEALTH_CHECK_PASSED = "HealthCheckPassed"
    HEALTH_CHECK_FAILED = "HealthCheckFailed"
    NOT_RUNNING = "NotRunning"
    NO_DEPENDENCIES = "NoDependencies"
    DEPENDENCIES_READY = "DependenciesReady"
    DEPENDENCY_MISSING = "DependencyMissing"
    DEPENDENCY_NOT_READY = "DependencyNotReady"
    DEPENDENCY_CYCLE = "DependencyCycle"
    VERSION_CONSTRAINT_UNSATISFIED = "VersionConstraintUnsatisfied"
    ENTRY_POINT_NOT_FOUND = "EntryPointNotFound"
    CHECKSUM_MISMATCH = "ChecksumMismatch"
    INVALID_CONFIG = "InvalidConfig"
    INVALID_SPEC = "InvalidSpec"
    START_LIMIT_HIT = "StartLimitHit"
    UPGRADE_FAILED = "UpgradeFailed"
    ROLLED_BACK = "RolledBack"
    UPGRADED = "Upgraded"
    REPLACED = "Replaced"
    CONFIG_UPDATED = "ConfigUpdated"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    COMPLETED = "Completed"
    DELETING = "Deleting"
    SUSPENDED = "Suspended"
    RELOADED = "Reloaded"
    RELOAD_FAILED = "ReloadFailed"
    RESET_FAILED = "ResetFailed"
    RESTARTING = "Restarting"
    RESTART_REQUESTED = "RestartRequested"
    RESTARTED = "Restarted"
    RESTART_FAILED = "RestartFailed"
    CIRCUIT_CLOSED = "CircuitClosed"
    SHADOWED_COPY = "ShadowedCopy"
    STARTED = "Started"
    NOT_SCHEDULED = "NotScheduled"  # spec.nodeSelector does not select this node
    DEPENDENCY_NOT_ON_NODE = "DependencyNotOnNode"  # a dependency is not placed on this node


# Stalls that a change of *another* object can heal: re-checked when that object changes.
DEPENDENCY_STALLS = frozenset({PluginReason.DEPENDENCY_CYCLE, PluginReason.VERSION_CONSTRAINT_UNSATISFIED})
# Stalls the world outside the spec can heal: looked at again once after a daemon restart.
WORLD_STALLS = DEPENDENCY_STALLS | {PluginReason.ENTRY_POINT_NOT_FOUND}

# Ready=False reasons under which the previous instance keeps running and serving: the wanted
# generation is not what runs, so the plugin is not Ready (kstatus; `mfx wait` says so), yet
# callers and dependents are served as before.
SERVING_REASONS = frozenset({PluginReason.ROLLED_BACK, PluginReason.INVALID_CONFIG})


def serves(ready: dict[str, Any] | None) -> bool:
    """Whether a plugin with this Ready condition serves its dependents."""
    return ready is not None and (ready.get("status") == "True" or ready.get("reason") in SERVING_REASONS)
