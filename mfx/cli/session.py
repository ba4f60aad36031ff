"""What every command gets from the ``mfx`` group: where the daemon is, and one client for it.

No click here: the commands ``mfx`` answers without loading click use it as they are."""

from __future__ import annotations

from pathlib import Path

from mfx.cli.client import Client, Endpoint


class CliContext:
    def __init__(self, home: Path | None, server: str | None, token: str | None) -> None:
        self.home = home
        self.server = server
        self.token = token
        self._client: Client | None = None

    def __repr__(self) -> str:
        return f"CliContext(home={self.home!r}, server={self.server!r}, token={self.token!r})"

    @property
    def client(self) -> Client:
        # Made on first use: commands that never talk to the daemon never open a connection.
        if self._client is None:
            self._client = Client(Endpoint.from_env(self.home, self.server, self.token))
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
