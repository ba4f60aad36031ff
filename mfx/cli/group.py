"""The ``mfx`` group's behaviour: one line per error instead of a traceback, commands in the order added."""

from __future__ import annotations

import click

from mfx.cli import output


class MfxGroup(click.Group):
    """Turns every mfx error into one clear line on stderr and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        with output.reported_errors():
            return super().invoke(ctx)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # in registration order: the kubectl verbs first

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        # click replaces a command registered under a name already taken without a word:
        # two meanings of one verb would go unnoticed.
        taken = self.commands.get(name or cmd.name or "")
        if taken is not None and taken is not cmd:
            raise ValueError(f"mfx {name or cmd.name} is registered twice")
        super().add_command(cmd, name)
