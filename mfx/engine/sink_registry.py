"""Which sinks the audio engine has open, and which one the player plays to.

The AudioSink controller opens sinks in the engine and publishes each one that is open
here, with the engine's latest report; the player asks for the default sink's name. Nothing
here opens a device. Every method is thread-safe.
"""

from __future__ import annotations

import threading

from mfx.engine.api import SinkReport


class SinkRegistry:
    """The open sinks by name (their latest reports), and the name of the default one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sinks: dict[str, SinkReport] = {}
        self._default: str | None = None

    # --- written by the controller -----------------------------------------------------------

    def publish(self, report: SinkReport) -> None:
        """Make an open sink visible (or refresh its report)."""
        with self._lock:
            self._sinks[report.name] = report

    def withdraw(self, name: str) -> SinkReport | None:
        """Hide ``name`` from the player."""
        with self._lock:
            return self._sinks.pop(name, None)

    def set_default(self, name: str | None) -> None:
        """Name the sink the player plays to (it may be published later)."""
        with self._lock:
            self._default = name

    # --- read by the player and the API --------------------------------------------------------

    @property
    def default_name(self) -> str | None:
        with self._lock:
            return self._default

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._sinks)

    def get(self, name: str) -> SinkReport | None:
        with self._lock:
            return self._sinks.get(name)

    def reports(self) -> list[SinkReport]:
        with self._lock:
            return [self._sinks[name] for name in sorted(self._sinks)]

    def default(self) -> SinkReport | None:
        """The default sink's report if it is open now, else None."""
        with self._lock:
            return self._sinks.get(self._default) if self._default is not None else None
