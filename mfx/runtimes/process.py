"""Starting a plugin process: command, environment, limits, and reading what it prints.

Which limit holds where (Linux):

==================  ======================================================================
limit               how it is enforced
==================  ======================================================================
memory              ``RLIMIT_AS`` (address space) always: allocations beyond it fail, and
                    Python raises ``MemoryError`` in the plugin. Where a writable cgroup v2
                    hierarchy is mounted at ``/sys/fs/cgroup`` (``cgroup.controllers``
                    present, memory controller available), the plugin also gets its own
                    cgroup with ``memory.max`` (the kernel OOM-kills the cgroup's processes
                    beyond it). Elsewhere (cgroup v1, read-only cgroup fs) only the rlimit.
                    The address-space limit counts reserved, not resident, memory: thread
                    stacks and malloc arenas count, so the runtime sets
                    ``MALLOC_ARENA_MAX=2`` and the SDK uses 2 MiB thread stacks.
cpu (a rate)        cgroup v2 ``cpu.max`` only, where writable. ``RLIMIT_CPU`` caps the CPU
                    seconds of a whole life, not a rate, so it does not follow from
                    ``cpu: 500m``; ``RpcRuntime(cpu_seconds=N)`` sets it as a runaway guard
                    (SIGXCPU, then SIGKILL a second later).
openFiles           ``RLIMIT_NOFILE`` (never above the daemon's own hard limit).
parent death        ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` in the child before exec: if the
                    daemon dies (even by SIGKILL) the kernel kills the plugin. It fires when
                    the *thread* that forked exits, so spawn from the event-loop thread (as
                    here), never from a worker thread. The SDK also exits when its stdin (a
                    pipe the daemon holds) reaches end-of-file.
the plugin's own    Each plugin leads its own process group (and has a cgroup of its own
children            where cgroup v2 is writable, limits or not). The whole group is killed
                    when the plugin stops, crashes or is restarted, even after the plugin
                    itself has exited. The death signal reaches only the plugin, so each
                    plugin also gets a ``GroupReaper``: a tiny shell, outside the group,
                    waiting for end-of-file on a pipe only the daemon holds. The daemon
                    closes it when it lets go of the plugin, and the kernel closes it when
                    the daemon dies, however it dies: either way the reaper kills the group
                    (and the cgroup) and exits.
==================  ======================================================================

The environment is scrubbed: only ``PATH``, ``LANG``, ``LC_*``, ``TZ`` and ``MFX_HOME`` pass through from
the daemon; ``HOME`` is the plugin's state directory; ``PYTHONPATH`` is the plugin directory
only; then ``LoadRequest.env`` and the protocol variables. The working directory is the
state directory. Each plugin is the leader of a new session, so a terminal's Ctrl-C reaches
the daemon only and the daemon decides how plugins stop; signals at the end of ``stop()``
go to the whole process group, so a plugin's own children do not outlive it (a child that
leaves the group with ``setsid`` is still caught by the cgroup, where there is one).

Spawning uses asyncio directly because ``anyio.open_process`` has no ``preexec_fn``; the
RPC runtime therefore needs anyio's asyncio backend (the daemon's backend).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from mfx.errors import EntryPointNotFoundError, PluginLoadError
from mfx.runtimes.base import Limits, LoadRequest, LogLevel
from mfx.sdk import rpc_protocol as proto

# MFX_HOME: the daemon's home, which a plugin's configuration may name ($MFX_HOME/music).
PASSTHROUGH_ENV = ("PATH", "LANG", "TZ", "MFX_HOME")
PASSTHROUGH_ENV_PREFIXES = ("LC_",)
PYTHON_ALIASES = ("python", "python3")
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PARENT = "mfx-plugins"

_PR_SET_PDEATHSIG = 1
# $1: the process group; $2: the cgroup directory, or empty. ``read`` returns at end-of-file.
REAPER_SCRIPT = 'read _; kill -s KILL -- "-$1" 2>/dev/null; [ -z "$2" ] || echo 1 > "$2/cgroup.kill" 2>/dev/null'

log = logging.getLogger(__name__)


# --- command and environment -------------------------------------------------------------


def resolve_command(entry_point: str, plugin_dir: Path) -> list[str]:
    """``entryPoint`` as argv: ``python`` means this interpreter; relative paths (of the
    program, and of arguments naming files there) resolve in the plugin directory."""
    try:
        argv = shlex.split(entry_point)
    except ValueError as exc:
        raise EntryPointNotFoundError(
            f"spec.entryPoint {entry_point!r} is not a valid command line: {exc}"
        ) from None
    if not argv:
        raise EntryPointNotFoundError(
            "spec.entryPoint is empty: give the command that starts the plugin, e.g. 'python -m hello'"
        )
    # Arguments naming files of the plugin ("python main.py") resolve there too: the
    # plugin runs in its state directory, not in the plugin directory.
    for index, arg in enumerate(argv[1:], start=1):
        if not arg.startswith("-") and not os.path.isabs(arg) and (plugin_dir / arg).is_file():
            argv[index] = str(plugin_dir / arg)
    program = argv[0]
    if program in PYTHON_ALIASES:
        argv[0] = sys.executable
        return argv
    candidate = Path(program)
    if not candidate.is_absolute() and ("/" in program or (plugin_dir / program).exists()):
        candidate = plugin_dir / program
    if candidate.is_absolute():
        if not candidate.is_file():
            raise EntryPointNotFoundError(
                f"spec.entryPoint: {candidate} does not exist (relative paths resolve in {plugin_dir})"
            )
        if not os.access(candidate, os.X_OK):
            raise EntryPointNotFoundError(
                f"spec.entryPoint: {candidate} is not executable (chmod +x it, or start it with an interpreter)"
            )
        argv[0] = str(candidate)
        return argv
    found = shutil.which(program, path=os.environ.get("PATH", os.defpath))
    if found is None:
        raise EntryPointNotFoundError(
            f"spec.entryPoint: {program!r} is neither a file in {plugin_dir} nor a command on PATH"
        )
    argv[0] = found
    return argv


def build_environment(
    request: LoadRequest,
    socket_dir: Path,
    *,
    parent: Mapping[str, str] | None = None,
) -> dict[str, str]:
    source = os.environ if parent is None else parent
    env = {
        key: value
        for key, value in source.items()
        if key in PASSTHROUGH_ENV or key.startswith(PASSTHROUGH_ENV_PREFIXES)
    }
    env.setdefault("PATH", os.defpath)
    env["HOME"] = str(request.state_dir)
    env["PYTHONPATH"] = str(request.plugin_dir)
    if request.limits.memory_bytes is not None:
        env["MALLOC_ARENA_MAX"] = "2"
    env.update(request.env)
    env[proto.COOKIE_ENV] = proto.COOKIE_VALUE
    env[proto.SOCKET_DIR_ENV] = str(socket_dir)
    env[proto.MAX_MESSAGE_ENV] = str(request.limits.max_message_bytes)
    env[proto.PLUGIN_NAME_ENV] = request.name
    return env


# --- cgroup v2 ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cgroup:
    path: Path

    @property
    def procs(self) -> Path:
        return self.path / "cgroup.procs"

    def oom_killed(self) -> bool:
        try:
            text = (self.path / "memory.events").read_text()
        except OSError:
            return False
        counts = dict(line.split() for line in text.splitlines() if line.count(" ") == 1)
        return int(counts.get("oom_kill", "0")) > 0

    def kill(self) -> None:
        """SIGKILL every process in the cgroup, wherever it went in the process tree."""
        try:
            (self.path / "cgroup.kill").write_text("1")  # Linux 5.14+
            return
        except OSError:
            pass
        try:
            pids = [int(line) for line in self.procs.read_text().split()]
        except (OSError, ValueError):
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.rmdir()


def create_cgroup(name: str, limits: Limits, root: Path = CGROUP_ROOT) -> Cgroup | None:
    """A cgroup of its own for one plugin, with ``memory.max``/``cpu.max`` when limited, or
    None where that is impossible. Unlimited plugins get one too: it holds every process the
    plugin starts, so all of them can be killed together."""
    try:
        available = (root / "cgroup.controllers").read_text().split()
    except OSError:
        return None  # not cgroup v2 (or not mounted here)
    limited = limits.memory_bytes is not None or limits.cpu_millis is not None
    wanted: list[str] = [c for c in ("memory", "cpu") if c in available] if limited else []
    if "memory" not in wanted and limits.memory_bytes is not None:
        return None
    try:
        parent = root / CGROUP_PARENT
        _enable_controllers(root, wanted)
        parent.mkdir(exist_ok=True)
        _enable_controllers(parent, wanted)
        leaf = parent / f"{_safe(name)}-{uuid.uuid4().hex[:8]}"
        leaf.mkdir()
        cgroup = Cgroup(leaf)
        try:
            if limits.memory_bytes is not None:
                (leaf / "memory.max").write_text(str(limits.memory_bytes))
                with contextlib.suppress(OSError):
                    (leaf / "memory.swap.max").write_text("0")
            if limits.cpu_millis is not None and "cpu" in wanted:
                period = 100_000
                (leaf / "cpu.max").write_text(f"{max(1000, limits.cpu_millis * period // 1000)} {period}")
        except OSError:
            cgroup.remove()
            return None
        return cgroup
    except OSError:
        return None


def _enable_controllers(group: Path, controllers: list[str]) -> None:
    control = group / "cgroup.subtree_control"
    enabled = control.read_text().split()
    missing = [c for c in controllers if c not in enabled]
    if missing:
        control.write_text(" ".join(f"+{c}" for c in missing))


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:64]


# --- the child side of fork ----------------------------------------------------------------


def rlimits_for(limits: Limits, *, cpu_seconds: int | None = None) -> list[tuple[int, int, int]]:
    """``(resource, soft, hard)`` for ``setrlimit`` in a new plugin process."""
    import resource

    rlimits: list[tuple[int, int, int]] = []
    if limits.memory_bytes is not None:
        rlimits.append((resource.RLIMIT_AS, limits.memory_bytes, limits.memory_bytes))
    if limits.open_files is not None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        value = limits.open_files if hard == resource.RLIM_INFINITY else min(limits.open_files, hard)
        rlimits.append((resource.RLIMIT_NOFILE, value, value))
    if cpu_seconds is not None:
        rlimits.append((resource.RLIMIT_CPU, cpu_seconds, cpu_seconds + 1))
    return rlimits


def make_preexec(
    limits: Limits,
    *,
    cgroup: Cgroup | None = None,
    cpu_seconds: int | None = None,
) -> Callable[[], None]:
    """What the forked child does before exec. Everything is prepared here, in the parent,
    so the child runs only a few system calls (other daemon threads may hold locks)."""
    import ctypes
    import resource

    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl
    parent_pid = os.getpid()
    rlimits = rlimits_for(limits, cpu_seconds=cpu_seconds)
    procs = str(cgroup.procs) if cgroup is not None else None
    setrlimit = resource.setrlimit

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the daemon died before prctl took effect
            os._exit(1)
        if procs is not None:
            try:
                fd = os.open(procs, os.O_WRONLY)
                try:
                    os.write(fd, b"0")
                finally:
                    os.close(fd)
            except OSError:
                pass  # the rlimits below still hold
        for which, soft, hard in rlimits:
            setrlimit(which, (soft, hard))

    return preexec


async def spawn(
    argv: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    preexec_fn: Callable[[], None],
) -> asyncio.subprocess.Process:
    try:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=str(cwd),
            env=dict(env),
            preexec_fn=preexec_fn,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise EntryPointNotFoundError(f"cannot start {argv[0]!r}: {exc.strerror}") from None
    except PermissionError as exc:
        raise EntryPointNotFoundError(
            f"cannot start {argv[0]!r}: {exc.strerror} (is it executable?)"
        ) from None
    except (OSError, subprocess.SubprocessError) as exc:
        raise PluginLoadError(f"cannot start {shlex.join(argv)}: {exc}") from None


def signal_group(process: Any, sig: int) -> None:
    """Signal the plugin's process group (it leads its own session): the plugin and whatever
    it started. The group outlives its leader, so this reaches the children of a plugin that
    has exited too; its number is not handed to a new process while any member lives."""
    try:
        os.killpg(process.pid, sig)
        return
    except ProcessLookupError:
        pass  # no group (any more, or not yet: a forked plugin calls setsid itself)
    except PermissionError:
        pass
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)


class GroupReaper:
    """Kills one plugin's process group (and cgroup) when the daemon lets go of it, or dies.

    A shell outside the group, in a session of its own, reading a pipe whose only writer is
    the daemon: end-of-file comes from ``release()`` or from the kernel when the daemon dies
    (SIGKILL included), and then the shell kills the group and exits. The plugin's own
    death signal cannot do this: it reaches the plugin, never its children."""

    def __init__(self, process: asyncio.subprocess.Process, writer: int) -> None:
        self._process = process
        self._writer: int | None = writer

    @property
    def pid(self) -> int:
        return int(self._process.pid)

    @classmethod
    async def start(cls, pgid: int, cgroup: Cgroup | None) -> GroupReaper | None:
        """The reaper of group ``pgid``; None (logged) if no shell can be started."""
        reader, writer = os.pipe()  # not inheritable: no other child holds the writer
        try:
            process = await asyncio.create_subprocess_exec(
                "/bin/sh", "-c", REAPER_SCRIPT, "mfx-reaper", str(pgid),
                str(cgroup.path) if cgroup is not None else "",
                stdin=reader, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                cwd="/", env={"PATH": os.defpath}, start_new_session=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            os.close(writer)
            log.warning("cannot start the reaper of process group %d: %s; its processes "
                        "will outlive a killed daemon", pgid, exc)
            return None
        except BaseException:
            os.close(writer)  # cancelled: a reaper that did start sees end-of-file and exits
            raise
        finally:
            os.close(reader)
        return cls(process, writer)

    async def release(self) -> None:
        """Let the reaper kill what is left of the group, and reap it."""
        writer, self._writer = self._writer, None
        if writer is not None:
            os.close(writer)
        await self._process.wait()


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name} ({-returncode})"
    return f"exited with code {returncode}"


# --- reading output ------------------------------------------------------------------------


class LineReader:
    """Lines from a pipe; an over-long line is cut into pieces instead of buffered whole."""

    def __init__(self, reader: asyncio.StreamReader, max_line: int = 64 * 1024) -> None:
        self._reader = reader
        self._max = max_line
        self._buffer = b""
        self._eof = False

    async def readline(self) -> bytes | None:
        """The next line without its newline; None at end-of-file."""
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line, self._buffer = self._buffer[:end], self._buffer[end + 1 :]
                return line
            if len(self._buffer) >= self._max:
                line, self._buffer = self._buffer[: self._max], self._buffer[self._max :]
                return line
            if self._eof:
                if self._buffer:
                    line, self._buffer = self._buffer, b""
                    return line
                return None
            chunk = await self._reader.read(65536)
            if not chunk:
                self._eof = True
            self._buffer += chunk


_LEVEL_WORDS: dict[str, LogLevel] = {
    "trace": LogLevel.DEBUG,
    "debug": LogLevel.DEBUG,
    "info": LogLevel.INFO,
    "notice": LogLevel.INFO,
    "warn": LogLevel.WARNING,
    "warning": LogLevel.WARNING,
    "err": LogLevel.ERROR,
    "error": LogLevel.ERROR,
    "critical": LogLevel.ERROR,
    "fatal": LogLevel.ERROR,
    "panic": LogLevel.ERROR,
}
_PREFIX = re.compile(r"^\s*(?:\[(?P<bracket>[A-Za-z]+)\]:?|(?P<word>[A-Za-z]+):?)(?:\s+|$)(?P<rest>.*)$", re.S)


class StderrParser:
    """Turns a plugin's stderr lines into (level, message, fields).

    Understood: ``LEVEL message`` (what the SDK's logging writes), ``LEVEL: message``,
    ``[level] message``, and JSON objects with a ``level``/``severity``/``levelname`` field.
    A Python traceback is an error from its first line to its exception line. Anything else
    is INFO.
    """

    def __init__(self) -> None:
        self._in_traceback = False

    def parse(self, line: str) -> tuple[LogLevel, str, dict[str, Any]]:
        if self._in_traceback:
            if not line[:1].isspace() and line.strip():
                self._in_traceback = False  # the "ValueError: ..." line ends it
            return LogLevel.ERROR, line, {}
        if line.startswith("Traceback (most recent call last):"):
            self._in_traceback = True
            return LogLevel.ERROR, line, {}
        stripped = line.lstrip()
        if stripped.startswith("{"):
            parsed = _parse_json_line(stripped)
            if parsed is not None:
                return parsed
        match = _PREFIX.match(line)
        if match:
            word = (match.group("bracket") or match.group("word") or "").lower()
            level = _LEVEL_WORDS.get(word)
            if level is not None:
                return level, match.group("rest"), {}
        return LogLevel.INFO, line, {}


def _parse_json_line(text: str) -> tuple[LogLevel, str, dict[str, Any]] | None:
    try:
        record = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict):
        return None
    fields = dict(record)
    raw_level = next(
        (fields.pop(k) for k in ("level", "severity", "levelname", "lvl") if k in fields), "info"
    )
    level = _LEVEL_WORDS.get(str(raw_level).lower(), LogLevel.INFO)
    message = next((fields.pop(k) for k in ("message", "msg", "event") if k in fields), "")
    return level, str(message), fields
