"""The rpc runtime with real plugin processes: the example plugin and hostile ones.

Hostile plugins are small scripts written into tmp_path. Tests wait on events (log records,
on_exit) and on process conditions, never on sleeps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest

from mfx.errors import (
    HandshakeError,
    MemoryLimitExceededError,
    PluginCrashedError,
    PluginError,
    PluginInitError,
    PluginRuntimeError,
    PluginTimeoutError,
    ProtocolError,
)
from mfx.runtimes.base import Limits, LoadRequest, LogLevel, PluginLogRecord, PluginType
from mfx.runtimes.rpc import InstanceState, RpcRuntime
from mfx.runtimes.rpc_client import RemoteError

ROOT = Path(__file__).resolve().parents[1]
HELLO = ROOT / "plugins" / "hello-rpc"

pytestmark = pytest.mark.anyio

# A plugin written with the SDK; BODY adds methods to the class.
SDK_PLUGIN = """
import asyncio, logging, os, sys, threading
from mfx.sdk import Plugin, serve

log = logging.getLogger("test-plugin")

class TestPlugin(Plugin):
{body}

serve(TestPlugin())
"""

# A plugin speaking the protocol by hand; BODY handles each request line (bytes `line`).
RAW_PLUGIN = """
import os, signal, socket, sys
path = os.path.join(os.environ["MFX_PLUGIN_SOCKET_DIR"], "plugin.sock")
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(path)
listener.listen(1)
print(f"1|1|unix|{{path}}|jsonrpc", flush=True)
conn, _ = listener.accept()
for line in conn.makefile("rb"):
{body}
"""


class Recorder:
    """Collects log records and exit reasons; lets a test wait for one that matches."""

    def __init__(self) -> None:
        self.records: list[PluginLogRecord] = []
        self.exits: list[str] = []
        self._waiters: list[tuple[Callable[[PluginLogRecord], bool], anyio.Event]] = []
        self.exited = anyio.Event()

    def log(self, record: PluginLogRecord) -> None:
        self.records.append(record)
        for match, event in self._waiters:
            if match(record):
                event.set()

    def on_exit(self, error: PluginError) -> None:
        self.exits.append(str(error))
        self.exited.set()

    async def wait_for(self, match: Callable[[PluginLogRecord], bool]) -> PluginLogRecord:
        event = anyio.Event()
        self._waiters.append((match, event))
        if not any(match(r) for r in self.records):
            with anyio.fail_after(30):
                await event.wait()
        return next(r for r in self.records if match(r))


def request(
    tmp_path: Path,
    recorder: Recorder,
    *,
    entry_point: str = "python -m hello_rpc",
    plugin_dir: Path = HELLO,
    limits: Limits | None = None,
    start_timeout: float = 30.0,
    name: str = "test",
) -> LoadRequest:
    return LoadRequest(
        name=name,
        version="0.1.0",
        type=PluginType.RPC,
        entry_point=entry_point,
        plugin_dir=plugin_dir,
        state_dir=tmp_path / "state",
        limits=limits or Limits(timeout_seconds=30.0),
        start_timeout_seconds=start_timeout,
        log=recorder.log,
        on_exit=recorder.on_exit,
    )


def write_plugin(tmp_path: Path, template: str, body: str, name: str = "plugin.py") -> str:
    directory = tmp_path / "plugin"
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(template.format(body=textwrap.indent(textwrap.dedent(body), "    ")))
    return f"python {name}"


def sdk_request(tmp_path: Path, recorder: Recorder, body: str, **options: Any) -> LoadRequest:
    entry = write_plugin(tmp_path, SDK_PLUGIN, body)
    return request(tmp_path, recorder, entry_point=entry, plugin_dir=tmp_path / "plugin", **options)


def raw_request(tmp_path: Path, recorder: Recorder, body: str, **options: Any) -> LoadRequest:
    entry = write_plugin(tmp_path, RAW_PLUGIN, body)
    return request(tmp_path, recorder, entry_point=entry, plugin_dir=tmp_path / "plugin", **options)


def assert_reaped(pid: int) -> None:
    """Gone for good: not running and not a zombie waiting for us."""
    try:
        status = psutil.Process(pid).status()
    except psutil.NoSuchProcess:
        return
    raise AssertionError(f"process {pid} is still there ({status})")


def no_children() -> list[psutil.Process]:
    return [c for c in psutil.Process().children(recursive=True) if c.status() != psutil.STATUS_ZOMBIE or True]


# --- the happy path -----------------------------------------------------------------------


async def test_hello_plugin_lifecycle(tmp_path: Path) -> None:
    recorder = Recorder()
    async with RpcRuntime() as runtime:
        instance = await runtime.load(request(tmp_path, recorder))
        await instance.initialize({"greeting": "Hi"})
        await instance.start()
        await instance.health()
        assert await instance.call("greet", ["Ada"]) == "Hi, Ada!"
        assert await instance.call("greet", {"name": "Bob"}) == "Hi, Bob!"
        await instance.update_config({"greeting": "Hey"})
        assert await instance.call("greet", "Cy") == "Hey, Cy!"
        assert await instance.export_state() == {"greeted": 3}
        details = instance.details
        assert details["pid"] == instance.pid
        assert details["socket"].endswith("/plugin.sock") and len(details["socket"]) < 108
        assert details["command"].endswith("-m hello_rpc")
        assert details["rssBytes"] > 0 and details["cpuSeconds"] >= 0
        await recorder.wait_for(lambda r: r.message == "greeting set to 'Hey'" and r.level is LogLevel.INFO)
        pid = instance.pid
        await instance.stop()
        assert instance.state is InstanceState.STOPPED and instance.returncode == 0
        assert_reaped(pid)
        assert not Path(details["socket"]).parent.exists()
    assert recorder.exits == []  # a requested stop is not a crash


async def test_initialize_failure_is_an_init_error(tmp_path: Path) -> None:
    recorder = Recorder()
    async with RpcRuntime() as runtime:
        instance = await runtime.load(request(tmp_path, recorder))
        with pytest.raises(PluginInitError, match="greeting must be a non-empty string"):
            await instance.initialize({"greeting": 42})
        await instance.stop()


async def test_leaving_the_runtime_stops_its_plugins(tmp_path: Path) -> None:
    recorder = Recorder()
    async with RpcRuntime() as runtime:
        pids = [(await runtime.load(request(tmp_path, recorder, name=f"p{i}"))).pid for i in range(2)]
    for pid in pids:
        assert_reaped(pid)


async def test_fifty_calls_in_flight_are_all_answered(tmp_path: Path) -> None:
    # Each call waits until all fifty have arrived, so they really are in flight together.
    body = """
    def __init__(self):
        super().__init__()
        self.arrived = 0
        self.all_here = None

    async def gather(self, value):
        if self.all_here is None:
            self.all_here = asyncio.Event()
        self.arrived += 1
        if self.arrived == 50:
            self.all_here.set()
        await self.all_here.wait()
        return value * 2
    """
    recorder = Recorder()
    results: dict[int, int] = {}
    async with RpcRuntime() as runtime:
        instance = await runtime.load(sdk_request(tmp_path, recorder, body))

        async def one(i: int) -> None:
            results[i] = await instance.call("gather", [i])

        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(one, i)
    assert results == {i: i * 2 for i in range(50)}


async def test_a_health_check_is_sent_beside_calls_taking_every_slot_of_max_concurrency(tmp_path: Path) -> None:
    # A plugin serving as many calls as it takes is busy, not unhealthy.
    body = """
    async def hold(self):
        log.warning("holding")
        await asyncio.Event().wait()
    """
    recorder = Recorder()
    async with RpcRuntime(stop_grace_seconds=0.5) as runtime:
        instance = await runtime.load(sdk_request(tmp_path, recorder, body,
                                                  limits=Limits(timeout_seconds=30.0, max_concurrency=1)))
        async with anyio.create_task_group() as tg:
            tg.start_soon(instance.call, "hold")
            await recorder.wait_for(lambda r: r.message == "holding")
            with anyio.fail_after(10):  # a guard against a hang: behind the slot it would wait 30 s
                await instance.health()
            tg.cancel_scope.cancel()


async def test_deadline_then_the_plugin_still_serves(tmp_path: Path) -> None:
    body = """
    def block(self):
        log.warning("blocking")
        threading.Event().wait()

    async def hang(self):
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            log.warning("hang was cancelled")
            raise

    def echo(self, value):
        return value
    """
    recorder = Recorder()
    async with RpcRuntime(stop_grace_seconds=0.5) as runtime:
        instance = await runtime.load(sdk_request(tmp_path, recorder, body, limits=Limits(timeout_seconds=0.3)))
        with pytest.raises(PluginTimeoutError, match="block did not answer within 0.3s"):
            await instance.call("block")
        assert await instance.call("echo", ["still here"]) == "still here"
        with pytest.raises(PluginTimeoutError):
            await instance.call("hang")
        await recorder.wait_for(lambda r: r.message == "hang was cancelled")  # $/cancel arrived
        assert await instance.call("echo", [1]) == 1


async def test_plugin_exception_carries_type_message_and_traceback(tmp_path: Path) -> None:
    body = """
    def fail(self, track):
        raise LookupError(f"no such track: {track}")
    """
    recorder = Recorder()
    async with RpcRuntime() as runtime:
        instance = await runtime.load(sdk_request(tmp_path, recorder, body))
        with pytest.raises(RemoteError) as caught:
            await instance.call("fail", ["t1"])
        error = caught.value
        assert error.remote_type == "LookupError"
        assert error.remote_message == "no such track: t1"
        assert 'raise LookupError(f"no such track: {track}")' in error.remote_traceback
        assert "fail raised LookupError: no such track: t1" in str(error)
        logged = await recorder.wait_for(lambda r: r.stream == "rpc")
        assert logged.level is LogLevel.ERROR and "LookupError" in logged.fields["traceback"]
        with pytest.raises(PluginRuntimeError, match="no method '_private'") as missing:
            await instance.call("_private")
        assert missing.value.reason == "MethodNotFound"


# --- handshake failures -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "says"),
    [
        ("print('hello world', flush=True)\nsys.stdin.read()", "not an mfx handshake"),
        ("print('2|1|unix|/tmp/x.sock|jsonrpc', flush=True)\nsys.stdin.read()", "speaks core protocol 2"),
        ("sys.stderr.write('ERROR cannot open the database\\n')\nsys.exit(3)", "exited with code 3 before the handshake"),
    ],
    ids=["garbage", "wrong-core-protocol", "exits-at-once"],
)
async def test_handshake_failures_are_clear(tmp_path: Path, script: str, says: str) -> None:
    directory = tmp_path / "plugin"
    directory.mkdir()
    (directory / "plugin.py").write_text("import sys\n" + script + "\n")
    recorder = Recorder()
    async with RpcRuntime() as runtime:
        with pytest.raises(HandshakeError, match=says) as caught:
            await runtime.load(request(tmp_path, recorder, entry_point="python plugin.py", plugin_dir=directory))
    if "exits" in says:
        assert "cannot open the database" in str(caught.value)  # the last stderr lines
    assert psutil.Process().children() == []


async def test_handshake_timeout(tmp_path: Path) -> None:
    directory = tmp_path / "plugin"
    directory.mkdir()
    (directory / "plugin.py").write_text("import sys\nsys.stderr.write('thinking\\n')\nsys.stdin.read()\n")
    recorder = Recorder()
    async with RpcRuntime() as runtime:
        with pytest.raises(HandshakeError, match="no handshake line on stdout within 0.5s") as caught:
            await runtime.load(
                request(tmp_path, recorder, entry_point="python plugin.py", plugin_dir=directory, start_timeout=0.5)
            )
    assert "thinking" in str(caught.value) or "stderr was empty" in str(caught.value)
    assert psutil.Process().children() == []


async def test_printing_on_stdout_before_serve_fails_the_handshake(tmp_path: Path) -> None:
    directory = tmp_path / "plugin"
    directory.mkdir()
    (directory / "plugin.py").write_text(
        "from mfx.sdk import Plugin, serve\nprint('loading my plugin...')\nserve(Plugin())\n"
    )
    recorder = Recorder()
    async with RpcRuntime() as runtime:
        with pytest.raises(HandshakeError, match="print nothing on stdout before serve") as caught:
            await runtime.load(request(tmp_path, recorder, entry_point="python plugin.py", plugin_dir=directory))
    assert "loading my plugin" in str(caught.value)


async def test_stdout_after_the_handshake_is_a_warning(tmp_path: Path) -> None:
    body = """
    def chatty(self):
        print("debug print from a plugin", flush=True)
        return True
    """
    recorder = Recorder()
    async with RpcRuntime() as runtime:
        instance = await runtime.load(sdk_request(tmp_path, recorder, body))
        assert await instance.call("chatty") is True
        record = await recorder.wait_for(lambda r: r.stream == "stdout")
        assert record.level is LogLevel.WARNING and "debug print from a plugin" in record.message


# --- broken protocol ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ("conn.sendall(b'[' + b'1,' * (600 * 1024) + b'1]\\n')", "maximum"),
        ("conn.sendall(b'{not json\\n')", "not valid JSON"),
    ],
    ids=["oversized", "malformed"],
)
async def test_bad_messages_break_the_instance(tmp_path: Path, answer: str, says: str) -> None:
    recorder = Recorder()
    limits = Limits(timeout_seconds=30.0, max_message_bytes=1024 * 1024)
    async with RpcRuntime() as runtime:
        instance = await runtime.load(raw_request(tmp_path, recorder, answer, limits=limits))
        pid = instance.pid
        with pytest.raises(ProtocolError, match=says):
            await instance.call("anything")
        with anyio.fail_after(30):
            await recorder.exited.wait()
        assert says in recorder.exits[0]
        with pytest.raises(PluginCrashedError):
            await instance.call("anything")
    assert_reaped(pid)


async def test_oversized_requests_and_answers_are_refused_before_sending(tmp_path: Path) -> None:
    body = """
    def big(self, size):
        return "x" * size

    def echo(self, value):
        return value
    """
    recorder = Recorder()
    limits = Limits(timeout_seconds=30.0, max_message_bytes=1024)
    async with RpcRuntime() as runtime:
        instance = await runtime.load(sdk_request(tmp_path, recorder, body, limits=limits))
        with pytest.raises(ProtocolError, match="not sent"):
            await instance.call("echo", ["x" * 2048])
        with pytest.raises(ProtocolError, match="maxMessageSize"):  # the plugin refuses a big answer
            await instance.call("big", [2048])
        assert await instance.call("echo", ["small"]) == "small"  # neither broke the connection


async def test_large_messages_cross_many_reads_both_ways(tmp_path: Path) -> None:
    body = """
    def big(self, size):
        return "y" * size

    def echo(self, value):
        return value
    """
    recorder = Recorder()
    async with RpcRuntime() as runtime:
        instance = await runtime.load(sdk_request(tmp_path, recorder, body))
        payload = "".join(chr(ord("a") + i % 26) for i in range(700_000))  # many 64 KiB reads
        results: dict[int, Any] = {}

        async def call(index: int) -> None:
            if index % 2:
                results[index] = await instance.call("echo", [payload])
            else:
                results[index] = await instance.call("big", [300_000 + index])

        async with anyio.create_task_group() as tg:
            for index in range(6):  # answers interleave with one another in the reads
                tg.start_soon(call, index)
        for index, value in results.items():
            assert value == (payload if index % 2 else "y" * (300_000 + index))


# --- logs, crashes, stopping --------------------------------------------------------------


async def test_stderr_is_forwarded_with_levels(tmp_path: Path) -> None:
    body = """
    def speak(self):
        sys.stderr.write("ERROR: disk on fire\\n")
        sys.stderr.write("[warning] running low\\n")
        sys.stderr.write('{"level": "debug", "msg": "details", "track": 7}\\n')
        log.warning("through logging")
        sys.stderr.write("plain words\\n")
        sys.stderr.flush()
    """
    recorder = Recorder()
    async with RpcRuntime() as runtime:
        instance = await runtime.load(sdk_request(tmp_path, recorder, body))
        await instance.call("speak")
        await recorder.wait_for(lambda r: r.message == "plain words")
    seen = {r.message: (r.level, dict(r.fields)) for r in recorder.records if r.stream == "stderr"}
    assert seen["disk on fire"] == (LogLevel.ERROR, {})
    assert seen["running low"] == (LogLevel.WARNING, {})
    assert seen["details"] == (LogLevel.DEBUG, {"track": 7})
    assert seen["through logging"] == (LogLevel.WARNING, {})
    assert seen["plain words"] == (LogLevel.INFO, {})


async def test_a_crash_is_noticed_and_fails_pending_calls(tmp_path: Path) -> None:
    body = """
    def block(self):
        log.warning("blocking")
        threading.Event().wait()
    """
    recorder = Recorder()
    outcome: list[BaseException] = []
    async with RpcRuntime() as runtime:
        instance = await runtime.load(sdk_request(tmp_path, recorder, body))

        async def pending_call() -> None:
            try:
                await instance.call("block")
            except PluginCrashedError as exc:
                outcome.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(pending_call)
            await recorder.wait_for(lambda r: r.message == "blocking")
            os.kill(instance.pid, signal.SIGKILL)
            with anyio.fail_after(30):
                await recorder.exited.wait()
        assert "killed by SIGKILL (9)" in recorder.exits[0]
        assert len(outcome) == 1 and "SIGKILL" in str(outcome[0])
        with pytest.raises(PluginCrashedError):
            await instance.health()
        assert instance.state is InstanceState.EXITED
        assert_reaped(instance.pid)


async def test_a_plugin_ignoring_stop_and_sigterm_is_killed(tmp_path: Path) -> None:
    body = """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # and never answers anything
    """
    recorder = Recorder()
    async with RpcRuntime(stop_grace_seconds=0.3, term_grace_seconds=0.3) as runtime:
        instance = await runtime.load(raw_request(tmp_path, recorder, body))
        pid = instance.pid
        await instance.stop()
        assert instance.returncode == -signal.SIGKILL
    assert_reaped(pid)
    messages = [r.message for r in recorder.records if r.stream == "controller"]
    assert any("SIGTERM" in m for m in messages) and any("SIGKILL" in m for m in messages)
    assert recorder.exits == []


DAEMON = """
import sys
from pathlib import Path
import anyio
from mfx.runtimes.base import LoadRequest, PluginType
from mfx.runtimes.rpc import RpcRuntime

async def main():
    async with RpcRuntime() as runtime:
        instance = await runtime.load(LoadRequest(
            name="orphan", version="0.1.0", type=PluginType.RPC, entry_point="python -m hello_rpc",
            plugin_dir=Path(sys.argv[1]), state_dir=Path(sys.argv[2])))
        print(instance.pid, instance.details["socket"], runtime.zygote_pid, flush=True)
        await anyio.sleep_forever()

anyio.run(main)
"""


def test_plugin_dies_with_a_killed_daemon(tmp_path: Path) -> None:
    daemon = subprocess.Popen(
        [sys.executable, "-c", DAEMON, str(HELLO), str(tmp_path / "state")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert daemon.stdout is not None
        pid_text, socket_path, zygote_text = daemon.stdout.readline().split()
        plugin = psutil.Process(int(pid_text))
        assert plugin.ppid() == daemon.pid
        zygote = psutil.Process(int(zygote_text))  # forked the plugin; a child of the daemon too
        assert zygote.ppid() == daemon.pid
    finally:
        daemon.kill()
        daemon.wait(timeout=30)
    for process, what in ((plugin, "the plugin"), (zygote, "the zygote")):
        # Reaping the orphan is init's job: "exited" means gone or a zombie.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if process.status() == psutil.STATUS_ZOMBIE:
                    break
                process.wait(timeout=0.1)
                break
            except psutil.TimeoutExpired:
                continue
            except psutil.NoSuchProcess:
                break
        else:
            process.kill()
            raise AssertionError(f"{what} outlived its daemon")
    import shutil

    shutil.rmtree(Path(socket_path).parent, ignore_errors=True)


async def test_memory_limit_makes_a_hungry_plugin_fail_clearly(tmp_path: Path) -> None:
    body = """
    def hog(self):
        return len(bytearray(512 * 1024 * 1024))

    def echo(self, value):
        return value
    """
    recorder = Recorder()
    limits = Limits(timeout_seconds=30.0, memory_bytes=128 * 1024 * 1024)
    async with RpcRuntime() as runtime:
        instance = await runtime.load(sdk_request(tmp_path, recorder, body, limits=limits))
        with pytest.raises(MemoryLimitExceededError, match="out of memory; its limit is 128Mi") as caught:
            await instance.call("hog")
        assert isinstance(caught.value, RemoteError) and caught.value.remote_type == "MemoryError"
        assert await instance.call("echo", ["alive"]) == "alive"


# --- the zygote: forked plugins behave like exec'd ones ----------------------------------

WORLD_BODY = """
def world(self):
    import resource
    main = sys.modules["__main__"]
    return {
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "argv": sys.argv,
        "path_head": sys.path[:2],
        "main_file": getattr(main, "__file__", None),
        "session_leader": os.getsid(0) == os.getpid(),
        "group_leader": os.getpgid(0) == os.getpid(),
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
        "address_space": resource.getrlimit(resource.RLIMIT_AS),
        "stdin_is_pipe": os.path.realpath(f"/proc/self/fd/0").startswith("pipe:")
            or os.readlink("/proc/self/fd/0").startswith("pipe:"),
        "parent": os.getppid(),
    }
"""


@pytest.mark.parametrize("entry", ["script", "module"])
async def test_forked_and_exec_plugins_see_the_same_world(
    tmp_path: Path, entry: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MFX_TEST_DAEMON_SECRET", "must not reach plugins")
    entry_point = write_plugin(tmp_path, SDK_PLUGIN, WORLD_BODY, name="worldplugin.py")
    if entry == "module":
        entry_point = "python -m worldplugin extra-arg"
    limits = Limits(timeout_seconds=30.0, memory_bytes=512 * 1024 * 1024, open_files=200)
    seen: dict[str, dict[str, Any]] = {}
    for use_zygote in (True, False):
        recorder = Recorder()
        load = request(tmp_path, recorder, entry_point=entry_point, plugin_dir=tmp_path / "plugin", limits=limits)
        async with RpcRuntime(zygote=use_zygote) as runtime:
            instance = await runtime.load(load)
            assert instance.details["spawn"] == ("zygote" if use_zygote else "exec")
            world = await instance.call("world")
            assert world["parent"] == os.getpid()  # the daemon's own child either way
            pid = instance.pid
        assert_reaped(pid)
        world["env"].pop("MFX_PLUGIN_SOCKET_DIR")  # a fresh private directory each time
        seen["zygote" if use_zygote else "exec"] = world
    forked, execd = seen["zygote"], seen["exec"]
    assert "MFX_TEST_DAEMON_SECRET" not in forked["env"]
    assert forked["env"]["HOME"] == str(tmp_path / "state") == forked["cwd"]
    assert forked["nofile"] == [200, 200] and forked["address_space"] == [512 * 1024 * 1024] * 2
    assert forked["session_leader"] and forked["group_leader"] and forked["stdin_is_pipe"]
    if entry == "module":
        assert forked["argv"] == [str(tmp_path / "plugin" / "worldplugin.py"), "extra-arg"]
    # Exec adds nothing the fork lacks, and the other way round (MALLOC_ARENA_MAX is fixed
    # in the zygote's malloc for all plugins, so a forked plugin need not carry it).
    assert forked == execd


async def test_a_plugin_with_its_own_interpreter_settings_is_started_with_exec(tmp_path: Path) -> None:
    import dataclasses

    recorder = Recorder()
    load = dataclasses.replace(request(tmp_path, recorder), env={"PYTHONDONTWRITEBYTECODE": "1"})
    async with RpcRuntime() as runtime:
        instance = await runtime.load(load)
        assert instance.details["spawn"] == "exec"  # read at interpreter start: a fork cannot honour it
        await instance.initialize({})
        await instance.start()
        await instance.health()


async def test_plugins_still_start_after_the_zygote_dies(tmp_path: Path) -> None:
    recorder = Recorder()
    async with RpcRuntime() as runtime:
        first = await runtime.load(request(tmp_path, recorder, name="first"))
        assert first.details["spawn"] == "zygote"
        zygote_pid = runtime.zygote_pid
        assert zygote_pid is not None
        os.kill(zygote_pid, signal.SIGKILL)
        second = await runtime.load(request(tmp_path, recorder, name="second"))
        third = await runtime.load(request(tmp_path, recorder, name="third"))
        assert third.details["spawn"] == "zygote" and runtime.zygote_pid not in (None, zygote_pid)
        for instance in (first, second, third):  # the zygote's death touched no plugin
            await instance.initialize({})
            await instance.start()
            await instance.health()
        assert recorder.exits == []
    assert_reaped(zygote_pid)
    assert psutil.Process().children() == []
