"""Where mfx keeps its state on this machine: one function the daemon and every client share."""

from __future__ import annotations

import os
from pathlib import Path


def default_home() -> Path:
    """``$MFX_HOME``, else ``$XDG_STATE_HOME/mfx``, else ``~/.local/state/mfx``."""
    env = os.environ.get("MFX_HOME")
    if env:
        return Path(env).expanduser()
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "mfx"
