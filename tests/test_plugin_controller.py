"""The PluginManifest controller end to end: spec changes, rollbacks, suspend, services, the
real runtimes, crash detection, resync and a daemon killed mid-convergence."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mfx.server.services import default_services
from tests.daemon_harness import REPO, SubprocessDaemon, ThreadDaemon, run_cli
from tests.plugin_fixtures import (
    apply,
    condition,
    events_of,
    get,
    manifest,
    plugin_events,
    plugin_root,
    running_daemon,
    wait_for,
    wait_ready,
    wait_reason,
)

SCHEMA = {"type": "object", "properties": {"level": {"type": "integer", "maximum": 10}}}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Path, Path, ThreadDaemon]]:
    with running_daemon(tmp_path, "cfg", "up", "roll", "sus", "svc", "victim", resync_seconds=0.5) as running:
        yield running


def test_a_first_start_is_one_status_write_with_the_finalizer(env: tuple[Path, Path, ThreadDaemon]) -> None:
    home, rec, daemon = env
    store = daemon.context.store  # type: ignore[union-attr]
    since = daemon.call(store.current_resource_version)
    apply(home, manifest("up", record=rec))
    wait_ready(home, "up")

    async def changes() -> list[Any]:
        seen: list[Any] = []
        async with store.watch("PluginManifest", since) as stream:
            async for event in stream:
                if event.object["metadata"]["name"] == "up":
                    seen.append(event.object)
                    if condition(event.object, "Ready").get("status") == "True":
                        return seen
        return seen

    created, *writes = daemon.call(changes)
    assert "status" not in created
    assert len(writes) == 1, "the start ended before Starting was due: the finalizer goes with Ready"
    ready = writes[0]
    assert ready["metadata"].get("finalizers") and condition(ready, "Ready")["status"] == "True"
    assert ready["status"]["observedGeneration"] == 1
    events = sorted(plugin_events(home, "up"), key=lambda e: int(e["metadata"]["resourceVersion"]))
    assert [e["reason"] for e in events] == ["Starting", "Running"], "the event list still tells the start"


def test_a_restarted_daemon_writes_a_quick_start_once_and_still_tells_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    root = plugin_root(tmp_path, "base")
    with ThreadDaemon(home, services=default_services(), plugin_paths=[root]).running() as first:
        apply(home, manifest("base"))
        wait_ready(home, "base")
        before = get(home, "base")
        since = first.call(first.context.store.current_resource_version)  # type: ignore[union-attr]
    with ThreadDaemon(home, services=default_services(), plugin_paths=[root]).running() as second:
        store = second.context.store  # type: ignore[union-attr]

        async def writes() -> list[Any]:
            seen: list[Any] = []
            async with store.watch("PluginManifest", since) as stream:
                async for event in stream:
                    seen.append(event.object)
                    if event.object["status"].get("startedAt") != before["status"]["startedAt"]:
                        return seen  # this daemon's instance is in the status
            return seen

        written = second.call(writes)
        events = sorted(plugin_events(home, "base"), key=lambda e: int(e["metadata"]["resourceVersion"]))
    assert len(written) == 1, "the start ended before anyone needed to see Starting: Ready is the one write"
    assert condition(written[0], "Ready")["status"] == "True"
    assert [(e["reason"], e["count"]) for e in events] == [("Starting", 2), ("Running", 2)], \
        "the event list tells this start as it told the first one"


def test_a_config_change_is_applied_without_a_restart(env: tuple[Path, Path, ThreadDaemon]) -> None:
    home, rec, _ = env
    apply(home, manifest("cfg", record=rec, level=1))
    wait_ready(home, "cfg")
    apply(home, manifest("cfg", record=rec, level=2))
    obj = wait_for(home, "cfg", lambda o: o is not None and o["status"].get("observedGeneration") == 2
                   and condition(o, "Ready").get("status") == "True")
    assert obj is not None
    assert len(events_of(rec, "cfg", "start_begin")) == 1 and not events_of(rec, "cfg", "stop")


def test_an_invalid_config_stalls_and_the_old_config_keeps_running(env: tuple[Path, Path, ThreadDaemon]) -> None:
    home, rec, daemon = env
    apply(home, manifest("cfg", record=rec, level=1, interfaces=["TestKit"]))
    wait_ready(home, "cfg")
    apply(home, manifest("cfg", record=rec, level=2, rejectConfig=True, interfaces=["TestKit"]))
    obj = wait_reason(home, "cfg", "Stalled", "True", "InvalidConfig")
    assert "previous config keeps running" in condition(obj, "Stalled")["message"]
    # not Ready: the wanted config does not run; the old one still serves (below)
    assert condition(obj, "Ready")["status"] == "False" and condition(obj, "Ready")["reason"] == "InvalidConfig"
    assert not events_of(rec, "cfg", "stop")
    registry = daemon.context.service_registry  # type: ignore[union-attr]
    assert daemon.call(registry.best("TestKit").instance.call, "ping", {"value": 7}) == {"pong": 7, "name": "cfg"}


def test_a_version_change_replaces_the_instance(env: tuple[Path, Path, ThreadDaemon]) -> None:
    home, rec, _ = env
    apply(home, manifest("up", record=rec))
    wait_ready(home, "up")
    apply(home, manifest("up", version="1.1.0", record=rec))
    obj = wait_for(home, "up", lambda o: o is not None and o["status"].get("resolvedVersion") == "1.1.0"
                   and condition(o, "Ready").get("status") == "True")
    assert obj is not None
    begins, stops = events_of(rec, "up", "start_begin"), events_of(rec, "up", "stop")
    wait_for(home, "up", lambda o: len(events_of(rec, "up", "stop")) >= 1)
    stops = events_of(rec, "up", "stop")
    assert len(begins) == 2 and stops[0] > events_of(rec, "up", "start_end")[1]  # new one up, then old one stopped
    assert [h["version"] for h in obj["status"]["history"][:2]] == ["1.1.0", "1.0.0"]


def test_a_new_version_failing_its_health_check_is_rolled_back(env: tuple[Path, Path, ThreadDaemon]) -> None:
    home, rec, _ = env
    apply(home, manifest("roll", record=rec))
    wait_ready(home, "roll")
    apply(home, manifest("roll", version="2.0.0", record=rec, failHealth=True))
    obj = wait_reason(home, "roll", "Stalled", "True", "UpgradeFailed")
    assert condition(obj, "Ready")["status"] == "False" and condition(obj, "Ready")["reason"] == "RolledBack"
    assert obj["status"]["resolvedVersion"] == "1.0.0"
    assert obj["status"]["history"][0]["version"] == "2.0.0" and obj["status"]["history"][0]["result"] == "RolledBack"
    events = run_cli(home, "events").output
    assert "RolledBack" in events


def test_suspend_leaves_the_plugin_alone_until_resumed(env: tuple[Path, Path, ThreadDaemon]) -> None:
    home, rec, _ = env
    apply(home, manifest("sus", record=rec))
    wait_ready(home, "sus")
    assert run_cli(home, "suspend", "pm/sus").exit_code == 0
    wait_for(home, "sus", lambda o: o is not None and o["status"].get("observedGeneration") == 2)
    apply(home, manifest("sus", record=rec, level=3, suspend=True))  # a change while suspended: ignored
    obj = wait_for(home, "sus", lambda o: o is not None and o["status"].get("observedGeneration") == 3)
    assert condition(obj, "Ready")["status"] == "True" and len(events_of(rec, "sus", "start_begin")) == 1
    assert run_cli(home, "resume", "pm/sus").exit_code == 0
    wait_for(home, "sus", lambda o: o is not None and o["status"].get("observedGeneration") == 4
             and condition(o, "Ready").get("status") == "True")


def test_ready_plugins_are_registered_as_services(env: tuple[Path, Path, ThreadDaemon]) -> None:
    home, _, daemon = env
    apply(home, manifest("svc", interfaces=["MusicSource", "Codec"], priority=5))
    wait_ready(home, "svc")
    registry = daemon.context.service_registry  # type: ignore[union-attr]
    provider = registry.best("MusicSource")
    assert provider.name == "svc" and provider.priority == 5
    assert daemon.call(provider.instance.call, "ping", {"value": 1})["pong"] == 1
    assert run_cli(home, "delete", "pm", "svc").exit_code == 0
    wait_for(home, "svc", lambda o: o is None)
    assert registry.lookup("MusicSource") == []


def test_a_missed_watch_event_is_healed_by_resync(env: tuple[Path, Path, ThreadDaemon]) -> None:
    home, _, daemon = env
    controller = daemon.context.manager.controller("PluginManifest")  # type: ignore[union-attr]
    informer = controller.informer
    original = informer._on_event

    def deaf(event: object) -> None:  # the watch "loses" every event of this object
        if getattr(event, "object", {}).get("metadata", {}).get("name") != "victim":
            original(event)

    daemon.call(setattr, informer, "_on_event", deaf)
    apply(home, manifest("victim"))
    wait_ready(home, "victim")


def test_first_party_plugins_run_on_the_real_runtimes(tmp_path: Path) -> None:
    subprocess.run(["make", "-s", "-C", str(REPO / "plugins")], check=True, capture_output=True)
    home = tmp_path / "home"
    home.mkdir()
    names = ["hello-rpc", "hello-python", "effects", "now-playing", "hello-hot"]
    plugins = tmp_path / "plugins"
    for name in names:
        shutil.copytree(REPO / "plugins" / name, plugins / name, symlinks=True)
    with ThreadDaemon(home, services=default_services(), plugin_paths=[plugins]).running():
        docs = [yaml.safe_load((plugins / n / "plugin.yaml").read_text()) for n in names]
        for doc in docs:
            if doc["spec"]["type"] == "rpc":
                doc["spec"]["healthCheck"] = {"interval": "200ms", "timeout": "2s", "failureThreshold": 1}
                doc["spec"]["restartPolicy"] = {"backoff": {"initial": "100ms", "max": "1s"}}
        apply(home, *docs)
        wait_ready(home, *names)
        rpc = get(home, "hello-rpc")
        pid = rpc["status"]["runtime"]["pid"]
        assert rpc["status"]["runtime"].get("socket")
        os.kill(pid, signal.SIGKILL)
        restarted = wait_for(home, "hello-rpc", lambda o: o is not None
                             and o["status"].get("restartCount", 0) >= 1
                             and condition(o, "Ready").get("status") == "True")
        assert restarted is not None and restarted["status"]["runtime"]["pid"] != pid


def test_a_daemon_killed_mid_convergence_converges_after_a_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    root = plugin_root(tmp_path, "s1", "s2", "s3", "after")
    rec = tmp_path / "records.jsonl"
    daemon = SubprocessDaemon(home, "--plugin-path", str(root)).start()
    try:
        apply(home, *(manifest(n, record=rec, startDelay=2) for n in ("s1", "s2", "s3")),
              manifest("after", deps=["s1", "s2", "s3"], record=rec))
        wait_reason(home, "s1", "Ready", "False", "Starting")
        daemon.stop(signal.SIGKILL)
        assert not events_of(rec, "after", "start_begin")
        daemon = SubprocessDaemon(home, "--plugin-path", str(root)).start()
        wait_ready(home, "s1", "s2", "s3", "after")
        ends = [events_of(rec, n, "start_end")[-1] for n in ("s1", "s2", "s3")]
        assert events_of(rec, "after", "start_begin")[-1] > max(ends)
    finally:
        daemon.stop()
