"""LRC lyrics: parse ``[mm:ss.xx]text`` files into ``Lyrics``.

Handled: several timestamps on one line (``[00:12.00][01:30.50]chorus``), ``[mm:ss]``,
``[mm:ss.x]`` to ``[mm:ss.xxx]`` and the ``[mm:ss:xx]`` variant, ``[offset:+/-ms]`` (a
positive offset makes lines appear sooner, as in the LRC convention), metadata tags
(``[ar:...]``, ``[ti:...]``...) ignored, and bilingual files that repeat a timestamp with
the translation: the second line with the same time becomes the first one's
``translation``. Lines without any timestamp are ignored unless the whole file has none,
in which case the text is kept as ``Lyrics.plain``.
"""

from __future__ import annotations

import re
from pathlib import Path

from mfx.api.music import LyricLine, Lyrics

_TIME = re.compile(r"\[(\d{1,3}):(\d{1,2})(?:[.:](\d{1,3}))?\]")
_TAG = re.compile(r"^\[([A-Za-z#]+):(.*)\]\s*$")
_ENCODINGS = ("utf-8-sig", "gb18030")  # LRC files from Chinese sites are often GBK


def parse_lrc(text: str) -> Lyrics:
    offset_seconds = 0.0
    timed: list[tuple[float, str]] = []
    untimed: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        times: list[float] = []
        position = 0
        while match := _TIME.match(line, position):
            minutes, seconds, fraction = match.groups()
            value = int(minutes) * 60 + int(seconds)
            if fraction:
                value += int(fraction) / (10 ** len(fraction))
            times.append(value)
            position = match.end()
        if times:
            body = line[position:].strip()
            timed.extend((time, body) for time in times)
            continue
        tag = _TAG.match(line)
        if tag:
            if tag.group(1).lower() == "offset":
                try:
                    offset_seconds = int(tag.group(2).strip()) / 1000
                except ValueError:
                    pass  # a malformed offset is ignored like any unknown tag
            continue
        untimed.append(line)

    if not timed:
        return Lyrics(plain="\n".join(untimed) if untimed else None)

    lines: list[LyricLine] = []
    by_time: dict[float, LyricLine] = {}
    # Stable sort: for one timestamp the original line comes before its translation.
    for time, body in sorted(timed, key=lambda item: item[0]):
        shifted = max(0.0, round(time - offset_seconds, 3))
        first = by_time.get(time)
        if first is not None and first.translation is None and body:
            first.translation = body
            continue
        entry = LyricLine(time=shifted, text=body)
        lines.append(entry)
        by_time.setdefault(time, entry)
    return Lyrics(lines=lines)


def load_lrc(path: str | Path) -> Lyrics:
    """Read and parse an LRC file (UTF-8, UTF-8 with BOM, or GB18030)."""
    data = Path(path).read_bytes()
    for encoding in _ENCODINGS:
        try:
            return parse_lrc(data.decode(encoding))
        except UnicodeDecodeError:
            continue
    return parse_lrc(data.decode("utf-8", errors="replace"))


def format_lrc(lyrics: Lyrics) -> str:
    """Write ``lyrics`` back as LRC; a translation follows its line with the same time."""
    out: list[str] = []
    for line in lyrics.lines:
        minutes, seconds = divmod(line.time, 60)
        stamp = f"[{int(minutes):02d}:{seconds:06.3f}]"
        out.append(f"{stamp}{line.text}")
        if line.translation is not None:
            out.append(f"{stamp}{line.translation}")
    return "\n".join(out) + ("\n" if out else "")
