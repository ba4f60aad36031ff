"""``EngineSupervisor``: the daemon's hold on the engine process of its home.

On start it adopts the engine already serving the home (a daemon restarted or upgraded
while the music played), else it starts one. Then it watches it: when the engine goes away
(a crash, a SIGKILL) it starts a new one and brings it back to what the daemon had asked
for, as the client mirrored it: sinks, plugins, volume, processors, fade, and the current
track reopened at the frame it had reached (its last report extrapolated to the moment the
engine was lost), paused or playing, with its look-ahead. Each start is an
``EngineRestarted`` event on the client ("Started", "Adopted", "Crashed"), told once the new
engine is restored and calls go to it (the restored engine's own events may still arrive
after it); ``restarts`` counts the crashes recovered from. While no engine is attached,
calls on the client wait for one (``EngineClient.connect_wait``).

A connected engine is asked for its playback every ``WATCH_SECONDS``: that keeps the mirrored
position fresh, and an engine that stops answering (hung, its socket still open) is killed
and replaced like a crashed one.

Use::

    async with EngineSupervisor(home) as supervisor:
        engine = supervisor.client          # the AudioEngine
        ...
        await supervisor.stop(keep_running=True)   # an upgrade: the music plays on

Leaving the ``with`` without ``stop`` keeps the engine running.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import anyio
from anyio.abc import TaskStatus

from mfx.backoff import Backoff
from mfx.engine import protocol, sockets
from mfx.engine.api import PROTOCOL_VERSION, EngineInfo, EngineRestarted
from mfx.engine.client import EngineClient
from mfx.engine.connection import EngineConnection
from mfx.engine.lock import lock_holder
from mfx.engine.paths import EnginePaths
from mfx.engine.spawn import log_tail, spawn_engine
from mfx.errors import AudioError, MfxError
from mfx.task_group import TaskGroupOwner

log = logging.getLogger("mfx.engine.supervisor")

EXIT_ALREADY_RUNNING = 3  # mfx.engine.__main__: another engine holds the home's lock
POLL_SECONDS = 0.02  # while an engine starts or exits: how often its socket or lock is tried
RESTART_BACKOFF = Backoff(initial=0.1, cap=5.0)  # between failed attempts to reach an engine
STABLE_SECONDS = 10.0  # an engine that lived shorter failed: the next one waits a backoff
WATCH_SECONDS = 2.0  # how often a connected engine is asked for its playback
WATCH_TIMEOUT_SECONDS = 10.0
WATCH_MISSES = 2  # unanswered in a row: the engine is hung


class EngineSupervisor(TaskGroupOwner):
    def __init__(self, home: Path, *, client: EngineClient | None = None,
                 env: Mapping[str, str] | None = None, python: str = sys.executable,
                 idle_exit: float | None = None, start_timeout: float = 30.0,
                 backoff: Backoff = RESTART_BACKOFF, on_demand: bool = False) -> None:
        self.paths = EnginePaths(Path(home).expanduser().resolve())
        self.client = client or EngineClient()
        # The environment of the engines started from now on (ALSA_CONFIG_PATH and all).
        self.env: dict[str, str] = dict(os.environ if env is None else env)
        self.python = python
        self.idle_exit = idle_exit
        self.start_timeout = start_timeout
        self.backoff = backoff
        self.restarts = 0  # engines started after one was lost
        self.process: subprocess.Popen[bytes] | None = None  # the engine this supervisor started
        self._stopping = False
        self._started: float | None = None  # when the first engine was attached
        # Adopt an engine that runs already, but start none until a call needs one (the
        # first AudioSink, the first song): a daemon without audio runs no engine.
        self.on_demand = on_demand

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        try:
            await self.task_group().start(self._lives)
        except BaseException:
            self._stopping = True
            await super().__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        if not self._stopping:
            await self.stop(keep_running=True)
        return await super().__aexit__(*exc_info)

    @property
    def info(self) -> EngineInfo:
        return self.client.info

    async def stop(self, *, keep_running: bool, drain: bool = False) -> None:
        """Let go of the engine: ``keep_running`` leaves it playing (a daemon upgrade: the next
        daemon adopts it); otherwise it closes its sinks (``drain``: after playing what is
        buffered) and exits, and this returns once it has."""
        if self._stopping:
            return
        self._stopping = True
        if not keep_running and self.client.attached:
            pid = self.client.info.pid
            try:
                await self.client.shutdown(drain=drain)
            except MfxError as exc:
                log.warning("engine %d: shutdown: %s", pid, exc)
            await self._wait_gone(pid)
        elif not keep_running and self.process is not None and self.process.poll() is None:
            # Being started, not attached yet: it is ours, and it goes too.
            self.process.terminate()
            await self._wait_gone(self.process.pid)
        self.client.detach()
        self.client.closed = True
        if self.running:
            self.task_group().cancel_scope.cancel()

    # --- engine lives -------------------------------------------------------------------------

    async def _lives(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Reach an engine, serve through it until it is lost, start the next; forever.
        An engine lost soon after it started counts as a failure, so a crash loop backs off."""
        lost_at: float | None = None  # when the last engine was lost
        failures = 0
        if self.on_demand and not _listening(self.paths.socket):
            self.client.dormant = True
            task_status.started()
            await self.client.wanted.wait()
        first_try = time.monotonic()
        while not self._stopping:
            try:
                attached_at = await self._life(lost_at, task_status)
                lost_at = time.monotonic()
                failures = failures + 1 if lost_at - attached_at < STABLE_SECONDS else 0
            except (MfxError, OSError, BaseExceptionGroup) as raised:
                exc = _sole_failure(raised)
                self.client.detach()
                failures += 1
                if self._started is None and not self.on_demand and time.monotonic() - first_try > self.start_timeout:
                    raise AudioError(f"cannot start the audio engine for {self.paths.home}: {exc}") from exc
                log.warning("audio engine: %s", exc)
            await self._reap()
            if failures and not self._stopping:
                delay = self.backoff.delay(failures)
                log.info("reaching the audio engine again in %.2g s", delay)
                await anyio.sleep(delay)

    async def _life(self, lost_at: float | None, task_status: TaskStatus[None]) -> float:
        """One engine's life as seen from here: reach it, greet it, restore it when it
        replaces a lost one, serve until it is lost. Returns when it was attached."""
        adopted = await self._reach()
        async with EngineConnection(self.paths.socket, on_event=self.client.deliver) as connection:
            info = await self._greet(connection)
            if adopted:
                reason = "Adopted"
                if self._started is None:  # the daemon's first engine: take over what it holds
                    self.client.mirror.adopt(await connection.request("snapshot"))
            elif lost_at is None:
                reason = "Started"
            else:
                reason = "Crashed"
                await self._restore(connection, lost_at)
                self.restarts += 1
            self.client.attach(connection, info)
            attached_at = time.monotonic()
            self.client.deliver(EngineRestarted(info, reason, self._message(info, reason)))
            log.info("engine %d (%s) %s", info.pid, self.paths.home, reason.lower())
            if self._started is None:
                self._started = attached_at
                if not self.client.wanted.is_set():  # an on-demand start reported at once
                    task_status.started()
            async with anyio.create_task_group() as group:
                group.start_soon(self._watch, connection, info)
                await connection.closed.wait()
                group.cancel_scope.cancel()
            self.client.detach()
            if not self._stopping:
                log.warning("engine %d went away; starting another", info.pid)
        return attached_at

    async def _watch(self, connection: EngineConnection, info: EngineInfo) -> None:
        """Ask the engine for its playback now and then: the answer keeps the mirrored
        position fresh (a restart extrapolates from it), and an engine that stops answering
        (hung, not dead: its socket stays open) is killed, so that the next one is started."""
        misses = 0
        while True:
            await anyio.sleep(WATCH_SECONDS)
            with anyio.move_on_after(WATCH_TIMEOUT_SECONDS):
                try:
                    self.client.mirror.playback(await connection.request("playback"))
                except MfxError:
                    return  # lost: the connection says so by itself
                misses = 0
                continue
            misses += 1
            log.error("engine %d did not answer within %g s (%d times)", info.pid, WATCH_TIMEOUT_SECONDS, misses)
            if misses >= WATCH_MISSES and lock_holder(self.paths.lock) == info.pid:
                log.error("engine %d is hung: killing it to start another", info.pid)
                os.kill(info.pid, signal.SIGKILL)
                return

    async def _reach(self) -> bool:
        """Make sure an engine listens on the socket: True when one already did (adopted),
        False when this supervisor started it."""
        if _listening(self.paths.socket):
            return True
        self.process = spawn_engine(self.paths, env=self.env, python=self.python, idle_exit=self.idle_exit)
        process = self.process
        deadline = time.monotonic() + self.start_timeout
        while not _listening(self.paths.socket):
            code = process.poll()
            if code == EXIT_ALREADY_RUNNING:
                return True  # another supervisor's engine won the lock: use it
            if code is not None:
                raise AudioError(f"the audio engine exited at start (status {code}): "
                                 f"{log_tail(self.paths) or 'see ' + str(self.paths.log)}")
            if time.monotonic() > deadline:
                raise AudioError(f"the audio engine (pid {process.pid}) did not listen on "
                                 f"{self.paths.socket} within {self.start_timeout:g}s; see {self.paths.log}")
            await anyio.sleep(POLL_SECONDS)
        return False

    async def _greet(self, connection: EngineConnection) -> EngineInfo:
        await connection.request("subscribe")
        info: EngineInfo = await connection.request("hello")
        problem = None
        if info.protocol != PROTOCOL_VERSION:
            problem = f"speaks engine protocol {info.protocol}, this daemon {PROTOCOL_VERSION}"
        elif Path(info.home) != self.paths.home:
            problem = f"serves {info.home}, not {self.paths.home}"
        if problem is not None:
            # An engine of another mfx version (an upgrade): it goes, one of this version comes.
            log.warning("engine %d %s: asking it to exit", info.pid, problem)
            try:
                await connection.request("shutdown", protocol.ShutdownParams())
            except MfxError as exc:
                log.warning("engine %d: shutdown: %s", info.pid, exc)
            await self._wait_gone(info.pid)
            raise AudioError(f"the engine on {self.paths.socket} (pid {info.pid}) {problem}")
        return info

    async def _restore(self, connection: EngineConnection, lost_at: float) -> None:
        """Bring a new engine to what the daemon had asked of the lost one."""
        mirror = self.client.mirror
        # Taken first: the new engine's own reports (idle, nothing current) replace the
        # mirrored one as soon as it is configured.
        resume = mirror.resume_at(lost_at)

        async def call(method: str, params: object = None) -> Any:
            try:
                return await connection.request(method, params)
            except MfxError as exc:  # one part that fails does not keep the rest back
                log.warning("restoring the engine: %s: %s", method, exc)
                return None

        for config in list(mirror.sinks.values()):
            await call("configure_sink", protocol.ConfigureSinkParams(config))
        if mirror.plugins:
            await call("load_plugins", protocol.LoadPluginsParams(tuple(mirror.plugins)))
        await call("set_volume", protocol.VolumeParams(mirror.volume, mirror.muted))
        if mirror.processors:
            await call("set_processors", protocol.ProcessorsParams(tuple(mirror.processors)))
        if mirror.fade_seconds is not None:
            await call("set_fade", protocol.FadeParams(mirror.fade_seconds))
        if resume is None:
            return
        for request in [resume.request, *resume.queued]:
            mirror.opened(request)
            if await call("open_track", protocol.OpenTrackParams(request)) is None:
                return
        await connection.request("play", protocol.PlayParams(resume.request.label, resume.sink, resume.paused))
        mirror.handed_over(resume.request.label)
        for request in resume.queued:
            await call("enqueue", protocol.LabelParams(request.label))
            mirror.handed_over(request.label)
        log.info("engine restored: %s %s at frame %d", "paused" if resume.paused else "playing",
                 resume.request.label, resume.request.start_frame)

    def _message(self, info: EngineInfo, reason: str) -> str:
        if reason == "Crashed":
            return f"the engine was lost; engine {info.pid} started and restored (restart {self.restarts})"
        if reason == "Adopted":
            return f"engine {info.pid}, running since {time.ctime(info.started_at)}, adopted"
        return f"engine {info.pid} started"

    async def _reap(self) -> None:
        """Collect the exit of an engine this supervisor started, once it has exited."""
        process = self.process
        if process is None:
            return
        try:
            await anyio.to_thread.run_sync(process.wait, 5.0)
        except subprocess.TimeoutExpired:
            return  # still running: the connection broke, not the engine; it is adopted again
        log.info("engine %d exited with status %s", process.pid, process.returncode)
        self.process = None

    async def _wait_gone(self, pid: int) -> None:
        """Return once engine ``pid`` has exited (its lock is free)."""
        process = self.process
        if process is not None and process.pid == pid:
            await anyio.to_thread.run_sync(process.wait)
            self.process = None
            return
        # Not our child: nothing to wait on but the lock the kernel drops when it exits.
        while True:
            if lock_holder(self.paths.lock) is None:
                return
            await anyio.sleep(POLL_SECONDS)


def _sole_failure(raised: BaseException) -> MfxError | OSError:
    """The failure to retry after: an mfx error or an OSError, also when a task group (the
    connection's) wrapped it; anything else is raised again."""
    leaves: list[BaseException] = []
    pending = [raised]
    while pending:
        current = pending.pop()
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        else:
            leaves.append(current)
    for leaf in leaves:
        if not isinstance(leaf, MfxError | OSError):
            raise raised
    first = leaves[0]
    assert isinstance(first, MfxError | OSError)
    return first


def _listening(path: Path) -> bool:
    try:
        sockets.connect(path).close()
    except OSError:
        return False
    return True
