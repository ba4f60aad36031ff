"""The click side of ``CliContext``: the decorator that hands it to a command."""

from __future__ import annotations

import click

from mfx.cli.session import CliContext

pass_cli = click.make_pass_decorator(CliContext)

__all__ = ["CliContext", "pass_cli"]
