"""A configSchema pattern that backtracks without bound is refused with its name instead of
freezing admission (or the controller's config check) for minutes."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from mfx.api import config_schema
from mfx.api.bounded_patterns import bounded_validator
from mfx.api.validation import config_problems
from tests.daemon_harness import ThreadDaemon

EVIL = "(a|aa)+$"  # backtracks without bound in re and in the regex module alike
VALUE = "a" * 40 + "!"


def test_a_catastrophic_pattern_is_refused_naming_it() -> None:
    problems = config_problems({"type": "object", "properties": {"name": {"type": "string", "pattern": EVIL}}},
                               {"name": VALUE})
    assert len(problems) == 1
    assert problems[0].path == "spec.config"
    assert EVIL in problems[0].message and "simplify the pattern" in problems[0].message


@pytest.fixture
def patient_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thirty seconds for the pattern matches of one validation instead of a quarter of one:
    a test that expects an answer must not fail because a busy machine paused the process,
    and ``re`` would still take far longer (2**40 tries) on the nested repetition."""
    monkeypatch.setattr(config_schema, "bounded_validator", partial(bounded_validator, budget_seconds=30.0))


@pytest.mark.usefixtures("patient_budget")
def test_the_classic_nested_repetition_is_answered_at_once() -> None:
    """``(a+)+$`` froze admission under re; the regex module decides it without backtracking."""
    problems = config_problems({"type": "object", "properties": {"name": {"type": "string", "pattern": "(a+)+$"}}},
                               {"name": VALUE})
    assert [p.path for p in problems] == ["spec.config.name"]
    assert "does not match '(a+)+$'" in problems[0].message


@pytest.mark.parametrize("schema", [
    {"type": "object", "patternProperties": {EVIL: {"type": "string"}}},
    {"type": "object", "patternProperties": {EVIL: {"type": "string"}}, "additionalProperties": False},
    {"type": "object", "propertyNames": {"pattern": EVIL}},
])
def test_patterns_on_property_names_are_bounded_too(schema: dict[str, Any]) -> None:
    problems = config_problems(schema, {VALUE: "x"})
    assert problems and EVIL in problems[0].message


@pytest.mark.usefixtures("patient_budget")
def test_ordinary_patterns_still_decide() -> None:
    schema = {"type": "object", "properties": {"id": {"type": "string", "pattern": "^[a-z]+-[0-9]+$"}},
              "patternProperties": {"^x-": {"type": "integer"}}, "additionalProperties": False}
    assert config_problems(schema, {"id": "abc-12", "x-limit": 3}) == []
    problems = config_problems(schema, {"id": "ABC", "x-limit": "3", "other": 1})
    messages = " | ".join(p.message for p in problems)
    assert "'ABC' does not match" in messages
    assert "'3' is not of type 'integer'" in messages
    assert "'other' does not match any of the regexes: '^x-'" in messages


def test_the_daemon_refuses_it_and_keeps_serving(tmp_path: Path) -> None:
    home = tmp_path / "home"
    manifest = {
        "apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest", "metadata": {"name": "slow"},
        "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m slow",
                 "configSchema": {"type": "object", "properties": {"name": {"type": "string", "pattern": EVIL}}},
                 "config": {"name": VALUE}}}
    with ThreadDaemon(home).running():
        transport = httpx.HTTPTransport(uds=str(home / "mfx.sock"))
        with httpx.Client(transport=transport, base_url="http://mfx", timeout=60) as http:
            answer = http.post("/apis/mfx.musicfox.io/v1alpha1/pluginmanifests", json=manifest)
            assert answer.status_code == 422, answer.text
            assert EVIL in answer.text
            assert http.get("/apis/mfx.musicfox.io/v1alpha1/pluginmanifests/slow").status_code == 404
            assert http.get("/healthz").status_code == 200
