"""The alert rules parse (promtool check rules), pass their unit tests (promtool test rules),
and each alert is complete: severity, a `for:`, and a runbook naming an mfx command."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ALERTS = Path(__file__).resolve().parents[1] / "observability" / "alerts"
RULES = ALERTS / "mfx-alerts.yaml"
RULE_TESTS = ALERTS / "mfx-alerts.test.yaml"
REQUIRED = {"PluginNotReady", "PluginCrashLooping", "PluginHealthCheckFailing", "CircuitBreakerOpen",
            "ReconcileErrorsHigh", "AudioSinkXruns"}


@pytest.fixture
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is missing: install the Debian package prometheus (make system)")
    return path


def alert_rules() -> list[dict[str, object]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_accepts_the_rule_file(promtool: str) -> None:
    done = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in done.stdout


def test_promtool_rejects_a_broken_rule(promtool: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("groups:\n- name: x\n  rules:\n  - alert: Broken\n    expr: rate(mfx_plugin_restarts_total[5m]\n")
    done = subprocess.run([promtool, "check", "rules", str(broken)], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0


def test_the_alert_unit_tests_pass(promtool: str) -> None:
    done = subprocess.run([promtool, "test", "rules", RULE_TESTS.name], cwd=ALERTS,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_required_alert_exists_with_severity_duration_and_runbook() -> None:
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} == REQUIRED
    for rule in rules:
        labels = rule.get("labels") or {}
        annotations = rule.get("annotations") or {}
        assert labels.get("severity") in ("warning", "critical"), rule["alert"]
        assert rule.get("for"), f"{rule['alert']} has no for: duration"
        assert {"summary", "description", "runbook"} <= set(annotations), rule["alert"]
        assert "`mfx " in str(annotations["runbook"]), f"{rule['alert']}: the runbook names no mfx command"


def test_every_alert_has_a_firing_case_and_a_must_not_fire_case() -> None:
    cases = [case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"] for case in test["alert_rule_test"]]
    for name in REQUIRED:
        mine = [case for case in cases if case["alertname"] == name]
        assert any(case["exp_alerts"] for case in mine), f"{name} never expected to fire"
        assert any(case["exp_alerts"] == [] for case in mine), f"{name} has no must-not-fire case"


def test_the_example_prometheus_config_is_valid_and_loads_the_rules(promtool: str) -> None:
    config = ALERTS.parent / "prometheus.yml"
    done = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 6 rules found" in done.stdout
