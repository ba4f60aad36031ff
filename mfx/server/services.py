"""The parts of the daemon that run beside the API (controllers, player), in start order."""

from __future__ import annotations

from mfx.server.daemon import Service


def default_services() -> list[Service]:
    return []
