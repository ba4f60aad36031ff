"""restartPolicy OnFailure reads a plugin process's exit status, not its words: exit 0 is a
completed run (not restarted), any other status a failure (restarted), whatever the plugin
printed on its way out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mfx.server.services import default_services
from tests.daemon_harness import ThreadDaemon, run_cli
from tests.plugin_fixtures import apply, condition, get, wait_for, wait_ready, wait_reason

EXITER = '''
import os
import sys

from mfx.sdk import Plugin, PluginInfo, serve


class Exiter(Plugin):
    info = PluginInfo(name="exiter", version="1.0.0", description="ends on request", interfaces=("Exiter",))

    def health(self):
        return {"ok": True}

    def leave(self, code, words=""):
        if words:
            print(words, file=sys.stderr, flush=True)
        os._exit(int(code))


serve(Exiter())
'''


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Path, ThreadDaemon]]:
    home = tmp_path / "home"
    home.mkdir()
    root = tmp_path / "plugin-path"
    for name in ("done", "failed"):
        (root / name).mkdir(parents=True)
        (root / name / "exiter.py").write_text(EXITER)
    with ThreadDaemon(home, services=default_services(), plugin_paths=[root]).running() as daemon:
        yield home, daemon


def exiter(name: str) -> dict[str, object]:
    return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest", "metadata": {"name": name},
            "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python exiter.py",
                     "restartPolicy": {"policy": "OnFailure", "backoff": {"initial": "10ms", "max": "50ms"}}}}


def leave(home: Path, name: str, code: int, words: str = "") -> None:
    result = run_cli(home, "call", f"pm/{name}", "leave", json.dumps({"code": code, "words": words}))
    assert result.exit_code != 0  # the process is gone before it answers


def test_exit_status_0_completes_and_any_other_restarts_under_on_failure(env: tuple[Path, ThreadDaemon]) -> None:
    home, _ = env
    apply(home, exiter("done"), exiter("failed"))
    wait_ready(home, "done", "failed")
    first_pid = get(home, "failed")["status"]["runtime"]["pid"]

    leave(home, "done", 0)
    obj = wait_reason(home, "done", "Ready", "False", "Completed")
    assert condition(obj, "Healthy")["reason"] == "Completed"
    assert "exited with code 0" in condition(obj, "Healthy")["message"]
    assert obj["status"]["restartCount"] == 0
    # nothing runs: no version (the VERSION column) and no process are shown
    assert "resolvedVersion" not in obj["status"] and "runtime" not in obj["status"]
    row = next(line for line in run_cli(home, "get", "pm", "done").output.splitlines() if line.startswith("done"))
    assert row.split()[1] == "<none>"

    # The words of a dying plugin are no exit status: this one says "exited with code 0" and exits 3.
    leave(home, "failed", 3, words="worker exited with code 0")
    restarted = wait_for(home, "failed", lambda o: o is not None and o["status"].get("restartCount", 0) >= 1
                         and condition(o, "Ready").get("status") == "True")
    assert restarted is not None and restarted["status"]["runtime"]["pid"] != first_pid
    assert get(home, "done")["status"]["restartCount"] == 0
