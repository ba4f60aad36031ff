"""The ``rpc`` runtime: each plugin is a subprocess speaking JSON-RPC over a unix socket.

``load()`` starts the plugin's ``entryPoint`` (see ``process`` for the environment and the
limits): a Python entry point (``python -m MODULE``, ``python SCRIPT``) is forked from a
pre-started interpreter that has imported the SDK already (see ``zygote``: a few
milliseconds instead of ~100), anything else is exec'd. Either way the plugin is the
daemon's child with the same environment, limits, session and parent-death signal. It
reads the handshake line from its stdout within ``start_timeout_seconds``, and
connects. From then on, four tasks in the runtime's task group serve the instance: one waits
for the process to end (a crash is reported at once through ``LoadRequest.on_exit`` and
fails pending calls), one forwards stderr lines to ``LoadRequest.log`` with their level,
one forwards stray stdout lines as warnings, and one reads JSON-RPC answers.

``stop()`` asks politely (the ``stop`` request), waits ``stop_grace_seconds``, sends SIGTERM,
waits ``term_grace_seconds``, then SIGKILLs; the process is always reaped. Leaving the
runtime's ``async with`` stops every instance it started.

A plugin's own children never outlive it: whenever the plugin ends (stopped, crashed,
killed, restarted) its whole process group is killed, and a ``GroupReaper`` per plugin
does the same when the daemon itself dies (see ``process``).
"""

from __future__ import annotations

import builtins
import collections
import enum
import logging
import os
import shlex
import shutil
import signal
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
import psutil

from mfx.errors import (
    HandshakeError,
    PluginCrashedError,
    PluginError,
    PluginExitedError,
    PluginInitError,
    PluginLoadError,
    PluginRuntimeError,
    ProtocolError,
)
from mfx.runtimes import process as proc
from mfx.runtimes import zygote as zyg
from mfx.runtimes.base import Limits, LoadRequest, LogLevel, PluginLogRecord, PluginType
from mfx.runtimes.rpc_client import RemoteError, RpcClient
from mfx.sdk import rpc_protocol as proto
from mfx.task_group import TaskGroupOwner

log = logging.getLogger(__name__)

STDERR_TAIL_LINES = 12
ZYGOTE_STRIKES = 3  # failed zygote starts or breakdowns in a row before exec for good


class InstanceState(enum.StrEnum):
    STARTING = "Starting"
    RUNNING = "Running"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    EXITED = "Exited"  # ended without being asked to


class RpcRuntime(TaskGroupOwner):
    """Runs ``type: rpc`` plugins. Use as ``async with RpcRuntime() as runtime:``; the
    instances' background tasks live in the runtime's task group."""

    type = PluginType.RPC

    def __init__(
        self,
        *,
        stop_grace_seconds: float = 5.0,
        term_grace_seconds: float = 2.0,
        cpu_seconds: int | None = None,
        socket_base_dir: Path | None = None,
        cgroup_root: Path = proc.CGROUP_ROOT,
        zygote: bool = True,
    ) -> None:
        self.stop_grace_seconds = stop_grace_seconds
        self.term_grace_seconds = term_grace_seconds
        self.cpu_seconds = cpu_seconds
        self._socket_base = socket_base_dir
        self._cgroup_root = cgroup_root
        self._instances: set[RpcPluginInstance] = set()
        self._use_zygote = zygote
        self._zygote: zyg.Zygote | None = None
        self._zygote_lock = anyio.Lock()
        self._zygote_strikes = 0

    @property
    def zygote_pid(self) -> int | None:
        """The pid of the running zygote, if there is one."""
        return self._zygote.pid if self._zygote is not None and self._zygote.alive else None

    async def __aexit__(
        self, exc_type: builtins.type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        # Instances stop first, while their background tasks still run to see them go.
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as stoppers:
                for instance in list(self._instances):
                    stoppers.start_soon(instance.cleanup)
            zygote, self._zygote = self._zygote, None
            if zygote is not None:
                await zygote.aclose()
        # Only a cancellation concerns the task group; any other exception from the
        # body propagates as it is, not wrapped in an exception group.
        if isinstance(exc, anyio.get_cancelled_exc_class()):
            return await super().__aexit__(exc_type, exc, tb)
        return await super().__aexit__(None, None, None)

    async def load(self, request: LoadRequest) -> RpcPluginInstance:
        if not self.running:
            raise PluginLoadError("RpcRuntime.load() needs the runtime entered: `async with RpcRuntime() as rt`")
        tg = self.task_group()
        argv = proc.resolve_command(request.entry_point, request.plugin_dir)
        request.state_dir.mkdir(parents=True, exist_ok=True)
        socket_dir = Path(tempfile.mkdtemp(prefix="mfx-", dir=self._socket_base))  # mode 0700
        socket_path = socket_dir / proto.SOCKET_NAME
        if len(str(socket_path).encode()) > proto.MAX_SOCKET_PATH_BYTES:
            shutil.rmtree(socket_dir, ignore_errors=True)
            raise PluginLoadError(
                f"socket path {socket_path} exceeds {proto.MAX_SOCKET_PATH_BYTES} bytes: "
                "use a shorter socket_base_dir"
            )
        cgroup = proc.create_cgroup(request.name, request.limits, self._cgroup_root)
        env = proc.build_environment(request, socket_dir)
        try:
            process: Any = await self._fork(request, argv, env, cgroup) if self._use_zygote else None
            if process is None:
                process = await proc.spawn(
                    argv,
                    cwd=request.state_dir,
                    env=env,
                    preexec_fn=proc.make_preexec(request.limits, cgroup=cgroup, cpu_seconds=self.cpu_seconds),
                )
        except BaseException:
            shutil.rmtree(socket_dir, ignore_errors=True)
            if cgroup is not None:
                cgroup.remove()
            raise
        instance = RpcPluginInstance(self, request, process, argv, socket_dir, cgroup)
        self._instances.add(instance)
        tg.start_soon(instance._watch_process)
        tg.start_soon(instance._forward_stderr)
        try:
            instance._reaper = await proc.GroupReaper.start(process.pid, cgroup)
            await instance._handshake(request.start_timeout_seconds)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await instance._abort()
            raise
        tg.start_soon(instance._forward_stdout)
        tg.start_soon(instance._read_answers)
        instance._state = InstanceState.RUNNING
        return instance

    async def _fork(
        self, request: LoadRequest, argv: list[str], env: dict[str, str], cgroup: proc.Cgroup | None
    ) -> zyg.ForkedProcess | None:
        """The plugin forked from the zygote, or None when it must be started with exec."""
        launch = zyg.launch_for(argv, env, zyg.zygote_environment(os.environ))
        if launch is None:
            return None
        zygote = await self._running_zygote()
        if zygote is None or zyg.launch_for(argv, env, zygote.env) is None:
            return None  # (the daemon's environment changed since the zygote started)
        try:
            process = await zygote.fork(
                zyg.ForkRequest(
                    name=request.name,
                    launch=launch,
                    env=env,
                    cwd=str(request.state_dir),
                    rlimits=proc.rlimits_for(request.limits, cpu_seconds=self.cpu_seconds),
                    cgroup_procs=str(cgroup.procs) if cgroup is not None else None,
                )
            )
        except zyg.ZygoteError as exc:
            self._zygote_strikes += 1
            log.warning("%s; starting plugin %s with exec", exc, request.name)
            return None
        self._zygote_strikes = 0
        return process

    async def _running_zygote(self) -> zyg.Zygote | None:
        """Started on the first forkable load (from the event-loop thread: the parent-death
        signal follows the thread that forked); restarted if it died."""
        async with self._zygote_lock:
            if self._zygote is not None and not self._zygote.alive:
                dead, self._zygote = self._zygote, None
                await dead.aclose()
            if self._zygote is None and self._zygote_strikes < ZYGOTE_STRIKES:
                try:
                    self._zygote = await zyg.Zygote.start(preexec_fn=proc.make_preexec(Limits()))
                except zyg.ZygoteError as exc:
                    self._zygote_strikes += 1
                    log.warning("%s; plugins start with exec", exc)
            return self._zygote

    def _forget(self, instance: RpcPluginInstance) -> None:
        self._instances.discard(instance)


class RpcPluginInstance:
    """One plugin process. Created by ``RpcRuntime.load``."""

    def __init__(
        self,
        runtime: RpcRuntime,
        request: LoadRequest,
        process: Any,
        argv: list[str],
        socket_dir: Path,
        cgroup: proc.Cgroup | None,
    ) -> None:
        self._runtime = runtime
        self._request = request
        self._name = request.name
        self._process = process
        self._argv = argv
        self._socket_dir = socket_dir
        self._cgroup = cgroup
        self._state = InstanceState.STARTING
        self._client: RpcClient | None = None
        self._handshake_line: proto.Handshake | None = None
        self._stdout = proc.LineReader(process.stdout)
        self._stderr = proc.LineReader(process.stderr)
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._stderr_done = anyio.Event()
        self._exited = anyio.Event()
        self._broken: str | None = None
        self._exit_reason: str | None = None
        self._ps: psutil.Process | None = None
        self._reaper: proc.GroupReaper | None = None

    # --- what the controller sees ----------------------------------------------------

    @property
    def state(self) -> InstanceState:
        return self._state

    @property
    def pid(self) -> int:
        return int(self._process.pid)

    @property
    def returncode(self) -> int | None:
        return self._process.returncode  # type: ignore[no-any-return]

    @property
    def details(self) -> dict[str, Any]:
        details: dict[str, Any] = {
            "pid": self.pid,
            "socket": self._handshake_line.address if self._handshake_line else None,
            "command": shlex.join(self._argv),
            "state": str(self._state),
            "cgroup": str(self._cgroup.path) if self._cgroup else None,
            "spawn": zyg.describe(self._process),
        }
        if self._handshake_line is not None:
            details["appProtocol"] = self._handshake_line.app_version
        if self._exit_reason is not None:
            details["exitReason"] = self._exit_reason
        if self._process.returncode is None:
            try:
                if self._ps is None:
                    self._ps = psutil.Process(self.pid)
                with self._ps.oneshot():
                    details["rssBytes"] = self._ps.memory_info().rss
                    times = self._ps.cpu_times()
                    details["cpuSeconds"] = round(times.user + times.system, 3)
            except psutil.Error:
                pass
        return details

    # --- lifecycle -------------------------------------------------------------------

    async def initialize(self, config: Mapping[str, Any]) -> None:
        try:
            await self._call("initialize", {"config": dict(config)})
        except RemoteError as exc:
            raise PluginInitError(f"plugin {self._name}: initialize failed: {exc.remote_type}: {exc.remote_message}") from exc

    async def start(self) -> None:
        await self._call("start")

    async def health(self) -> None:
        if self._process.returncode is not None:
            raise PluginCrashedError(self._exit_reason or f"plugin {self._name} is not running")
        value = await self._call("health")
        if value is False:
            raise PluginRuntimeError(f"plugin {self._name} reports itself unhealthy", reason="Unhealthy")

    async def update_config(self, config: Mapping[str, Any]) -> None:
        await self._call("update_config", {"config": dict(config)})

    async def call(self, method: str, params: Any = None) -> Any:
        return await self._call(method, params)

    async def export_state(self) -> Any:
        return await self._call("export_state")

    async def import_state(self, state: Any) -> None:
        await self._call("import_state", {"state": state})

    async def _call(self, method: str, params: Any = None) -> Any:
        client = self._client
        if client is None or self._state is not InstanceState.RUNNING:
            if self._state is InstanceState.EXITED and client is not None and client.closed_error:
                raise PluginCrashedError(str(client.closed_error))
            raise PluginRuntimeError(
                f"plugin {self._name} is {self._state.value.lower()}, it takes no calls", reason="NotRunning"
            )
        return await client.call(method, params, deadline=self._request.limits.timeout_seconds)

    async def stop(self) -> None:
        """``stop`` request, grace period, SIGTERM, grace period, SIGKILL; always reaped."""
        if self._state in (InstanceState.STOPPED, InstanceState.EXITED) and self._exited.is_set():
            return
        self._state = InstanceState.STOPPING
        runtime = self._runtime
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(runtime.stop_grace_seconds):
                client = self._client
                if client is not None and client.closed_error is None and self.returncode is None:
                    try:
                        await client.call("stop", None, deadline=runtime.stop_grace_seconds)
                    except PluginError as exc:
                        self._emit(LogLevel.WARNING, f"stop request failed: {exc}", stream="controller")
                await self._process.wait()
            if self.returncode is None:
                self._emit(LogLevel.WARNING, "did not exit after the stop request: SIGTERM", stream="controller")
                proc.signal_group(self._process, signal.SIGTERM)
                with anyio.move_on_after(runtime.term_grace_seconds):
                    await self._process.wait()
            if self.returncode is None:
                self._emit(LogLevel.WARNING, "ignored SIGTERM: SIGKILL", stream="controller")
                proc.signal_group(self._process, signal.SIGKILL)
                await self._process.wait()
            else:
                proc.signal_group(self._process, signal.SIGKILL)  # leftover children of the plugin
            self._state = InstanceState.STOPPED
            await self._release()

    async def cleanup(self) -> None:
        if self.returncode is None or self._state is not InstanceState.STOPPED:
            await self.stop()
        await self._release()
        self._runtime._forget(self)

    async def _abort(self) -> None:
        """A failed start: no grace, the process goes at once."""
        self._state = InstanceState.STOPPING
        proc.signal_group(self._process, signal.SIGKILL)
        await self._process.wait()
        self._state = InstanceState.STOPPED
        await self._release()
        self._runtime._forget(self)

    async def _release(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        if self._process.stdin is not None and not self._process.stdin.is_closing():
            self._process.stdin.close()
        shutil.rmtree(self._socket_dir, ignore_errors=True)
        proc.signal_group(self._process, signal.SIGKILL)
        reaper, self._reaper = self._reaper, None
        if reaper is not None:
            await reaper.release()
        if self._cgroup is not None:
            self._cgroup.kill()
            self._cgroup.remove()

    # --- start-up --------------------------------------------------------------------

    async def _handshake(self, start_timeout: float) -> None:
        line: bytes | None = None
        with anyio.move_on_after(start_timeout) as scope:
            line = await self._stdout.readline()
        if scope.cancelled_caught:
            raise HandshakeError(
                f"plugin {self._name} printed no handshake line on stdout within {start_timeout:g}s "
                f"(is it calling mfx.sdk.serve()? is it slow to import?){self._tail()}"
            )
        if line is None:
            with anyio.move_on_after(2.0):
                await self._process.wait()
            with anyio.move_on_after(1.0):
                await self._stderr_done.wait()
            how = proc.describe_exit(self.returncode) if self.returncode is not None else "closed its stdout"
            raise HandshakeError(f"plugin {self._name} {how} before the handshake{self._tail()}")
        try:
            handshake = proto.Handshake.parse(line)
        except proto.HandshakeFormatError as exc:
            raise HandshakeError(
                f"plugin {self._name}: the first line on stdout is not an mfx handshake: {exc}; "
                f"a plugin must print nothing on stdout before serve() (log to stderr instead){self._tail()}"
            ) from None
        if handshake.core_version != proto.CORE_PROTOCOL_VERSION:
            raise HandshakeError(
                f"plugin {self._name} speaks core protocol {handshake.core_version}, this mfx speaks "
                f"{proto.CORE_PROTOCOL_VERSION}: build the plugin against a matching mfx.sdk{self._tail()}"
            )
        limits = self._request.limits
        try:
            with anyio.fail_after(max(start_timeout, 1.0)):
                self._client = await RpcClient.connect(
                    handshake.address,
                    plugin=self._name,
                    max_message_bytes=limits.max_message_bytes,
                    max_concurrency=limits.max_concurrency,
                    memory_limit=_bytes(limits.memory_bytes) if limits.memory_bytes else None,
                    log=self._safe_log,
                    on_broken=self._on_broken,
                    on_eof=self._on_eof,
                )
        except (OSError, TimeoutError) as exc:
            raise HandshakeError(
                f"plugin {self._name}: cannot connect to {handshake.address}: {exc}{self._tail()}"
            ) from None
        self._handshake_line = handshake

    def _tail(self) -> str:
        if not self._stderr_tail:
            return " (stderr was empty)"
        return "; last stderr lines:\n  " + "\n  ".join(self._stderr_tail)

    # --- background tasks (in the runtime's task group) -------------------------------

    async def _watch_process(self) -> None:
        returncode = await self._process.wait()
        # Whatever ended the plugin, what it started ends with it, now.
        proc.signal_group(self._process, signal.SIGKILL)
        self._exited.set()
        if self._state is not InstanceState.RUNNING:
            return  # load() or stop() is in charge
        self._state = InstanceState.EXITED
        with anyio.move_on_after(1.0):  # the last words on stderr belong in the reason
            await self._stderr_done.wait()
        reason = self._broken or f"plugin {self._name} {proc.describe_exit(returncode)}"
        if self._broken is None and self._cgroup is not None and self._cgroup.oom_killed():
            reason += " (the kernel OOM-killed it at its memory limit)"
        if self._broken is None and self._stderr_tail:
            reason += self._tail()
        self._exit_reason = reason
        error: PluginError = (PluginExitedError(reason, returncode=returncode) if self._broken is None
                              else ProtocolError(reason))
        if self._client is not None:
            self._client.fail_all(error)
        self._emit(LogLevel.ERROR, reason, stream="controller")
        try:
            self._request.on_exit(error)
        except Exception:
            log.exception("on_exit callback of plugin %s failed", self._name)
        await self._release()

    async def _forward_stderr(self) -> None:
        parser = proc.StderrParser()
        try:
            while (raw := await self._stderr.readline()) is not None:
                text = raw.decode("utf-8", "replace").rstrip("\r")
                self._stderr_tail.append(text)
                level, message, fields = parser.parse(text)
                self._safe_log(
                    PluginLogRecord(plugin=self._name, level=level, message=message, stream="stderr", fields=fields)
                )
        except Exception:
            log.exception("forwarding stderr of plugin %s failed", self._name)
        finally:
            self._stderr_done.set()

    async def _forward_stdout(self) -> None:
        try:
            while (raw := await self._stdout.readline()) is not None:
                text = raw.decode("utf-8", "replace").rstrip("\r")
                self._emit(LogLevel.WARNING, f"stdout after the handshake: {text}", stream="stdout")
        except Exception:
            log.exception("forwarding stdout of plugin %s failed", self._name)

    async def _read_answers(self) -> None:
        assert self._client is not None
        try:
            await self._client.run()
        except Exception as exc:
            log.exception("reading answers from plugin %s failed", self._name)
            self._on_broken(ProtocolError(f"plugin {self._name}: reading answers failed: {exc}"))

    def _on_broken(self, error: ProtocolError) -> None:
        """A bad message: the connection cannot be trusted, so the process goes too."""
        if self._state is not InstanceState.RUNNING or self._broken is not None:
            return
        self._broken = str(error)
        if self._client is not None:
            self._client.fail_all(error)
        proc.signal_group(self._process, signal.SIGKILL)  # _watch_process reports it

    async def _on_eof(self) -> PluginError:
        with anyio.move_on_after(2.0):
            await self._process.wait()
        if self.returncode is not None:
            return PluginCrashedError(f"plugin {self._name} {proc.describe_exit(self.returncode)}")
        error = ProtocolError(f"plugin {self._name} closed its connection while still running")
        self._on_broken(error)
        return error

    def _emit(self, level: LogLevel, message: str, *, stream: str) -> None:
        self._safe_log(PluginLogRecord(plugin=self._name, level=level, message=message, stream=stream))

    def _safe_log(self, record: PluginLogRecord) -> None:
        try:
            self._request.log(record)
        except Exception:
            log.exception("log callback of plugin %s failed", self._name)


def _bytes(value: int) -> str:
    for unit, size in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if value % size == 0:
            return f"{value // size}{unit}"
    return f"{value} bytes"
