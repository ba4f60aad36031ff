"""A plugin's circuit breaker shows in its status and events: failing `mfx call`s open it
(condition CircuitOpen=True and a Warning event), half-open is shown with its own reason, and
a successful probe call closes it (the condition goes, a Normal event says so)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mfx.server.services import default_services
from tests.daemon_harness import ThreadDaemon, run_cli
from tests.event_fixtures import reasons, wait_events
from tests.plugin_fixtures import (
    apply,
    condition,
    manifest,
    plugin_root,
    wait_for,
    wait_ready,
    wait_reason,
)

BREAKER = {"failureRatio": 0.5, "minimumRequests": 2, "openDuration": "2s", "halfOpenProbes": 1}


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    root = plugin_root(tmp_path, "brk")
    # a short resync: the reconcile that notices the open time is over comes soon
    with ThreadDaemon(home, services=default_services(), plugin_paths=[root], resync_seconds=0.2).running():
        yield home


def test_failing_calls_open_the_breaker_in_status_and_events_and_a_good_probe_closes_it(home: Path) -> None:
    apply(home, manifest("brk", circuitBreaker=BREAKER))
    wait_ready(home, "brk")
    for _ in range(2):
        assert run_cli(home, "call", "pm/brk", "no_such_method").exit_code != 0

    opened = wait_reason(home, "brk", "CircuitOpen", "True", "FailureRatioExceeded")
    assert opened["status"]["circuitBreaker"] == {"state": "Open"}
    assert "calls fail fast for 2 s" in condition(opened, "CircuitOpen")["message"]
    warned = wait_events(home, "brk", lambda es: bool(reasons(es, "FailureRatioExceeded")))
    assert [e["type"] for e in warned if e["reason"] == "FailureRatioExceeded"] == ["Warning"]

    wait_reason(home, "brk", "CircuitOpen", "True", "HalfOpen")
    probe = run_cli(home, "call", "pm/brk", "ping", '{"value": 2}')
    assert probe.exit_code == 0, probe.output

    closed = wait_for(home, "brk", lambda o: o is not None and not condition(o, "CircuitOpen"))
    assert closed is not None and closed["status"]["circuitBreaker"] == {"state": "Closed"}
    told = wait_events(home, "brk", lambda es: bool(reasons(es, "CircuitClosed")))
    assert [e["type"] for e in told if e["reason"] == "CircuitClosed"] == ["Normal"]
    assert condition(closed, "Ready")["status"] == "True"
