"""Health checks, restarts with backoff, the start limit and reset-failed, through a real daemon."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_harness import ThreadDaemon, run_cli
from tests.plugin_fixtures import (
    apply,
    condition,
    events_of,
    get,
    manifest,
    running_daemon,
    wait_for,
    wait_ready,
    wait_reason,
)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Path, Path, ThreadDaemon]]:
    with running_daemon(tmp_path, "sick", "loop", "flaky", "ok") as running:
        yield running


FAST_HEALTH = {"interval": "100ms", "timeout": "1s", "failureThreshold": 1}


def test_a_failing_health_check_restarts_with_growing_delays(env: tuple[Path, Path, ThreadDaemon]) -> None:
    home, rec, _ = env
    apply(home, manifest("sick", record=rec, failHealth=True, healthCheck=FAST_HEALTH,
                         restartPolicy={"policy": "Always", "backoff": {"initial": "200ms", "max": "1m"},
                                        "startLimit": {"burst": 100, "interval": "1m"}}))
    obj = wait_for(home, "sick", lambda o: o is not None and (o.get("status") or {}).get("restartCount", 0) >= 4)
    assert obj is not None
    assert condition(obj, "Ready")["status"] == "False"
    begins = events_of(rec, "sick", "start_begin")
    gaps = [b - a for a, b in zip(begins, begins[1:], strict=False)][:3]
    # Each restart waits at least its backoff, doubling from 200 ms: 0.2, 0.4, 0.8 s. A busy
    # machine only makes gaps longer, so the lower bounds hold however slow it is, and they
    # grow: the third restart waits at least four times the first one's backoff.
    assert len(gaps) == 3, gaps
    assert all(gap >= 0.2 * 2**k * 0.99 for k, gap in enumerate(gaps)), gaps


def test_a_crash_looping_plugin_hits_the_start_limit_until_reset_failed(
        env: tuple[Path, Path, ThreadDaemon], tmp_path: Path) -> None:
    home, rec, _ = env
    marker = tmp_path / "crash"
    marker.write_text("crash")
    apply(home, manifest("loop", record=rec, crashWhileExists=str(marker),
                         restartPolicy={"backoff": {"initial": "10ms", "max": "50ms"},
                                        "startLimit": {"burst": 3, "interval": "10m"}}))
    obj = wait_reason(home, "loop", "Stalled", "True", "StartLimitHit")
    assert "reset-failed" in condition(obj, "Stalled")["message"]
    assert len(events_of(rec, "loop", "start_begin")) == 3
    marker.unlink()
    result = run_cli(home, "reset-failed", "pm/loop")
    assert result.exit_code == 0, result.output
    wait_ready(home, "loop")
    obj = get(home, "loop")
    assert condition(obj, "Stalled").get("status") != "True"
    assert obj["status"]["restartCount"] >= 3


def test_health_probe_status_and_metrics_are_recorded(env: tuple[Path, Path, ThreadDaemon]) -> None:
    home, _, daemon = env
    apply(home, manifest("ok", healthCheck=FAST_HEALTH))
    wait_ready(home, "ok")
    obj = wait_for(home, "ok", lambda o: o is not None and "lastHealthProbe" in (o.get("status") or {}))
    assert obj is not None
    probe = obj["status"]["lastHealthProbe"]
    assert probe["result"] == "Healthy" and probe["durationSeconds"] >= 0
    assert condition(obj, "Healthy")["status"] == "True"
    assert obj["status"]["circuitBreaker"] == {"state": "Closed"}
    assert daemon.context is not None
    text = daemon.context.metrics.registry
    from prometheus_client import generate_latest
    scrape = generate_latest(text).decode()
    assert 'mfx_plugin_health_check_duration_seconds_count{name="ok"}' in scrape
    assert 'mfx_plugin_restarts_total{name="ok"} 0.0' in scrape
    assert run_cli(home, "delete", "pm", "ok").exit_code == 0
    wait_for(home, "ok", lambda o: o is None)
    assert 'name="ok"' not in generate_latest(text).decode()
