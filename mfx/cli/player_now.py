"""What is playing: ``mfx now`` and ``mfx lyrics``."""

from __future__ import annotations

import time

import click

from mfx.cli import now_playing, player_requests
from mfx.cli.context import CliContext, pass_cli
from mfx.cli.player_view import clock


@click.command()
@pass_cli
def now(ctx: CliContext) -> None:
    """What is playing: song, progress bar, the lyric line showing now.

    \b
    Example:
      mfx now
    """
    now_playing.show(ctx)


@click.command()
@click.option("-f", "--follow", is_flag=True, help="Keep printing each line as it is sung (Ctrl-C ends).")
@pass_cli
def lyrics(ctx: CliContext, follow: bool) -> None:
    """Lyrics of the current song; the line showing now is marked with '>'.

    \b
    Examples:
      mfx lyrics
      mfx lyrics -f
    """
    found = player_requests.call(ctx, "GET", "/lyrics")
    if not found:
        click.echo("No lyrics for this song.", err=True)
        return
    state = player_requests.call(ctx, "GET", "/state")
    position = float(state.get("positionSeconds") or 0)
    lines = found.get("lines") or []
    if not lines:
        click.echo(found.get("plain") or "")
        return
    showing = max((i for i, line in enumerate(lines) if line["time"] <= position), default=None)
    for index, line in enumerate(lines):
        mark = ">" if index == showing else " "
        click.echo(f"{mark} [{clock(line['time'])}] {line['text']}")
    if follow:
        last = showing
        while True:  # the lyric clock: one request per tick, printed when the line changes
            time.sleep(0.25)
            state = player_requests.call(ctx, "GET", "/state")
            if state.get("status") == "stopped":
                return
            position = float(state.get("positionSeconds") or 0)
            current = max((i for i, line in enumerate(lines) if line["time"] <= position), default=None)
            if current != last and current is not None:
                click.echo(f"> [{clock(lines[current]['time'])}] {lines[current]['text']}")
            last = current
