"""After a failed upgrade every view tells the version that runs: Ready is False for the
new generation (so `mfx wait` does not pass) while the previous version keeps serving its
callers and dependents; `mfx get pm` shows the running version; `mfx rollback` reports it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mfx.server.services import default_services
from tests.daemon_harness import ThreadDaemon, run_cli
from tests.plugin_fixtures import (
    apply,
    condition,
    events_of,
    get,
    manifest,
    plugin_root,
    wait_for,
    wait_ready,
    wait_reason,
)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    home = tmp_path / "home"
    home.mkdir()
    root = plugin_root(tmp_path, "roll", "app")
    with ThreadDaemon(home, services=default_services(), plugin_paths=[root]).running():
        yield home, tmp_path / "records.jsonl"


def converged(obj: dict[str, Any] | None) -> bool:
    return obj is not None and obj["status"].get("observedGeneration") == obj["metadata"]["generation"] \
        and condition(obj, "Ready").get("observedGeneration") == obj["metadata"]["generation"]


def test_a_failed_upgrade_is_not_ready_yet_the_old_version_serves_and_is_shown(env: tuple[Path, Path]) -> None:
    home, rec = env
    apply(home, manifest("roll", record=rec), manifest("app", deps=["roll"], record=rec))
    wait_ready(home, "roll", "app")

    # 2.0.0 is an installed package that cannot load; 1.0.0 comes from --plugin-path
    broken = home / "plugins" / "roll" / "2.0.0" / "testkit"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("")
    (broken / "slowstart.py").write_text('raise RuntimeError("2.0.0 is broken")\n')
    apply(home, manifest("roll", version="2.0.0", record=rec))
    obj = wait_reason(home, "roll", "Stalled", "True", "UpgradeFailed")
    ready = condition(obj, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "RolledBack")
    assert ready["observedGeneration"] == obj["metadata"]["generation"] == 2
    assert "1.0.0 keeps running" in ready["message"]
    assert obj["status"]["resolvedVersion"] == "1.0.0"
    assert condition(obj, "Healthy")["status"] == "True"

    waited = run_cli(home, "wait", "--for=condition=Ready", "pm/roll", "--timeout=1s")
    assert waited.exit_code == 1, waited.output

    row = next(line for line in run_cli(home, "get", "pm", "roll").output.splitlines() if line.startswith("roll"))
    assert row.split()[1] == "1.0.0"

    # 1.0.0 still serves: its callers, and its dependent, which a new generation makes look again.
    pong = run_cli(home, "call", "pm/roll", "ping", '{"value": 1}')
    assert pong.exit_code == 0 and '"pong": 1' in pong.output
    apply(home, manifest("app", deps=["roll"], record=rec, level=2))
    app = wait_for(home, "app", converged)
    assert app is not None and condition(app, "Ready")["status"] == "True", condition(app, "Ready")
    assert not events_of(rec, "app", "stop")

    rolled = run_cli(home, "rollback", "pm/roll")
    assert rolled.exit_code == 0, rolled.output
    assert "rolled back to 1.0.0, the version that runs now (spec.version was 2.0.0, which does not run)" \
        in rolled.output
    wait_for(home, "roll", lambda o: converged(o) and condition(o, "Ready").get("status") == "True")
    assert get(home, "roll")["status"]["resolvedVersion"] == "1.0.0"
