"""One ``rpc`` plugin process as the runtime sees it: its state, the handshake, calls over
its JSON-RPC connection, the polite-then-forceful stop, and the background tasks that watch
the process and forward its output (they run in the runtime's task group).
"""

from __future__ import annotations

import collections
import enum
import logging
import shlex
import shutil
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import psutil

from mfx.errors import (
    HandshakeError,
    PluginCrashedError,
    PluginError,
    PluginExitedError,
    PluginInitError,
    PluginRuntimeError,
    ProtocolError,
)
from mfx.runtimes import process as proc
from mfx.runtimes import zygote as zyg
from mfx.runtimes.base import LoadRequest, LogLevel, PluginLogRecord
from mfx.runtimes.rpc_client import RemoteError, RpcClient
from mfx.sdk import rpc_protocol as proto

if TYPE_CHECKING:
    from mfx.runtimes.rpc import RpcRuntime

# The rpc runtime's one logger name, whichever of its modules logs.
log = logging.getLogger("mfx.runtimes.rpc")

STDERR_TAIL_LINES = 12


class InstanceState(enum.StrEnum):
    STARTING = "Starting"
    RUNNING = "Running"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    EXITED = "Exited"  # ended without being asked to


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
        # Not behind maxConcurrency: a plugin serving as many calls as it takes is busy, not
        # unhealthy (restarting it for its load would drop every call it is serving).
        value = await self._call("health", limited=False)
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

    async def _call(self, method: str, params: Any = None, *, limited: bool = True) -> Any:
        client = self._client
        if client is None or self._state is not InstanceState.RUNNING:
            if self._state is InstanceState.EXITED and client is not None and client.closed_error:
                raise PluginCrashedError(str(client.closed_error))
            raise PluginRuntimeError(
                f"plugin {self._name} is {self._state.value.lower()}, it takes no calls", reason="NotRunning"
            )
        return await client.call(method, params, deadline=self._request.limits.timeout_seconds, limited=limited)

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
