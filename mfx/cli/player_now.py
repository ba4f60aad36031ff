"""What is playing: ``mfx now`` and ``mfx lyrics``."""

from __future__ import annotations

import click

from mfx.cli import lyrics_follow, now_playing, player_requests
from mfx.cli.context import CliContext, pass_cli


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
@click.option("-f", "--follow", is_flag=True,
              help="Keep printing each line as it is sung, following the player's state watch; "
                   "ends when playback stops (Ctrl-C ends it sooner).")
@pass_cli
def lyrics(ctx: CliContext, follow: bool) -> None:
    """Lyrics of the current song; the line showing now is marked with '>'.

    With -f the lines follow the song as it plays: a seek, a pause or the next song shows at
    once (the next song's lyrics are loaded when it starts), and the command ends when
    playback stops.

    \b
    Examples:
      mfx lyrics
      mfx lyrics -f
    """
    if follow:
        lyrics_follow.follow(ctx)
        return
    found = lyrics_follow.load(ctx)
    if found and found.get("lines"):
        state = player_requests.call(ctx, "GET", "/state")
        lyrics_follow.show(found, float(state.get("positionSeconds") or 0))
    else:
        lyrics_follow.show(found, 0.0)
