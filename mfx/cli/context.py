"""What every command gets from the ``mfx`` group: where the daemon is, and one client for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import click

from mfx.cli.client import Client, Endpoint


@dataclass
class CliContext:
    home: Path | None
    server: str | None
    token: str | None
    _client: Client | None = field(default=None, repr=False)

    @property
    def client(self) -> Client:
        # Made on first use: commands that never talk to the daemon never open a connection.
        if self._client is None:
            self._client = Client(Endpoint.from_env(self.home, self.server, self.token))
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


pass_cli = click.make_pass_decorator(CliContext)
