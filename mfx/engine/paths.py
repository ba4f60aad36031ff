"""Where an engine keeps its files under a home: one place every side of the socket reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EnginePaths:
    home: Path

    @property
    def directory(self) -> Path:
        return self.home / "engine"

    @property
    def socket(self) -> Path:
        return self.directory / "engine.sock"

    @property
    def lock(self) -> Path:
        return self.directory / "engine.lock"

    @property
    def pid(self) -> Path:
        return self.directory / "engine.pid"

    @property
    def log(self) -> Path:
        return self.directory / "engine.log"

    @property
    def plugin_state(self) -> Path:
        return self.directory / "plugins"
