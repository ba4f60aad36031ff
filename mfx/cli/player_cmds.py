"""The player commands: search, library, playlists, play, pause, stop, next, prev,
seek, queue, mode, volume, mute, now, lyrics; and ``mfx migrate go-musicfox``.

They talk to the daemon's player API (``/apis/player.mfx.musicfox.io/v1``, see
``mfx.server.player_api``), except ``migrate``, which only reads and writes files.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click
import yaml

import mfx
from mfx.api.kinds import PLUGIN_MANIFEST
from mfx.cli import output
from mfx.cli.main import CliContext
from mfx.errors import BadRequestError, DaemonUnavailableError, NotFoundError
from mfx.home import default_home
from mfx.music.migrate import ReportItem, config_candidates, find_config, migrate_go_musicfox

PREFIX = "/apis/player.mfx.musicfox.io/v1"
# The first-party manifest beside the package in the source tree (what `make run` applies).
FIRST_PARTY_LOCAL_MUSIC = Path(mfx.__file__).resolve().parent.parent / "plugins" / "local-music" / "plugin.yaml"
pass_cli = click.make_pass_decorator(CliContext)


def _api(ctx: CliContext, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
    return ctx.client.request(method, PREFIX + path, body=body, params=params)


def parse_time(text: str) -> float:
    """``90``, ``1:30``, ``1:02:03`` or ``12.5`` -> seconds."""
    try:
        parts = [float(p) for p in text.split(":")]
    except ValueError:
        raise BadRequestError(f"position {text!r}: expected seconds or M:SS (e.g. 1:30)") from None
    if not parts or len(parts) > 3 or any(not 0 <= p < math.inf for p in parts):
        raise BadRequestError(f"position {text!r}: expected seconds or M:SS (e.g. 1:30)")
    if any(p >= 60 for p in parts[1:]):  # 1:99 is a typo, not 2:39
        raise BadRequestError(f"position {text!r}: minutes and seconds after a ':' go up to 59")
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


def parse_step(text: str, what: str) -> tuple[str, str]:
    """Split ``+10`` / ``-5`` / ``10`` into (sign, rest); the sign is "" for an absolute value."""
    text = text.strip()
    if text[:1] in ("+", "-"):
        return text[0], text[1:].strip()
    if not text:
        raise BadRequestError(f"{what}: expected a value, e.g. 70, +10 or -5")
    return "", text


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


def _artists(item: dict[str, Any]) -> str:
    return ", ".join(a.get("name", "") for a in item.get("artists") or [])


def _song_rows(songs: list[dict[str, Any]], current: int | None = None) -> list[list[Any]]:
    rows = []
    for index, song in enumerate(songs):
        mark = ">" if index == current else ""
        rows.append([f"{mark}{index}", song.get("title", ""), _artists(song),
                     (song.get("album") or {}).get("name", ""), clock(song.get("durationSeconds")),
                     song.get("source", "")])
    return rows


def _report_sources(result: dict[str, Any]) -> None:
    for name in result.get("timedOut") or []:
        output.warn(f"source {name} did not answer in time")
    for name, why in (result.get("failed") or {}).items():
        output.warn(f"source {name} failed: {why}")


def _search(ctx: CliContext, query: str, type_: str = "song", source: str | None = None,
            limit: int = 30) -> dict[str, Any]:
    params = {"q": query, "type": type_, "limit": limit}
    if source:
        params["source"] = source
    result = _api(ctx, "GET", "/search", params=params)
    _report_sources(result)
    return result  # type: ignore[no-any-return]


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
    result = _search(ctx, query, type_, source, limit)
    if fmt != "table":
        output.print_objects([result], fmt, single=True)
        return
    if not _print_items(result, type_):
        click.echo(f"No {_PLURAL[type_]} match {query!r} in {', '.join(result.get('answered') or [])}.", err=True)


_PLURAL = {"song": "songs", "album": "albums", "artist": "artists", "playlist": "playlists"}


def _print_items(result: dict[str, Any], type_: str) -> bool:
    """One table of the items of ``type_`` in a search or library answer; False when empty."""
    items = result.get(_PLURAL[type_]) or []
    if not items:
        return False
    if type_ == "song":
        output.render_table(["#", "TITLE", "ARTIST", "ALBUM", "TIME", "SOURCE"], _song_rows(items))
    elif type_ == "album":
        output.render_table(["ALBUM", "ARTIST", "YEAR", "SOURCE"],
                            [[a.get("name"), _artists(a), a.get("year") or "", a.get("source")] for a in items])
    elif type_ == "artist":
        output.render_table(["ARTIST", "SOURCE"], [[a.get("name"), a.get("source")] for a in items])
    else:
        output.render_table(["PLAYLIST", "SONGS", "SOURCE"],
                            [[p.get("name"), len(p.get("songIds") or []), p.get("source")] for p in items])
    return True


def _library(ctx: CliContext, type_: str, source: str | None, limit: int, offset: int) -> dict[str, Any]:
    params: dict[str, Any] = {"type": type_, "limit": limit, "offset": offset}
    if source:
        params["source"] = source
    result = _api(ctx, "GET", "/library", params=params)
    _report_sources(result)
    return result  # type: ignore[no-any-return]


def _print_listing(result: dict[str, Any], type_: str, offset: int, fmt: str) -> None:
    if fmt != "table":
        output.print_objects([result], fmt, single=True)
        return
    if not _print_items(result, type_):
        click.echo(f"No {_PLURAL[type_]} in {', '.join(result.get('answered') or [])}.", err=True)
        return
    shown = len(result.get(_PLURAL[type_]) or [])
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
    _print_listing(_library(ctx, type_, source, limit, offset), type_, offset, fmt)


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
    _print_listing(_library(ctx, "playlist", source, 500, 0), "playlist", 0, fmt)


def _status_line(state: dict[str, Any]) -> str:
    current = state.get("current")
    if not current:
        return f"{state.get('status')}: nothing playing"
    return (f"{state.get('status')}: {current.get('title')} - {_artists(current)} "
            f"[{clock(state.get('positionSeconds'))}/{clock(current.get('durationSeconds'))}]")


def _print_error(state: dict[str, Any]) -> None:
    error = state.get("lastError")
    if error:
        verb = "skipped" if error.get("skipped", True) else "paused on"
        output.warn(f"{verb} {error.get('title')}: {error.get('reason')}: {error.get('message')}")


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
        songs = _search(ctx, query, "song", source).get("songs") or []
        if not songs:
            raise NotFoundError(f"no song matches {query!r}")
        body = {"songs": songs[:1]}
    else:
        body = {} if index is None else {"index": index}
    state = _api(ctx, "POST", "/play", body)
    _print_error(state)
    click.echo(_status_line(state))


def _simple(name: str, path: str, doc: str) -> click.Command:
    @click.command(name, help=doc)
    @pass_cli
    def command(ctx: CliContext) -> None:
        state = _api(ctx, "POST", path)
        _print_error(state)
        click.echo(_status_line(state))
    return command


pause = _simple("pause", "/pause",
                "Pause playback (mfx play continues where it stopped).\n\n\b\nExamples:\n  mfx pause\n  mfx play")
stop = _simple("stop", "/stop", "Stop playback (the queue stays).\n\n\b\nExample:\n  mfx stop")
next_cmd = _simple("next", "/next", "Skip to the next song of the play mode.\n\n\b\nExample:\n  mfx next")
prev = _simple("prev", "/previous", "Go back to the previous song.\n\n\b\nExample:\n  mfx prev")


# A leading "-" is a value here (`mfx seek -5`, `mfx volume -5`), not an option.
_SIGNED = {"ignore_unknown_options": True}


@click.command(context_settings=_SIGNED)
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
    click.echo(_status_line(_api(ctx, "POST", "/seek", body)))


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
    listing = _api(ctx, "GET", "/queue")
    songs = listing.get("songs") or []
    if not songs:
        click.echo("The queue is empty.", err=True)
        return
    output.render_table(["#", "TITLE", "ARTIST", "ALBUM", "TIME", "SOURCE"],
                        _song_rows(songs, listing.get("currentIndex")))


@queue.command("add")
@click.argument("query")
@click.option("--next", "next_", is_flag=True, help="Play right after the current song.")
@click.option("--first", is_flag=True, help="Only the best match.")
@click.option("--source", help="Search only this MusicSource plugin.")
@pass_cli
def queue_add(ctx: CliContext, query: str, next_: bool, first: bool, source: str | None) -> None:
    """Add the songs matching QUERY."""
    songs = _search(ctx, query, "song", source).get("songs") or []
    if not songs:
        raise NotFoundError(f"no song matches {query!r}")
    if first:
        songs = songs[:1]
    listing = _api(ctx, "POST", "/queue", {"songs": songs, "next": next_})
    click.echo(f"added {len(songs)} song(s); the queue holds {len(listing.get('songs') or [])}")


@queue.command("rm")
@click.argument("index", type=int)
@pass_cli
def queue_rm(ctx: CliContext, index: int) -> None:
    """Remove the song at INDEX."""
    song = _api(ctx, "DELETE", f"/queue/{index}")
    click.echo(f"removed {song.get('title')}")


@queue.command("mv")
@click.argument("source", type=int)
@click.argument("target", type=int)
@pass_cli
def queue_mv(ctx: CliContext, source: int, target: int) -> None:
    """Move the song at SOURCE to TARGET."""
    _api(ctx, "POST", "/queue/move", {"from": source, "to": target})
    click.echo(f"moved {source} -> {target}")


@queue.command("clear")
@pass_cli
def queue_clear(ctx: CliContext) -> None:
    """Empty the queue (and stop)."""
    _api(ctx, "DELETE", "/queue")
    click.echo("queue cleared")


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
    state = _api(ctx, "GET", "/state") if mode is None else _api(ctx, "PUT", "/mode", {"mode": mode})
    click.echo(f"mode: {state.get('mode')}")


@click.command(context_settings=_SIGNED)
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
        state = _api(ctx, "GET", "/state")
    else:
        sign, rest = parse_step(level, "volume")
        if not rest.isdigit():
            raise BadRequestError(f"volume {level!r}: expected 0-100, +STEP or -STEP (e.g. 70, +10, -5)")
        amount = int(rest)
        if sign:
            state = _api(ctx, "PUT", "/volume", {"change": -amount if sign == "-" else amount})
        elif amount > 100:
            raise BadRequestError(f"volume {level!r}: expected 0-100")
        else:
            state = _api(ctx, "PUT", "/volume", {"volume": amount})
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
    state = _api(ctx, "PUT", "/mute", {"muted": not off})
    click.echo("muted" if state.get("muted") else "unmuted")


def _bar(position: float, duration: float | None, width: int = 30) -> str:
    if not duration:
        return "[" + "-" * width + "]"
    done = min(width, int(width * position / duration))
    return "[" + "#" * done + "-" * (width - done) + "]"


@click.command()
@pass_cli
def now(ctx: CliContext) -> None:
    """What is playing: song, progress bar, the lyric line showing now.

    \b
    Example:
      mfx now
    """
    state = _api(ctx, "GET", "/state")
    current = state.get("current")
    if not current:
        click.echo(f"{state.get('status')}: nothing playing")
        return
    position = float(state.get("positionSeconds") or 0)
    duration = current.get("durationSeconds")
    click.echo(f"{current.get('title')} - {_artists(current)}  ({(current.get('album') or {}).get('name', '')})")
    click.echo(f"{state.get('status')}  {_bar(position, duration)} {clock(position)}/{clock(duration)}  "
               f"mode {state.get('mode')}  volume {state.get('volume')}{' (muted)' if state.get('muted') else ''}")
    lyric = state.get("lyric")
    if lyric:
        click.echo(f"♪ {lyric.get('text')}" + (f"  / {lyric['translation']}" if lyric.get("translation") else ""))
    _print_error(state)


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
    found = _api(ctx, "GET", "/lyrics")
    if not found:
        click.echo("No lyrics for this song.", err=True)
        return
    state = _api(ctx, "GET", "/state")
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
        import time

        last = showing
        while True:  # the lyric clock: one request per tick, printed when the line changes
            time.sleep(0.25)
            state = _api(ctx, "GET", "/state")
            if state.get("status") == "stopped":
                return
            position = float(state.get("positionSeconds") or 0)
            current = max((i for i, line in enumerate(lines) if line["time"] <= position), default=None)
            if current != last and current is not None:
                click.echo(f"> [{clock(lines[current]['time'])}] {lines[current]['text']}")
            last = current


# --- migrate -------------------------------------------------------------------------------------


@click.group()
def migrate() -> None:
    """Import the settings of another player as mfx manifests."""


@migrate.command("go-musicfox")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
              help="go-musicfox.ini (default: the first found of $MUSICFOX_ROOT/, ~/.config/go-musicfox/, "
                   "~/.config/musicfox/, ~/.go-musicfox/).")
@click.option("--from", "base_path", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="The local-music PluginManifest to rewrite (default: the daemon's pm/local-music when a "
                   "daemon answers, else the first-party plugins/local-music/plugin.yaml).")
@click.option("-o", "--output-dir", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              default=Path("mfx-migrated"), show_default=True,
              help="Where the manifests are written; `mfx apply -f` takes the folder as it is.")
@click.option("--player-config", "player_path", type=click.Path(path_type=Path, dir_okay=False),
              help="The player.yaml the player settings are merged into (default: the daemon home's).")
@pass_cli
def migrate_go_musicfox_cmd(ctx: CliContext, config_path: Path | None, base_path: Path | None, out_dir: Path,
                            player_path: Path | None) -> None:
    """Turn a go-musicfox configuration into mfx desired state, and say what did not carry over.

    \b
    Rewrites the local-music PluginManifest (its dependencies, configSchema and other
    folders kept) with go-musicfox's download folder as a music folder; merges the play
    mode into the daemon's player.yaml (read when the daemon starts); then lists every
    setting, carried over or not, and why.
    \b
    Examples:
      mfx migrate go-musicfox
      mfx migrate go-musicfox --config ~/.config/go-musicfox/go-musicfox.ini -o manifests/migrated
      mfx apply -f manifests/migrated
    """
    path = config_path or find_config(config_candidates())
    base, label = _base_manifest(ctx, base_path)
    result = migrate_go_musicfox(path, base)
    click.echo(f"read {path}")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, document in result.manifests().items():
        target = out_dir / name
        target.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
        folders = ", ".join(document["spec"]["config"]["folders"])
        click.echo(f"wrote {target}: pm/{document['metadata']['name']} rewritten from {label}; "
                   f"music folders: {folders}")
    for folder in result.left_out_folders:
        click.echo(f"left out music folder {folder} of {label}: it does not exist here")
    if result.player_config:
        target = player_path or (ctx.home or default_home()) / "player.yaml"
        _merge_player_config(target, result.player_config)
        settings = ", ".join(f"{k}: {v}" for k, v in result.player_config.items())
        click.echo(f"wrote {target}: {settings} (the daemon reads it when it starts: restart `mfx serve`)")
    _print_report("carried over", result.carried_over())
    _print_report("not carried over", result.not_carried_over())
    click.echo(f"next: mfx apply -f {out_dir}")


def _base_manifest(ctx: CliContext, given: Path | None) -> tuple[dict[str, Any], str]:
    """The local-music manifest to rewrite, and where it came from: the file given, else what
    the daemon runs (so folders added since are kept), else the first-party manifest."""
    if given is not None:
        return _load_manifest(given), str(given)
    try:
        return ctx.client.get(PLUGIN_MANIFEST, "local-music"), "the daemon's pm/local-music"
    except (DaemonUnavailableError, NotFoundError):
        pass
    if FIRST_PARTY_LOCAL_MUSIC.is_file():
        return _load_manifest(FIRST_PARTY_LOCAL_MUSIC), str(FIRST_PARTY_LOCAL_MUSIC)
    raise NotFoundError("no local-music PluginManifest to rewrite: no daemon has one and the first-party "
                        f"{FIRST_PARTY_LOCAL_MUSIC} is not here; pass --from PATH/plugin.yaml")


def _load_manifest(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BadRequestError(f"{path}: cannot read the manifest: {exc}") from None
    if not isinstance(document, dict):
        raise BadRequestError(f"{path}: expected one PluginManifest document")
    return document


def _merge_player_config(path: Path, settings: dict[str, Any]) -> None:
    """Merge ``settings`` into the player.yaml at ``path``, keeping its other settings; checked
    as the player checks it, so the daemon never starts on a file it refuses."""
    existing: Any = {}
    if path.exists():
        try:
            existing = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise BadRequestError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(existing, dict):
        raise BadRequestError(f"{path}: expected a mapping of player settings")
    # Imported here: the player module pulls in numpy and the audio path, which no other
    # command needs at start.
    from mfx.music.player import PlayerConfig

    merged = {**existing, **settings}
    PlayerConfig.from_mapping(merged, where=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(merged, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _print_report(title: str, items: list[ReportItem]) -> None:
    click.echo(f"{title} ({len(items)}):")
    for item in items:
        click.echo(f"  [{item.section}] {item.key} = {item.value!r}: {item.note}")


COMMANDS: tuple[click.Command, ...] = (
    search, library, playlists, play, pause, stop, next_cmd, prev, seek, queue, mode, volume, mute, now,
    lyrics, migrate,
)
