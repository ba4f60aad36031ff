"""Where mfx keeps its state on this machine: one function the daemon and every client share."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # not typing's: the commands that run before click import no pathlib either
if TYPE_CHECKING:
    from pathlib import Path


def default_home_dir() -> str:
    """``$MFX_HOME``, else ``$XDG_STATE_HOME/mfx``, else ``~/.local/state/mfx``."""
    env = os.environ.get("MFX_HOME")
    if env:
        return os.path.expanduser(env)
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "mfx")


def default_home() -> Path:
    """``default_home_dir()`` as a path."""
    from pathlib import Path

    return Path(default_home_dir())
