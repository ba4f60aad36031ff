"""hello-hot: a UIExtension panel, hot-reloaded, showing "▶ Artist - Title  1:23/4:56  vol 80".

The UIExtension contract, as ``mfx tui`` (and the web UI) use it; every method takes and
returns JSON values, because the hosts call it through the plugin call API:

- ``render(state)``: the panel's text for the player's state (the wire form of
  ``GET /apis/player.mfx.musicfox.io/v1/state``), called at every change of the state and
  after every reload.
- ``layout()``: where the panel goes: ``{"regions": [{"name": "bottom", "rows": 1, "title":
  "hello-hot"}]}``; a region is top, bottom, left or right; rows is the height of a top or
  bottom panel (the width of a left or right one).
- ``keys()`` and ``handle_input(key)``: the keys the panel binds, in Textual's names
  (``"ctrl+n"``; the host's own keys come first) and the action each one sends to the player
  (``"next"``, ``"volume:+5"``, ``"seek:+10"``, ``"mode:shuffle"``; None ignores it).
- ``themes()`` and ``theme(name)``: themes the user picks with ``t`` in the TUI, and their
  palettes (``"#rrggbb"`` colours under ``UIExtension.PALETTE_KEYS``, ``primary`` required,
  and ``"dark"``).

Try editing ``render`` while ``mfx tui`` runs: within a second the panel shows the new
version, which keeps the count of lines rendered so far (``export_state`` /
``import_state``). Save a syntax error and the old panel stays; the TUI's status line says
``ReloadFailed`` and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mfx.sdk.music import JSON, UIExtension
from mfx.sdk.plugin import PluginInfo

_SYMBOLS = {"playing": "▶", "paused": "⏸", "stopped": "■"}
# Keys the host leaves free: its own are space [ ] - = p / q ? t and the view numbers.
_KEYS = {"ctrl+n": "next", "ctrl+b": "previous", "ctrl+s": "mode:shuffle"}
_THEMES: dict[str, JSON] = {
    "hello-dusk": {"primary": "#e07a5f", "secondary": "#81b29a", "accent": "#f2cc8f",
                   "background": "#1d1f2b", "surface": "#262a3a", "panel": "#30354a", "dark": True},
    "hello-paper": {"primary": "#3d5a80", "secondary": "#98c1d9", "accent": "#ee6c4d",
                    "foreground": "#293241", "background": "#f7f4ea", "surface": "#ece8dc", "dark": False},
}


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--"
    whole = int(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


class StatusLine(UIExtension):
    info = PluginInfo(name="hello-hot", version="0.2.0",
                      description="One-line status panel.", interfaces=("UIExtension",))

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

    def layout(self) -> JSON:
        return {"regions": [{"name": "bottom", "rows": 1, "title": "hello-hot"}]}

    def keys(self) -> list[str]:
        return list(_KEYS)

    def handle_input(self, key: str) -> str | None:
        return _KEYS.get(key)

    def themes(self) -> list[str]:
        return list(_THEMES)

    def theme(self, name: str) -> JSON:
        if name not in _THEMES:
            return super().theme(name)
        return _THEMES[name]

    def rendered(self) -> int:
        return self._rendered

    def export_state(self) -> Any:
        return {"rendered": self._rendered}

    def import_state(self, state: Any) -> None:
        self._rendered = int(state.get("rendered", 0))
