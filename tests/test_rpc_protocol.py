"""The RPC wire protocol and the process plumbing, without starting a plugin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from mfx.errors import EntryPointNotFoundError
from mfx.runtimes.base import LoadRequest, LogLevel, PluginType
from mfx.runtimes.process import StderrParser, build_environment, describe_exit, resolve_command
from mfx.sdk import rpc_protocol as proto

ROOT = Path(__file__).resolve().parents[1]


def test_handshake_line_round_trips() -> None:
    line = proto.Handshake(1, 3, "/tmp/mfx-x/plugin.sock").line()
    assert line == "1|3|unix|/tmp/mfx-x/plugin.sock|jsonrpc\n"
    parsed = proto.Handshake.parse(line.encode())
    assert (parsed.core_version, parsed.app_version, parsed.address) == (1, 3, "/tmp/mfx-x/plugin.sock")


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("hello world", "5 fields"),
        ("x|1|unix|/tmp/s|jsonrpc", "integers"),
        ("1|1|tcp|/tmp/s|jsonrpc", "network must be 'unix'"),
        ("1|1|unix|/tmp/s|grpc", "protocol must be 'jsonrpc'"),
        ("1|1|unix|relative.sock|jsonrpc", "absolute"),
        ("1|1|unix|/" + "a" * 120 + "|jsonrpc", "at most 107"),
    ],
)
def test_bad_handshake_lines_say_what_is_wrong(line: str, says: str) -> None:
    with pytest.raises(proto.HandshakeFormatError, match=says):
        proto.Handshake.parse(line)


def test_frames_split_across_and_within_chunks() -> None:
    splitter = proto.FrameSplitter(1024)
    data = proto.encode(proto.request(1, "a", [1]), 1024) + proto.encode(proto.result(1, "b\nc"), 1024)
    assert data.count(b"\n") == 2  # newlines inside strings are escaped
    frames = []
    for i in range(0, len(data), 7):
        frames += splitter.feed(data[i : i + 7])
    assert [proto.decode(f) for f in frames] == [
        {"jsonrpc": "2.0", "id": 1, "method": "a", "params": [1]},
        {"jsonrpc": "2.0", "id": 1, "result": "b\nc"},
    ]
    assert splitter.pending == 0


def test_oversized_frames_are_refused_on_both_sides() -> None:
    with pytest.raises(proto.MessageTooLargeError, match="maximum is 100 bytes"):
        proto.encode(proto.result(1, "x" * 200), 100)
    splitter = proto.FrameSplitter(100)
    with pytest.raises(proto.MessageTooLargeError):
        splitter.feed(b"x" * 60)
        splitter.feed(b"x" * 60)  # no newline yet, but already past the limit
    with pytest.raises(proto.MessageTooLargeError):
        proto.FrameSplitter(100).feed(b"y" * 150 + b"\n")


@pytest.mark.parametrize("frame", [b"{not json", b"[1, 2]", b'{"id": 1, "result": 2}'])
def test_malformed_frames_are_refused(frame: bytes) -> None:
    with pytest.raises(proto.MalformedMessageError):
        proto.decode(frame)


def test_stderr_levels_are_parsed() -> None:
    parser = StderrParser()
    cases = {
        "ERROR disk on fire": (LogLevel.ERROR, "disk on fire"),
        "ERROR: disk on fire": (LogLevel.ERROR, "disk on fire"),
        "[warning] running low": (LogLevel.WARNING, "running low"),
        "WARN: running low": (LogLevel.WARNING, "running low"),
        "DEBUG details": (LogLevel.DEBUG, "details"),
        "Hello world": (LogLevel.INFO, "Hello world"),
    }
    for line, expected in cases.items():
        level, message, _ = parser.parse(line)
        assert (level, message) == expected, line
    level, message, fields = parser.parse(orjson.dumps({"level": "error", "msg": "bad", "track": 3}).decode())
    assert (level, message, fields) == (LogLevel.ERROR, "bad", {"track": 3})


def test_a_python_traceback_is_one_error_block() -> None:
    parser = StderrParser()
    lines = [
        "Traceback (most recent call last):",
        '  File "x.py", line 1, in <module>',
        "    boom()",
        "ValueError: boom",
        "back to normal",
    ]
    levels = [parser.parse(line)[0] for line in lines]
    assert levels == [LogLevel.ERROR] * 4 + [LogLevel.INFO]


def test_entry_point_resolution(tmp_path: Path) -> None:
    assert resolve_command("python -m hello_rpc", tmp_path) == [sys.executable, "-m", "hello_rpc"]
    script = tmp_path / "bin" / "plugin"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    assert resolve_command("bin/plugin --fast 'two words'", tmp_path) == [str(script), "--fast", "two words"]
    assert resolve_command("sh -c true", tmp_path)[0].endswith("/sh")
    with pytest.raises(EntryPointNotFoundError, match="does not exist"):
        resolve_command("./missing", tmp_path)
    with pytest.raises(EntryPointNotFoundError, match="empty"):
        resolve_command("  ", tmp_path)
    with pytest.raises(EntryPointNotFoundError, match="neither a file"):
        resolve_command("no-such-command-anywhere", tmp_path)
    script.chmod(0o644)
    with pytest.raises(EntryPointNotFoundError, match="not executable"):
        resolve_command("bin/plugin", tmp_path)


def test_environment_is_scrubbed(tmp_path: Path) -> None:
    request = LoadRequest(
        name="p",
        version="1.0.0",
        type=PluginType.RPC,
        entry_point="python -m p",
        plugin_dir=tmp_path / "plugin",
        state_dir=tmp_path / "state",
        env={"API_URL": "http://x"},
    )
    parent = {"PATH": "/usr/bin", "LANG": "C.UTF-8", "LC_ALL": "C", "TZ": "UTC", "AWS_SECRET": "s", "PYTHONPATH": "/evil", "HOME": "/root"}
    env = build_environment(request, tmp_path / "sock", parent=parent)
    assert env["PATH"] == "/usr/bin" and env["LC_ALL"] == "C" and env["TZ"] == "UTC"
    assert env["HOME"] == str(tmp_path / "state")
    assert env["PYTHONPATH"] == str(tmp_path / "plugin")
    assert env["API_URL"] == "http://x"
    assert env[proto.COOKIE_ENV] == proto.COOKIE_VALUE
    assert env[proto.SOCKET_DIR_ENV] == str(tmp_path / "sock")
    assert "AWS_SECRET" not in env


def test_exit_descriptions() -> None:
    assert describe_exit(3) == "exited with code 3"
    assert describe_exit(-9) == "killed by SIGKILL (9)"


def test_a_plugin_run_by_hand_explains_itself_and_exits_1() -> None:
    env = {k: v for k, v in os.environ.items() if k != proto.COOKIE_ENV}
    env["PYTHONPATH"] = str(ROOT / "plugins" / "hello-rpc")
    done = subprocess.run(
        [sys.executable, "-m", "hello_rpc"], env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 1
    assert "must be started by the mfx daemon" in done.stderr
    assert done.stdout == ""


def test_importing_the_sdk_stays_light() -> None:
    code = "import sys, mfx.sdk; print(' '.join(m for m in ('asyncio', 'anyio', 'mfx.runtimes', 'pydantic', 'numpy') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


# --- the client's deadlines, against a peer that answers only some requests ------------


@pytest.mark.anyio
async def test_each_call_keeps_its_own_deadline(tmp_path: Path) -> None:
    """A short deadline fires on time while a call with a long one is still waiting: one
    sweeper serves every deadline of a connection, and re-arms for the earliest."""
    import socket
    import threading

    import anyio

    from mfx.errors import PluginTimeoutError
    from mfx.runtimes.rpc_client import RpcClient

    path = str(tmp_path / "peer.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    requests: dict[int, str] = {}
    cancelled: list[int] = []

    def peer() -> None:  # answers "quick", never answers the others
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as lines:
            for line in lines:
                message = orjson.loads(line)
                if message["method"] == proto.CANCEL_METHOD:
                    cancelled.append(message["params"]["id"])
                    continue
                requests[message["id"]] = message["method"]
                if message["method"] == "quick":
                    conn.sendall(proto.encode(proto.result(message["id"], "fast"), 1 << 20))

    thread = threading.Thread(target=peer, daemon=True)
    thread.start()
    client = await RpcClient.connect(path, plugin="peer", max_message_bytes=1 << 20)
    outcome: list[BaseException] = []
    async with anyio.create_task_group() as tg:

        async def long_call() -> None:
            try:
                await client.call("never", deadline=30.0)
            except PluginTimeoutError as exc:
                outcome.append(exc)

        tg.start_soon(long_call)
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(PluginTimeoutError, match="slow did not answer within 0.2s"):
            await client.call("slow", deadline=0.2)
        assert outcome == []  # its deadline is far away: still waiting
        assert await client.call("quick", deadline=30.0) == "fast"
        tg.cancel_scope.cancel()
    await client.aclose()
    thread.join(10)
    listener.close()
    slow_id = next(id for id, method in requests.items() if method == "slow")
    assert slow_id in cancelled  # the plugin was told the short call was given up
