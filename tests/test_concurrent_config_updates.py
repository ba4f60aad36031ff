"""Many clients patching one plugin's config at once: a config update overtaken by a newer
one is superseded, not failed. Ready never goes False, no failure is reported, and the config
the plugin finally runs is the newest one."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from mfx.api.kinds import PLUGIN_MANIFEST
from mfx.errors import ConflictError
from mfx.server.services import default_services
from tests.daemon_harness import ThreadDaemon, run_cli
from tests.plugin_fixtures import apply, client, condition, plugin_events, wait_for, wait_ready

CLIENTS = 50
PATCHES_EACH = 2

# Applying a config takes a moment, as a real plugin's does (reopening a library, a device),
# so updates overlap and overtake each other.
CONFIG_ECHO = '''
import anyio

from mfx.sdk.plugin import Plugin, PluginInfo


class ConfigEcho(Plugin):
    info = PluginInfo(name="echo", version="1.0.0", description="says which config it runs")

    async def update_config(self, config):
        await anyio.sleep(float(config.get("applySeconds", 0)))
        self.config = dict(config)

    def health(self):
        return {"ok": True}

    def running_config(self):
        return self.config
'''


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    root = tmp_path / "plugin-path"
    for name in ("busy", "busy2"):
        (root / name).mkdir(parents=True)
        (root / name / "config_echo.py").write_text(CONFIG_ECHO)
    with ThreadDaemon(home, services=default_services(), plugin_paths=[root]).running():
        yield home


def echo(name: str) -> dict[str, Any]:
    return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest", "metadata": {"name": name},
            "spec": {"version": "1.0.0", "type": "dynamic_library", "entryPoint": "python:config_echo:ConfigEcho",
                     "config": {"level": 0, "applySeconds": 0.02}}}


class ReadyRecorder:
    """Every Ready condition the watch shows for one object, until it has converged on
    ``generation``."""

    def __init__(self, home: Path, obj: dict[str, Any], generation: int) -> None:
        self.seen: list[dict[str, Any]] = []
        self.done = threading.Event()
        self._generation = generation
        rv, name = str(obj["metadata"]["resourceVersion"]), obj["metadata"]["name"]
        self._thread = threading.Thread(target=self._run, args=(home, name, rv), daemon=True)
        self._thread.start()

    def _run(self, home: Path, name: str, rv: str) -> None:
        with client(home) as c:
            for event in c.watch(PLUGIN_MANIFEST, resource_version=rv, field_selector=f"metadata.name={name}"):
                obj = event.get("object") or {}
                if event.get("type") in ("ADDED", "MODIFIED"):
                    self.seen.append(condition(obj, "Ready"))
                    if obj["metadata"]["generation"] == self._generation and converged(obj):
                        self.done.set()
                        return


def converged(obj: dict[str, Any] | None) -> bool:
    if obj is None:
        return False
    status = obj.get("status") or {}
    return (status.get("observedGeneration") == obj["metadata"]["generation"]
            and condition(obj, "Ready").get("status") == "True" and not condition(obj, "Reconciling"))


def test_superseded_config_updates_never_flip_ready_and_the_newest_runs(env: Path) -> None:
    home = env
    names = ("busy", "busy2")
    apply(home, *(echo(n) for n in names))
    wait_ready(home, *names)
    patches = CLIENTS * PATCHES_EACH // len(names)  # each one changes the config: a new generation
    with client(home) as c:
        before = [c.get(PLUGIN_MANIFEST, n) for n in names]
    recorders = [ReadyRecorder(home, obj, obj["metadata"]["generation"] + patches) for obj in before]
    earlier = {e["metadata"]["name"] for n in names for e in plugin_events(home, n)}  # the start's

    def patch(i: int) -> None:
        with client(home) as c:
            for j in range(PATCHES_EACH):
                body = {"spec": {"config": {"level": i * PATCHES_EACH + j + 1}}}
                while True:  # the store's compare-and-swap may refuse a write racing another one
                    try:
                        c.patch(PLUGIN_MANIFEST, names[i % len(names)], body)
                        break
                    except ConflictError:
                        continue

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(patch, range(CLIENTS)))

    for name, recorder in zip(names, recorders, strict=True):
        recorder.done.wait()
        final = wait_for(home, name, converged)
        assert final is not None
        assert recorder.seen and all(r.get("status") == "True" for r in recorder.seen), [
            r for r in recorder.seen if r.get("status") != "True"]
        answer = run_cli(home, "call", f"pm/{name}", "running_config")
        assert answer.exit_code == 0, answer.output
        assert json.loads(answer.output) == final["spec"]["config"]
        warnings = [e for e in plugin_events(home, name)
                    if e.get("type") == "Warning" and e["metadata"]["name"] not in earlier]
        assert warnings == [], [(e.get("reason"), e.get("message")) for e in warnings]
