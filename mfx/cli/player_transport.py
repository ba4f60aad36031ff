"""Moving through the music: ``mfx play``, ``pause``, ``stop``, ``next``, ``prev``, ``seek``."""

from __future__ import annotations

from typing import Any

import click

from mfx.cli import player_requests
from mfx.cli.context import CliContext, pass_cli
from mfx.cli.player_args import SIGNED_VALUE, parse_step, parse_time
from mfx.cli.player_view import print_state, status_line
from mfx.errors import NotFoundError


@click.command()
@click.argument("query", required=False)
@click.option("--playlist", help="Replace the queue with this playlist and play it.")
@click.option("--index", "-i", type=int, help="Play the queued song at this index.")
@click.option("--source", help="Search only this MusicSource plugin.")
@pass_cli
def play(ctx: CliContext, query: str | None, playlist: str | None, index: int | None, source: str | None) -> None:
    """Play: the best match of QUERY (queued next), a playlist, a queued song, or go on where it paused.

    With nothing named, a paused or stopped song continues from where it was (as after
    'mfx pause'); with no current song, the queue starts.

    \b
    Examples:
      mfx play "crazy in love"
      mfx play --playlist Evening      # `mfx playlists` lists them
      mfx play -i 3
      mfx play                         # after mfx pause: continue
    """
    if playlist:
        body: dict[str, Any] = {"playlist": playlist}
        if source:
            body["source"] = source
    elif query:
        songs = player_requests.search(ctx, query, "song", source).get("songs") or []
        if not songs:
            raise NotFoundError(f"no song matches {query!r}")
        body = {"songs": songs[:1]}
    else:
        body = {} if index is None else {"index": index}
    print_state(player_requests.call(ctx, "POST", "/play", body))


def _transport(name: str, path: str, doc: str) -> click.Command:
    """A command that posts to one player endpoint and prints the state it answers with."""

    @click.command(name, help=doc)
    @pass_cli
    def command(ctx: CliContext) -> None:
        print_state(player_requests.call(ctx, "POST", path))
    return command


pause = _transport("pause", "/pause",
                   "Pause playback (mfx play continues where it stopped).\n\n\b\nExamples:\n  mfx pause\n  mfx play")
stop = _transport("stop", "/stop", "Stop playback (the queue stays).\n\n\b\nExample:\n  mfx stop")
next_cmd = _transport("next", "/next", "Skip to the next song of the play mode.\n\n\b\nExample:\n  mfx next")
prev = _transport("prev", "/previous", "Go back to the previous song.\n\n\b\nExample:\n  mfx prev")


@click.command(context_settings=SIGNED_VALUE)
@click.argument("position")
@pass_cli
def seek(ctx: CliContext, position: str) -> None:
    """Jump within the current song: to POSITION, or by +/-SECONDS from where it is.

    \b
    Examples:
      mfx seek 1:30      # to 1 min 30 s
      mfx seek 42        # to 42 s
      mfx seek +10       # 10 s ahead
      mfx seek -5        # 5 s back (or: mfx seek -- -5)
      mfx seek +1:00     # a minute ahead
    """
    sign, rest = parse_step(position, "position")
    if sign:
        offset = parse_time(rest)
        body: dict[str, Any] = {"offset": -offset if sign == "-" else offset}
    else:
        body = {"seconds": parse_time(rest)}
    click.echo(status_line(player_requests.call(ctx, "POST", "/seek", body)))
