"""`mfx call pm/NAME METHOD PARAMS` calls a running plugin the way the player does."""

from __future__ import annotations

import json
from pathlib import Path

from mfx.server.services import default_services
from tests.daemon_harness import REPO, ThreadDaemon, run_cli


def test_a_plugin_author_calls_a_method_and_sees_errors_with_their_reason(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with ThreadDaemon(home, services=default_services(), plugin_paths=[REPO / "plugins"]).running() as daemon:
        applied = run_cli(home, "apply", "-f", str(REPO / "plugins" / "hello-rpc" / "plugin.yaml"))
        assert applied.exit_code == 0, applied.output
        ready = run_cli(home, "wait", "--for=condition=Ready", "pm/hello-rpc", "--timeout=60s")
        assert ready.exit_code == 0, ready.output

        answer = run_cli(home, "call", "pm/hello-rpc", "greet", '{"name": "Ada"}')
        assert answer.exit_code == 0, answer.output
        assert "Ada" in json.loads(answer.output)

        missing = run_cli(home, "call", "pm/hello-rpc", "no_such_method")
        assert missing.exit_code == 1
        assert "no_such_method" in missing.output

        nobody = run_cli(home, "call", "pm/nobody", "greet")
        assert nobody.exit_code == 1 and "not found" in nobody.output

        bad = run_cli(home, "call", "pm/hello-rpc", "greet", "{not json")
        assert bad.exit_code == 1 and "PARAMS is not valid JSON" in bad.output

        # Calls are measured like the player's: the dashboards' call-latency panels have data.
        assert daemon.context is not None
        registry = daemon.context.metrics.registry
        count = registry.get_sample_value("mfx_plugin_call_duration_seconds_count",
                                          {"name": "hello-rpc", "method": "greet"})
        assert count == 1
        failures = registry.get_sample_value("mfx_plugin_call_errors_total",
                                             {"name": "hello-rpc", "method": "no_such_method", "reason": "MethodNotFound"})
        assert failures == 1
