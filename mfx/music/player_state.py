"""The player's saved state: ``$MFX_HOME/player.json``, written atomically.

What is kept: the play queue (songs, current index, mode, shuffle order, history), the
position in the current song, volume and mute. The file is replaced in one ``rename`` after
the new contents are flushed to disk, so a crash leaves either the old or the new state,
never half of one. A file that cannot be read is moved aside (``player.json.bad``) and the
player starts empty, saying so in the log: a broken state file must never keep the daemon
from starting.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from mfx.errors import BadRequestError

log = logging.getLogger("mfx.player")

STATE_FILE = "player.json"
FORMAT_VERSION = 1


@dataclass
class SavedPlayer:
    queue: dict[str, Any] = field(default_factory=dict)  # PlayQueue.to_dict()
    position_seconds: float = 0.0
    volume: int = 100
    muted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"version": FORMAT_VERSION, "queue": self.queue, "positionSeconds": self.position_seconds,
                "volume": self.volume, "muted": self.muted}

    @classmethod
    def from_json(cls, data: Any, *, where: str) -> SavedPlayer:
        if not isinstance(data, dict):
            raise BadRequestError(f"{where}: expected a JSON object, got {type(data).__name__}")
        version = data.get("version")
        if version != FORMAT_VERSION:
            raise BadRequestError(f"{where}: version: expected {FORMAT_VERSION}, got {version!r}")
        queue = data.get("queue", {})
        position = data.get("positionSeconds", 0.0)
        volume = data.get("volume", 100)
        muted = data.get("muted", False)
        if not isinstance(queue, dict):
            raise BadRequestError(f"{where}: queue: expected an object")
        if not isinstance(position, int | float) or isinstance(position, bool) or position < 0:
            raise BadRequestError(f"{where}: positionSeconds: expected a number >= 0, got {position!r}")
        if not isinstance(volume, int) or isinstance(volume, bool) or not 0 <= volume <= 100:
            raise BadRequestError(f"{where}: volume: expected an integer 0..100, got {volume!r}")
        if not isinstance(muted, bool):
            raise BadRequestError(f"{where}: muted: expected true or false, got {muted!r}")
        return cls(queue=queue, position_seconds=float(position), volume=volume, muted=muted)


class PlayerStateFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> SavedPlayer | None:
        """The saved state, or None when there is none (or it was unreadable, moved aside)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return SavedPlayer.from_json(orjson.loads(raw), where=str(self.path))
        except (orjson.JSONDecodeError, BadRequestError) as exc:
            bad = self.path.with_name(self.path.name + ".bad")
            os.replace(self.path, bad)
            log.warning("player state %s is unreadable (%s); moved it to %s and started empty",
                        self.path, exc, bad)
            return None

    def save(self, state: SavedPlayer) -> None:
        """Write ``state`` atomically: a temporary file in the same folder, fsync, rename."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = orjson.dumps(state.to_json(), option=orjson.OPT_INDENT_2)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
