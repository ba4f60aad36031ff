"""Whatever an ``rpc`` plugin starts dies with it: when it is stopped, when it crashes (and
is restarted), when the daemon is stopped with SIGTERM and when the daemon is SIGKILLed.

The plugin here starts ``sleep 3600`` before it serves and reports its pid; every test waits
for that grandchild to be gone, as a condition on the process (psutil), never on a sleep."""

from __future__ import annotations

import contextlib
import os
import signal
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import psutil
import pytest
import yaml

from mfx.runtimes.rpc import RpcRuntime
from tests.daemon_harness import SubprocessDaemon, run_cli
from tests.test_rpc_runtime import Recorder, request

GONE_WITHIN_SECONDS = 60.0
NAME = "spawner"

SPAWNER = """
import os, subprocess
from mfx.sdk import Plugin, serve

grandchild = subprocess.Popen(["sleep", "3600"], stdin=subprocess.DEVNULL)
# Written before the handshake, so it exists once the plugin is up (Ready).
pid_file = os.path.join(os.environ["HOME"], "grandchild.pid")
with open(pid_file + ".tmp", "w") as out:
    out.write(str(grandchild.pid))
os.replace(pid_file + ".tmp", pid_file)

class Spawner(Plugin):
    def grandchild(self):
        return grandchild.pid

serve(Spawner())
"""


def spawner_dir(base: Path) -> Path:
    directory = base / NAME
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "spawner.py").write_text(textwrap.dedent(SPAWNER))
    return directory


def wait_gone(process: psutil.Process) -> None:
    """Until the process has ended (a zombie nobody reaped counts as ended)."""
    deadline = time.monotonic() + GONE_WITHIN_SECONDS
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return
            process.wait(timeout=0.2)
            return
        except psutil.TimeoutExpired:
            continue
        except psutil.NoSuchProcess:
            return
    process.kill()
    raise AssertionError(f"process {process.pid} ({' '.join(process.cmdline())}) outlived its plugin")


@contextlib.contextmanager
def killed_at_the_end(pid: int) -> Iterator[psutil.Process]:
    """The grandchild, killed whatever the test's outcome so no sleep outlives the test."""
    process = psutil.Process(pid)
    assert process.cmdline() == ["sleep", "3600"]
    try:
        yield process
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


# --- the runtime: stop and crash ---------------------------------------------------------


@pytest.mark.anyio
async def test_stopping_a_plugin_kills_what_it_started(tmp_path: Path) -> None:
    recorder = Recorder()
    async with RpcRuntime() as runtime:
        instance = await runtime.load(request(
            tmp_path, recorder, entry_point="python spawner.py", plugin_dir=spawner_dir(tmp_path)))
        await instance.initialize({})
        await instance.start()
        with killed_at_the_end(await instance.call("grandchild")) as grandchild:
            await instance.stop()
            await anyio.to_thread.run_sync(wait_gone, grandchild)
            await instance.cleanup()


@pytest.mark.anyio
async def test_a_crashed_plugin_takes_what_it_started_with_it(tmp_path: Path) -> None:
    recorder = Recorder()
    async with RpcRuntime() as runtime:
        plugin_dir = spawner_dir(tmp_path)
        instance = await runtime.load(request(
            tmp_path, recorder, entry_point="python spawner.py", plugin_dir=plugin_dir))
        with killed_at_the_end(await instance.call("grandchild")) as grandchild:
            os.kill(instance.pid, signal.SIGKILL)
            with anyio.fail_after(30):
                await recorder.exited.wait()
            await anyio.to_thread.run_sync(wait_gone, grandchild)
            # The restart gets a group of its own; the new grandchild is alive and well.
            again = await runtime.load(request(
                tmp_path, Recorder(), entry_point="python spawner.py", plugin_dir=plugin_dir))
            with killed_at_the_end(await again.call("grandchild")) as second:
                assert second.is_running()
                await again.cleanup()
                await anyio.to_thread.run_sync(wait_gone, second)


# --- the daemon: SIGTERM and SIGKILL ----------------------------------------------------------


def manifest() -> str:
    return yaml.safe_dump({
        "apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest",
        "metadata": {"name": NAME},
        "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python spawner.py"},
    })


@contextlib.contextmanager
def daemon_with_spawner(tmp_path: Path) -> Iterator[tuple[SubprocessDaemon, psutil.Process]]:
    home = tmp_path / "home"
    daemon = SubprocessDaemon(home, "--plugin-path", str(tmp_path / "plugins"))
    spawner_dir(tmp_path / "plugins")
    daemon.start()
    try:
        applied = run_cli(home, "apply", "-f", "-", input=manifest())
        assert applied.exit_code == 0, applied.output
        ready = run_cli(home, "wait", "--for=condition=Ready", f"pm/{NAME}", "--timeout=60s")
        assert ready.exit_code == 0, ready.output
        pid = int((home / "state" / NAME / "grandchild.pid").read_text())
        with killed_at_the_end(pid) as grandchild:
            yield daemon, grandchild
    finally:
        daemon.stop(signal.SIGKILL)


def test_a_daemon_stopped_with_sigterm_leaves_no_plugin_children(tmp_path: Path) -> None:
    with daemon_with_spawner(tmp_path) as (daemon, grandchild):
        assert daemon.stop(signal.SIGTERM, timeout=60) == 0
        wait_gone(grandchild)


def test_a_sigkilled_daemon_leaves_no_plugin_children(tmp_path: Path) -> None:
    with daemon_with_spawner(tmp_path) as (daemon, grandchild):
        daemon.stop(signal.SIGKILL, timeout=60)
        wait_gone(grandchild)
