"""Which probe results cost a reconcile: a change of result or of health does, a steady
healthy result does not (lastHealthProbe then goes out with the plugin's next status write)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controllers.plugin import PluginController
from controllers.plugin_runtime import PluginHandle
from controllers.plugin_state import RunState
from mfx.api.objects import ObjectKey
from observability.metrics import Metrics
from reconciler import BreakerSettings, CircuitBreaker, ProbeStatus
from reconciler.probes import ProbeResult


@dataclass
class _Manager:
    enqueued: list[ObjectKey] = field(default_factory=list)
    reset_keys: list[ObjectKey] = field(default_factory=list)
    controllers: dict[str, Any] = field(default_factory=dict)

    def enqueue(self, key: ObjectKey) -> None:
        self.enqueued.append(key)

    def reset(self, key: ObjectKey) -> None:
        self.reset_keys.append(key)


class _Runtimes:
    def add_reload_listener(self, listener: Any) -> None:
        pass


@dataclass
class _Env:
    manager: _Manager
    metrics: Metrics = field(default_factory=Metrics)
    runtimes: Any = field(default_factory=_Runtimes)
    home: Path = Path("/nonexistent")
    plugin_paths: list[Path] = field(default_factory=list)
    store: Any = None
    services: Any = None
    log_store: Any = None


def _status(ok: bool, *, failures: int = 0, healthy: bool = True, changed: bool = False) -> ProbeStatus:
    result = ProbeResult(ok, 0.001, 0.0, None if ok else "boom")
    return ProbeStatus(ObjectKey("PluginManifest", "p"), result, failures, healthy, changed)


def _controller() -> tuple[PluginController, _Manager, RunState]:
    manager = _Manager()
    controller = PluginController(_Env(manager))  # type: ignore[arg-type]
    settings = BreakerSettings()
    handle = PluginHandle("p", CircuitBreaker("p", settings), Metrics())
    run = RunState("p", handle, settings)
    run.probe_written = "Healthy"  # as a start leaves it
    controller.states.ensure("p").run = run
    return controller, manager, run


def test_a_steady_healthy_result_costs_no_reconcile_but_is_kept_for_the_next_write() -> None:
    controller, manager, run = _controller()
    for _ in range(5):
        controller._on_probe(_status(True))
    assert manager.enqueued == [] and manager.reset_keys == []
    assert run.last_probe is not None and run.last_probe.result == "Healthy"


def test_a_changed_result_is_written_once_and_a_health_flip_kicks() -> None:
    controller, manager, run = _controller()
    controller._on_probe(_status(False, failures=1))  # below the threshold: still healthy
    controller._on_probe(_status(False, failures=2))
    assert len(manager.enqueued) == 1, "a new result is handed to one reconcile, a repeat is not"
    controller._on_probe(_status(True))
    assert len(manager.enqueued) == 2, "back to Healthy is a change of result"
    controller._on_probe(_status(False, failures=3, healthy=False, changed=True))
    assert len(manager.enqueued) == 3, "turning unhealthy reconciles at once"
