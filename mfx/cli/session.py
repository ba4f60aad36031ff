"""What every command gets from the ``mfx`` group: where the daemon is, and one client for it.

No click here: the commands ``mfx`` answers without loading click use it as they are."""

from __future__ import annotations

import os

from mfx.cli.client import Client, Endpoint

TYPE_CHECKING = False  # not typing's, nor pathlib at run time: see ``home``
if TYPE_CHECKING:
    from pathlib import Path


class CliContext:
    def __init__(self, home: str | os.PathLike[str] | None, server: str | None, token: str | None) -> None:
        self._home = home
        self.server = server
        self.token = token
        self._client: Client | None = None

    @property
    def home(self) -> Path | None:
        """``--home`` (or ``$MFX_HOME``) as given; made a path only for a command that asks,
        as importing pathlib costs the commands that run before click a third of their time."""
        if self._home is None:
            return None
        from pathlib import Path

        return Path(self._home)

    def __repr__(self) -> str:
        return f"CliContext(home={self.home!r}, server={self.server!r}, token={self.token!r})"

    @property
    def client(self) -> Client:
        # Made on first use: commands that never talk to the daemon never open a connection.
        if self._client is None:
            self._client = Client(Endpoint.from_env(self._home, self.server, self.token))
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
