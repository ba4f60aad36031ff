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

The runtime (the zygote, the task group) is here; one plugin process, its handshake and
its background tasks are ``rpc_instance``.

A plugin's own children never outlive it: whenever the plugin ends (stopped, crashed,
killed, restarted) its whole process group is killed, and a ``GroupReaper`` per plugin
does the same when the daemon itself dies (see ``process``).
"""

from __future__ import annotations

import builtins
import logging
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio

from mfx.errors import PluginLoadError
from mfx.runtimes import process as proc
from mfx.runtimes import zygote as zyg
from mfx.runtimes.base import Limits, LoadRequest, PluginType
from mfx.runtimes.rpc_instance import InstanceState, RpcPluginInstance
from mfx.sdk import rpc_protocol as proto
from mfx.task_group import TaskGroupOwner

__all__ = ["InstanceState", "RpcPluginInstance", "RpcRuntime"]

log = logging.getLogger(__name__)

ZYGOTE_STRIKES = 3  # failed zygote starts or breakdowns in a row before exec for good


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
