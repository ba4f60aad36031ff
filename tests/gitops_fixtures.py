"""Real git repositories made at test time, a daemon running the GitSource controller, and
waits that synchronise on the API's watch (never on sleeps)."""

from __future__ import annotations

import os
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from anyio.abc import TaskGroup

from controllers.gitsource import register
from mfx.api.kinds import resolve_kind
from mfx.api.objects import Obj
from mfx.cli.client import Client, Endpoint
from mfx.server.daemon import DaemonContext
from reconciler import Manager, Registry
from tests.daemon_harness import ThreadDaemon

API = "mfx.musicfox.io/v1alpha1"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
}


def plugin_yaml(name: str, version: str = "1.0.0", *, depends: tuple[str, ...] = (), tier: str = "core") -> str:
    text = textwrap.dedent(f"""\
        apiVersion: {API}
        kind: PluginManifest
        metadata:
          name: {name}
          labels: {{tier: {tier}}}
        spec:
          version: {version}
          type: rpc
          entryPoint: python -m {name.replace('-', '_')}
          interfaces: [MusicSource]
        """)
    if depends:
        text += "  dependencies:\n" + "".join(f"  - name: {d}\n    version: '>=1.0.0'\n" for d in depends)
    return text


def gitsource_yaml(name: str, url: str, *, interval: str = "1s", path: str = "plugins", prune: bool = False,
                   depends: tuple[str, ...] = (), extra: str = "") -> str:
    text = textwrap.dedent(f"""\
        apiVersion: {API}
        kind: GitSource
        metadata:
          name: {name}
        spec:
          url: {url}
          ref: {{branch: main}}
          path: {path}
          interval: {interval}
          prune: {str(prune).lower()}
        """)
    if depends:
        text += "  dependsOn:\n" + "".join(f"  - name: {d}\n" for d in depends)
    return text + extra


@dataclass
class Repo:
    """A bare repository (what the GitSource fetches) and a work tree that pushes to it."""

    bare: Path
    work: Path

    @classmethod
    def create(cls, root: Path) -> Repo:
        bare, work = root / "remote.git", root / "work"
        root.mkdir(parents=True, exist_ok=True)
        _git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
        _git(root, "init", "--quiet", "--initial-branch=main", str(work))
        _git(work, "remote", "add", "origin", str(bare))
        return cls(bare, work)

    @property
    def url(self) -> str:
        return f"file://{self.bare}"

    def commit(self, message: str, files: dict[str, str | bytes | None], *, branch: str = "main") -> str:
        """Write (or, for None, delete) files, commit, push; the new commit's SHA."""
        for name, text in files.items():
            path = self.work / name
            if text is None:
                path.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(text, bytes):
                path.write_bytes(text)
            else:
                path.write_text(text)
        _git(self.work, "add", "--all")
        _git(self.work, "commit", "--quiet", "--allow-empty", "-m", message)
        _git(self.work, "push", "--quiet", "origin", f"HEAD:refs/heads/{branch}")
        return _git(self.work, "rev-parse", "HEAD").strip()


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, check=True,
                          capture_output=True, text=True)
    return done.stdout


@dataclass
class Env:
    home: Path


async def gitops_service(context: DaemonContext, group: TaskGroup) -> None:
    """The GitSource controller on the daemon's store, until the daemon shuts down."""
    async def run() -> None:
        on = Registry()
        register(on, Env(home=context.config.home))
        async with Manager(context.store, on, metrics=context.metrics):
            await context.shutdown.wait()

    group.start_soon(run)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[ThreadDaemon]:
    with ThreadDaemon(tmp_path / "home", services=[gitops_service]).running() as running:
        yield running


@pytest.fixture
def home(daemon: ThreadDaemon) -> Path:
    return daemon.config.home


@pytest.fixture
def client(home: Path) -> Iterator[Client]:
    with Client(Endpoint(socket=home / "mfx.sock")) as c:
        yield c


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo.create(tmp_path / "git")


GS = resolve_kind("gitsources")
PM = resolve_kind("pm")
EVENTS = resolve_kind("events")


def wait_for(client: Client, kind: Any, name: str, predicate: Callable[[Obj], bool], *,
             timeout: float = 30.0, what: str = "") -> Obj:
    """Watch one object until ``predicate`` holds (the timeout only bounds a failing test)."""
    from mfx.cli.waiting import watch_until

    deadline = time.monotonic() + timeout
    try:
        obj = client.get(kind, name)
        rv = obj["metadata"]["resourceVersion"]
        if predicate(obj):
            return obj
    except Exception:  # noqa: BLE001 - not created yet
        obj, rv = {}, "0"
    for event in watch_until(client, kind, name, rv, deadline):
        if event["type"] != "DELETED" and predicate(event["object"]):
            return event["object"]  # type: ignore[no-any-return]
        obj = event["object"]
    raise AssertionError(f"timed out waiting for {kind.kind}/{name} {what}; last seen: {obj.get('status')}")


def wait_gone(client: Client, kind: Any, name: str, *, timeout: float = 30.0) -> None:
    from mfx.cli.waiting import wait_deleted

    wait_deleted(client, kind, name, time.monotonic() + timeout)


def wait_event(client: Client, source: str, reason: str, contains: str = "", *, timeout: float = 30.0) -> Obj:
    """Watch events about gitsource/``source`` until one with ``reason`` (and text) arrives."""
    selector = f"involvedObject.kind=GitSource,involvedObject.name={source}"

    def match(event: Obj) -> bool:
        return event.get("reason") == reason and contains in str(event.get("message", ""))

    listing = client.list(EVENTS, field_selector=selector)
    for event in listing["items"]:
        if match(event):
            return event  # type: ignore[no-any-return]
    deadline = time.monotonic() + timeout
    params = {"watch": "true", "resourceVersion": listing["metadata"]["resourceVersion"],
              "fieldSelector": selector, "timeoutSeconds": str(int(timeout))}
    for item in client.stream_lines(EVENTS.resource_path, params=params):
        if item.get("type") in ("ADDED", "MODIFIED") and match(item["object"]):
            return item["object"]  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"no {reason} event containing {contains!r} for gitsource/{source}")


def applied(sha: str) -> Callable[[Obj], bool]:
    return lambda o: (o.get("status") or {}).get("lastAppliedRevision") == f"main@sha1:{sha}"


def attempted(sha: str) -> Callable[[Obj], bool]:
    return lambda o: (o.get("status") or {}).get("lastAttemptedRevision") == f"main@sha1:{sha}"


def ready_reason(obj: Obj) -> tuple[str | None, str | None, str]:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == "Ready":
            return cond["status"], cond["reason"], cond.get("message", "")
    return None, None, ""

