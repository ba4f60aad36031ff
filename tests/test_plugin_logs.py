"""Per-plugin logs: append/read with since and tail, size-based rotation, follow woken by
appends (also from other threads and across a rotation), forget, the HTTP log endpoint with
a real daemon, and ``mfx logs``."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import orjson
import pytest
from anyio.abc import TaskGroup

from mfx.errors import BadRequestError
from mfx.store.plugin_logs import PluginLogHandler, PluginLogStore, Stream
from tests.daemon_harness import ThreadDaemon, run_cli

LOG_PATH = "/apis/mfx.musicfox.io/v1alpha1/pluginmanifests/{}/log"


def messages(records: list[dict[str, Any]]) -> list[str]:
    return [r["message"] for r in records]


def test_records_are_read_back_oldest_first_with_tail_and_since(tmp_path: Path) -> None:
    logs = PluginLogStore(tmp_path)
    for i in range(5):
        logs.append("hello", "INFO", f"line {i}", Stream.STDERR, {"attempt": i} if i == 4 else None)
    records = logs.read("hello")
    assert messages(records) == [f"line {i}" for i in range(5)]
    assert records[0]["level"] == "info" and records[0]["stream"] == "stderr" and "fields" not in records[0]
    assert records[4]["fields"] == {"attempt": 4}
    assert messages(logs.read("hello", tail=2)) == ["line 3", "line 4"]
    assert logs.read("hello", tail=0) == []
    assert len(logs.read("hello", since_seconds=600)) == 5
    # A record an hour old (as a restarted daemon finds it on disk) falls outside --since 10m.
    old = {"time": "2000-01-01T00:00:00.000Z", "level": "info", "stream": "stdout", "message": "old"}
    path = logs.path("hello")
    path.write_bytes(orjson.dumps(old) + b"\n" + path.read_bytes())
    assert "old" not in messages(logs.read("hello", since_seconds=600))
    assert messages(logs.read("hello"))[0] == "old"
    assert logs.read("never-logged") == []


def test_bad_names_and_streams_are_rejected(tmp_path: Path) -> None:
    logs = PluginLogStore(tmp_path)
    with pytest.raises(BadRequestError, match="invalid plugin name"):
        logs.append("../etc/passwd", "info", "x")
    with pytest.raises(ValueError):
        logs.append("hello", "info", "x", stream="elsewhere")


def test_rotation_keeps_one_old_file_and_the_newest_records(tmp_path: Path) -> None:
    logs = PluginLogStore(tmp_path, max_bytes=2048)
    for i in range(200):
        logs.append("busy", "info", f"message number {i:04d}")
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["busy.log", "busy.log.1"]
    assert all(p.stat().st_size <= 2048 for p in tmp_path.iterdir())
    kept = messages(logs.read("busy"))
    assert kept[-1] == "message number 0199"
    first = int(kept[0].split()[-1])
    assert kept == [f"message number {i:04d}" for i in range(first, 200)]  # contiguous, in order


def test_a_store_opened_later_counts_what_is_already_on_disk(tmp_path: Path) -> None:
    for _ in range(2):  # the second store appends to the first one's file
        logs = PluginLogStore(tmp_path, max_bytes=2048)
        for i in range(12):
            logs.append("busy", "info", f"message number {i:04d}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy.log", "busy.log.1"]
    assert all(p.stat().st_size <= 2048 for p in tmp_path.iterdir())


def test_forget_removes_the_files(tmp_path: Path) -> None:
    logs = PluginLogStore(tmp_path, max_bytes=1024)
    for i in range(50):
        logs.append("gone", "info", f"line {i}")
    logs.forget("gone")
    assert list(tmp_path.iterdir()) == []
    assert logs.read("gone") == []


async def collect(stream: AsyncIterator[dict[str, Any]], group: TaskGroup) -> Any:
    send, receive = anyio.create_memory_object_stream[dict[str, Any]](1000)

    async def pump() -> None:
        async with send:
            async for record in stream:
                await send.send(record)

    group.start_soon(pump)
    return receive


@pytest.mark.anyio
@pytest.mark.parametrize("background", [False, True], ids=["written-inline", "background-writes"])
async def test_follow_yields_the_tail_then_each_new_record(tmp_path: Path, background: bool) -> None:
    """With background writes, the writer thread's write is what wakes the follower."""
    logs = PluginLogStore(tmp_path)
    for i in range(3):
        logs.append("p", "info", f"old {i}")
    with contextlib.ExitStack() as writes:
        if background:
            writes.enter_context(logs.background_writes())
        await follow_the_tail_then_each_new_record(logs)


async def follow_the_tail_then_each_new_record(logs: PluginLogStore) -> None:
    async with anyio.create_task_group() as group:
        received = await collect(logs.follow("p", tail=1), group)
        assert (await received.receive())["message"] == "old 2"
        logs.append("p", "warning", "new 0")
        assert (await received.receive())["message"] == "new 0"
        # From a worker thread (a logging handler, a stderr reader): still woken on the loop.
        await anyio.to_thread.run_sync(lambda: logs.append("p", "info", "from a thread"))
        assert (await received.receive())["message"] == "from a thread"
        logs.append("other", "info", "not mine")
        logs.append("p", "info", "mine")
        assert (await received.receive())["message"] == "mine"
        group.cancel_scope.cancel()


@pytest.mark.anyio
@pytest.mark.parametrize("background", [False, True], ids=["written-inline", "background-writes"])
async def test_follow_continues_across_rotation_and_ends_on_forget(tmp_path: Path, background: bool) -> None:
    logs = PluginLogStore(tmp_path, max_bytes=1024)
    with contextlib.ExitStack() as writes:
        if background:
            writes.enter_context(logs.background_writes())
        await follow_across_rotation_until_forget(logs, tmp_path)


async def follow_across_rotation_until_forget(logs: PluginLogStore, tmp_path: Path) -> None:
    async with anyio.create_task_group() as group:
        received = await collect(logs.follow("p"), group)
        for i in range(60):  # several rotations, each record seen exactly once, in order
            logs.append("p", "info", f"record {i:03d} " + "x" * 40)
            assert (await received.receive())["message"].startswith(f"record {i:03d} ")
        assert (tmp_path / "p.log.1").exists()
        logs.forget("p")
        with pytest.raises(anyio.EndOfStream):
            await received.receive()


def test_with_background_writes_a_reader_sees_every_line_appended_before_it_asked(tmp_path: Path) -> None:
    """Appends only queue their lines; a read writes what is queued first, and what is still
    queued when the block ends is written then."""
    logs = PluginLogStore(tmp_path, max_bytes=4096)
    with logs.background_writes():
        for i in range(300):  # several rotations of p3's file on the way
            logs.append(f"p{i % 5}", "info", f"line {i:03d} " + "x" * 40)
        assert messages(logs.read("p3"))[-20:] == [f"line {i:03d} " + "x" * 40 for i in range(203, 300, 5)]
        assert (tmp_path / "p3.log.1").exists()
        logs.append("late", "info", "queued last")
    assert messages(PluginLogStore(tmp_path).read("late")) == ["queued last"]
    assert not any(t.name.startswith("mfx-plugin-logs:") for t in threading.enumerate())


def test_forget_with_background_writes_leaves_no_file_behind(tmp_path: Path) -> None:
    logs = PluginLogStore(tmp_path)
    with logs.background_writes():
        for i in range(50):
            logs.append("gone", "info", f"line {i}")
        logs.forget("gone")
        assert not (tmp_path / "gone.log").exists()
    assert logs.read("gone") == []


def test_a_queued_line_the_disk_refuses_is_dropped_with_a_warning_and_the_rest_are_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    logs = PluginLogStore(tmp_path)
    real_open = os.open
    refused = threading.Event()

    def full_once(path: str, flags: int, mode: int = 0o777) -> int:
        if "full" in str(path) and not refused.is_set():
            refused.set()
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", full_once)
    with caplog.at_level(logging.WARNING, logger="mfx.store.plugin_logs"), logs.background_writes():
        logs.append("full", "info", "refused")
        logs.append("full", "info", "kept")
        assert messages(logs.read("full")) == ["kept"]
    assert refused.is_set()
    assert "could not write a line of plugin full's log: [Errno 28] No space left on device" in caplog.text


def test_daemon_log_records_about_a_plugin_go_to_its_log(tmp_path: Path) -> None:
    logs = PluginLogStore(tmp_path)
    logger = logging.getLogger("mfx.test.plugin-logs")
    handler = PluginLogHandler(logs)
    logger.addHandler(handler)
    try:
        logger.warning("health probe failed", extra={"plugin": "hello", "attempt": 2})
        logger.warning("not about a plugin")
    finally:
        logger.removeHandler(handler)
    [record] = logs.read("hello")
    assert record["stream"] == "controller" and record["level"] == "warning"
    assert record["message"] == "health probe failed"
    assert record["fields"]["attempt"] == 2


# --- through a real daemon --------------------------------------------------------------------------------


def plugin_manifest(name: str) -> dict[str, Any]:
    return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest", "metadata": {"name": name},
            "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m hello_rpc"}}


def test_the_log_endpoint_and_mfx_logs_against_a_real_daemon(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with ThreadDaemon(home).running() as daemon:
        assert daemon.context is not None
        logs = daemon.context.log_store  # the daemon's own: appends wake its followers
        daemon.call(daemon.context.store.create, plugin_manifest("hello"))  # type: ignore[union-attr]
        for i in range(3):
            logs.append("hello", "info", f"line {i}", Stream.STDOUT)
        transport = httpx.HTTPTransport(uds=str(daemon.socket))
        with httpx.Client(transport=transport, base_url="http://mfx", timeout=10) as http:
            answer = http.get(LOG_PATH.format("hello"), params={"tailLines": "2"})
            assert answer.status_code == 200
            assert [orjson.loads(line)["message"] for line in answer.text.splitlines()] == ["line 1", "line 2"]
            missing = http.get(LOG_PATH.format("nobody"))
            assert missing.status_code == 404 and missing.json()["kind"] == "Status"
            bad = http.get(LOG_PATH.format("hello"), params={"tailLines": "many"})
            assert bad.status_code == 400 and "tailLines" in bad.json()["message"]

            # follow: the tail, then a line appended while the response is open.
            with http.stream("GET", LOG_PATH.format("hello"), params={"follow": "true", "tailLines": "1"}) as stream:
                lines = stream.iter_lines()
                assert orjson.loads(next(lines))["message"] == "line 2"
                logs.append("hello", "error", "crashed", Stream.STDERR)
                assert orjson.loads(next(lines))["message"] == "crashed"

        shown = run_cli(home, "logs", "pm/hello", "--tail", "2")
        assert shown.exit_code == 0, shown.output
        assert shown.output.splitlines()[-1].endswith("ERROR   [stderr] crashed")
        as_json = run_cli(home, "logs", "hello", "--since", "10m", "-o", "json")
        assert [orjson.loads(line)["message"] for line in as_json.output.splitlines()] == [
            "line 0", "line 1", "line 2", "crashed"]
        wrong_kind = run_cli(home, "logs", "sink/speakers")
        assert wrong_kind.exit_code == 1 and "plugins only" in wrong_kind.output
