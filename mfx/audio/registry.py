"""Which sinks are open, and which one the player plays to.

The AudioSink controller opens devices and publishes each running ``SinkEngine`` here; the
player looks the default one up through the narrow ``AudioOutput`` protocol and writes frames
into its ring. Nothing here opens a device. Every method is thread-safe: the controller
calls it from the event loop, the player from its own thread.

How the player writes to the default sink::

    output = sinks.wait_for_default(timeout=5.0)       # None: no default sink yet
    ring = output.ring                                  # re-take after a reconfigure
    pcm = float_to_pcm(block, output.params.format)     # the sink's format and channels
    ring.write(pcm, timeout=0.5)                        # bounded: waits for room

A reconfigure (spec change) closes the old ring and makes a new one, so a short write means
"take ``output.ring`` again"; ``output.ring`` raises ``AudioError`` while the device is being
reopened. ``version`` changes whenever the set of sinks or the default changes.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable

from mfx.audio.alsa_device import DeviceParams
from mfx.audio.ring_buffer import FrameRingBuffer
from mfx.audio.sink import SinkEngine, SinkStatus


@runtime_checkable
class AudioOutput(Protocol):
    """What the player may use of a sink: its ring, its format and its status."""

    name: str

    @property
    def ring(self) -> FrameRingBuffer: ...

    @property
    def params(self) -> DeviceParams: ...

    def status(self) -> SinkStatus: ...


class SinkRegistry:
    """The open sinks by name, and the name of the default one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._sinks: dict[str, SinkEngine] = {}
        self._default: str | None = None
        self._version = 0

    # --- written by the controller -----------------------------------------------------------

    def publish(self, name: str, engine: SinkEngine) -> None:
        """Make a started engine visible under ``name`` (replacing any earlier one)."""
        with self._changed:
            self._sinks[name] = engine
            self._bump()

    def withdraw(self, name: str) -> SinkEngine | None:
        """Hide ``name`` from the player; returns its engine (the caller closes it)."""
        with self._changed:
            engine = self._sinks.pop(name, None)
            if engine is not None:
                self._bump()
            return engine

    def set_default(self, name: str | None) -> None:
        """Name the sink the player plays to (it may be published later)."""
        with self._changed:
            if name != self._default:
                self._default = name
                self._bump()

    def close_all(self, *, drain: bool = False, timeout: float | None = 5.0) -> int:
        """Withdraw and close every engine (daemon shutdown); returns how many were closed."""
        with self._changed:
            engines = list(self._sinks.values())
            self._sinks.clear()
            self._bump()
        for engine in engines:
            engine.close(drain=drain, timeout=timeout)
        return len(engines)

    # --- read by the player --------------------------------------------------------------------

    @property
    def default_name(self) -> str | None:
        with self._lock:
            return self._default

    @property
    def version(self) -> int:
        with self._lock:
            return self._version

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._sinks)

    def get(self, name: str) -> AudioOutput | None:
        with self._lock:
            return self._sinks.get(name)

    def default(self) -> AudioOutput | None:
        """The default sink if it is open now, else None."""
        with self._lock:
            return self._sinks.get(self._default) if self._default is not None else None

    def wait_for_default(self, timeout: float | None = None) -> AudioOutput | None:
        """Block until a default sink is open; None after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                if self._default is not None and self._default in self._sinks:
                    return self._sinks[self._default]
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._changed.wait(remaining)

    def wait_for_change(self, version: int, timeout: float | None = None) -> int:
        """Block until ``version`` is out of date (a sink came, went or the default moved);
        returns the version then (unchanged after ``timeout``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while self._version == version:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._changed.wait(remaining)
            return self._version

    def _bump(self) -> None:
        self._version += 1
        self._changed.notify_all()
