"""``mfx now``: the song playing, its progress and the lyric line showing now.

One implementation for both ways ``mfx now`` runs: through click, and without it at start-up."""

from __future__ import annotations

from mfx.cli import output, player_requests
from mfx.cli.player_view import artists, clock, print_last_error, progress_bar
from mfx.cli.session import CliContext


def show(ctx: CliContext) -> None:
    state = player_requests.call(ctx, "GET", "/state")
    current = state.get("current")
    if not current:
        output.echo(f"{state.get('status')}: nothing playing")
        return
    position = float(state.get("positionSeconds") or 0)
    duration = current.get("durationSeconds")
    output.echo(f"{current.get('title')} - {artists(current)}  ({(current.get('album') or {}).get('name', '')})")
    output.echo(f"{state.get('status')}  {progress_bar(position, duration)} {clock(position)}/{clock(duration)}  "
                f"mode {state.get('mode')}  volume {state.get('volume')}{' (muted)' if state.get('muted') else ''}")
    lyric = state.get("lyric")
    if lyric:
        output.echo(f"♪ {lyric.get('text')}" + (f"  / {lyric['translation']}" if lyric.get("translation") else ""))
    print_last_error(state)
