"""The player's settings: ``mfx mode``, ``mfx volume``, ``mfx mute``."""

from __future__ import annotations

import click

from mfx.cli import player_requests
from mfx.cli.context import CliContext, pass_cli
from mfx.cli.player_args import SIGNED_VALUE, parse_step
from mfx.errors import BadRequestError


@click.command()
@click.argument("mode", type=click.Choice(["in-order", "loop-all", "loop-one", "shuffle"]), required=False)
@pass_cli
def mode(ctx: CliContext, mode: str | None) -> None:
    """Show the play mode, or set it to MODE.

    \b
    Examples:
      mfx mode              # the mode now
      mfx mode shuffle      # every song once per cycle
      mfx mode loop-one
    """
    state = player_requests.call(ctx, "GET", "/state") if mode is None else player_requests.call(ctx, "PUT", "/mode", {"mode": mode})
    click.echo(f"mode: {state.get('mode')}")


@click.command(context_settings=SIGNED_VALUE)
@click.argument("level", required=False)
@pass_cli
def volume(ctx: CliContext, level: str | None) -> None:
    """Show the volume, set it (0-100), or change it by +/-STEP (kept within 0-100).

    \b
    Examples:
      mfx volume         # the volume now
      mfx volume 70
      mfx volume +10     # louder by 10
      mfx volume -5      # quieter by 5 (or: mfx volume -- -5)
    """
    if level is None:
        state = player_requests.call(ctx, "GET", "/state")
    else:
        sign, rest = parse_step(level, "volume")
        if not rest.isdigit():
            raise BadRequestError(f"volume {level!r}: expected 0-100, +STEP or -STEP (e.g. 70, +10, -5)")
        amount = int(rest)
        if sign:
            state = player_requests.call(ctx, "PUT", "/volume", {"change": -amount if sign == "-" else amount})
        elif amount > 100:
            raise BadRequestError(f"volume {level!r}: expected 0-100")
        else:
            state = player_requests.call(ctx, "PUT", "/volume", {"volume": amount})
    click.echo(f"volume: {state.get('volume')}{' (muted)' if state.get('muted') else ''}")


@click.command()
@click.option("--off", is_flag=True, help="Unmute.")
@pass_cli
def mute(ctx: CliContext, off: bool) -> None:
    """Mute (or unmute with --off).

    \b
    Examples:
      mfx mute
      mfx mute --off
    """
    state = player_requests.call(ctx, "PUT", "/mute", {"muted": not off})
    click.echo("muted" if state.get("muted") else "unmuted")
