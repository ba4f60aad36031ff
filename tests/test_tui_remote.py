"""``mfx tui`` against a daemon's TCP listener: with ``--server`` (bearer token, TLS verified
against the daemon's CA) or with the kubeconfig ``mfx config kubeconfig`` writes; a wrong
token is said in the status line, not a traceback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from textual.pilot import Pilot

from mfx.cli.session import CliContext
from mfx.cli.tui import connection_for
from mfx.server.player_api import make_player_service
from mfx.server.services import controllers_service
from mfx.tui.app import MfxTui
from mfx.tui.client import Connection
from tests.daemon_harness import ThreadDaemon, run_cli

pytestmark = pytest.mark.anyio
WAIT = 30.0  # seconds; a safety net, never reached when things work


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    with ThreadDaemon(home, services=[controllers_service, make_player_service()], listen="127.0.0.1:0").running():
        yield home


async def until(pilot: Pilot[Any], what: str, check: Callable[[], Any]) -> Any:
    with anyio.fail_after(WAIT, reason=what):
        while not (value := check()):
            await pilot.pause(0.02)
    return value


async def shows_the_player(connection: Connection) -> str:
    app = MfxTui(connection)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, "the player's state over TCP", lambda: "volume" in app.clock.state)
        return await until(pilot, "the status line", lambda: "connected to" in (
            s := str(app.query_one("#status").render())) and s)


async def test_the_tui_talks_to_a_remote_daemon_with_server_or_kubeconfig(home: Path, tmp_path: Path) -> None:
    address = (home / "listen-address").read_text().strip()
    by_server = connection_for(CliContext(home=home, server=address, token=None), None)
    assert by_server.url == f"https://{address}" and by_server.token and by_server.socket is None
    assert "https://" in await shows_the_player(by_server)

    kubeconfig = tmp_path / "mfx.yaml"
    result = run_cli(home, "config", "kubeconfig", "--output", str(kubeconfig))
    assert result.exit_code == 0, result.output
    by_kubeconfig = connection_for(CliContext(home=tmp_path / "elsewhere", server=None, token=None), kubeconfig)
    assert by_kubeconfig.ca_data and by_kubeconfig.token == by_server.token
    assert "https://" in await shows_the_player(by_kubeconfig)

    app = MfxTui(Connection(url=by_server.url, token="wrong", ca_file=by_server.ca_file))
    async with app.run_test(size=(120, 40)) as pilot:
        status = await until(pilot, "the refusal in the status line",
                             lambda: "retrying" in (s := str(app.query_one("#status").render())) and s)
        assert "Traceback" not in status and "token" in status.lower()
