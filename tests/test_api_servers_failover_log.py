"""What an agent's log says as its API servers come and go: after an outage, the server it
reaches again is named, the way a switch without an outage names it (operators and the
fleet tests read which server an agent uses from that line)."""

from __future__ import annotations

import logging

import anyio
import pytest

from mfx.store.api_connection import ApiConnection, ApiServers

pytestmark = pytest.mark.anyio

ONE, TWO = "http://127.0.0.1:1", "http://127.0.0.1:2"


async def test_after_an_outage_the_log_names_the_server_reached_again(caplog: pytest.LogCaptureFixture) -> None:
    servers = ApiServers(ApiConnection(servers=(ONE, TWO)))
    first, second = servers.order()
    caplog.set_level(logging.INFO, logger="mfx.store.api")
    servers.succeeded(first)
    servers.unavailable()
    servers.succeeded(first)  # the same one back
    servers.unavailable()
    servers.succeeded(second)  # another one
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == f"talking to the API server at {ONE}"
    assert lines[1].startswith("no API server reachable")
    assert lines[2] == f"API server {ONE} answers again: watches resume and pending writes go through"
    assert lines[4] == f"talking to the API server at {TWO}; watches resume and pending writes go through"
    assert servers.current_url == TWO
    with anyio.CancelScope(shield=True):
        for server in (first, second):
            await server.client.aclose()
