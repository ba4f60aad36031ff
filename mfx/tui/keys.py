"""The terminal player's key map, close to go-musicfox's: one table for the bindings, the ``?``
page and ``mfx tui --help``."""

from __future__ import annotations

from textual.binding import Binding

# (keys, action, description, shown in the footer)
KEYMAP: tuple[tuple[str, str, str, bool], ...] = (
    ("1", "view('library')", "Library", True),
    ("2", "view('playlists')", "Playlists", True),
    ("slash,3", "view('search')", "Search", True),
    ("4", "view('queue')", "Queue", True),
    ("5", "view('now')", "Now", True),
    ("6", "view('plugins')", "Plugins", True),
    ("space", "act('toggle')", "Play/Pause", True),
    ("left_square_bracket", "act('previous')", "Prev", False),
    ("right_square_bracket", "act('next')", "Next", False),
    ("minus", "act('volume:-5')", "Vol-", False),
    ("equals_sign", "act('volume:+5')", "Vol+", False),
    ("p", "act('mode')", "Mode", False),
    ("m", "act('mute')", "Mute", False),
    ("comma", "act('seek:-5')", "Back 5s", False),
    ("full_stop", "act('seek:+5')", "Fwd 5s", False),
    ("t", "next_theme", "Theme", False),
    ("escape,h", "go_back", "Back", False),
    ("question_mark", "view('help')", "Keys", True),
    ("q", "quit", "Quit", True),
)

# What the ``?`` page and --help print for keys that are not app bindings.
LIST_KEYS: tuple[tuple[str, str], ...] = (
    ("j k / ↓ ↑", "move in a list"),
    ("l / Enter", "open, play the song, jump to the queued song"),
    ("d", "queue: remove the song"),
    ("K J", "queue: move the song up / down"),
    ("r", "plugins: restart (the same patch as `mfx rollout restart pm/NAME`)"),
    ("s", "plugins: suspend / resume (`mfx suspend|resume pm NAME`)"),
    ("mouse", "click a row to move to it, click it again (or double-click) to open it as Enter does; "
              "click a footer key to press it"),
)

_NAMES = {"slash": "/", "left_square_bracket": "[", "right_square_bracket": "]", "minus": "-",
          "equals_sign": "=", "question_mark": "?", "comma": ",", "full_stop": ".", "escape": "Esc"}


def bindings() -> list[Binding]:
    return [Binding(keys, action, description, show=shown) for keys, action, description, shown in KEYMAP]


def key_names(keys: str) -> str:
    return " ".join(_NAMES.get(key, key) for key in keys.split(","))


def keymap_text() -> str:
    """The key map as a two-column text table."""
    rows = [(key_names(keys), description) for keys, _, description, _ in KEYMAP] + list(LIST_KEYS)
    width = max(len(key) for key, _ in rows)
    return "\n".join(f"{key:<{width}}  {description}" for key, description in rows)
