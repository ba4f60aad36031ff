"""The AudioSink controller: the only code that opens ALSA devices.

Each AudioSink object gets one long-lived ``SinkEngine`` (device + ring buffer + writer
thread), kept here by name for as long as the object exists, and published in the
``SinkRegistry`` where the player finds it. The pieces:

- ``reconcile``: validates the spec, elects the default sink, and starts the open (or the
  reopen with new parameters) as a tracked task so no worker ever blocks on a device. When
  the task ends the key comes back: success reports the parameters the device accepted;
  a spec the device can never take (unknown device, refused rate or format) stalls with
  ``DeviceNotFound``/``UnsupportedFormat`` until the spec changes; a busy or vanished device
  (``DeviceBusy``/``DeviceLost``) is retried with backoff.
- ``pump`` (a daemon per object): once the engine runs, the writer thread owns recovery
  (it reopens a lost device by itself and resumes with the period in hand); the pump waits,
  in a worker thread, for the engine's next state change or the refresh interval, and
  patches ``Ready``/``DeviceOpen``, ``actual``, ``xruns`` and ``latencySeconds``. Waiting on
  the engine's own condition variable means the writer thread never blocks on the event loop.
- ``finalize``: withdraws the sink from the player, drains it, closes the device and drops
  its metric series.

Default sink: the one with ``spec.default: true``; with none marked and exactly one sink,
that one; with several marked, the oldest (``creationTimestamp``, then name) and the others
carry ``Default=False`` with reason ``DefaultConflict`` saying which sink won.
"""

from __future__ import annotations

import enum
import functools
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio

from mfx.api.models import AudioSinkSpec, parse_spec
from mfx.api.objects import Obj, ObjectKey, is_deleting, name_of
from mfx.audio.alsa_device import DeviceParams
from mfx.audio.file_tap import explain_missing_device
from mfx.audio.formats import SampleFormat
from mfx.audio.registry import SinkRegistry
from mfx.audio.sink import SinkEngine, SinkState, SinkStatus
from mfx.backoff import exponential_delay
from mfx.errors import (
    AudioError,
    DeviceNotFoundError,
    MfxError,
    NotFoundError,
    UnsupportedFormatError,
)
from observability.metrics import Metrics
from reconciler import (
    ConditionType,
    Context,
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


# Open failures that no retry can fix: the spec must change.
_PERMANENT: tuple[type[AudioError], ...] = (DeviceNotFoundError, UnsupportedFormatError)


class AudioSinkEnv(Protocol):
    """What the controller needs from the composition root."""

    sinks: SinkRegistry


@dataclass(frozen=True)
class AudioSinkOptions:
    status_interval: float = 2.0  # seconds between status refreshes (state changes are at once)
    drain_timeout: float = 10.0  # how long a delete waits for buffered audio to play
    reopen_initial: float = 0.05  # the writer thread's reopen backoff after a lost device
    reopen_max: float = 2.0
    retry_initial: float = 0.5  # the reconciler's retry backoff for a first open that fails
    retry_max: float = 10.0
    ring_frames: int | None = None  # None: twice the device buffer


@dataclass
class _Slot:
    engine: SinkEngine
    params: DeviceParams  # what was last asked of the engine
    started: bool = False  # the writer runs with these params
    failures: int = 0  # open attempts that failed in a row


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


def _age(obj: Obj) -> tuple[str, str]:
    return (str(obj.get("metadata", {}).get("creationTimestamp") or ""), name_of(obj))


def desired_params(obj: Obj) -> DeviceParams:
    """The device parameters an AudioSink asks for; PermanentError for a spec that cannot work."""
    try:
        spec = parse_spec(obj)
        assert isinstance(spec, AudioSinkSpec)
        return DeviceParams(device=spec.device, rate=spec.rate, channels=spec.channels,
                            format=SampleFormat.parse(str(spec.format.value)),
                            period_frames=spec.period_frames, periods=spec.buffer_periods)
    except UnsupportedFormatError as exc:
        raise PermanentError(SinkReason.UNSUPPORTED_FORMAT, str(exc)) from None
    except MfxError as exc:
        raise PermanentError(SinkReason.INVALID_SPEC, f"AudioSink '{name_of(obj)}': {exc}") from None


def report(status: StatusPatcher, snap: SinkStatus) -> None:
    """Write what an engine's snapshot means into an object's status."""
    actual = snap.actual
    if actual is not None:
        status.set("actual", {"rate": actual.rate, "channels": actual.channels, "format": actual.format.value,
                              "periodFrames": actual.period_frames, "bufferFrames": actual.buffer_frames})
    status.set("xruns", snap.xruns)
    status.set("latencySeconds", round(snap.latency_seconds, 6))
    if snap.state is SinkState.OPEN:
        message = f"device {snap.message}" if snap.message else "device open"
        status.condition(ConditionType.READY, True, snap.reason, message)
        status.condition(DEVICE_OPEN, True, snap.reason, message)
        status.remove_condition(ConditionType.RECONCILING)
        return
    reason = snap.reason if snap.state is not SinkState.NEW else SinkReason.OPENING
    message = snap.message or f"sink is {snap.state.value}"
    status.condition(ConditionType.READY, False, reason, message)
    status.condition(DEVICE_OPEN, False, reason, message)
    status.condition(ConditionType.RECONCILING, True, reason, message)


def _wait_for_change(engine: SinkEngine, seen: SinkStatus, timeout: float) -> None:
    """Block (in a worker thread) until the engine's state or reason moves on, or ``timeout``."""
    engine.wait_until(lambda s: (s.state, s.reason) != (seen.state, seen.reason), timeout=timeout)


class AudioSinkController:
    """The handlers and the engines they keep; ``register`` wires them into a Registry."""

    def __init__(self, sinks: SinkRegistry, options: AudioSinkOptions | None = None) -> None:
        self.sinks = sinks
        self.options = options or AudioSinkOptions()
        self._slots: dict[str, _Slot] = {}
        self._election_inputs: dict[str, tuple[Any, ...]] = {}
        self._waits = anyio.CapacityLimiter(64)  # threads waiting on engines, apart from other to_thread users

    def engine(self, name: str) -> SinkEngine | None:
        slot = self._slots.get(name)
        return slot.engine if slot is not None else None

    # --- reconcile ---------------------------------------------------------------------------

    async def reconcile(self, obj: Obj, ctx: Context) -> None:
        name = name_of(obj)
        params = desired_params(obj)
        others = await self._elect(obj, ctx)
        self._check_claims(obj, params, others)

        task = ctx.supervisor.status(ctx.key, OPEN_TASK)
        slot = self._slots.get(name)
        if task is not None and not task.finished:
            self._opening(ctx.status, params)
            return
        if task is not None:
            ctx.supervisor.forget(ctx.key, OPEN_TASK)
            error = task.error if task.state is TaskState.FAILED else task.result
            if error is not None and slot is not None and slot.params == params:
                await self._failed(name, slot, ctx, error)
        if slot is None or slot.params != params or not slot.started:
            ctx.supervisor.start(ctx.key, OPEN_TASK, lambda: self._open(name, params, ctx.metrics))
            self._opening(ctx.status, params)
            return
        report(ctx.status, slot.engine.status())

    async def _elect(self, obj: Obj, ctx: Context) -> list[Obj]:
        """Set this sink's Default condition and the registry's default; returns the other sinks."""
        items, _ = await list_all(ctx.store, KIND)
        name = name_of(obj)
        election = elect_default(items)
        self.sinks.set_default(election.default)
        verdict = election.verdicts.get(name)
        if verdict is not None:
            ctx.status.condition(DEFAULT, verdict.is_default, verdict.reason, verdict.message)
        return [o for o in items if name_of(o) != name and not is_deleting(o)]

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

    async def _open(self, name: str, params: DeviceParams, metrics: Metrics) -> AudioError | None:
        """The tracked task: create or reconfigure the engine and start its writer thread.

        A device that cannot be opened is an expected outcome, returned for the reconcile to
        judge (not raised: it is no bug and needs no traceback)."""
        slot = self._slots.get(name)
        if slot is None:
            engine = SinkEngine(name, params, metrics=metrics, ring_frames=self.options.ring_frames,
                                reopen_initial=self.options.reopen_initial, reopen_max=self.options.reopen_max)
            slot = self._slots[name] = _Slot(engine, params)
        slot.params = params
        slot.started = False

        def start() -> None:  # one thread call, so a cancellation cannot split start from publish
            engine = slot.engine
            if engine.status().requested != params:
                engine.reconfigure(params)
            engine.start()
            slot.started = True
            slot.failures = 0
            self.sinks.publish(name, engine)

        try:
            await anyio.to_thread.run_sync(start)
        except AudioError as exc:
            return exc
        return None

    async def _failed(self, name: str, slot: _Slot, ctx: Context, error: BaseException | None) -> None:
        """Turn a failed open into the outcome: Stalled for a spec the device never takes,
        a retry with backoff for a device that is busy or gone for now."""
        if isinstance(error, _PERMANENT):
            self.sinks.withdraw(name)
            self._slots.pop(name, None)
            await anyio.to_thread.run_sync(lambda: slot.engine.close(drain=False))
            message = str(error)
            if isinstance(error, DeviceNotFoundError):
                # ALSA says only "No such file or directory": name what is missing (a sound
                # card, a configuration, a PCM in it) and what to do, from this process's view.
                message = explain_missing_device(slot.params.device, os.environ)
            ctx.status.condition(DEVICE_OPEN, False, error.reason, message)
            raise PermanentError(error.reason, message)
        if isinstance(error, AudioError):
            slot.failures += 1
            delay = exponential_delay(slot.failures, self.options.retry_initial, self.options.retry_max)
            ctx.status.condition(DEVICE_OPEN, False, error.reason, str(error))
            raise TemporaryError(f"{error} (retrying in {delay:.3g}s)", delay=delay, reason=error.reason)
        if error is not None:
            raise error

    # --- status pump -------------------------------------------------------------------------

    async def pump(self, obj: Obj, ctx: Context) -> None:
        """Keep the object's status in step with its engine until cancelled."""
        name = name_of(obj)
        try:
            params = desired_params(obj)
        except PermanentError:
            return  # the reconcile reports it
        interval = self.options.status_interval
        while True:
            slot = self._slots.get(name)
            if slot is None or not slot.started or slot.params != params:
                await ctx.clock.sleep(interval)
                continue
            engine = slot.engine
            snap = engine.status()
            await self._publish_status(ctx, name, snap)
            await anyio.to_thread.run_sync(functools.partial(_wait_for_change, engine, snap, interval),
                                           abandon_on_cancel=True, limiter=self._waits)

    @staticmethod
    async def _publish_status(ctx: Context, name: str, snap: SinkStatus) -> None:
        # A fresh read each time: another writer (the reconcile) may have changed the status.
        try:
            obj = await ctx.store.get(KIND, name)
        except NotFoundError:
            return
        if is_deleting(obj):
            return
        patcher = StatusPatcher(ctx.store, obj, ctx.events)
        report(patcher, snap)
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
        items, _ = await list_all(ctx.store, KIND)
        self.sinks.set_default(elect_default(items).default)
        slot = self._slots.pop(name, None)
        if slot is not None:
            timeout = self.options.drain_timeout
            await anyio.to_thread.run_sync(lambda: slot.engine.close(drain=True, timeout=timeout))
        ctx.metrics.forget("sink", name)

    async def close_all(self) -> None:
        """Close every device without draining (daemon shutdown); the objects stay as they are."""
        slots = list(self._slots.items())
        self._slots.clear()
        for name, slot in slots:
            self.sinks.withdraw(name)
            await anyio.to_thread.run_sync(functools.partial(slot.engine.close, drain=False))

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
    """Register the AudioSink handlers on ``on``; engines are published in ``env.sinks``.

    When the environment keeps ``controllers`` and ``shutdown_hooks`` (the daemon's
    ``ControllerEnv``), the controller is listed there and closes every device at shutdown.
    """
    controller = AudioSinkController(env.sinks, options)
    controllers = getattr(env, "controllers", None)
    if isinstance(controllers, dict):
        controllers[KIND] = controller
    hooks = getattr(env, "shutdown_hooks", None)
    if isinstance(hooks, list):
        hooks.append(controller.close_all)
    on.reconcile(KIND)(controller.reconcile)
    on.delete(KIND)(controller.finalize)
    on.daemon(KIND, name="status")(controller.pump)
    on.related(KIND)(controller.election_changes)
    return controller
