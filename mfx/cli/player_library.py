"""What the music sources hold: ``mfx search``, ``mfx library``, ``mfx playlists``."""

from __future__ import annotations

from typing import Any

import click

from mfx.cli import output, player_requests
from mfx.cli.context import CliContext, pass_cli
from mfx.cli.player_view import PLURAL, print_items


@click.command()
@click.argument("query")
@click.option("--type", "type_", type=click.Choice(["song", "album", "artist", "playlist"]), default="song",
              show_default=True)
@click.option("--source", help="Ask only this MusicSource plugin.")
@click.option("--limit", type=click.IntRange(1, 500), default=30, show_default=True, help="Results per source.")
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json", "yaml"]), default="table")
@pass_cli
def search(ctx: CliContext, query: str, type_: str, source: str | None, limit: int, fmt: str) -> None:
    """Search every Ready music source at once (a slow source never holds up the others).

    \b
    Examples:
      mfx search "café del mar"
      mfx search beyoncé --type artist
      mfx search mix --type playlist --source local-music
    """
    result = player_requests.search(ctx, query, type_, source, limit)
    if fmt != "table":
        output.print_objects([result], fmt, single=True)
        return
    if not print_items(result, type_):
        click.echo(f"No {PLURAL[type_]} match {query!r} in {', '.join(result.get('answered') or [])}.", err=True)


def _print_listing(result: dict[str, Any], type_: str, offset: int, fmt: str) -> None:
    if fmt != "table":
        output.print_objects([result], fmt, single=True)
        return
    if not print_items(result, type_):
        click.echo(f"No {PLURAL[type_]} in {', '.join(result.get('answered') or [])}.", err=True)
        return
    shown = len(result.get(PLURAL[type_]) or [])
    total = result.get("total")
    if isinstance(total, int) and offset + shown < total:
        click.echo(f"{offset + 1}-{offset + shown} of {total}; the next page: --offset {offset + shown}", err=True)


@click.command()
@click.option("--songs", "type_", flag_value="song", default=True, help="List the songs (the default).")
@click.option("--albums", "type_", flag_value="album", help="List the albums.")
@click.option("--artists", "type_", flag_value="artist", help="List the artists.")
@click.option("--playlists", "type_", flag_value="playlist", help="List the playlists.")
@click.option("--source", help="Ask only this MusicSource plugin.")
@click.option("--limit", type=click.IntRange(1, 500), default=100, show_default=True, help="Items per source.")
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True, help="Skip this many items per source.")
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json", "yaml"]), default="table")
@pass_cli
def library(ctx: CliContext, type_: str, source: str | None, limit: int, offset: int, fmt: str) -> None:
    """List what the Ready music sources hold: songs, albums, artists or playlists.

    \b
    Examples:
      mfx library                      # every song, album by album
      mfx library --artists
      mfx library --albums --source local-music
      mfx library --songs --offset 100 # the next page
    """
    _print_listing(player_requests.library(ctx, type_, source, limit, offset), type_, offset, fmt)


@click.command()
@click.option("--source", help="Ask only this MusicSource plugin.")
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json", "yaml"]), default="table")
@pass_cli
def playlists(ctx: CliContext, source: str | None, fmt: str) -> None:
    """List the playlists of every Ready music source (what `mfx play --playlist NAME` plays).

    \b
    Examples:
      mfx playlists
      mfx playlists --source local-music
      mfx play --playlist Evening
    """
    _print_listing(player_requests.library(ctx, "playlist", source, 500, 0), "playlist", 0, fmt)
