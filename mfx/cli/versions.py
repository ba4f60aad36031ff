"""``mfx version``: the client's version, and the daemon's unless ``--client``.

One implementation for both ways ``mfx version`` runs: through click, and without it at start-up."""

from __future__ import annotations

import mfx
from mfx.cli import output
from mfx.cli.session import CliContext


def show(ctx: CliContext, *, client_only: bool) -> None:
    output.echo(f"Client Version: v{mfx.__version__}")
    if client_only:
        return
    server = ctx.client.request("GET", "/version")
    output.echo(f"Server Version: {server.get('gitVersion')}")
