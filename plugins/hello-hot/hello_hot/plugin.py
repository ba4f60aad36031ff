"""A status line: "▶ Artist - Title  1:23/4:56  vol 80".

Try editing ``render`` while the daemon runs: the new version takes over at once and keeps
the count of lines rendered so far (``export_state`` / ``import_state``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mfx.sdk.music import UIExtension
from mfx.sdk.plugin import PluginInfo

_SYMBOLS = {"playing": "▶", "paused": "⏸", "stopped": "■"}
_KEYS = {" ": "toggle", "n": "next", "p": "previous", "+": "volume:+5", "-": "volume:-5", "q": "quit"}


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--"
    whole = int(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


class StatusLine(UIExtension):
    info = PluginInfo(name="hello-hot", version="0.1.0",
                      description="One-line status bar.", interfaces=("UIExtension",))

    def __init__(self) -> None:
        super().__init__()
        self._width = 60
        self._rendered = 0

    def initialize(self, config: Mapping[str, Any]) -> None:
        super().initialize(config)
        self._width = int(config.get("width", 60))

    def update_config(self, config: Mapping[str, Any]) -> None:
        self.initialize(config)

    def render(self, state: Mapping[str, Any]) -> str:
        self._rendered += 1
        symbol = _SYMBOLS.get(str(state.get("status", "stopped")), "?")
        song = state.get("current") or {}
        artists = ", ".join(a.get("name", "") for a in song.get("artists", []))
        title = song.get("title", "nothing playing")
        what = f"{artists} - {title}" if artists else title
        times = f"{clock(state.get('positionSeconds', 0.0))}/{clock(song.get('durationSeconds'))}"
        volume = "muted" if state.get("muted") else f"vol {state.get('volume', 100)}"
        line = f"{symbol} {what}  {times}  {volume}"
        return line if len(line) <= self._width else line[: self._width - 1] + "…"

    def handle_input(self, key: str) -> str | None:
        return _KEYS.get(key)

    def rendered(self) -> int:
        return self._rendered

    def export_state(self) -> Any:
        return {"rendered": self._rendered}

    def import_state(self, state: Any) -> None:
        self._rendered = int(state.get("rendered", 0))
