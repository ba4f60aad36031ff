"""`mfx describe` shows the events of the object as it is now: a re-created object (same name,
new uid) starts without the old one's events."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mfx.store.base import EventRecord
from tests.daemon_harness import ThreadDaemon, run_cli
from tests.test_apply import plugin_yaml


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[ThreadDaemon]:
    with ThreadDaemon(tmp_path / "home").running() as running:
        yield running


def create(home: Path, name: str) -> str:
    assert run_cli(home, "apply", "-f", "-", input=plugin_yaml(name)).exit_code == 0
    return str(yaml.safe_load(run_cli(home, "get", "pm", name, "-o", "yaml").output)["metadata"]["uid"])


def record(daemon: ThreadDaemon, name: str, uid: str, reason: str, message: str) -> None:
    assert daemon.context is not None
    daemon.call(daemon.context.store.record_event,
                EventRecord("PluginManifest", name, uid, "Warning", reason, message))


def test_describe_of_a_recreated_object_shows_only_its_own_events(daemon: ThreadDaemon) -> None:
    home = daemon.config.home
    old_uid = create(home, "alpha")
    record(daemon, "alpha", old_uid, "CrashLoop", "the first alpha crashed")
    assert run_cli(home, "delete", "pm", "alpha").exit_code == 0
    new_uid = create(home, "alpha")
    assert new_uid != old_uid
    assert "Events:       <none>" in run_cli(home, "describe", "pm", "alpha").output
    record(daemon, "alpha", new_uid, "Started", "the second alpha started")
    events = run_cli(home, "describe", "pm/alpha").output.split("Events:")[1]
    assert "the second alpha started" in events
    assert "CrashLoop" not in events and "the first alpha crashed" not in events
    # The history itself is kept: `mfx events` still lists what happened to the old one.
    assert "the first alpha crashed" in run_cli(home, "events", "--for", "pm/alpha").output


def test_events_of_the_same_second_are_listed_in_the_order_they_happened(daemon: ThreadDaemon) -> None:
    home = daemon.config.home
    uid = create(home, "alpha")
    reasons = ["Pulled", "Created", "Started", "Probed", "Ready", "Reloaded"]
    for reason in reasons:  # timestamps have whole seconds: these share one or two
        record(daemon, "alpha", uid, reason, f"step {reason}")
    listed = run_cli(home, "events", "--for", "pm/alpha").output.splitlines()[1:]
    assert [line.split()[2] for line in listed] == reasons
    described = run_cli(home, "describe", "pm", "alpha").output.split("Events:")[1].splitlines()[3:]
    assert [line.split()[1] for line in described] == reasons
