"""The sink engine: one device, one ring buffer, one writer thread moving periods between them.

The engine's controls and its writer thread stay in one module because they share one lock
and the device, ring and counters it guards; its state types, real-time scheduling and
per-stream positions live in sink_status, realtime and stream_clock.

The writer is a real ``threading.Thread`` so that no amount of work on the event loop can
starve it; it spends most of its life inside a blocking ALSA write with the GIL released.

What it does per period, and why:
- Takes one period from the ring. Before the first audio after an open it waits for data
  (a prepared PCM that was never written does not run, so nothing is lost). Once running,
  it waits at most one period for data and then writes what there is padded with silence:
  the device keeps running instead of underrunning, and the silence is counted.
- When nothing more is coming (``set_feeding(False)``: pause, stop, end of the queue), it
  writes what is left unpadded, lets a paced device play it out and drains it (the file
  tap's last buffer reaches its file), and goes idle, writing nothing until a whole period
  arrives. A real device runs dry meanwhile: the underrun its next write reports is an
  expected idle restart, not an xrun.
- An underrun (``-EPIPE``) is an xrun, counted by cause (``writer_timing``); pyalsaaudio has
  prepared the PCM again, and the period that failed was not played: it is written again.
- With ``Pacing.AUTO`` a device that does not pace itself (``null``, the file tap) is
  wrapped in a ``PacedDevice``, so it plays in real time like a card.
- Any other device failure (I/O error, server gone) closes the device, reports
  ``DEVICE_LOST`` through the state callback, and reopens with exponential backoff inside the
  writer thread; the period in hand is written first after the reopen, so playback resumes
  where it stopped (the ring keeps the rest, and the producer waits meanwhile).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import numpy as np

from mfx.audio.alsa_device import AlsaDevice, DeviceParams, PcmDevice, errno_name
from mfx.audio.file_tap import opened_note
from mfx.audio.paced_device import PacedDevice, Pacing, pacing_needed
from mfx.audio.realtime import realtime_threads, request_realtime
from mfx.audio.ring_buffer import FrameRingBuffer, StreamId
from mfx.audio.sink_metrics import SinkMetrics
from mfx.audio.sink_status import SinkState, SinkStatus, StateCallback, state_for
from mfx.audio.stream_clock import StreamClock, StreamPosition
from mfx.audio.writer_timing import WriterTiming
from mfx.backoff import exponential_delay
from mfx.errors import AudioError, UnderrunError
from observability.metrics import Metrics

log = logging.getLogger("mfx.audio.sink")

DeviceOpener = Callable[[DeviceParams], PcmDevice]


class SinkEngine:
    """Owns one playback device and the writer thread that feeds it from a ring buffer.

    Typical use::

        engine = SinkEngine("speakers", DeviceParams(rate=48000), metrics=m, on_state=cb)
        engine.start()                 # opens the device (raises on a bad spec) and the writer
        engine.ring.write(frames)      # or let a Pipeline do it
        engine.close(drain=True)

    ``on_state`` is called (from whichever thread changed it, often the writer) with a
    snapshot each time the state or its reason changes; keep it quick and non-blocking.

    ``pacing`` (``Pacing.AUTO`` or ``"auto"``) plays a device that does not pace itself in
    real time; the default, ``none``, writes as fast as the device takes it.
    """

    def __init__(self, name: str, params: DeviceParams, *, metrics: Metrics | None = None,
                 on_state: StateCallback | None = None, ring_frames: int | None = None,
                 open_device: DeviceOpener | None = None, reopen_initial: float = 0.05,
                 reopen_max: float = 2.0, pacing: Pacing | str = Pacing.NONE) -> None:
        self.name = name
        self._requested = params
        self._metrics = SinkMetrics(name, metrics)
        self._on_state = on_state
        self._ring_frames = ring_frames
        self._open_device: DeviceOpener = open_device or AlsaDevice.open
        self._reopen_initial = reopen_initial
        self._reopen_max = reopen_max
        self._pacing = Pacing(pacing)

        self._lock = threading.Lock()
        self._progress = threading.Condition(self._lock)
        self._device: PcmDevice | None = None
        self._actual: DeviceParams | None = None
        self._ring: FrameRingBuffer | None = None
        self._clock = StreamClock()  # outlives every ring: positions survive a reconfigure
        self._thread: threading.Thread | None = None
        self.realtime = False  # whether the writer thread got a real-time scheduling class
        self._stop = threading.Event()
        self._draining = False
        self._started = False  # audio has been written since the last open
        self._stall_seconds = 0.0
        self._waited = 0.0  # seconds the current period waited for data
        self._feeding = True  # a producer may write more (False: play out and go idle)
        self._restart_expected = False  # went idle: the device's next underrun is no xrun
        self._timing = WriterTiming()
        self._device_base = 0  # frames written before the open device was opened
        self._state = SinkState.NEW
        self._reason = "Created"
        self._message = ""
        self._frames_written = self._xruns = self._silence_frames = 0
        self._write_errors: dict[str, int] = {}
        self._reopens = 0
        self._idles = self._idle_restarts = 0  # idle spells, and device restarts after them

    # --- public API ---------------------------------------------------------------------

    @property
    def ring(self) -> FrameRingBuffer:
        """The ring the producer writes to (replaced by ``reconfigure``)."""
        if self._ring is None:
            raise AudioError(f"sink {self.name!r} is not open: call open() or start() first")
        return self._ring

    @property
    def params(self) -> DeviceParams:
        """What the device accepted (the requested parameters before the first open)."""
        return self._actual or self._requested

    def open(self) -> SinkStatus:
        """Open the device and create the ring, without starting the writer.

        Raises the translated error (DeviceNotFoundError, UnsupportedFormatError, ...) and
        records it in the status.
        """
        return self._open(new_ring=False)

    def _open(self, *, new_ring: bool) -> SinkStatus:
        if self._device is not None:
            return self.status()
        try:
            with realtime_threads():
                device = self._open_device(self._requested)
        except AudioError as exc:
            self._set_state(state_for(exc), exc.reason, str(exc))
            raise
        self._install(device, new_ring=new_ring)
        self._set_state(SinkState.OPEN, "Opened", _opened(device))
        return self.status()

    def start(self) -> SinkStatus:
        """Open the device if needed, then start the writer thread."""
        if self._device is None:
            self.open()
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._draining = False
            self._thread = threading.Thread(target=self._run, name=f"mfx-sink-{self.name}", daemon=True)
            self._thread.start()
        return self.status()

    def close(self, drain: bool = True, timeout: float | None = 10.0) -> SinkStatus:
        """Stop the writer and close the device.

        ``drain=True`` plays what is buffered first (up to ``timeout`` seconds, then it stops
        anyway); ``drain=False`` discards it at once.
        """
        self._stop_writer(drain=drain, timeout=timeout)
        self._close_device(drop=not drain)
        if self._ring is not None:
            self._ring.close()
        self._set_state(SinkState.CLOSED, "Closed", "sink closed")
        return self.status()

    def reconfigure(self, params: DeviceParams) -> SinkStatus:
        """Reopen the device with ``params``; buffered audio is dropped and a new ring is made
        (its format may differ), so producers must take ``ring`` again. Stream positions go
        on from where they were.

        The old ring stays in place, open, until the new one is there, so a producer never
        finds the sink without a ring and mistakes a reconfigure for the sink going away."""
        was_running = self._thread is not None and self._thread.is_alive()
        self._stop_writer(drain=False, timeout=None)
        self._close_device(drop=True)
        old_ring, old_rate = self._ring, self.params.rate
        self._requested = params
        self._actual = None
        try:
            self._open(new_ring=True)
        except AudioError:
            self._ring = None  # no ring until an open works
            raise
        finally:
            if old_ring is not None:
                self._clock.pass_over(old_ring, old_rate)
                old_ring.close()
        if was_running:
            self.start()
        return self.status()

    @property
    def paced(self) -> bool:
        """Whether the open device is paced by the sink (see ``Pacing``)."""
        return isinstance(self._device, PacedDevice)

    def set_feeding(self, feeding: bool) -> None:
        """False (pause, stop, end of the queue): play what is buffered, then write nothing
        until audio comes again. True: short gaps are bridged with counted silence."""
        # No sink lock: a producer calls this under its own lock, and wait_until predicates
        # (run under the sink lock) may ask that producer for its position.
        if self._feeding == bool(feeding):
            return
        self._feeding = bool(feeding)
        ring = self._ring
        if ring is not None:
            ring.interrupt()

    def open_stream(self) -> StreamId:
        """A new stream to tag frames with (``ring.write(..., stream=)``) and ask about."""
        return self._clock.open()

    def end_stream(self, stream: StreamId) -> None:
        """Nothing more of ``stream`` will be written; it is ENDED once what is buffered played."""
        self._clock.end(stream)

    def stream_position(self, stream: StreamId) -> StreamPosition:
        """How much of ``stream`` has played and how much waits in the buffer, and its state."""
        return self._clock.position(stream, self._ring, played=self._played_offset())

    def status(self) -> SinkStatus:
        with self._lock:
            return self._snapshot()

    def wait_until(self, predicate: Callable[[SinkStatus], bool],
                   timeout: float | None = None) -> SinkStatus | None:
        """Block until ``predicate(status)`` holds (checked after every write and state
        change); the status then, or None on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._progress:
            while True:
                snapshot = self._snapshot()
                if predicate(snapshot):
                    return snapshot
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._progress.wait(remaining)

    def stall_for(self, seconds: float) -> None:
        """Fault injection: the writer sleeps ``seconds`` before its next device write, as a
        starved writer would (an underrun on a real-time device)."""
        with self._lock:
            self._stall_seconds = float(seconds)
        if self._ring is not None:
            self._ring.interrupt()

    def writer_loop_seconds(self) -> list[float]:
        """Recent per-period times the writer spent outside the device write and the wait
        for data: the work that must fit in a period (for benchmarks)."""
        with self._lock:
            return list(self._timing.loop_seconds)

    def __enter__(self) -> SinkEngine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(drain=exc[0] is None)

    # --- device and ring ---------------------------------------------------------------------

    def _install(self, device: PcmDevice, *, new_ring: bool = False) -> None:
        if pacing_needed(device, self._pacing):
            device = PacedDevice(device)
        actual = device.actual
        ring = self._ring
        if new_ring or ring is None or ring.dtype != actual.format.dtype or ring.channels != actual.channels:
            if ring is not None and not new_ring:  # a new ring on request: the caller retires the old one
                ring.close()
            capacity = self._ring_frames or 2 * actual.buffer_frames
            self._ring = FrameRingBuffer(capacity, actual.channels, actual.format.dtype)
        with self._lock:
            self._device = device
            self._actual = actual
            self._started = False
            self._restart_expected = False
            self._device_base = self._frames_written  # device frame 0 of this device
            self._timing.restart()
        self._metrics.latency(actual.buffer_seconds)

    def _close_device(self, *, drop: bool) -> None:
        device, self._device = self._device, None
        if device is None:
            return
        if drop:
            try:
                device.drop()
            except AudioError as exc:
                log.debug("sink %s: drop on close: %s", self.name, exc)
        device.close()

    def _stop_writer(self, *, drain: bool, timeout: float | None) -> None:
        thread = self._thread
        if thread is None:
            return
        if drain:
            self._draining = True
        else:
            self._stop.set()
        if self._ring is not None:
            self._ring.interrupt()
        thread.join(timeout)
        if thread.is_alive():  # drain did not finish in time: stop without it
            self._stop.set()
            if self._ring is not None:
                self._ring.interrupt()
            thread.join()
        self._thread = None

    # --- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        self.realtime = request_realtime(self.name)
        try:
            while not self._stop.is_set():
                if self._device is None and not self._reopen():
                    break
                frames = self._next_period()
                if frames is None:
                    if self._draining and self._ring is not None and self._ring.fill == 0:
                        self._finish_drain()
                        break
                    continue
                if not self._write_all(frames):
                    break
        except Exception as exc:  # a bug must surface as a state, not a silent dead thread
            log.exception("sink %s: writer thread failed", self.name)
            self._set_state(SinkState.ERROR, "WriterFailed", f"writer thread failed: {exc!r}")

    def _next_period(self) -> np.ndarray | None:
        """The next period to write, padded with counted silence while a producer feeds the
        running stream; what is left, unpadded, once it stopped feeding; None when there is
        nothing to write yet (or ever, when draining)."""
        ring = self._ring
        actual = self._actual
        assert ring is not None and actual is not None
        period = actual.period_frames
        if not self._feeding:
            if self._started:
                return self._play_out(ring, actual)
            # Idle: a tail shorter than a period, written just before the producer stopped, plays too.
            ring.wait_for(1, wake=lambda: self._stop.is_set() or self._draining or self._feeding)
            if self._stop.is_set() or self._feeding or not ring.fill:
                return None
            return self._clock.take(ring, period, actual.rate, at=self._frames_written)

        def wake() -> bool:
            return self._stop.is_set() or self._draining or (self._started and not self._feeding)

        waited = time.perf_counter()
        fill = ring.wait_for(period, timeout=actual.period_seconds if self._started else None, wake=wake)
        self._waited += time.perf_counter() - waited
        if self._stop.is_set() or (self._started and not self._feeding):
            return None
        if fill < period and not self._draining and not self._started:
            return None  # nothing played since the open or an idle spell: wait for a whole period, no silence
        frames = self._clock.take(ring, period, actual.rate, at=self._frames_written)
        self._publish_fill(ring)
        if len(frames) == period:
            return frames
        if self._draining:  # the last frames: no padding, the stream ends here
            return frames if len(frames) else None
        return self._pad(frames, period)

    def _play_out(self, ring: FrameRingBuffer, actual: DeviceParams) -> np.ndarray | None:
        """Nothing more is coming: the rest of the ring as it is, then idle."""
        frames = self._clock.take(ring, actual.period_frames, actual.rate, at=self._frames_written)
        self._publish_fill(ring)
        if len(frames):
            return frames
        if isinstance(self._device, PacedDevice) and self._device.wait_played(actual.buffer_seconds * 2):
            self._device.drain()
        with self._progress:
            self._started, self._restart_expected = False, True  # the device's next underrun is ours
            self._idles += 1
            self._timing.restart()
            self._progress.notify_all()
        return None

    def _pad(self, frames: np.ndarray, period: int) -> np.ndarray:
        assert self._actual is not None
        padded = np.zeros((period, self._actual.channels), dtype=self._actual.format.dtype)
        padded[:len(frames)] = frames
        silence = period - len(frames)
        with self._lock:
            self._silence_frames += silence
        self._metrics.silence(silence)
        return padded

    def _write_all(self, frames: np.ndarray) -> bool:
        """Write ``frames`` completely, across underruns and reopens; False when stopped."""
        pending = frames
        loop_started = self._timing.last_return
        while len(pending):
            if self._stop.is_set():
                return False
            self._maybe_stall()
            device = self._device
            if device is None:
                if not self._reopen():
                    return False
                continue
            if loop_started is not None:
                work = time.perf_counter() - loop_started - self._waited
                with self._lock:
                    self._timing.record_work(work, device.actual)
                loop_started = None
            self._waited = 0.0
            call_started = time.perf_counter()
            try:
                written = device.write(pending)
            except UnderrunError:
                if self._restart_expected:  # it ran dry while idle, as it should have
                    with self._lock:
                        self._restart_expected = False
                        self._idle_restarts += 1
                    continue
                self._count_error("EPIPE")
                with self._lock:
                    self._xruns += 1
                    self._timing.xrun(call_started, device.actual, self.name, self._xruns)
                self._metrics.xrun()
                continue  # the failed period was not played: write it again
            except AudioError as exc:
                self._count_error(errno_name(exc))
                self._lose_device(exc)
                continue
            with self._lock:
                self._timing.returned(call_started, time.perf_counter())
                self._restart_expected = False
            if written == 0:  # the device took nothing (non-blocking PCM): give it a moment
                self._stop.wait(self.params.period_seconds / 4)
                continue
            pending = pending[written:]
            with self._progress:
                self._frames_written += written
                self._progress.notify_all()
            self._metrics.written(written)
        with self._lock:
            self._started = True
        return True

    def _maybe_stall(self) -> None:
        with self._lock:
            seconds, self._stall_seconds = self._stall_seconds, 0.0
        if seconds > 0:
            self._stop.wait(seconds)

    def _lose_device(self, error: AudioError) -> None:
        self._close_device(drop=False)
        self._set_state(state_for(error), error.reason, str(error))

    def _reopen(self) -> bool:
        """Reopen with backoff until it works (True) or the sink is stopped (False)."""
        failures = 0
        while not self._stop.is_set():  # close(drain=True) still waits, up to its timeout
            try:
                device = self._open_device(self._requested)
            except AudioError as exc:
                failures += 1
                delay = exponential_delay(failures, self._reopen_initial, self._reopen_max)
                self._set_state(state_for(exc), exc.reason, f"{exc} (retrying in {delay:.2g}s)")
                self._stop.wait(delay)
                continue
            self._install(device)
            with self._lock:
                self._reopens += 1
            self._metrics.reopened()
            self._set_state(SinkState.OPEN, "Reopened", _opened(device))
            return True
        return False

    def _finish_drain(self) -> None:
        device = self._device
        if device is None:
            return
        try:
            device.drain()
        except AudioError as exc:
            log.debug("sink %s: drain: %s", self.name, exc)

    # --- bookkeeping -------------------------------------------------------------------------

    def _count_error(self, name: str) -> None:
        with self._lock:
            self._write_errors[name] = self._write_errors.get(name, 0) + 1
        self._metrics.write_error(name)

    def _publish_fill(self, ring: FrameRingBuffer) -> None:
        self._metrics.fill(ring.fill_ratio)

    def _set_state(self, state: SinkState, reason: str, message: str) -> None:
        with self._progress:
            changed = (state, reason) != (self._state, self._reason)
            self._state, self._reason, self._message = state, reason, message
            snapshot = self._snapshot()
            self._progress.notify_all()
        self._metrics.ready(state is SinkState.OPEN)
        if changed and self._on_state is not None:
            try:
                self._on_state(snapshot)
            except Exception:  # a broken observer must not take the audio down
                log.exception("sink %s: state callback failed", self.name)

    def _played_offset(self) -> int:
        """The device frame playing now (frames written, less what a paced device holds)."""
        device = self._device
        if isinstance(device, PacedDevice):
            return self._device_base + device.played()
        return self._frames_written

    def _snapshot(self) -> SinkStatus:
        ring = self._ring
        actual = self._actual
        device = self._device
        paced = device if isinstance(device, PacedDevice) else None
        delay = paced.delay() if paced is not None else 0
        waiting = ring.fill if ring is not None else 0
        timing, rate = self._timing, actual.rate if actual is not None else 1
        return SinkStatus(
            name=self.name, state=self._state, reason=self._reason, message=self._message,
            requested=self._requested, actual=actual, frames_written=self._frames_written,
            xruns=self._xruns, silence_frames=self._silence_frames,
            write_errors=dict(self._write_errors), reopens=self._reopens,
            buffer_fill=ring.fill_ratio if ring is not None else 0.0,
            latency_seconds=((actual.buffer_frames if actual else 0) + waiting) / rate,
            paced=paced is not None, idle=not self._started, idles=self._idles,
            idle_restarts=self._idle_restarts, played_frames=self._frames_written - delay,
            device_delay_frames=delay, playing_since=paced.first_played_at if paced else None,
            at=time.monotonic(), xrun_causes=timing.causes(), deadline_misses=timing.deadline_misses,
            worst_lateness_seconds=timing.worst_lateness_seconds,
            worst_lateness_periods=timing.worst_lateness_periods,
            period_seconds=actual.period_seconds if actual else 0.0,
            device_latency_seconds=actual.buffer_seconds if actual else 0.0)


def _opened(device: PcmDevice) -> str:
    """What an open device is: its name, what it accepted, and where a file tap writes
    (read now: libasound read the same ALSA_CONFIG_PATH when it opened the device)."""
    return f"{device.actual.device}: {device.actual.describe()}{opened_note(device.actual, os.environ)}"
