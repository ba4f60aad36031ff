"""``mfx rollout restart`` through the real CLI and daemon: a running plugin gets a new
instance once per request (an rpc plugin a new process) and stays Ready; the request handled
is remembered across reconciles and daemon restarts; selectors pick the plugins; a plugin not
running only records the request; an unknown name is a clear error."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mfx.api.kinds import PLUGIN_MANIFEST
from mfx.api.objects import RESTARTED_AT_ANNOTATION, Obj, annotations_of
from mfx.server.services import default_services
from tests.daemon_harness import REPO, ThreadDaemon, run_cli
from tests.plugin_fixtures import (
    apply,
    client,
    condition,
    events_of,
    get,
    manifest,
    plugin_events,
    plugin_root,
    wait_for,
    wait_ready,
    wait_reason,
)

ANNOTATION = RESTARTED_AT_ANNOTATION

SERVICE = '''
from mfx.sdk import Plugin, PluginInfo, serve


class Service(Plugin):
    info = PluginInfo(name="svc", version="1.0.0", description="answers pings", interfaces=("Pinger",))

    def health(self):
        return {"ok": True}

    def ping(self):
        return "pong"


serve(Service())
'''


def rpc_manifest(name: str = "svc") -> Obj:
    return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest", "metadata": {"name": name},
            "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python svc.py",
                     "restartPolicy": {"backoff": {"initial": "100ms", "max": "1s"}}}}


def labelled(obj: Obj, **labels: str) -> Obj:
    obj["metadata"]["labels"] = labels
    return obj


def restart(home: Path, *args: str) -> str:
    result = run_cli(home, "rollout", "restart", *args)
    assert result.exit_code == 0, result.output
    return result.output


def handled(obj: Obj | None) -> bool:
    """The controller has acted on the object's latest restart request."""
    if obj is None:
        return False
    wanted = annotations_of(obj).get(ANNOTATION)
    return wanted is not None and (obj.get("status") or {}).get("restartedAt") == wanted


def reasons(home: Path, name: str) -> list[str]:
    return [e["reason"] for e in plugin_events(home, name)]


def reconciled_again(home: Path, name: str) -> Obj:
    """Reconcile ``name`` once more (mfx reset-failed asks for it and the controller records
    it in status.resetFailedAt) and return the object that reconcile wrote."""
    before = (get(home, name).get("status") or {}).get("resetFailedAt")
    result = run_cli(home, "reset-failed", f"pm/{name}")
    assert result.exit_code == 0, result.output
    obj = wait_for(home, name, lambda o: o is not None
                   and (o.get("status") or {}).get("resetFailedAt") not in (None, before))
    assert obj is not None
    return obj


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    home = tmp_path / "home"
    home.mkdir()
    root = plugin_root(tmp_path, "one", "two", "three", "quiet", "bad")
    (root / "svc").mkdir()
    (root / "svc" / "svc.py").write_text(SERVICE)
    with ThreadDaemon(home, services=default_services(), plugin_paths=[root]).running():
        yield home, tmp_path / "records.jsonl"


def test_a_restart_gives_the_rpc_plugin_a_new_process_and_it_stays_ready(env: tuple[Path, Path]) -> None:
    home, _ = env
    apply(home, rpc_manifest())
    wait_ready(home, "svc")
    before = get(home, "svc")
    old_pid = before["status"]["runtime"]["pid"]

    assert restart(home, "pm/svc") == "pluginmanifest.mfx.musicfox.io/svc restarted\n"
    ready_seen: list[str] = []
    with client(home) as c:
        for event in c.watch(PLUGIN_MANIFEST, resource_version=str(before["metadata"]["resourceVersion"]),
                             field_selector="metadata.name=svc"):
            obj: dict[str, Any] = event["object"]
            ready_seen.append(condition(obj, "Ready").get("status", ""))
            if handled(obj) and obj["status"]["runtime"]["pid"] != old_pid:
                break
    # A new process took over; the old one served until then: Ready never dropped.
    assert set(ready_seen) == {"True"}, ready_seen
    assert condition(obj, "Ready")["status"] == "True"
    assert obj["status"]["restartCount"] == 0  # it counts crashes, not requests
    assert obj["status"]["history"][0]["result"] == "Running"
    assert obj["status"]["history"][1]["result"] == "Restarted"
    assert "RestartRequested" in reasons(home, "svc") and "Restarted" in reasons(home, "svc")
    call = run_cli(home, "call", "pm/svc", "ping")
    assert call.exit_code == 0 and json.loads(call.output) == "pong"
    deadline = time.monotonic() + 20  # a safety net: the old process is stopped after the switch
    while _alive(old_pid):
        assert time.monotonic() < deadline, f"the old process {old_pid} still runs"
        time.sleep(0.05)

    # Another reconcile of the same request restarts nothing.
    new_pid = obj["status"]["runtime"]["pid"]
    again = reconciled_again(home, "svc")
    assert again["status"]["runtime"]["pid"] == new_pid
    assert condition(again, "Reconciling").get("reason") != "Restarting"
    assert reasons(home, "svc").count("RestartRequested") == 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_a_handled_request_is_not_acted_on_again_after_a_daemon_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    root = plugin_root(tmp_path, "lib")
    rec = tmp_path / "records.jsonl"
    daemon = ThreadDaemon(home, services=default_services(), plugin_paths=[root])
    with daemon.running():
        apply(home, manifest("lib", record=rec))
        wait_ready(home, "lib")
        restart(home, "pm/lib")
        obj = wait_for(home, "lib", lambda o: handled(o) and condition(o, "Reconciling") == {}
                       and o["status"]["history"][1]["result"] == "Restarted")
        assert obj is not None
        stamp = obj["status"]["restartedAt"]
        # The in-process plugin was loaded and initialised again.
        assert len(events_of(rec, "lib", "start_begin")) == 2
    with ThreadDaemon(home, services=default_services(), plugin_paths=[root]).running():
        wait_ready(home, "lib")
        again = reconciled_again(home, "lib")
        assert again["status"]["restartedAt"] == stamp
        assert condition(again, "Reconciling").get("reason") != "Restarting"
        assert len(events_of(rec, "lib", "start_begin")) == 3  # the daemon's start, no restart after it
        assert reasons(home, "lib").count("RestartRequested") == 1


def test_selectors_and_all_restart_the_matching_plugins(env: tuple[Path, Path]) -> None:
    home, rec = env
    apply(home, labelled(manifest("one", record=rec), tier="audio"),
          labelled(manifest("two", record=rec, deps=["one"]), tier="audio"),
          labelled(manifest("three", record=rec), tier="ui"))
    wait_ready(home, "one", "two", "three")
    out = restart(home, "pm", "-l", "tier=audio")
    assert sorted(out.splitlines()) == ["pluginmanifest.mfx.musicfox.io/one restarted",
                                        "pluginmanifest.mfx.musicfox.io/two restarted"]
    for name in ("one", "two"):
        assert wait_for(home, name, lambda o: handled(o) and condition(o, "Reconciling") == {})
    assert ANNOTATION not in annotations_of(get(home, "three"))
    assert len(events_of(rec, "one", "start_begin")) == 2 and len(events_of(rec, "two", "start_begin")) == 2
    out = restart(home, "pm", "--all")
    assert len(out.splitlines()) == 3
    assert wait_for(home, "three", lambda o: handled(o) and condition(o, "Reconciling") == {})
    assert all(condition(get(home, n), "Ready")["status"] == "True" for n in ("one", "two", "three"))


def test_a_plugin_not_running_only_records_the_request(env: tuple[Path, Path]) -> None:
    home, rec = env
    apply(home, manifest("quiet", record=rec))
    wait_ready(home, "quiet")
    assert run_cli(home, "suspend", "pm/quiet").exit_code == 0
    restart(home, "pm/quiet")
    assert wait_for(home, "quiet", handled)
    assert len(events_of(rec, "quiet", "start_begin")) == 1
    told = [e for e in plugin_events(home, "quiet") if e["reason"] == "RestartRequested"]
    assert told and "nothing to restart, suspended" in told[0]["message"]
    # Resumed, it does not restart for the request it already recorded.
    assert run_cli(home, "resume", "pm/quiet").exit_code == 0
    again = reconciled_again(home, "quiet")
    assert condition(again, "Ready")["status"] == "True"
    assert len(events_of(rec, "quiet", "start_begin")) == 1
    # A stalled plugin (its entry point is missing) is looked at once to record it, and stays stalled.
    apply(home, manifest("bad", entryPoint="python:testkit.missing:Nope"))
    wait_reason(home, "bad", "Stalled", "True", "EntryPointNotFound")
    restart(home, "pm/bad")
    stalled = wait_for(home, "bad", handled)
    assert stalled is not None and condition(stalled, "Stalled")["reason"] == "EntryPointNotFound"
    told = [e for e in plugin_events(home, "bad") if e["reason"] == "RestartRequested"]
    assert told and "nothing to restart, not running" in told[0]["message"]


def test_unknown_names_and_other_kinds_are_clear_errors(env: tuple[Path, Path]) -> None:
    home, _ = env
    result = run_cli(home, "rollout", "restart", "pm/nope")
    assert result.exit_code == 1
    assert 'pluginmanifests "nope" not found' in result.output and "mfx get pm" in result.output
    assert "Traceback" not in result.output
    result = run_cli(home, "rollout", "restart", "gitsource/plugins")
    assert result.exit_code == 1 and "works on plugins (pm/NAME)" in result.output
    result = run_cli(home, "rollout", "restart", "pm")
    assert result.exit_code == 1 and "choose them with pm -l SELECTOR or pm --all" in result.output
    result = run_cli(home, "rollout", "restart", "pm", "-l", "tier=none")
    assert result.exit_code == 1 and "no plugins match the selector 'tier=none'" in result.output


def test_every_runtime_type_restarts_into_a_new_instance(tmp_path: Path) -> None:
    subprocess.run(["make", "-s", "-C", str(REPO / "plugins")], check=True, capture_output=True)
    home = tmp_path / "home"
    home.mkdir()
    names = {"hello-rpc": "rpc", "hello-python": "dynamic_library", "effects": "dynamic_library",
             "now-playing": "webassembly", "hello-hot": "hot_reload"}
    plugins = tmp_path / "plugins"
    for name in names:
        shutil.copytree(REPO / "plugins" / name, plugins / name, symlinks=True)
    with ThreadDaemon(home, services=default_services(), plugin_paths=[plugins]).running():
        docs = [yaml.safe_load((plugins / n / "plugin.yaml").read_text()) for n in names]
        assert {d["metadata"]["name"]: d["spec"]["type"] for d in docs} == names
        apply(home, *docs)
        wait_ready(home, *names)
        before = {n: get(home, n)["status"] for n in names}
        assert len(restart(home, "pm", "--all").splitlines()) == len(names)
        for name in names:
            obj = wait_for(home, name, lambda o: handled(o) and condition(o, "Reconciling") == {})
            assert obj is not None
            status = obj["status"]
            assert condition(obj, "Ready")["status"] == "True", (name, condition(obj, "Ready"))
            assert status["history"][1]["result"] == "Restarted", (name, status["history"])
            assert status["startedAt"] != before[name]["startedAt"], name
            assert status["restartCount"] == 0
        assert get(home, "hello-rpc")["status"]["runtime"]["pid"] != before["hello-rpc"]["runtime"]["pid"]
