"""The web UI as one more listener of ``mfx serve`` (``--ui-address``)."""

from __future__ import annotations

from typing import Any

from anyio.abc import TaskGroup

from mfx.server.auth import load_or_create_token
from mfx.server.daemon import DaemonContext, ExtraListener
from mfx.server.listeners import parse_address
from mfx.webui.app import create_app
from mfx.webui.auth import is_loopback
from mfx.webui.daemon_client import DaemonClient
from mfx.webui.health import HealthSampler

NAME = "ui"


def ui_listener(address: str, *, health_interval: float = 2.0) -> ExtraListener:
    """Serve the web UI on ``address``; off loopback, signing in with the API token is required.

    The UI reaches the daemon as any client does, over its unix socket."""
    host, _ = parse_address(address)

    async def build(context: DaemonContext, group: TaskGroup) -> Any:
        token = None if is_loopback(host) else load_or_create_token(context.config.token_path)
        client = DaemonClient(socket=context.config.socket_path)
        health = HealthSampler(interval=health_interval)

        async def run() -> None:
            try:
                await health.run(client, context.shutdown)
            finally:
                await client.aclose()

        group.start_soon(run)
        return create_app(client, shutdown=context.shutdown, token=token, health=health)

    return ExtraListener(name=NAME, address=address, build=build)
