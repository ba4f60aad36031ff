"""The ``mfx`` group's behaviour: one line per error instead of a traceback, commands in the order added."""

from __future__ import annotations

import sys

import click

from mfx.cli import output
from mfx.errors import MfxError


class MfxGroup(click.Group):
    """Turns every mfx error into one clear line on stderr and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except MfxError as error:
            output.print_error(error)
            sys.exit(1)
        except KeyboardInterrupt:
            sys.exit(130)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # in registration order: the kubectl verbs first

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        # click replaces a command registered under a name already taken without a word:
        # two meanings of one verb would go unnoticed.
        taken = self.commands.get(name or cmd.name or "")
        if taken is not None and taken is not cmd:
            raise ValueError(f"mfx {name or cmd.name} is registered twice")
        super().add_command(cmd, name)
