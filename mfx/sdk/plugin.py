"""The base class every mfx plugin derives from.

A plugin is a class with lifecycle methods the daemon calls in this order::

    initialize(config) -> start() -> health() ... update_config(config) ... -> stop()

plus the methods of the interfaces it implements (``search``, ``decode``, ...), which the
player calls by name. Any method may be written ``def`` or ``async def``; the runtime awaits
what needs awaiting. A ``def`` method runs on one of the daemon's worker threads, never on its
event loop (at start, synchronous ``initialize``, ``start`` and the first ``health`` run one
after another on the same thread); an ``async def`` one runs on the event loop and must not
block it. Public methods (names not starting with ``_``) are callable from the
daemon; keep helpers private with a leading underscore.

``export_state()`` / ``import_state(state)`` carry state across a hot reload: the old
instance exports a JSON-serialisable value, the new one imports it before ``start()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class PluginInfo:
    """What a plugin says about itself (shown in ``status.runtime`` and ``mfx describe``)."""

    name: str = ""
    version: str = ""
    description: str = ""
    interfaces: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "interfaces": list(self.interfaces),
        }


class Plugin:
    """Subclass this; override what your plugin needs. Every default is a harmless no-op."""

    info: ClassVar[PluginInfo] = PluginInfo()

    # Names the runtime never dispatches to, whatever a subclass does with them.
    RESERVED: ClassVar[frozenset[str]] = frozenset({"info", "config", "RESERVED"})

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}

    def initialize(self, config: Mapping[str, Any]) -> None:
        """Receive the validated ``spec.config``. Raise to refuse it."""
        self.config = dict(config)

    def start(self) -> None:
        """Begin serving (open connections, warm caches)."""

    def health(self) -> Any:
        """Return (anything, or nothing) when healthy; raise, or return False, when not."""
        return None

    def update_config(self, config: Mapping[str, Any]) -> None:
        """Apply a changed ``spec.config`` without a restart."""
        self.config = dict(config)

    def stop(self) -> None:
        """Release resources; the process ends right after this returns."""

    def export_state(self) -> Any:
        """A JSON-serialisable value handed to the next version on hot reload."""
        return None

    def import_state(self, state: Any) -> None:
        """Adopt the state exported by the previous version (hot reload)."""
