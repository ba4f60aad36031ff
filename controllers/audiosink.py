"""The AudioSink controller: the sinks of the audio engine process, one per AudioSink object.

The engine (``mfx.engine``, a process of its own) opens the devices; this controller tells it
which, publishes the open ones in the ``SinkRegistry`` where the player finds the default,
and writes what the engine reports into each object's status. The pieces:

- ``reconcile``: validates the spec, elects the default sink, and starts the open (or the
  reopen with new parameters) in the engine as a tracked task. When the task ends the key
  comes back: success reports the parameters the device accepted; a spec the device can
  never take (unknown device, refused rate or format) stalls with
  ``DeviceNotFound``/``UnsupportedFormat`` until the spec changes; a busy or vanished device
  (``DeviceBusy``/``DeviceLost``) is retried with backoff.
- ``pump`` (a daemon per object): once the sink is open, the engine's writer owns recovery
  (it reopens a lost device by itself); the pump waits for the engine's next report of the
  sink (``SinkWatch``, fed by the engine's events) or the refresh interval, and patches
  ``Ready``/``DeviceOpen``, ``actual``, ``xruns``, latency, buffer fill and the engine's pid.
- ``finalize``: withdraws the sink from the player and closes it in the engine, drained, as
  for a sink whose ``spec.nodeSelector`` does not select this node (``NotScheduled``). At
  shutdown sinks stay open when the engine outlives the daemon (the next adopts them).

Default sink (among this node's): the one with ``spec.default: true``; with none marked and
exactly one sink, that one; with several marked, the oldest (``creationTimestamp``, then
name) and the others carry ``Default=False`` with reason ``DefaultConflict``.
"""

from __future__ import annotations

import enum
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio

from controllers.audiosink_metrics import SinkMetrics
from controllers.placement import NodePlacement
from mfx.api.models import AudioSinkSpec, parse_spec
from mfx.api.objects import Obj, ObjectKey, condition, is_deleting, name_of
from mfx.audio.alsa_device import DeviceParams
from mfx.audio.file_tap import explain_missing_device
from mfx.audio.formats import SampleFormat
from mfx.audio.sink_status import SinkState
from mfx.backoff import exponential_delay
from mfx.engine.api import AudioEngine, EngineRestarted, Pacing, SinkChanged, SinkConfig, SinkReport
from mfx.engine.sink_registry import SinkRegistry
from mfx.errors import (
    AudioError,
    DeviceNotFoundError,
    MfxError,
    NotFoundError,
    UnsupportedFormatError,
)
from mfx.task_group import TaskGroupOwner
from observability.metrics import Metrics
from reconciler import (
    ConditionType,
    Context,
    EventType,
    PermanentError,
    Registry,
    StatusPatcher,
    TaskState,
    TemporaryError,
    list_all,
)

KIND = "AudioSink"
OPEN_TASK = "open"
DEVICE_OPEN = "DeviceOpen"
DEFAULT = "Default"

log = logging.getLogger("mfx.controllers.audiosink")


class SinkReason(enum.StrEnum):
    OPENING = "Opening"
    OPENED = "Opened"
    REOPENED = "Reopened"
    DEVICE_LOST = "DeviceLost"
    DEVICE_BUSY = "DeviceBusy"
    DEVICE_NOT_FOUND = "DeviceNotFound"
    UNSUPPORTED_FORMAT = "UnsupportedFormat"
    INVALID_SPEC = "InvalidSpec"
    CLOSED = "Closed"
    WRITER_FAILED = "WriterFailed"
    # the Default condition
    DEFAULT = "DefaultSink"
    ONLY_SINK = "OnlySink"
    NOT_DEFAULT = "NotDefault"
    DEFAULT_CONFLICT = "DefaultConflict"
    NO_DEFAULT = "NoDefaultSink"
    NOT_SCHEDULED = "NotScheduled"  # spec.nodeSelector does not select this node


# Open failures that no retry can fix: the spec must change.
_PERMANENT: tuple[type[AudioError], ...] = (DeviceNotFoundError, UnsupportedFormatError)


class AudioSinkEnv(Protocol):
    """What the controller needs from the composition root."""

    sinks: SinkRegistry
    engine: AudioEngine | None


@dataclass(frozen=True)
class AudioSinkOptions:
    status_interval: float = 2.0  # seconds between status refreshes (state changes are at once)
    drain_timeout: float = 10.0  # how long a delete waits for buffered audio to play
    reopen_initial: float = 0.05  # the writer thread's reopen backoff after a lost device
    reopen_max: float = 2.0
    retry_initial: float = 0.5  # the reconciler's retry backoff for a first open that fails
    retry_max: float = 10.0
    keep_open_on_exit: bool = False  # the engine outlives the daemon: leave its sinks playing


@dataclass
class _Slot:
    config: SinkConfig  # what was last asked of the engine
    started: bool = False  # the engine's sink runs with this config
    failures: int = 0  # open attempts that failed in a row


class SinkWatch(TaskGroupOwner):
    """Keeps the open sinks' reports in the registry up to date from the engine's events, and
    wakes whoever waits for a sink's next report."""

    def __init__(self, engine: AudioEngine, sinks: SinkRegistry, metrics: SinkMetrics | None = None) -> None:
        self._engine = engine
        self._sinks = sinks
        self._metrics = metrics
        self._changed: dict[str, anyio.Event] = {}
        self.restarts = 0
        self.last_restart: EngineRestarted | None = None

    async def __aenter__(self) -> SinkWatch:
        await super().__aenter__()
        self.task_group().start_soon(self._follow)
        return self

    async def _follow(self) -> None:
        async for event in self._engine.events():
            if isinstance(event, SinkChanged):
                self.record(event.report)
            elif isinstance(event, EngineRestarted) and event.reason == "Crashed":
                self.restarts += 1
                self.last_restart = event
                if self._metrics is not None:
                    self._metrics.engine_restarted()
                for name in list(self._changed):
                    self._wake(name)

    def opened(self, report: SinkReport) -> None:
        """A sink the controller opened: published, and its reports count from now on."""
        self._sinks.publish(report)
        self.record(report)

    def record(self, report: SinkReport) -> None:
        if self._sinks.get(report.name) is None:
            return  # withdrawn (closing) or never opened by this controller: no news
        self._sinks.publish(report)
        if self._metrics is not None:
            self._metrics.publish(report)
        self._wake(report.name)

    def latest(self, name: str) -> SinkReport | None:
        return self._sinks.get(name)

    def forget(self, name: str) -> None:
        """The sink is closed (the controller withdrew it first): drop its series."""
        if self._metrics is not None:
            self._metrics.forget(name)
        self._wake(name)

    async def wait_changed(self, name: str, at_most: float) -> None:
        event = self._changed.setdefault(name, anyio.Event())
        with anyio.move_on_after(at_most):
            await event.wait()

    def _wake(self, name: str) -> None:
        event = self._changed.pop(name, None)
        if event is not None:
            event.set()


@dataclass(frozen=True)
class Verdict:
    is_default: bool
    reason: SinkReason
    message: str


@dataclass(frozen=True)
class Election:
    default: str | None
    verdicts: dict[str, Verdict] = field(default_factory=dict)


def elect_default(sinks: list[Obj]) -> Election:
    """Which sink the player plays to, and what each sink's ``Default`` condition says.

    Objects being deleted take no part.
    """
    live = sorted((o for o in sinks if not is_deleting(o)), key=_age)
    marked = [o for o in live if bool((o.get("spec") or {}).get("default", False))]
    verdicts: dict[str, Verdict] = {}
    if marked:
        winner = name_of(marked[0])
        for obj in live:
            name = name_of(obj)
            if name == winner:
                verdicts[name] = Verdict(True, SinkReason.DEFAULT, "the player plays to this sink (spec.default: true)")
            elif obj in marked:
                verdicts[name] = Verdict(False, SinkReason.DEFAULT_CONFLICT, (
                    f"spec.default is true on AudioSink '{winner}' too, which is older and is the default; "
                    "set spec.default: false on one of them"))
            else:
                verdicts[name] = Verdict(False, SinkReason.NOT_DEFAULT, f"the player plays to AudioSink '{winner}'")
        return Election(winner, verdicts)
    if len(live) == 1:
        name = name_of(live[0])
        return Election(name, {name: Verdict(True, SinkReason.ONLY_SINK,
                                             "the player plays to this sink: it is the only AudioSink")})
    names = ", ".join(f"'{name_of(o)}'" for o in live)
    for obj in live:
        verdicts[name_of(obj)] = Verdict(False, SinkReason.NO_DEFAULT, (
            f"{len(live)} AudioSinks ({names}) and none has spec.default: true; "
            "set it on the one the player should play to"))
    return Election(None, verdicts)


def _ready_as_is(obj: Obj) -> bool:
    """Whether the object's status says Ready for its current generation."""
    ready = condition(obj, ConditionType.READY)
    status = obj.get("status") or {}
    return (ready is not None and ready.get("status") == "True"
            and status.get("observedGeneration") == obj.get("metadata", {}).get("generation"))


def _age(obj: Obj) -> tuple[str, str]:
    return (str(obj.get("metadata", {}).get("creationTimestamp") or ""), name_of(obj))


def desired_config(obj: Obj) -> SinkConfig:
    """The sink an AudioSink asks the engine for; PermanentError for a spec that cannot work."""
    try:
        spec = parse_spec(obj)
        assert isinstance(spec, AudioSinkSpec)
        params = DeviceParams(device=spec.device, rate=spec.rate, channels=spec.channels,
                              format=SampleFormat.parse(str(spec.format.value)),
                              period_frames=spec.period_frames, periods=spec.buffer_periods)
        return SinkConfig(name=name_of(obj), params=params, pacing=Pacing(spec.pacing.value))
    except UnsupportedFormatError as exc:
        raise PermanentError(SinkReason.UNSUPPORTED_FORMAT, str(exc)) from None
    except MfxError as exc:
        raise PermanentError(SinkReason.INVALID_SPEC, f"AudioSink '{name_of(obj)}': {exc}") from None


def report(status: StatusPatcher, snap: SinkReport, engine: dict[str, Any] | None = None) -> None:
    """Write what the engine's report of a sink means into an object's status."""
    actual = snap.actual
    if actual is not None:
        status.set("actual", {"rate": actual.rate, "channels": actual.channels, "format": actual.format.value,
                              "periodFrames": actual.period_frames, "bufferFrames": actual.buffer_frames})
    status.set("xruns", snap.xruns)
    status.set("xrunCauses", dict(snap.xrun_causes))
    status.set("latencySeconds", round(snap.latency_seconds, 6))
    status.set("periodSeconds", round(snap.period_seconds, 6))
    status.set("bufferFill", round(snap.buffer_fill, 2))
    status.set("paced", snap.paced)
    if engine is not None:
        status.set("engine", engine)
    if snap.state == SinkState.OPEN:
        message = f"device {snap.message}" if snap.message else "device open"
        status.condition(ConditionType.READY, True, snap.reason, message)
        status.condition(DEVICE_OPEN, True, snap.reason, message)
        status.remove_condition(ConditionType.RECONCILING)
        return
    reason = snap.reason if snap.state != SinkState.NEW else SinkReason.OPENING
    message = snap.message or f"sink is {snap.state}"
    status.condition(ConditionType.READY, False, reason, message)
    status.condition(DEVICE_OPEN, False, reason, message)
    status.condition(ConditionType.RECONCILING, True, reason, message)


class AudioSinkController:
    """The handlers and the sinks they keep; ``register`` wires them into a Registry."""

    def __init__(self, sinks: SinkRegistry, engine: AudioEngine, options: AudioSinkOptions | None = None,
                 metrics: Metrics | None = None) -> None:
        self.sinks = sinks
        self.engine = engine
        self.options = options or AudioSinkOptions()
        self.watch = SinkWatch(engine, sinks, SinkMetrics(metrics) if metrics is not None else None)
        self._slots: dict[str, _Slot] = {}
        self._attaching: set[str] = set()  # first opens of sinks whose status already says Ready
        self._election_inputs: dict[str, tuple[Any, ...]] = {}
        self.placement: NodePlacement | None = None  # which sinks this node opens (None: every one)

    def engine_status(self) -> dict[str, Any] | None:
        """The engine process as the sinks' status shows it (None before it answered)."""
        try:
            info = self.engine.info
        except MfxError:
            return None
        return {"pid": info.pid, "realtime": info.realtime, "restarts": self.watch.restarts}

    # --- reconcile ---------------------------------------------------------------------------

    async def reconcile(self, obj: Obj, ctx: Context) -> None:
        name = name_of(obj)
        config = desired_config(obj)
        if self.placement is not None and not self.placement.selects(obj):
            await self.finalize(obj, ctx)  # closed here, as if deleted, and said so
            for kind in (ConditionType.READY, DEVICE_OPEN):
                ctx.status.condition(kind, False, SinkReason.NOT_SCHEDULED, self.placement.not_placed_message(obj))
            return ctx.status.remove_condition(ConditionType.RECONCILING)
        others = await self._elect(obj, ctx)
        self._check_claims(obj, config.params, others)

        task = ctx.supervisor.status(ctx.key, OPEN_TASK)
        slot = self._slots.get(name)
        if task is not None and not task.finished:
            if name not in self._attaching:
                self._opening(ctx.status, config.params)
            return
        if task is not None:
            ctx.supervisor.forget(ctx.key, OPEN_TASK)
            error = task.error if task.state is TaskState.FAILED else task.result
            if error is not None and slot is not None and slot.config == config:
                await self._failed(name, slot, ctx, error)
        if slot is None or slot.config != config or not slot.started:
            ctx.supervisor.start(ctx.key, OPEN_TASK, lambda: self._open(config))
            if slot is None and _ready_as_is(obj):
                # A daemon (re)starting beside an engine that has this sink open: the open
                # finds it as it is, so Ready stays as it was instead of flapping to Opening.
                self._attaching.add(name)
                for kind in (ConditionType.READY, DEVICE_OPEN):
                    kept = condition(obj, kind) or {}
                    ctx.status.condition(kind, True, kept.get("reason", SinkReason.OPENED), kept.get("message", ""))
            else:
                self._opening(ctx.status, config.params)
            return
        snap = self.watch.latest(name)
        if snap is not None:
            report(ctx.status, snap, self.engine_status())

    async def _elect(self, obj: Obj, ctx: Context) -> list[Obj]:
        """Set this sink's Default condition and the registry's default; returns the other sinks."""
        name = name_of(obj)
        items = await self._placed_sinks(ctx)  # the default is elected among the sinks of this node
        election = elect_default(items)
        self.sinks.set_default(election.default)
        verdict = election.verdicts.get(name)
        if verdict is not None:
            ctx.status.condition(DEFAULT, verdict.is_default, verdict.reason, verdict.message)
        return [o for o in items if name_of(o) != name and not is_deleting(o)]

    async def _placed_sinks(self, ctx: Context) -> list[Obj]:
        return [o for o in (await list_all(ctx.store, KIND))[0] if self.placement is None or self.placement.selects(o)]

    @staticmethod
    def _check_claims(obj: Obj, params: DeviceParams, others: list[Obj]) -> None:
        """An exclusive sink shares its device with no other AudioSink (the older one keeps it)."""
        exclusive = bool((obj.get("spec") or {}).get("exclusive", False))
        for other in others:
            spec = other.get("spec") or {}
            if spec.get("device", "default") != params.device or _age(other) > _age(obj):
                continue
            if exclusive or spec.get("exclusive", False):
                raise TemporaryError(
                    f"device '{params.device}' is claimed by AudioSink '{name_of(other)}' "
                    f"({'this sink' if exclusive else 'that sink'} asks for it exclusively); "
                    "delete one of them or give them different devices", reason=SinkReason.DEVICE_BUSY)

    @staticmethod
    def _opening(status: StatusPatcher, params: DeviceParams) -> None:
        message = f"opening device '{params.device}' (asked {params.describe()})"
        status.condition(ConditionType.READY, False, SinkReason.OPENING, message)
        status.condition(DEVICE_OPEN, False, SinkReason.OPENING, message)

    async def _open(self, config: SinkConfig) -> AudioError | None:
        """The tracked task: open or reconfigure the sink in the engine.

        A device that cannot be opened is an expected outcome, returned for the reconcile to
        judge (not raised: it is no bug and needs no traceback)."""
        name = config.name
        slot = self._slots.get(name)
        if slot is None:
            slot = self._slots[name] = _Slot(config)
        slot.config = config
        slot.started = False
        try:
            snap = await self.engine.configure_sink(config)
        except AudioError as exc:
            self._attaching.discard(name)
            return exc
        self._attaching.discard(name)
        slot.started = True
        slot.failures = 0
        self.watch.opened(snap)
        return None

    async def _failed(self, name: str, slot: _Slot, ctx: Context, error: BaseException | None) -> None:
        """Turn a failed open into the outcome: Stalled for a spec the device never takes,
        a retry with backoff for a device that is busy or gone for now."""
        if isinstance(error, _PERMANENT):
            self.sinks.withdraw(name)
            self._slots.pop(name, None)
            await self._close(name, drain=False)
            message = str(error)
            if isinstance(error, DeviceNotFoundError):
                # ALSA says only "No such file or directory": name what is missing (a sound
                # card, a configuration, a PCM in it) and what to do, from this process's view.
                message = explain_missing_device(slot.config.params.device, os.environ)
            ctx.status.condition(DEVICE_OPEN, False, error.reason, message)
            raise PermanentError(error.reason, message)
        if isinstance(error, AudioError):
            slot.failures += 1
            delay = exponential_delay(slot.failures, self.options.retry_initial, self.options.retry_max)
            ctx.status.condition(DEVICE_OPEN, False, error.reason, str(error))
            raise TemporaryError(f"{error} (retrying in {delay:.3g}s)", delay=delay, reason=error.reason)
        if error is not None:
            raise error

    async def _close(self, name: str, *, drain: bool) -> None:
        try:
            await self.engine.close_sink(name, drain=drain, drain_seconds=self.options.drain_timeout)
        except NotFoundError:
            pass
        except AudioError as exc:
            log.warning("could not close sink %s in the audio engine: %s", name, exc)
        self.watch.forget(name)

    # --- status pump -------------------------------------------------------------------------

    async def pump(self, obj: Obj, ctx: Context) -> None:
        """Keep the object's status in step with the engine's reports until cancelled."""
        name = name_of(obj)
        try:
            config = desired_config(obj)
        except PermanentError:
            return  # the reconcile reports it
        interval = self.options.status_interval
        restarts_seen = self.watch.restarts
        while True:
            slot = self._slots.get(name)
            if slot is None or not slot.started or slot.config != config:
                await ctx.clock.sleep(interval)
                continue
            snap = self.watch.latest(name)
            restarted = self.watch.last_restart if self.watch.restarts > restarts_seen else None
            restarts_seen = self.watch.restarts
            if snap is not None:
                await self._publish_status(ctx, name, snap, self.engine_status(), restarted)
            await self.watch.wait_changed(name, interval)
            if self.watch.latest(name) is snap:  # nothing pushed: refresh the counters
                try:
                    self.watch.record(await self.engine.sink_report(name))
                except MfxError as exc:
                    log.debug("sink %s: no report from the engine: %s", name, exc)

    @staticmethod
    async def _publish_status(ctx: Context, name: str, snap: SinkReport, engine: dict[str, Any] | None,
                              restarted: EngineRestarted | None = None) -> None:
        # A fresh read each time: another writer (the reconcile) may have changed the status.
        try:
            obj = await ctx.store.get(KIND, name)
        except NotFoundError:
            return
        if is_deleting(obj):
            return
        patcher = StatusPatcher(ctx.store, obj, ctx.events)
        report(patcher, snap, engine)
        if restarted is not None:
            patcher.record_event(EventType.WARNING, "EngineRestarted",
                                 f"the audio engine exited and was started again as pid {restarted.info.pid}: "
                                 f"{restarted.message}")
        try:
            await patcher.flush()
        except NotFoundError:
            return

    # --- delete --------------------------------------------------------------------------------

    async def finalize(self, obj: Obj, ctx: Context) -> None:
        name = name_of(obj)
        await ctx.supervisor.wait(ctx.key, OPEN_TASK)  # an open in flight finishes first
        ctx.supervisor.forget(ctx.key, OPEN_TASK)
        self.sinks.withdraw(name)
        items = [item for item in await self._placed_sinks(ctx) if name_of(item) != name]
        self.sinks.set_default(elect_default(items).default)
        if self._slots.pop(name, None) is not None:
            await self._close(name, drain=True)

    async def close_all(self) -> None:
        """Daemon shutdown: close every sink without draining, unless the engine outlives the
        daemon (then the music goes on and the next daemon adopts the sinks)."""
        slots = list(self._slots)
        self._slots.clear()
        for name in slots:
            self.sinks.withdraw(name)
            if not self.options.keep_open_on_exit:
                await self._close(name, drain=False)

    # --- related ---------------------------------------------------------------------------------

    def election_changes(self, obj: Obj) -> list[ObjectKey]:
        """The other sinks, when this one changed in a way that can move the default."""
        name = name_of(obj)
        meta = obj.get("metadata", {})
        if is_deleting(obj) and not meta.get("finalizers"):  # gone for good
            self._election_inputs.pop(name, None)
            return [ObjectKey(KIND, n) for n in self._election_inputs]
        inputs = (bool((obj.get("spec") or {}).get("default", False)), is_deleting(obj),
                  meta.get("creationTimestamp"), (obj.get("spec") or {}).get("device"),
                  (obj.get("spec") or {}).get("exclusive"))
        if self._election_inputs.get(name) == inputs:
            return []
        self._election_inputs[name] = inputs
        return [ObjectKey(KIND, n) for n in self._election_inputs if n != name]


def register(on: Registry, env: AudioSinkEnv, options: AudioSinkOptions | None = None) -> AudioSinkController:
    """Register the AudioSink handlers on ``on``; open sinks are published in ``env.sinks``.

    When the environment keeps ``controllers`` and ``shutdown_hooks`` (the daemon's
    ``ControllerEnv``), the controller is listed there, closes its sinks at shutdown (unless
    ``env.keep_audio_on_exit``) and its ``SinkWatch`` runs among ``env.resources``.
    """
    if env.engine is None:
        raise RuntimeError("the AudioSink controller needs the audio engine (ControllerEnv.engine)")
    options = options or AudioSinkOptions(keep_open_on_exit=bool(getattr(env, "keep_audio_on_exit", False)))
    controller = AudioSinkController(env.sinks, env.engine, options, getattr(env, "metrics", None))
    controller.placement = getattr(env, "placement", None)
    controllers = getattr(env, "controllers", None)
    if isinstance(controllers, dict):
        controllers[KIND] = controller
    hooks = getattr(env, "shutdown_hooks", None)
    if isinstance(hooks, list):
        hooks.append(controller.close_all)
    resources = getattr(env, "resources", None)
    if isinstance(resources, list):
        resources.append(controller.watch)
    on.reconcile(KIND)(controller.reconcile)
    on.delete(KIND)(controller.finalize)
    on.daemon(KIND, name="status")(controller.pump)
    on.related(KIND)(controller.election_changes)
    return controller
