"""The service registry: interface name -> the Ready providers of it, best first.

Controllers register a provider when its object becomes Ready and unregister it when it
stops being Ready; the player looks providers up here. Ordering: higher ``priority`` first,
then name, so a lookup is deterministic. Every change is published on the event bus topic
``SERVICES_TOPIC`` (when a bus is given) and to in-process listeners.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mfx.errors import NotFoundError
from reconciler.eventbus import EventBus

SERVICES_TOPIC = "services"


@dataclass(frozen=True)
class Provider:
    interface: str
    name: str  # the providing object's name (e.g. the plugin)
    priority: int = 0
    instance: Any = field(default=None, compare=False)  # what callers use (a plugin handle)


class ChangeType(enum.StrEnum):
    REGISTERED = "Registered"
    UNREGISTERED = "Unregistered"


@dataclass(frozen=True)
class ServiceChange:
    type: ChangeType
    provider: Provider


Listener = Callable[[ServiceChange], None]


class ServiceRegistry:
    def __init__(self, *, bus: EventBus | None = None) -> None:
        self._bus = bus
        self._providers: dict[str, dict[str, Provider]] = {}
        self._listeners: list[Listener] = []

    def register(self, interface: str, name: str, *, priority: int = 0, instance: Any = None) -> Provider:
        """Add (or replace) ``name`` as a provider of ``interface``."""
        if not interface or not name:
            raise ValueError("a service needs an interface name and a provider name")
        provider = Provider(interface, name, priority, instance)
        by_name = self._providers.setdefault(interface, {})
        old = by_name.get(name)
        by_name[name] = provider
        if old is None or old != provider or old.instance is not instance:
            self._notify(ServiceChange(ChangeType.REGISTERED, provider))
        return provider

    def unregister(self, name: str, interface: str | None = None) -> list[Provider]:
        """Remove ``name`` from ``interface`` (or from every interface); returns what went."""
        removed: list[Provider] = []
        for iface in [interface] if interface is not None else list(self._providers):
            by_name = self._providers.get(iface)
            if not by_name or name not in by_name:
                continue
            removed.append(by_name.pop(name))
            if not by_name:
                del self._providers[iface]
        for provider in removed:
            self._notify(ServiceChange(ChangeType.UNREGISTERED, provider))
        return removed

    def lookup(self, interface: str) -> list[Provider]:
        """Providers of ``interface``, highest priority first (empty if none)."""
        return sorted(self._providers.get(interface, {}).values(), key=lambda p: (-p.priority, p.name))

    def best(self, interface: str) -> Provider:
        providers = self.lookup(interface)
        if not providers:
            known = ", ".join(sorted(self._providers)) or "none"
            raise NotFoundError(
                f"no Ready provider of interface {interface} (interfaces with providers: {known}); "
                f"check `mfx get pm` for a plugin that declares it", reason="NoProvider")
        return providers[0]

    def interfaces(self) -> list[str]:
        return sorted(self._providers)

    def provided_by(self, name: str) -> list[str]:
        return sorted(i for i, by_name in self._providers.items() if name in by_name)

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` on every change; returns a function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _notify(self, change: ServiceChange) -> None:
        for listener in list(self._listeners):
            listener(change)
        if self._bus is not None:
            self._bus.publish(SERVICES_TOPIC, change)
