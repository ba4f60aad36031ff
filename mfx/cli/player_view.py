"""How player commands show songs, listings and the player's state."""

from __future__ import annotations

from mfx.cli import output

# Not typing's: mypy reads the name alone, and importing typing costs a hot ``mfx`` call time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


def artists(item: dict[str, Any]) -> str:
    return ", ".join(a.get("name", "") for a in item.get("artists") or [])


def song_rows(songs: list[dict[str, Any]], current: int | None = None) -> list[list[Any]]:
    rows = []
    for index, song in enumerate(songs):
        mark = ">" if index == current else ""
        rows.append([f"{mark}{index}", song.get("title", ""), artists(song),
                     (song.get("album") or {}).get("name", ""), clock(song.get("durationSeconds")),
                     song.get("source", "")])
    return rows


PLURAL = {"song": "songs", "album": "albums", "artist": "artists", "playlist": "playlists"}


def print_items(result: dict[str, Any], type_: str) -> bool:
    """One table of the items of ``type_`` in a search or library answer; False when empty."""
    items = result.get(PLURAL[type_]) or []
    if not items:
        return False
    if type_ == "song":
        output.render_table(["#", "TITLE", "ARTIST", "ALBUM", "TIME", "SOURCE"], song_rows(items))
    elif type_ == "album":
        output.render_table(["ALBUM", "ARTIST", "YEAR", "SOURCE"],
                            [[a.get("name"), artists(a), a.get("year") or "", a.get("source")] for a in items])
    elif type_ == "artist":
        output.render_table(["ARTIST", "SOURCE"], [[a.get("name"), a.get("source")] for a in items])
    else:
        output.render_table(["PLAYLIST", "SONGS", "SOURCE"],
                            [[p.get("name"), len(p.get("songIds") or []), p.get("source")] for p in items])
    return True


def status_line(state: dict[str, Any]) -> str:
    current = state.get("current")
    if not current:
        return f"{state.get('status')}: nothing playing"
    return (f"{state.get('status')}: {current.get('title')} - {artists(current)} "
            f"[{clock(state.get('positionSeconds'))}/{clock(current.get('durationSeconds'))}]")


def print_last_error(state: dict[str, Any]) -> None:
    error = state.get("lastError")
    if error:
        verb = "skipped" if error.get("skipped", True) else "paused on"
        output.warn(f"{verb} {error.get('title')}: {error.get('reason')}: {error.get('message')}")


def print_state(state: dict[str, Any]) -> None:
    """What a transport command prints: why a song was skipped, if one was, then the status line."""
    print_last_error(state)
    output.echo(status_line(state))


def progress_bar(position: float, duration: float | None, width: int = 30) -> str:
    if not duration:
        return "[" + "-" * width + "]"
    done = min(width, int(width * position / duration))
    return "[" + "#" * done + "-" * (width - done) + "]"
