"""A plugin that crashes after a healthy run (longer than ``backoff.max``) is restarted at once:
its status goes from the crash to Ready again without a BackOff on the way."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mfx.api.kinds import PLUGIN_MANIFEST
from mfx.server.services import default_services
from tests.daemon_harness import ThreadDaemon, run_cli
from tests.plugin_fixtures import apply, client, condition, wait_ready

CRASHER = '''
import os
import time

from mfx.sdk import Plugin, PluginInfo, serve


class Crasher(Plugin):
    info = PluginInfo(name="crasher", version="1.0.0", description="crashes on request", interfaces=("Crasher",))

    def health(self):
        return {"ok": True}

    def crash_after(self, seconds):
        time.sleep(seconds)  # keeps running healthily this long first
        os._exit(1)


serve(Crasher())
'''

# A run that lasts backoff.max counts as healthy; the plugin runs three times that long.
HEALTHY_RUN = {"initial": "100ms", "max": "100ms"}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    root = tmp_path / "plugin-path"
    (root / "crasher").mkdir(parents=True)
    (root / "crasher" / "crasher.py").write_text(CRASHER)
    with ThreadDaemon(home, services=default_services(), plugin_paths=[root]).running():
        yield home


def test_a_crash_after_a_healthy_run_restarts_without_backoff(env: Path) -> None:
    home = env
    apply(home, {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest", "metadata": {"name": "crasher"},
                 "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python crasher.py",
                          "restartPolicy": {"policy": "Always", "backoff": HEALTHY_RUN}}})
    wait_ready(home, "crasher")
    with client(home) as c:
        before = c.get(PLUGIN_MANIFEST, "crasher")
        first_pid = before["status"]["runtime"]["pid"]
        result = run_cli(home, "call", "pm/crasher", "crash_after", json.dumps({"seconds": 0.3}))
        assert result.exit_code != 0  # the process is gone before it answers
        seen: list[tuple[str, str]] = []
        for event in c.watch(PLUGIN_MANIFEST, resource_version=str(before["metadata"]["resourceVersion"]),
                             field_selector="metadata.name=crasher"):
            obj = event.get("object") or {}
            ready = condition(obj, "Ready")
            seen.append((ready.get("status", ""), ready.get("reason", "")))
            if ready.get("status") == "True" and obj["status"].get("restartCount") == 1:
                break
    assert obj["status"]["runtime"]["pid"] != first_pid
    assert condition(obj, "Healthy")["status"] == "True"
    assert not [s for s in seen if s[1] == "BackOff"], seen
    events = json.loads(run_cli(home, "events", "-o", "json").output)
    reasons = [e["reason"] for e in events.get("items", events) if e["involvedObject"]["name"] == "crasher"]
    assert "Crashed" in reasons, reasons
