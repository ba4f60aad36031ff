"""Starting Python plugins from a pre-started interpreter (a "zygote") instead of exec.

Starting an interpreter and importing the SDK costs ~100 ms of a plugin's start; a fork of
an interpreter that has done it already costs a few. ``Zygote.start()`` runs
``mfx.runtimes.zygote_server`` (see there for what the fork does) with the daemon's
scrubbed environment, ``PR_SET_PDEATHSIG`` and its own session; ``Zygote.fork()`` sends it
one plugin's command, environment, working directory, cgroup and rlimits with the three
pipe ends for its stdio, and returns a ``ForkedProcess``.

The forked plugin is the daemon's own child (``CLONE_PARENT``), so every guarantee of an
exec'd plugin holds unchanged: the parent-death signal follows the daemon, the daemon reaps
it, and its exit is seen at once through a pidfd (Linux 5.3+) on the event loop. A dead
or hung zygote only means the next plugin starts with exec.

``launch_for()`` decides which commands may be forked: ``python -m MODULE ...`` and
``python SCRIPT.py ...`` where ``python`` is this interpreter without extra flags, and
only when nothing in the plugin's environment must be read at interpreter start.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import platform
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import orjson

from mfx import cpu_affinity
from mfx.errors import PluginLoadError
from mfx.runtimes import zygote_server
from mfx.runtimes.process_command import PASSTHROUGH_ENV, PASSTHROUGH_ENV_PREFIXES

log = logging.getLogger(__name__)

SERVER_MODULE = "mfx.runtimes.zygote_server"
START_TIMEOUT_SECONDS = 30.0
FORK_TIMEOUT_SECONDS = 10.0
LATE_ANSWER_SECONDS = 2.0  # how long closing waits for the answer to a fork request given up on
# Where the zygote knows the clone() system call number; other machines exec every plugin.
SUPPORTED_MACHINES = tuple(zygote_server.CLONE_SYSCALL_NUMBERS)
# Read by the interpreter or the C library once, at process start: a fork inherits the
# zygote's values, so a plugin that sets any of them differently is started with exec.
_STARTUP_PREFIXES = ("PYTHON", "LC_", "LD_", "MALLOC_", "GLIBC_")
_STARTUP_NAMES = ("LANG", "LANGUAGE")
_PER_PLUGIN = ("PYTHONPATH", "MALLOC_ARENA_MAX")  # handled after the fork / harmless when inherited


class ZygoteError(PluginLoadError):
    """The zygote could not start a plugin; the caller starts it with exec instead."""


class LaunchMode(enum.StrEnum):
    MODULE = "module"  # python -m MODULE ARGS...
    PATH = "path"  # python SCRIPT ARGS...


@dataclass(frozen=True)
class Launch:
    """What a forked interpreter runs in place of ``argv``."""

    mode: LaunchMode
    target: str
    args: tuple[str, ...]


def launch_for(argv: list[str], env: Mapping[str, str], zygote_env: Mapping[str, str]) -> Launch | None:
    """The forkable form of ``argv`` (already resolved), or None: exec it."""
    if len(argv) < 2 or argv[0] != sys.executable or platform.machine() not in SUPPORTED_MACHINES:
        return None
    if _startup_settings(env) != _startup_settings(zygote_env):
        return None
    if argv[1] == "-m":
        if len(argv) < 3 or not argv[2] or argv[2].startswith("-"):
            return None
        return Launch(LaunchMode.MODULE, argv[2], tuple(argv[3:]))
    if argv[1].startswith("-") or not os.path.isabs(argv[1]) or not os.path.isfile(argv[1]):
        return None
    return Launch(LaunchMode.PATH, argv[1], tuple(argv[2:]))


def _startup_settings(env: Mapping[str, str]) -> dict[str, str]:
    return {
        key: value
        for key, value in env.items()
        if (key.startswith(_STARTUP_PREFIXES) or key in _STARTUP_NAMES) and key not in _PER_PLUGIN
    }


def zygote_environment(parent_env: Mapping[str, str]) -> dict[str, str]:
    """The daemon's pass-through variables, as every plugin gets them, and small malloc arenas
    (fixed at start: plugins with a memory limit need them, the others do not mind)."""
    env = {
        key: value
        for key, value in parent_env.items()
        if key in PASSTHROUGH_ENV or key.startswith(PASSTHROUGH_ENV_PREFIXES)
    }
    env.setdefault("PATH", os.defpath)
    env["MALLOC_ARENA_MAX"] = "2"
    return env


class _StdinPipe:
    """The write end of a plugin's stdin: held open so that the plugin sees end-of-file
    when the daemon is gone."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def is_closing(self) -> bool:
        return self._fd is None

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


class ForkedProcess:
    """A plugin forked by the zygote: the same surface as ``asyncio.subprocess.Process``
    as far as the rpc runtime uses it. Reaped by the daemon as soon as it exits."""

    def __init__(self, pid: int, stdin_fd: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.stdin = _StdinPipe(stdin_fd)
        self.stdout: asyncio.StreamReader = asyncio.StreamReader(limit=2**16)
        self.stderr: asyncio.StreamReader = asyncio.StreamReader(limit=2**16)
        self._exited = anyio.Event()
        self._loop = asyncio.get_running_loop()
        # The pid stays ours (a zombie at worst) until we reap it, so this cannot race.
        self._pidfd: int | None = os.pidfd_open(pid)
        self._loop.add_reader(self._pidfd, self._reap)

    async def _attach(self, stdout_fd: int, stderr_fd: int) -> None:
        for fd, reader in ((stdout_fd, self.stdout), (stderr_fd, self.stderr)):
            pipe = os.fdopen(fd, "rb", 0)
            await self._loop.connect_read_pipe(
                lambda r=reader: asyncio.StreamReaderProtocol(r, loop=self._loop), pipe  # type: ignore[misc]
            )

    def _reap(self) -> None:
        try:
            reaped, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            # Someone else's waitpid(-1) took the status; the process is gone all the same.
            log.warning("plugin process %d was reaped elsewhere; its exit status is unknown", self.pid)
            reaped, status = self.pid, 255 << 8
        if reaped == 0:
            return
        self.returncode = os.waitstatus_to_exitcode(status)
        pidfd, self._pidfd = self._pidfd, None
        if pidfd is not None:
            self._loop.remove_reader(pidfd)
            os.close(pidfd)
        self._exited.set()

    async def wait(self) -> int:
        await self._exited.wait()
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)


@dataclass(frozen=True)
class ForkRequest:
    name: str
    launch: Launch
    env: Mapping[str, str]
    cwd: str
    rlimits: list[tuple[int, int, int]]
    cgroup_procs: str | None


class Zygote:
    """A running zygote. ``await Zygote.start(...)``; ``await zygote.aclose()`` when done."""

    def __init__(self, process: asyncio.subprocess.Process, control: socket.socket, env: dict[str, str]) -> None:
        self._process = process
        self._control = control
        self.env = env
        self._lock = anyio.Lock()
        self._broken: str | None = None
        # A fork request given up on (timed out, interrupted): the zygote may still fork the
        # plugin and answer. That plugin is the daemon's child (CLONE_PARENT) whose pid nobody
        # knows: unreaped, it would end as a zombie of the daemon. ``aclose`` reaps it.
        self._late_answer = False

    @property
    def pid(self) -> int:
        return int(self._process.pid)

    @property
    def alive(self) -> bool:
        return self._broken is None and self._process.returncode is None

    @classmethod
    async def start(cls, *, preexec_fn: Callable[[], None]) -> Zygote:
        """Start the server and wait until it has imported what plugins need."""
        if platform.machine() not in SUPPORTED_MACHINES or not hasattr(os, "pidfd_open"):
            raise ZygoteError(f"no zygote on {platform.machine()} without pidfd_open")
        env = zygote_environment(os.environ)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with cpu_affinity.spawning():  # the plugins it forks get every CPU the daemon has
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", SERVER_MODULE, str(theirs.fileno()),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=None,  # its own failures go where the daemon's go
                    cwd="/",
                    env=env,
                    pass_fds=(theirs.fileno(),),
                    preexec_fn=preexec_fn,
                    start_new_session=True,
                )
        except (OSError, subprocess.SubprocessError) as exc:
            ours.close()
            raise ZygoteError(f"cannot start the zygote: {exc}") from None
        finally:
            theirs.close()
        ours.setblocking(False)
        zygote = cls(process, ours, env)
        try:
            with anyio.fail_after(START_TIMEOUT_SECONDS):
                answer = await asyncio.get_running_loop().sock_recv(ours, 64)
        except (OSError, TimeoutError) as exc:
            await zygote.aclose()
            raise ZygoteError(f"the zygote did not start: {exc or 'timed out'}") from None
        if answer != zygote_server.READY:
            await zygote.aclose()
            raise ZygoteError(f"the zygote did not start (it said {answer!r})")
        return zygote

    async def fork(self, request: ForkRequest) -> ForkedProcess:
        """A new plugin process; ``ZygoteError`` when the zygote cannot make one."""
        payload = orjson.dumps(
            {
                "mode": str(request.launch.mode),
                "target": request.launch.target,
                "args": list(request.launch.args),
                "env": dict(request.env),
                "cwd": request.cwd,
                "rlimits": request.rlimits,
                "procs": request.cgroup_procs,
                "name": request.name,
            }
        )
        if len(payload) > zygote_server.MAX_REQUEST_BYTES:
            raise ZygoteError("the plugin's environment is too large for the zygote")
        async with self._lock:
            if not self.alive:
                raise ZygoteError(f"the zygote is gone: {self._broken or 'it exited'}")
            pipes = [os.pipe() for _ in range(3)]
            theirs = [pipes[0][0], pipes[1][1], pipes[2][1]]
            stdin_fd, stdout_fd, stderr_fd = pipes[0][1], pipes[1][0], pipes[2][0]
            try:
                try:
                    socket.send_fds(self._control, [payload], theirs)
                finally:
                    for fd in theirs:
                        os.close(fd)
                with anyio.fail_after(FORK_TIMEOUT_SECONDS):
                    # sock_recv returns at once, without a checkpoint, when the answer is in
                    # already: this one makes a deadline that has passed count all the same.
                    await anyio.lowlevel.checkpoint()
                    answer = await asyncio.get_running_loop().sock_recv(self._control, 65536)
                if not answer:
                    raise ZygoteError("the zygote closed its control socket")
                reply = orjson.loads(answer)
                if "pid" not in reply:
                    raise ZygoteError(f"the zygote could not fork: {reply.get('error', reply)}")
            except BaseException as exc:
                for fd in (stdin_fd, stdout_fd, stderr_fd):
                    os.close(fd)
                if isinstance(exc, ZygoteError):
                    self._broken = str(exc)
                    raise
                if isinstance(exc, (OSError, TimeoutError, orjson.JSONDecodeError)):
                    self._broken = f"{type(exc).__name__}: {exc}"
                    self._late_answer = isinstance(exc, TimeoutError)
                    raise ZygoteError(f"the zygote failed: {self._broken}") from None
                self._broken = "a fork request was interrupted"
                self._late_answer = True
                raise
        process = ForkedProcess(int(reply["pid"]), stdin_fd)
        try:
            await process._attach(stdout_fd, stderr_fd)
        except BaseException:
            process.send_signal(signal.SIGKILL)  # reaped by its pidfd reader
            raise
        return process

    async def aclose(self) -> None:
        """End the zygote (end-of-file on its control socket; SIGKILL if it lingers) and reap it."""
        self._broken = self._broken or "closed"
        if self._late_answer:
            with anyio.CancelScope(shield=True):
                await self._reap_late_fork()
        self._control.close()
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(2.0):
                await self._process.wait()
            if self._process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    self._process.kill()
                await self._process.wait()


    async def _reap_late_fork(self) -> None:
        """Kill and reap the plugin of a fork request given up on, if the zygote answers now."""
        self._late_answer = False
        with anyio.move_on_after(LATE_ANSWER_SECONDS):
            answer = await asyncio.get_running_loop().sock_recv(self._control, 65536)
            try:
                pid = int(orjson.loads(answer)["pid"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                return  # no plugin was forked (or the zygote closed the socket)
            log.warning("the zygote forked plugin process %d after its request was given up on: killed", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                await anyio.to_thread.run_sync(os.waitpid, pid, 0)


def describe(process: Any) -> str:
    return "zygote" if isinstance(process, ForkedProcess) else "exec"
