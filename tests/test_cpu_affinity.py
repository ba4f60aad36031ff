"""The daemon's interpreter threads (and its native plugin call threads) share one CPU; its
child processes (plugin processes, the audio engine, git) keep every CPU it was given
(mfx.cpu_affinity), and the threads move when other work takes their CPU (mfx.cpu_watch).
Read from the kernel: /proc/.../status Cpus_allowed_list."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from mfx import cpu_affinity
from mfx.cpu_affinity import CpuAffinity
from mfx.cpu_watch import CpuReading, idler_cpu
from mfx.engine.paths import EnginePaths
from mfx.engine.spawn import spawn_engine
from mfx.runtimes.call_thread import PluginThread
from mfx.server.services import default_services
from mfx.store.plugin_logs import PluginLogStore
from tests.daemon_harness import ThreadDaemon, run_cli
from tests.plugin_fixtures import apply, get, manifest, plugin_root, wait_ready

T = TypeVar("T")
ALLOWED = frozenset(os.sched_getaffinity(0))
pytestmark = pytest.mark.skipif(len(ALLOWED) < 2, reason="pinning needs a machine with two CPUs or more")

SERVICE = """
from mfx.sdk import Plugin, PluginInfo, serve


class Service(Plugin):
    info = PluginInfo(name="svc", version="1.0.0", description="answers health checks")

    def health(self):
        return {"ok": True}


serve(Service())
"""
PRINT_CPUS = "import os; print(sorted(os.sched_getaffinity(0)))"


def cpus(status: Path) -> frozenset[int]:
    """The CPUs in a /proc status file's Cpus_allowed_list ("0-1,3")."""
    for line in status.read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            found: set[int] = set()
            for part in line.split(":", 1)[1].strip().split(","):
                low, _, high = part.partition("-")
                found.update(range(int(low), int(high or low) + 1))
            return frozenset(found)
    raise AssertionError(f"no Cpus_allowed_list in {status}")


def thread_cpus(native_id: int) -> frozenset[int]:
    return cpus(Path(f"/proc/self/task/{native_id}/status"))


def on_a_pinned_thread(fn: Callable[[CpuAffinity], T]) -> T:
    """``fn(cpu)`` on a new thread pinned as a daemon pins its event loop, with ``cpu`` in
    effect (``cpu_affinity.current()``); a thread of its own, so pinning never touches the
    test runner's thread."""
    result: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        cpu = CpuAffinity.choose(pin=True)
        cpu.pin()
        try:
            with cpu_affinity.in_effect(cpu):
                result.append(fn(cpu))
        except BaseException as exc:
            errors.append(exc)
        finally:
            cpu.release()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


def child_cpus() -> frozenset[int]:
    printed = subprocess.run([sys.executable, "-c", PRINT_CPUS], capture_output=True, text=True, check=True)
    return frozenset(json.loads(printed.stdout))


def test_a_pinned_thread_runs_on_one_cpu_and_spawns_children_on_all_of_them() -> None:
    def pinned(cpu: CpuAffinity) -> tuple[frozenset[int], frozenset[int], frozenset[int], frozenset[int], CpuAffinity]:
        before = frozenset(os.sched_getaffinity(0))
        inherited = child_cpus()  # what a child gets without asking: the thread's CPUs
        with cpu_affinity.spawning():
            spawned = child_cpus()
        after = frozenset(os.sched_getaffinity(0))
        return before, inherited, spawned, after, cpu

    before, inherited, spawned, after, cpu = on_a_pinned_thread(pinned)
    assert cpu.shared in ALLOWED and cpu.allowed == ALLOWED
    assert before == after == inherited == {cpu.shared}
    assert spawned == ALLOWED


def test_spawns_that_overlap_on_one_event_loop_leave_it_pinned_only_once_the_last_ends() -> None:
    async def overlapping() -> list[frozenset[int]]:
        seen: list[frozenset[int]] = []
        first_in, second_in, first_out = asyncio.Event(), asyncio.Event(), asyncio.Event()

        async def first() -> None:
            with cpu_affinity.spawning():
                first_in.set()
                await second_in.wait()
            first_out.set()

        async def second() -> None:
            await first_in.wait()
            with cpu_affinity.spawning():
                second_in.set()
                await first_out.wait()
                seen.append(frozenset(os.sched_getaffinity(0)))  # the first has left, this one not
            seen.append(frozenset(os.sched_getaffinity(0)))

        await asyncio.gather(first(), second())
        return seen

    seen, cpu = on_a_pinned_thread(lambda cpu: (asyncio.run(overlapping()), cpu))
    assert seen == [ALLOWED, {cpu.shared}]


def test_a_native_plugin_call_thread_stays_on_the_interpreter_cpu() -> None:
    """Each call is a hand-off with its caller: on one CPU it is a plain switch."""
    async def ask() -> frozenset[int] | None:
        thread = PluginThread("native", "clib")  # started from the pinned thread, as the loop starts it
        try:  # asked on the plugin's own thread, as its native calls run
            _, value = await thread.run(10.0, 0.002, lambda: frozenset(os.sched_getaffinity(0)))
            return value
        finally:
            thread.close()

    shared, native = on_a_pinned_thread(lambda cpu: (cpu.shared, asyncio.run(ask())))
    assert native == {shared}


def test_the_plugin_logs_writer_thread_runs_on_every_cpu(tmp_path: Path) -> None:
    """Its work is file-system calls (a first start creates a log file per plugin): kernel
    work that need not take the interpreter's CPU."""
    def started(cpu: CpuAffinity) -> tuple[frozenset[int], frozenset[int]]:
        logs = PluginLogStore(tmp_path)
        with logs.background_writes():
            [writer] = [t for t in threading.enumerate() if t.name.startswith("mfx-plugin-logs:")]
            return thread_cpus(writer.native_id or 0), frozenset(os.sched_getaffinity(0))

    writer, appender = on_a_pinned_thread(started)
    assert writer == ALLOWED
    assert len(appender) == 1


def test_the_audio_engine_and_git_are_started_on_every_cpu(tmp_path: Path) -> None:
    from controllers.git_fetch import GitRepository

    def spawned(cpu: CpuAffinity) -> tuple[frozenset[int], str]:
        engine = spawn_engine(EnginePaths(tmp_path / "home"), env=dict(os.environ), idle_exit=60.0)
        try:
            engine_cpus = cpus(Path(f"/proc/{engine.pid}/status"))
        finally:
            engine.kill()
            engine.wait()
        # A git alias runs a shell as git's child: it reports the CPUs git was given.
        repository = GitRepository(tmp_path, "file:///nowhere")
        _, out, _ = asyncio.run(repository._git(
            "-c", "alias.cpus=!grep Cpus_allowed_list /proc/$$/status", "cpus", cwd=tmp_path))
        return engine_cpus, out.decode()

    engine_cpus, git_says = on_a_pinned_thread(spawned)
    assert engine_cpus == ALLOWED
    status = tmp_path / "git-status"
    status.write_text(git_says)
    assert cpus(status) == ALLOWED


@pytest.fixture
def pinned_daemon(tmp_path: Path) -> Iterator[tuple[Path, ThreadDaemon]]:
    home = tmp_path / "home"
    home.mkdir()
    root = plugin_root(tmp_path, "inproc")
    (root / "svc").mkdir()
    (root / "svc" / "svc.py").write_text(SERVICE)
    # Its CPU watch does not move the threads while the test reads where they are.
    daemon = ThreadDaemon(home, services=default_services(), plugin_paths=[root], pin_interpreter_threads=True,
                          cpu_watch_seconds=3600.0)
    with daemon.running():
        yield home, daemon


def test_a_daemon_runs_its_interpreter_threads_on_one_cpu_and_its_plugin_processes_on_all(
        pinned_daemon: tuple[Path, ThreadDaemon]) -> None:
    home, daemon = pinned_daemon
    apply(home, manifest("inproc"), {
        "apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest", "metadata": {"name": "svc"},
        "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python svc.py"}})
    wait_ready(home, "inproc", "svc")
    pid = get(home, "svc")["status"]["runtime"]["pid"]
    assert cpus(Path(f"/proc/{pid}/status")) == ALLOWED

    loop_thread = daemon.call(lambda: threading.get_native_id())
    shared = thread_cpus(loop_thread)
    assert len(shared) == 1
    interpreter = [t for t in threading.enumerate()
                   if t.name.startswith(("mfx-store:", "mfx-python-plugins-"))]
    assert {t.name.split("-")[1] for t in interpreter} >= {"store:state.db", "python"}
    assert {t.name: thread_cpus(t.native_id or 0) for t in interpreter} == {t.name: shared for t in interpreter}
    [log_writer] = [t for t in threading.enumerate() if t.name.startswith("mfx-plugin-logs:")]
    assert thread_cpus(log_writer.native_id or 0) == ALLOWED
    # The test runner's own thread was never moved.
    assert frozenset(os.sched_getaffinity(0)) == ALLOWED
    result = run_cli(home, "get", "pm")
    assert result.exit_code == 0 and "svc" in result.output


def test_a_daemon_embedded_in_a_program_leaves_its_threads_where_they_are(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with ThreadDaemon(home, services=default_services(), plugin_paths=[plugin_root(tmp_path, "p")]).running() as daemon:
        apply(home, manifest("p"))
        wait_ready(home, "p")
        assert thread_cpus(daemon.call(lambda: threading.get_native_id())) == ALLOWED


def test_moving_takes_every_interpreter_thread_and_later_spawns_come_back_to_the_new_cpu() -> None:
    def moved(cpu: CpuAffinity) -> tuple[frozenset[int], frozenset[int], frozenset[int], CpuAffinity]:
        started = threading.Event()
        done = threading.Event()
        seen: list[frozenset[int]] = []

        def worker() -> None:  # started from the pinned thread: an interpreter thread too
            started.set()
            done.wait(30)
            seen.append(frozenset(os.sched_getaffinity(0)))

        other = threading.Thread(target=worker)
        other.start()
        started.wait(30)
        target = next(c for c in sorted(cpu.allowed) if c != cpu.shared)
        assert cpu.move_to(target) >= 2
        here = frozenset(os.sched_getaffinity(0))
        with cpu_affinity.spawning():
            pass
        after_spawn = frozenset(os.sched_getaffinity(0))
        done.set()
        other.join(30)
        return here, after_spawn, seen[0], cpu

    here, after_spawn, worker_cpus, cpu = on_a_pinned_thread(moved)
    assert here == after_spawn == worker_cpus == {cpu.shared}


def test_the_watch_moves_only_for_other_work_and_only_to_an_idler_cpu() -> None:
    cpu = CpuAffinity(frozenset({0, 1}), 0)
    before = CpuReading({0: 100.0, 1: 100.0}, ours=10.0)
    # 2 s: CPU 0 busy 1.8 s of which the daemon ran 0.3 s; CPU 1 busy 0.2 s.
    assert idler_cpu(cpu, before, CpuReading({0: 101.8, 1: 100.2}, ours=10.3), 2.0) == 1
    # CPU 0 as busy, but with the daemon's own work: stay.
    assert idler_cpu(cpu, before, CpuReading({0: 101.8, 1: 100.2}, ours=11.7), 2.0) is None
    # Other work on CPU 0, but CPU 1 as busy: stay.
    assert idler_cpu(cpu, before, CpuReading({0: 101.8, 1: 101.6}, ours=10.3), 2.0) is None
    assert idler_cpu(CpuAffinity(frozenset({0, 1})), before, CpuReading({0: 102.0, 1: 100.0}, ours=10.0), 2.0) is None


def test_a_daemon_whose_cpu_another_program_takes_moves_its_interpreter_threads(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    daemon = ThreadDaemon(home, services=default_services(), plugin_paths=[plugin_root(tmp_path, "p")],
                          pin_interpreter_threads=True, cpu_watch_seconds=0.2)
    with daemon.running():
        apply(home, manifest("p"))
        wait_ready(home, "p")
        loop_thread = daemon.call(lambda: threading.get_native_id())
        (taken,) = thread_cpus(loop_thread)
        # A program pinned to that CPU, busy all the time (as a second daemon that chose it too).
        hog = subprocess.Popen([sys.executable, "-c", f"import os\nos.sched_setaffinity(0, {{{taken}}})\nwhile True: pass"])
        try:
            pause, give_up = threading.Event(), time.monotonic() + 120  # a bound for a broken watch, not a timing
            while thread_cpus(loop_thread) == {taken} and hog.poll() is None and time.monotonic() < give_up:
                pause.wait(0.05)
        finally:
            hog.kill()
            hog.wait()
        (now,) = thread_cpus(loop_thread)
        assert now != taken and now in ALLOWED
        store_threads = [t for t in threading.enumerate() if t.name.startswith("mfx-store:")]
        assert store_threads and all(thread_cpus(t.native_id or 0) == {now} for t in store_threads)
        result = run_cli(home, "get", "pm", "p")
        assert result.exit_code == 0, result.output
