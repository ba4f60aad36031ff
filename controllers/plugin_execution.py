"""Starting, stopping and reconfiguring plugin instances: the long operations run as tracked
tasks on the engine's ``TaskSupervisor`` (their completion re-enqueues the plugin), the
bookkeeping of starts and failures, and the plugin's entries in the service registry.

Nothing here decides what should run (``plugin_decide`` does); status fields of a started
instance go through the reconcile's ``StatusPatcher``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import orjson

from mfx.api.models import PluginManifestSpec
from mfx.api.objects import ObjectKey
from mfx.errors import EntryPointNotFoundError, MfxError, PluginError
from mfx.runtimes.base import (
    AllowedPath,
    Limits,
    LoadRequest,
    PluginLogRecord,
    PluginType,
    QuickHealth,
    bounded,
    implements,
)
from reconciler import Context, ProbeScheduler, ProbeSpec

from .plugin_decide import Failure, StopStep
from .plugin_dependencies import KIND, DependencyTracker
from .plugin_env import PluginEnv
from .plugin_logging import append_plugin_log, say
from .plugin_reasons import PluginReason
from .plugin_resolve import copies, resolve_plugin_dir
from .plugin_runtime import Running, start_instance, stop_instance
from .plugin_spec import identity_base
from .plugin_state import PendingEvent, PluginState, PluginStates, ProbeRecord, Resolved, RunState
from .plugin_status import push_history, write_adopted

# A running plugin's directory is looked up again at most this often (and at every start):
# the lookup stats several files, and a steady reconcile must stay cheap.
PLUGIN_DIR_RECHECK_SECONDS = 5.0
# A plugin stalled on a missing entry point looks for it again after this long, doubling up
# to the cap: the files may appear without a spec change (a package installed, a directory filled).
ENTRY_POINT_RECHECK_FIRST_SECONDS = 0.25
ENTRY_POINT_RECHECK_MAX_SECONDS = 10.0


class PluginRunner:
    def __init__(self, env: PluginEnv, states: PluginStates, dependencies: DependencyTracker,
                 probes: ProbeScheduler, kick: Callable[[str], None]) -> None:
        self.env = env
        self._states = states
        self._dependencies = dependencies
        self._probes = probes
        self._kick = kick

    @staticmethod
    def key(name: str) -> ObjectKey:
        return ObjectKey(KIND, name)

    # --- identity ---------------------------------------------------------------------------------

    def steady_identity(self, state: PluginState, gen: int, spec: PluginManifestSpec,
                        current: Running) -> tuple[str, Path]:
        """``identity`` for a running plugin, looked up again at most every few seconds."""
        uid = state.parsed.uid if state.parsed is not None else ""
        cached = state.resolved
        if (cached is not None and cached.uid == uid and cached.generation == gen
                and time.monotonic() - cached.at < PLUGIN_DIR_RECHECK_SECONDS):
            return cached.identity, cached.plugin_dir
        identity, plugin_dir = self.identity(state, spec, fallback=current.request.plugin_dir)
        state.resolved = Resolved(uid, gen, identity, plugin_dir, time.monotonic())
        return identity, plugin_dir

    def identity(self, state: PluginState, spec: PluginManifestSpec, *,
                 fallback: Path | None = None, plugin_dir: Path | None = None) -> tuple[str, Path]:
        """A digest of what forces a new instance when it changes, and the plugin directory
        (looked up unless given)."""
        if plugin_dir is None:
            try:
                plugin_dir = resolve_plugin_dir(state.name, spec.version, str(spec.type), spec.entry_point,
                                                home=self.env.home, plugin_paths=self.env.plugin_paths)
            except MfxError:
                if fallback is None:
                    raise
                plugin_dir = fallback
        parts = self._identity_parts(state, spec, plugin_dir)
        text = orjson.dumps(parts, default=str, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
        digest = hashlib.sha256(text).hexdigest()[:16]
        return digest, plugin_dir

    @staticmethod
    def _identity_parts(state: PluginState, spec: PluginManifestSpec, plugin_dir: Path) -> dict[str, Any]:
        parsed = state.parsed
        base = parsed.identity_base if parsed is not None and parsed.spec is spec else identity_base(spec)
        return {**base, "dir": str(plugin_dir)}

    # --- starting -----------------------------------------------------------------------------------

    def launch_start(self, ctx: Context, state: PluginState, run: RunState, spec: PluginManifestSpec,
                     task: str) -> None:
        """Start an instance of ``spec`` as tracked task ``task`` ("start" or "replace")."""
        ctx.supervisor.start(ctx.key, task, self.prepare_start(ctx, state, run, spec, task))

    def prepare_start(self, ctx: Context, state: PluginState, run: RunState, spec: PluginManifestSpec,
                      task: str) -> Callable[[], Awaitable[Running]]:
        """Everything of ``launch_start`` but the launch: the directory and identity looked up
        (a missing entry point raises here), the start counted; returns what the task runs."""
        name = ctx.key.name
        # One look at the candidate directories: the first holding the entry point is used,
        # the others are told as shadowed copies.
        found = copies(state.name, spec.version, str(spec.type), spec.entry_point,
                       home=self.env.home, plugin_paths=self.env.plugin_paths)
        try:
            identity, plugin_dir = self.identity(state, spec, plugin_dir=found[0] if found else None)
        except EntryPointNotFoundError:
            self._await_entry_point(ctx, spec)
            raise  # Stalled, until the spec changes or the files appear
        ctx.supervisor.cancel(ctx.key, "entry-point")
        self._tell_copies(state, run, spec, plugin_dir, found)
        parts = self._identity_parts(state, spec, plugin_dir)
        uid = state.parsed.uid if state.parsed is not None else ""
        state.resolved = Resolved(uid, ctx.generation, identity, plugin_dir, time.monotonic())
        holder: dict[str, Any] = {}
        request = self._request(name, spec, plugin_dir, holder)
        runtime = self.env.runtimes.for_type(spec.type)
        gen = ctx.generation
        if task == "start":
            if run.ended:
                run.restart_count += 1
                self.env.metrics.plugin_restarts_total.labels(name).inc()
            run.ended = False
            run.clean_exit = False
            now = time.monotonic()
            self._prune_start_times(run, now, spec.restart_policy.start_limit.interval_seconds)
            run.start_times.append(now)
        say(name, "info", f"{'starting' if task == 'start' else 'starting replacement'} {spec.version} "
                          f"({spec.type}) from {plugin_dir}")

        async def start() -> Running:
            began = time.time()
            instance, health_seconds = await start_instance(runtime, request,
                                                            call_timeout=spec.health_check.timeout_seconds)
            running = Running(instance, request, identity, spec.version, dict(spec.config), gen, began, time.time(),
                              exited=holder.get("exited"), exit_error=holder.get("exit_error"),
                              health_seconds=health_seconds, identity_parts=parts)
            holder["running"] = running
            return running

        return start

    def _request(self, name: str, spec: PluginManifestSpec, plugin_dir: Path, holder: dict[str, Any]) -> LoadRequest:
        lim = spec.limits
        limits = Limits(
            memory_bytes=lim.memory_bytes, cpu_millis=lim.cpu_millis, timeout_seconds=lim.timeout_seconds,
            max_concurrency=lim.max_concurrency, open_files=lim.open_files, fuel=lim.fuel,
            max_message_bytes=lim.max_message_bytes,
        )

        def on_exit(error: PluginError) -> None:
            # Recorded on the instance; the reconcile it is kicked into takes it in.
            reason = str(error)
            holder["exited"], holder["exit_error"] = reason, error
            running = holder.get("running")
            if running is not None and running.exited is None:
                running.exited, running.exit_error = reason, error
                run = self._states.run_of(name)
                if run is not None and run.current is running:
                    say(name, "warning", f"instance ended: {reason}")
                    self._kick(name)

        def on_log(record: PluginLogRecord) -> None:
            append_plugin_log(self.env.log_store, record)

        return LoadRequest(
            name=name, version=spec.version, type=PluginType(str(spec.type)), entry_point=spec.entry_point or "",
            plugin_dir=plugin_dir, state_dir=self.env.home / "state" / name, config=dict(spec.config),
            limits=limits, checksum=spec.security.checksum,
            allowed_paths=tuple(AllowedPath(Path(p.path), p.writable) for p in spec.security.allowed_paths),
            allowed_networks=tuple(spec.security.allowed_networks), env=dict(spec.env),
            start_timeout_seconds=max(10.0, lim.timeout_seconds),
            health_timeout_seconds=spec.health_check.timeout_seconds, log=on_log, on_exit=on_exit,
        )

    def _await_entry_point(self, ctx: Context, spec: PluginManifestSpec) -> None:
        """Look for the missing entry point again with a capped backoff; kick the plugin (out
        of its stall) once it is there. One look-out per plugin, for its latest spec."""
        name, home, paths = ctx.key.name, self.env.home, self.env.plugin_paths
        version, plugin_type, entry = spec.version, str(spec.type), spec.entry_point

        async def look() -> None:
            delay = ENTRY_POINT_RECHECK_FIRST_SECONDS
            while True:
                await anyio.sleep(delay)
                if copies(name, version, plugin_type, entry, home=home, plugin_paths=paths):
                    say(name, "info", f"entry point {entry!r} found: starting")
                    self._kick(name)
                    return
                delay = min(delay * 2, ENTRY_POINT_RECHECK_MAX_SECONDS)

        ctx.supervisor.start(ctx.key, "entry-point", look, replace=True, notify=False)

    @staticmethod
    def _tell_copies(state: PluginState, run: RunState, spec: PluginManifestSpec, plugin_dir: Path,
                     found: list[Path]) -> None:
        """An event when other directories hold the plugin too: which copy is used and which
        are not (once per choice)."""
        unused = tuple(str(d) for d in found if d != plugin_dir)
        choice = (str(plugin_dir), *unused)
        if not unused or run.told_copies == choice:
            return
        run.told_copies = choice
        message = (f"loading {spec.version} from {plugin_dir}; also found in {', '.join(unused)}, "
                   "not used (the installed package comes first, then each --plugin-path in order)")
        say(state.name, "info", message)
        state.events.append(PendingEvent("Normal", PluginReason.SHADOWED_COPY, message))

    def adopt(self, ctx: Context, run: RunState, running: Running, spec: PluginManifestSpec) -> None:
        """Make a started instance the current one: probes, status fields, history, metrics."""
        name = ctx.key.name
        run.current = running
        run.handle.running = running
        run.ready_reason, run.note = PluginReason.RUNNING, ""
        hc = spec.health_check
        # start_instance has just passed a health check: the first periodic one waits an interval.
        instance = running.instance
        self._probes.schedule(ctx.key, instance.health,
                              ProbeSpec(hc.interval_seconds, hc.timeout_seconds, hc.failure_threshold),
                              quick=instance.quick_health() if implements(instance, QuickHealth) else None,
                              delay_first=True)
        write_adopted(ctx.status, running)
        run.last_probe = ProbeRecord(running.ready_at, "Healthy", running.health_seconds)
        run.probe_written = "Healthy"
        push_history(run, running.version, "Running", f"started in {running.start_seconds:.3f} s")
        self.env.metrics.init_plugin(name, process=spec.type == "rpc", wasm=spec.type == "webassembly")
        say(name, "info", f"{running.version} is running (ready in {running.start_seconds:.3f} s)")

    @staticmethod
    def record_failure(run: RunState, failure: Failure) -> None:
        """A failed start or an ended instance: the backoff and the next start's wording."""
        run.failures = failure.failures
        run.not_before = failure.not_before
        run.ended = True
        run.last_failure = failure.message
        run.last_failure_reason = failure.reason

    @staticmethod
    def _prune_start_times(run: RunState, now: float, interval: float) -> None:
        """Forget starts that no longer count towards the start limit."""
        while run.start_times and run.start_times[0] <= now - interval:
            run.start_times.popleft()

    # --- reconfiguring ---------------------------------------------------------------------------------

    def apply_config(self, ctx: Context, run: RunState, current: Running, config: dict[str, Any],
                     timeout: float) -> None:
        name, instance = ctx.key.name, current.instance

        async def apply() -> tuple[Any, dict[str, Any]]:
            await bounded(f"{name}.update_config", timeout, instance.update_config(config))
            return instance, config

        run.applying_config = config
        ctx.supervisor.start(ctx.key, "config", apply)

    # --- stopping --------------------------------------------------------------------------------------

    def advance_stop(self, ctx: Context, run: RunState, step: StopStep, why: str) -> None:
        """Take the next step of stopping ``run``'s instance (work in flight is cancelled first)."""
        key = ctx.key
        for task in ("start", "replace", "config"):
            status = ctx.supervisor.status(key, task)
            if status is not None and not status.finished:
                ctx.supervisor.cancel(key, task)
        if step is StopStep.WAIT_FOR_DEPENDENTS:
            for dependent in self._dependencies.dependents(run.name):
                if self._states.is_running(dependent):
                    self._kick(dependent)
        elif step is StopStep.STOP_NOW and run.current is not None:
            self.launch_stop(ctx.key, run, why)

    def launch_stop(self, key: ObjectKey, run: RunState, why: str, *, task: str = "stop") -> None:
        running = run.current
        assert running is not None
        run.current = None
        run.handle.running = None
        self.unregister(run)
        self._probes.unschedule(key)
        self.stop_task(key, running, why, task=task)

    def stop_replaced(self, key: ObjectKey, old: Running, why: str) -> None:
        """Stop an instance a replacement has taken over from (no longer ``run.current``)."""
        self._probes.unschedule(key)
        self.stop_task(key, old, why, task="stop-old")

    def stop_task(self, key: ObjectKey, running: Running, why: str, *, task: str) -> None:
        name = key.name
        dependencies = self._dependencies.dependencies(name)

        async def stop() -> str | None:
            # A stop once begun is finished (it is bounded by the call deadline): cancelling it
            # (the object went, see PluginController.release) would leave the instance half-stopped.
            with anyio.CancelScope(shield=True):
                problem = await stop_instance(name, running.instance,
                                              call_seconds=running.request.limits.timeout_seconds,
                                              stop=running.exited is None)
            say(name, "info", f"stopped {running.version} ({why})" + (f"; {problem}" if problem else ""))
            for dependency in dependencies:
                self._kick(dependency)  # it may be waiting for its dependents to stop
            return problem

        manager = self.env.manager
        assert manager is not None
        manager.supervisor.start(key, task, stop, replace=False)

    async def stop_all(self) -> None:
        """Stop every running plugin, dependents first; independent ones at the same time."""
        running = {run.name for run in self._states.runs() if run.current is not None}
        while running:
            wave = [n for n in running
                    if not any(d in running for d in self._dependencies.dependents(n))] or sorted(running)
            async with anyio.create_task_group() as tg:
                for name in wave:
                    tg.start_soon(self._stop_now, name)
            running.difference_update(wave)

    async def _stop_now(self, name: str) -> None:
        run = self._states.run_of(name)
        if run is None or run.current is None:
            return
        running, run.current = run.current, None
        run.handle.running = None
        self.unregister(run)
        self._probes.unschedule(self.key(name))
        problem = await stop_instance(name, running.instance, call_seconds=running.request.limits.timeout_seconds,
                                      stop=running.exited is None)
        say(name, "info", f"stopped {running.version} (daemon shutdown)" + (f"; {problem}" if problem else ""))

    # --- services ---------------------------------------------------------------------------------------

    def register(self, run: RunState, priority: int | None = None) -> None:
        """Offer ``run``'s interfaces in the service registry (and withdraw ones it dropped)."""
        registry = self.env.services
        if priority is not None:
            run.handle.interfaces = run.interfaces
            run.handle.priority = priority  # type: ignore[attr-defined]
        prio = getattr(run.handle, "priority", 0)
        for interface in run.interfaces:
            registry.register(interface, run.name, priority=prio, instance=run.handle)
        for interface in registry.provided_by(run.name):
            if interface not in run.interfaces:
                registry.unregister(run.name, interface)

    def unregister(self, run: RunState) -> None:
        self.env.services.unregister(run.name)
