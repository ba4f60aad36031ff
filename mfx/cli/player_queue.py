"""``mfx queue``: show or edit the play queue."""

from __future__ import annotations

import click

from mfx.cli import output, player_requests
from mfx.cli.context import CliContext, pass_cli
from mfx.cli.player_view import song_rows
from mfx.errors import NotFoundError


@click.group(invoke_without_command=True)
@click.pass_context
def queue(click_ctx: click.Context) -> None:
    """Show or edit the play queue (default: ls).

    \b
    Examples:
      mfx queue
      mfx queue add "del mar"          # every match, appended
      mfx queue add "naughty" --next   # play right after the current song
      mfx queue rm 2
      mfx queue mv 4 0
      mfx queue clear
    """
    if click_ctx.invoked_subcommand is None:
        click_ctx.invoke(queue_ls)


@queue.command("ls")
@pass_cli
def queue_ls(ctx: CliContext) -> None:
    """List the queue; '>' marks the current song."""
    listing = player_requests.call(ctx, "GET", "/queue")
    songs = listing.get("songs") or []
    if not songs:
        click.echo("The queue is empty.", err=True)
        return
    output.render_table(["#", "TITLE", "ARTIST", "ALBUM", "TIME", "SOURCE"],
                        song_rows(songs, listing.get("currentIndex")))


@queue.command("add")
@click.argument("query")
@click.option("--next", "next_", is_flag=True, help="Play right after the current song.")
@click.option("--first", is_flag=True, help="Only the best match.")
@click.option("--source", help="Search only this MusicSource plugin.")
@pass_cli
def queue_add(ctx: CliContext, query: str, next_: bool, first: bool, source: str | None) -> None:
    """Add the songs matching QUERY."""
    songs = player_requests.search(ctx, query, "song", source).get("songs") or []
    if not songs:
        raise NotFoundError(f"no song matches {query!r}")
    if first:
        songs = songs[:1]
    listing = player_requests.call(ctx, "POST", "/queue", {"songs": songs, "next": next_})
    click.echo(f"added {len(songs)} song(s); the queue holds {len(listing.get('songs') or [])}")


@queue.command("rm")
@click.argument("index", type=int)
@pass_cli
def queue_rm(ctx: CliContext, index: int) -> None:
    """Remove the song at INDEX."""
    song = player_requests.call(ctx, "DELETE", f"/queue/{index}")
    click.echo(f"removed {song.get('title')}")


@queue.command("mv")
@click.argument("source", type=int)
@click.argument("target", type=int)
@pass_cli
def queue_mv(ctx: CliContext, source: int, target: int) -> None:
    """Move the song at SOURCE to TARGET."""
    player_requests.call(ctx, "POST", "/queue/move", {"from": source, "to": target})
    click.echo(f"moved {source} -> {target}")


@queue.command("clear")
@pass_cli
def queue_clear(ctx: CliContext) -> None:
    """Empty the queue (and stop)."""
    player_requests.call(ctx, "DELETE", "/queue")
    click.echo("queue cleared")
