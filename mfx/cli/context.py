"""The click side of ``CliContext``: the decorator that hands it to a command, and ``options``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from mfx.cli.session import CliContext

F = TypeVar("F", bound=Callable[..., Any])

pass_cli = click.make_pass_decorator(CliContext)


def options(*decorators: Callable[[Any], Any]) -> Callable[[F], F]:
    """Click's decorators of options several commands share, as one: applied as if stacked
    in the order given."""
    def stacked(f: F) -> F:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f
    return stacked


__all__ = ["CliContext", "options", "pass_cli"]
