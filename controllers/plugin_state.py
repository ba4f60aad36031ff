"""What the PluginManifest controller knows about one plugin beyond its object (in memory):
one ``PluginState`` record per plugin, held by ``PluginStates``."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler import BreakerSettings

from .plugin_observed import Desired
from .plugin_reasons import PluginReason
from .plugin_runtime import PluginHandle, Running
from .plugin_spec import ParsedSpec


@dataclass
class WatchedView:
    """The plugin as the watch last showed it (kept by ``plugin_dependencies``)."""

    version: str | None = None  # spec.version; None once the object is gone
    serves: bool = False  # see ``plugin_reasons.serves``, as last written or seen
    deleting: bool = False
    signature: tuple[Any, ...] | None = None  # what of it its dependents care about
    watchers: set[str] = field(default_factory=set)  # plugins stalled on it: reset when it changes


@dataclass(frozen=True)
class Resolved:
    """A plugin's identity digest and directory, for one (uid, generation)."""

    uid: str
    generation: int
    identity: str
    plugin_dir: Path
    at: float  # monotonic time of the lookup


@dataclass(frozen=True)
class PendingEvent:
    """An event noticed outside a reconcile, recorded by the next one."""

    type: str  # "Normal" or "Warning"
    reason: str
    message: str


@dataclass(frozen=True)
class ProbeRecord:
    """The latest health probe, kept raw: a probe every few seconds per plugin costs no
    formatting; ``status.lastHealthProbe`` is made from it when a reconcile writes."""

    wall: float  # time.time() when it finished
    result: str  # Healthy, Unhealthy or Timeout
    duration: float  # seconds


@dataclass
class RunState:
    """The plugin's instance and its start history, once it has been reconciled here."""

    name: str
    handle: PluginHandle
    breaker_settings: BreakerSettings
    current: Running | None = None
    failures: int = 0  # consecutive failures (exponential backoff)
    start_times: deque[float] = field(default_factory=deque)  # monotonic, for the start limit
    not_before: float = 0.0  # monotonic: no start before this
    ended: bool = False  # an instance ended or a start failed: the next start is a restart
    clean_exit: bool = False
    last_failure: str = ""
    last_failure_reason: str = ""
    restart_count: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    failed_upgrade: tuple[int, str] | None = None
    failed_upgrade_message: str = ""
    failed_config: tuple[int, dict[str, Any]] | None = None
    failed_config_message: str = ""
    applying_config: dict[str, Any] | None = None  # the config the running "config" task applies
    ready_reason: str = PluginReason.RUNNING
    note: str = ""
    last_probe: ProbeRecord | None = None
    probe_written: str | None = None  # the probe result last handed to a reconcile to write
    interfaces: tuple[str, ...] = ()
    reset_handled: str | None = None
    restart_handled: str | None = None  # the restartedAt annotation value last acted on
    restarting: str | None = None  # the restartedAt value whose new instance is starting
    told_copies: tuple[str, ...] | None = None  # the directory used and the unused ones, as last evented
    # Whether its dependents were last told it serves: a Ready=True stored by an earlier
    # daemon is not this daemon's news (see PluginController.reconcile).
    serving_told: bool = False


@dataclass
class PluginState:
    """Everything in memory about one plugin."""

    name: str
    watched: WatchedView = field(default_factory=WatchedView)
    parsed: ParsedSpec | None = None
    desired: tuple[ParsedSpec, Desired] | None = None  # what decide() is given, for that parse
    resolved: Resolved | None = None
    run: RunState | None = None
    events: list[PendingEvent] = field(default_factory=list)  # for the next reconcile to record

    @property
    def handle(self) -> PluginHandle | None:
        """What callers of the plugin use (the service registry's lookup by name)."""
        return self.run.handle if self.run is not None else None


class PluginStates:
    """The ``PluginState`` of every plugin seen, by name."""

    def __init__(self) -> None:
        self._by_name: dict[str, PluginState] = {}

    def get(self, name: str) -> PluginState | None:
        return self._by_name.get(name)

    def ensure(self, name: str) -> PluginState:
        """The record of ``name``, created empty on first use."""
        state = self._by_name.get(name)
        if state is None:
            state = self._by_name[name] = PluginState(name)
        return state

    def remove(self, name: str) -> None:
        self._by_name.pop(name, None)

    def run_of(self, name: str) -> RunState | None:
        state = self._by_name.get(name)
        return None if state is None else state.run

    def runs(self) -> Iterator[RunState]:
        return (s.run for s in list(self._by_name.values()) if s.run is not None)

    def is_running(self, name: str) -> bool:
        run = self.run_of(name)
        return run is not None and run.current is not None and run.current.exited is None
