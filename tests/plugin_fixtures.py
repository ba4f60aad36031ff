"""Helpers for tests that run PluginManifests through a real daemon.

- ``running_daemon(tmp_path, *names)``: a ``ThreadDaemon`` on a fresh home with such a
  plugin path; yields ``(home, records file, daemon)``.
- ``plugin_root(tmp_path, *names)``: a ``--plugin-path`` directory with ``<name>/testkit``
  (a symlink to ``tests/plugins/testkit``) for each name.
- ``manifest(name, ...)``: a PluginManifest of the testkit SlowStartPlugin.
- ``apply(home, *objs)``: ``mfx apply -f -`` through the real CLI.
- ``wait_for(home, name, predicate)``: block until the object satisfies ``predicate``,
  synchronised on the API's watch (no sleeps); ``wait_reason`` / ``wait_ready`` on top.
- ``records(path)``: the testkit's JSON-lines records.
- ``poll(what, check)``: for what no watch tells (a file a plugin writes, a process's log).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from mfx.api.kinds import PLUGIN_MANIFEST
from mfx.api.objects import Obj
from mfx.cli.client import Client, Endpoint
from mfx.errors import NotFoundError
from mfx.server.services import default_services
from tests.daemon_harness import REPO, ThreadDaemon, run_cli

TESTKIT = REPO / "tests" / "plugins" / "testkit"
ENTRY = "python:testkit.slowstart:SlowStartPlugin"
DEADLINE_POLLS = 600  # x 0.1 s: a hang guard, not a speed check


def plugin_root(base: Path, *names: str) -> Path:
    root = base / "plugin-path"
    root.mkdir(exist_ok=True)
    for name in names:
        add_plugin_dir(root, name)
    return root


@contextmanager
def running_daemon(tmp_path: Path, *names: str, **options: Any) -> Iterator[tuple[Path, Path, ThreadDaemon]]:
    """A daemon (in a thread, the usual services) whose plugin path holds the testkit as each
    of ``names``; yields its home, the testkit's records file and the daemon."""
    home = tmp_path / "home"
    home.mkdir()
    root = plugin_root(tmp_path, *names)
    with ThreadDaemon(home, services=default_services(), plugin_paths=[root], **options).running() as daemon:
        yield home, tmp_path / "records.jsonl", daemon


def add_plugin_dir(root: Path, name: str) -> Path:
    directory = root / name
    directory.mkdir(parents=True, exist_ok=True)
    link = directory / "testkit"
    if not link.exists():
        os.symlink(TESTKIT, link)
    return directory


def manifest(name: str, *, version: str = "1.0.0", deps: Iterable[dict[str, Any] | str] = (),
            record: Path | None = None, plugin_type: str = "dynamic_library", **config_and_spec: Any) -> Obj:
    spec_keys = {"healthCheck", "restartPolicy", "suspend", "interfaces", "priority", "configSchema",
                 "circuitBreaker", "resources", "entryPoint", "security"}
    config: dict[str, Any] = {"name": name}
    spec: dict[str, Any] = {"version": version, "type": plugin_type, "entryPoint": ENTRY}
    for key, value in config_and_spec.items():
        (spec if key in spec_keys else config)[key] = value
    if record is not None:
        config["recordFile"] = str(record)
    spec["config"] = config
    dependencies = [{"name": d} if isinstance(d, str) else d for d in deps]
    if dependencies:
        spec["dependencies"] = dependencies
    return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest",
            "metadata": {"name": name}, "spec": spec}


def apply(home: Path, *objs: Obj) -> None:
    text = yaml.safe_dump_all(list(objs), sort_keys=False)
    result = run_cli(home, "apply", "-f", "-", input=text)
    assert result.exit_code == 0, result.output


def client(home: Path) -> Client:
    return Client(Endpoint(socket=home / "mfx.sock"), timeout=60.0)


def get(home: Path, name: str) -> Obj:
    with client(home) as c:
        return c.get(PLUGIN_MANIFEST, name)


def condition(obj: Obj, type_: str) -> dict[str, Any]:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return {}


def wait_for(home: Path, name: str, predicate: Callable[[Obj | None], bool], what: str = "") -> Obj | None:
    """Return the object once ``predicate(obj)`` holds (``obj`` None: it does not exist)."""
    with client(home) as c:
        while True:
            try:
                obj: Obj | None = c.get(PLUGIN_MANIFEST, name)
            except NotFoundError:
                obj = None
            if predicate(obj):
                return obj
            rv = str(obj["metadata"]["resourceVersion"]) if obj else None
            if rv is None:
                page = c.request("GET", PLUGIN_MANIFEST.resource_path)
                rv = str(page["metadata"]["resourceVersion"])
            for event in c.watch(PLUGIN_MANIFEST, resource_version=rv, field_selector=f"metadata.name={name}"):
                current = None if event.get("type") == "DELETED" else event.get("object")
                if predicate(current):
                    return current
                if event.get("type") == "BOOKMARK":
                    break


def has_condition(type_: str, status: str | None = None, reason: str | None = None) -> Callable[[Obj | None], bool]:
    def check(obj: Obj | None) -> bool:
        if obj is None:
            return False
        cond = condition(obj, type_)
        if not cond:
            return False
        if cond.get("observedGeneration", 0) < obj["metadata"].get("generation", 0) and type_ != "Ready":
            pass
        return (status is None or cond.get("status") == status) and (reason is None or cond.get("reason") == reason)
    return check


def wait_ready(home: Path, *names: str) -> None:
    for name in names:
        result = run_cli(home, "wait", "--for=condition=Ready", f"pm/{name}", "--timeout=20s")
        assert result.exit_code == 0, result.output


def wait_reason(home: Path, name: str, type_: str, status: str, reason: str) -> Obj:
    obj = wait_for(home, name, has_condition(type_, status, reason))
    assert obj is not None
    return obj


def records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def events_of(path: Path, name: str, event: str) -> list[float]:
    return [r["t"] for r in records(path) if r["name"] == name and r["event"] == event]


def plugin_events(home: Path, name: str) -> list[dict[str, Any]]:
    result = run_cli(home, "events", "-o", "json")
    if result.exit_code != 0:
        return []
    try:
        data = json.loads(result.output)
    except ValueError:
        return []
    items = data.get("items", data) if isinstance(data, dict) else data
    return [e for e in items if (e.get("involvedObject") or {}).get("name") == name]


def poll(what: str, check: Callable[[], Any]) -> Any:
    """``check()``'s first truthy answer, asked every 0.1 s (a deadline guards against a hang)."""
    for _ in range(DEADLINE_POLLS):
        answer = check()
        if answer:
            return answer
        threading.Event().wait(0.1)
    raise AssertionError(f"timed out waiting for {what}")
