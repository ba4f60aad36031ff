"""`mfx get KIND -w` prints a row when a printed column changes, like kubectl: never a blank
line, nothing for a status write that changes no column, and its rows line up with the table.
`mfx events -w` lines up new events the same way."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mfx.api.kinds import PLUGIN_MANIFEST
from mfx.cli.client import Client, Endpoint
from mfx.store.base import EventRecord
from tests.daemon_harness import ThreadDaemon, mfx_command, run_cli
from tests.test_apply import plugin_yaml
from tests.test_kubectl import LineReader


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[ThreadDaemon]:
    # No controllers run in this daemon: every status write below is the test's own.
    with ThreadDaemon(tmp_path / "home").running() as running:
        yield running


@pytest.fixture
def home(daemon: ThreadDaemon) -> Path:
    return daemon.config.home


def condition(type_: str, status: str, reason: str) -> dict[str, object]:
    return {"type": type_, "status": status, "reason": reason, "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z"}


def write_status(home: Path, name: str, *conditions: dict[str, object], restarts: int = 0) -> None:
    with Client(Endpoint(socket=home / "mfx.sock")) as client:
        client.patch(PLUGIN_MANIFEST, name, {"status": {"conditions": list(conditions), "restartCount": restarts}},
                     subresource="status")


@pytest.fixture
def watching(home: Path) -> Iterator[LineReader]:
    assert run_cli(home, "apply", "-f", "-", input=plugin_yaml("alpha")).exit_code == 0
    process = watch(home, "get", "pm", "-w")
    try:
        yield LineReader(process)
    finally:
        process.terminate()
        process.communicate(timeout=10)


def watch(home: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*mfx_command(), *args], env={**os.environ, "MFX_HOME": str(home)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_watch_prints_a_row_only_when_a_printed_column_changes(home: Path, watching: LineReader) -> None:
    header, first = watching.until("alpha")
    assert header.split()[:4] == ["NAME", "VERSION", "TYPE", "READY"]
    # Neither the Probed condition nor restartCount (an -o wide column) is printed: no line.
    write_status(home, "alpha", condition("Probed", "True", "WrittenByTest"))
    write_status(home, "alpha", condition("Probed", "True", "WrittenByTest"), restarts=2)
    # READY and REASON are: exactly one line, the changed row.
    write_status(home, "alpha", condition("Ready", "True", "Running"))
    lines = watching.until("Running")
    assert len(lines) == 1, lines
    # VERSION is the version that runs (status.resolvedVersion): none here, no controller runs
    assert lines[0].split()[:5] == ["alpha", "<none>", "rpc", "True", "Running"]
    # The row lines up with the table printed before it.
    assert lines[0].index("rpc") == header.index("TYPE") == first.index("rpc")


def test_watch_prints_new_and_deleted_objects_without_blank_lines(home: Path, watching: LineReader) -> None:
    watching.until("alpha")
    assert run_cli(home, "apply", "-f", "-", input=plugin_yaml("beta")).exit_code == 0
    write_status(home, "beta", condition("Probed", "True", "WrittenByTest"))  # prints nothing
    assert run_cli(home, "delete", "pm", "beta").exit_code == 0
    write_status(home, "alpha", condition("Ready", "False", "Stopped"))
    lines = watching.until("Stopped")
    assert [line.split()[0] for line in lines] == ["beta", "beta", "alpha"], lines
    assert all(line.strip() for line in lines)


def test_events_watch_prints_a_header_first_and_lines_new_events_up(daemon: ThreadDaemon, home: Path) -> None:
    # A store that has been written to: its listing's resourceVersion is one to watch from
    # (a never-written store answers 0, which a watch reads as "from now").
    assert run_cli(home, "apply", "-f", "-", input=plugin_yaml("alpha")).exit_code == 0
    process = watch(home, "events", "-w")
    try:
        lines = LineReader(process)
        assert daemon.context is not None
        for reason, message in (("Started", "plugin started"), ("BackOff", "重启 in 10s")):
            daemon.call(daemon.context.store.record_event,
                        EventRecord("PluginManifest", "alpha", "uid-1", "Normal", reason, message))
        seen = lines.until("重启")
        header, *rows = seen
        assert header.split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
        assert [row.split()[2] for row in rows] == ["Started", "BackOff"]
        assert {row.index("pluginmanifest/alpha") for row in rows} == {header.index("OBJECT")}
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_watch_with_a_document_format_prints_each_object_and_each_change(home: Path) -> None:
    assert run_cli(home, "apply", "-f", "-", input=plugin_yaml("alpha")).exit_code == 0
    assert run_cli(home, "apply", "-f", "-", input=plugin_yaml("beta")).exit_code == 0
    template = '{.metadata.name}={.status.conditions[?(@.type=="Ready")].reason}{"\\n"}'
    names = watch(home, "get", "pm", "-w", "-o", f"jsonpath={template}")
    documents = watch(home, "get", "pm", "alpha", "-w", "-o", "yaml")
    try:
        name_lines, yaml_lines = LineReader(names), LineReader(documents)
        assert name_lines.until("beta=") == ["alpha=", "beta="]
        yaml_lines.until("name: alpha")
        write_status(home, "alpha", condition("Ready", "True", "Running"))
        assert name_lines.until("alpha=Running") == ["alpha=Running"]
        # One document per object as it changes, "---" between them, as kubectl writes a YAML stream.
        assert "---" in yaml_lines.until("reason: Running")
    finally:
        for process in (names, documents):
            process.terminate()
            process.communicate(timeout=10)
