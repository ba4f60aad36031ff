"""A PluginManifest that goes without the controller's cleanup leaves nothing running.

A new plugin's finalizer is stored with its first status write, which a quick start holds
(``STARTING_SHOWN_AFTER``): a delete can come before it. And an operator may remove a stuck
finalizer by hand. Either way ``PluginController.release`` stops the instance, withdraws its
services and forgets it, so the same name can be created again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controllers import plugin_actions
from tests.daemon_harness import ThreadDaemon, run_cli
from tests.plugin_fixtures import (
    apply,
    condition,
    events_of,
    get,
    manifest,
    poll,
    running_daemon,
    wait_for,
    wait_ready,
)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Path, Path, ThreadDaemon]]:
    with running_daemon(tmp_path, "early", "kept", "top") as running:
        yield running


def test_a_plugin_whose_stuck_finalizer_is_removed_by_hand_is_stopped(
        env: tuple[Path, Path, ThreadDaemon], tmp_path: Path) -> None:
    home, rec, daemon = env
    gate = tmp_path / "top-may-not-stop"
    gate.touch()
    try:
        _remove_the_finalizer_of_a_stuck_deletion(home, rec, daemon, gate)
    finally:
        gate.unlink(missing_ok=True)  # whatever failed, the daemon can stop "top"
    poll("the dependent to stop", lambda: events_of(rec, "top", "stop"))


def _remove_the_finalizer_of_a_stuck_deletion(home: Path, rec: Path, daemon: ThreadDaemon, gate: Path) -> None:
    apply(home, manifest("kept", record=rec, interfaces=["MusicSource"]),
          manifest("top", deps=["kept"], record=rec, stopWhileExists=str(gate),
                   resources={"limits": {"timeout": "10m"}}))
    wait_ready(home, "kept", "top")
    registry = daemon.context.service_registry  # type: ignore[union-attr]
    assert [p.name for p in registry.lookup("MusicSource")] == ["kept"]
    # Deleted, "kept" waits for its dependent to stop first, and "top" takes its time.
    assert run_cli(home, "delete", "pm", "kept", "--no-wait").exit_code == 0
    wait_for(home, "top", lambda o: o is not None and condition(o, "Ready").get("status") == "False")
    assert get(home, "kept")["metadata"]["finalizers"], "stuck Terminating behind its finalizer"
    result = run_cli(home, "patch", "pm", "kept", "-p", '{"metadata":{"finalizers":null}}')
    assert result.exit_code == 0, result.output
    wait_for(home, "kept", lambda o: o is None)
    poll("the instance of the gone plugin to be stopped", lambda: events_of(rec, "kept", "stop"))
    assert registry.lookup("MusicSource") == [], "a stopped plugin's services are withdrawn"
    assert not events_of(rec, "top", "stop"), "stopped by the release, not by the usual order"


def test_a_plugin_deleted_before_its_finalizer_is_stored_is_stopped_and_can_come_back(
        env: tuple[Path, Path, ThreadDaemon], monkeypatch: pytest.MonkeyPatch) -> None:
    home, rec, daemon = env
    # The hold outlasts the test: the delete surely comes before the first status write.
    monkeypatch.setattr(plugin_actions, "STARTING_SHOWN_AFTER", 3600.0)
    apply(home, manifest("early", record=rec, startDelay=60, interfaces=["MusicSource"]))
    poll("the start to begin", lambda: events_of(rec, "early", "start_begin"))
    held = get(home, "early")
    assert not held["metadata"].get("finalizers") and "status" not in held, "the start is held: nothing written"
    assert run_cli(home, "delete", "pm", "early").exit_code == 0
    wait_for(home, "early", lambda o: o is None)
    poll("the start to be stopped", lambda: events_of(rec, "early", "stop"))
    assert not events_of(rec, "early", "start_end")
    assert not daemon.context.manager.supervisor.running()  # type: ignore[union-attr]

    monkeypatch.setattr(plugin_actions, "STARTING_SHOWN_AFTER", 1.0)
    apply(home, manifest("early", record=rec, interfaces=["MusicSource"]))
    wait_ready(home, "early")
    assert get(home, "early")["metadata"]["finalizers"], "the finalizer came with the one write"
    registry = daemon.context.service_registry  # type: ignore[union-attr]
    assert [p.name for p in registry.lookup("MusicSource")] == ["early"]
