"""``mfx why``, ``mfx analyze critical-chain``, ``reset-failed``, ``suspend``/``resume`` and
``get pm -o wide`` through the real CLI and daemon."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mfx.server.services import default_services
from tests.daemon_harness import ThreadDaemon, run_cli
from tests.plugin_fixtures import apply, manifest, plugin_root, wait_for, wait_ready, wait_reason


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    root = plugin_root(tmp_path, "core", "codec", "ui", "slow", "fast", "top")
    with ThreadDaemon(home, services=default_services(), plugin_paths=[root]).running():
        yield home


def test_why_walks_the_chain_to_the_root_cause(home: Path) -> None:
    apply(home, manifest("ui", deps=["codec"]), manifest("codec", deps=["core"]),
          manifest("core", entryPoint="python:testkit.missing:Nope"))
    wait_reason(home, "core", "Stalled", "True", "EntryPointNotFound")
    wait_for(home, "ui", lambda o: o is not None and "codec" in str(o.get("status", {}).get("conditions")))
    result = run_cli(home, "why", "pm/ui")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("pm/ui: Ready=False DependencyNotReady")
    assert any("└─pm/codec" in line for line in lines)
    assert any("└─pm/core: Ready=False EntryPointNotFound" in line for line in lines)
    assert lines[-1].startswith("root cause: pm/core (Ready=False EntryPointNotFound")


def test_critical_chain_shows_the_chain_that_bounds_convergence(home: Path) -> None:
    apply(home, manifest("slow", startDelay=0.5), manifest("fast"),
          manifest("top", deps=["slow", "fast"]))
    wait_ready(home, "top")
    result = run_cli(home, "analyze", "critical-chain")
    assert result.exit_code == 0, result.output
    chain = [line for line in result.output.splitlines() if "pm/" in line]
    assert chain[0].startswith("pm/top @") and "└─pm/slow @" in chain[1] and len(chain) == 2
    plus = float(chain[1].rsplit("+", 1)[1].rstrip("s"))
    assert plus >= 0.5


def test_get_wide_shows_dependencies_restarts_and_health(home: Path) -> None:
    apply(home, manifest("core"), manifest("codec", deps=["core"]))
    wait_ready(home, "codec")
    out = run_cli(home, "get", "pm", "-o", "wide").output
    header, *rows = out.splitlines()
    assert header.split()[-3:] == ["DEPENDENCIES", "RESTARTS", "HEALTHY"]
    codec = next(r for r in rows if r.startswith("codec"))
    assert codec.split()[-3:] == ["core", "0", "True"]


def test_commands_have_help_with_examples(home: Path) -> None:
    for args in (["why"], ["analyze", "critical-chain"], ["reset-failed"], ["suspend"], ["resume"]):
        result = run_cli(home, *args, "--help")
        assert result.exit_code == 0 and "Examples:" in result.output, args


def test_reset_failed_suspend_and_resume_patch_through_the_api(home: Path) -> None:
    apply(home, manifest("core"))
    wait_ready(home, "core")
    assert run_cli(home, "reset-failed", "pm/core").exit_code == 0
    obj = wait_for(home, "core", lambda o: o is not None and "resetFailedAt" in o.get("status", {}))
    assert obj is not None
    assert obj["status"]["resetFailedAt"] == obj["metadata"]["annotations"]["mfx.musicfox.io/reset-failed-at"]
    assert run_cli(home, "suspend", "pm/core").exit_code == 0
    wait_for(home, "core", lambda o: o is not None and o["spec"].get("suspend") is True)
    assert run_cli(home, "resume", "pm/core").exit_code == 0
    wait_ready(home, "core")
    assert run_cli(home, "why", "pm/nope").exit_code == 1
