"""``.m3u`` / ``.m3u8`` playlists: entries resolved to paths relative to the playlist."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

PLAYLIST_EXTENSIONS = frozenset({"m3u", "m3u8"})


@dataclass(frozen=True)
class PlaylistEntry:
    path: str  # absolute, normalised
    title: str | None = None  # from #EXTINF, shown when the file is not in the library
    duration_seconds: float | None = None


@dataclass(frozen=True)
class PlaylistFile:
    path: str
    name: str
    entries: list[PlaylistEntry] = field(default_factory=list)
    skipped: int = 0  # remote URLs and other entries a local library cannot play


def read_playlist(path: str) -> PlaylistFile:
    """Parse one playlist file. Raises OSError when it cannot be read."""
    with open(path, "rb") as handle:
        data = handle.read()
    text = _decode(data, utf8_only=path.lower().endswith(".m3u8"))
    base = os.path.dirname(path)
    name = os.path.splitext(os.path.basename(path))[0]
    entries: list[PlaylistEntry] = []
    skipped = 0
    pending_title: str | None = None
    pending_duration: float | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if line.upper().startswith("#EXTINF:"):
                info = line[len("#EXTINF:") :]
                duration, _, title = info.partition(",")
                pending_title = title.strip() or None
                try:
                    seconds = float(duration.split()[0]) if duration.strip() else -1.0
                except ValueError:
                    seconds = -1.0
                pending_duration = seconds if seconds >= 0 else None
            elif line.upper().startswith("#PLAYLIST:"):
                name = line[len("#PLAYLIST:") :].strip() or name
            continue
        resolved = _resolve(line, base)
        if resolved is None:
            skipped += 1
        else:
            entries.append(PlaylistEntry(resolved, pending_title, pending_duration))
        pending_title = pending_duration = None
    return PlaylistFile(path=path, name=name, entries=entries, skipped=skipped)


def _resolve(entry: str, base: str) -> str | None:
    if "://" in entry:
        parsed = urlparse(entry)
        if parsed.scheme != "file":
            return None
        entry = unquote(parsed.path)
    # Playlists written on Windows use backslashes; a POSIX file name rarely contains one.
    entry = entry.replace("\\", "/")
    return os.path.normpath(os.path.join(base, entry))


def _decode(data: bytes, *, utf8_only: bool) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        if utf8_only:
            return data.decode("utf-8", errors="replace")
        return data.decode("latin-1")  # classic .m3u is in the system code page
