"""Durations on the command line (``--timeout 30s``, ``--resync 10m``) as a click type, so a
bad one is a usage error naming the option, not a traceback."""

from __future__ import annotations

from typing import Any

import click


class Duration(click.ParamType):
    """``500ms``, ``10s``, ``5m``, ``1h30m``... as seconds (a float)."""

    name = "duration"

    def __init__(self, *, positive: bool = False) -> None:
        self.positive = positive

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            seconds = float(value)
        else:
            from mfx.api.units import parse_duration

            try:
                seconds = parse_duration(str(value))
            except ValueError as error:
                self.fail(str(error), param, ctx)
        if self.positive and seconds <= 0:
            self.fail(f'"{value}" must be longer than 0 (e.g. 2s)', param, ctx)
        return seconds


DURATION = Duration()
POSITIVE_DURATION = Duration(positive=True)
