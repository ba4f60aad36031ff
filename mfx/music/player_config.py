"""The player's settings: ``$MFX_HOME/player.yaml``, read once when the daemon starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mfx.api.music import PlayMode
from mfx.errors import InvalidConfigError

CONFIG_FILE = "player.yaml"


@dataclass
class PlayerConfig:
    """``$MFX_HOME/player.yaml`` (every field optional)::

        processors: [effects]        # AudioProcessor plugins, in processing order
        searchTimeout: 3.0           # seconds a MusicSource gets to answer a search
        defaultMode: in-order        # used when there is no saved state
        defaultVolume: 100
        blockFrames: 4096
        saveDebounce: 0.2            # seconds between a change and its save
        positionSaveInterval: 5.0    # seconds between saves of the position while playing
        fadeSeconds: 0.005           # fade of a pause, seek or skip (0: cut at the sample)
    """

    processors: list[str] = field(default_factory=list)
    search_timeout: float = 3.0
    default_mode: PlayMode = PlayMode.IN_ORDER
    default_volume: int = 100
    block_frames: int = 4096
    save_debounce: float = 0.2
    position_save_interval: float = 5.0
    fade_seconds: float = 0.005

    @classmethod
    def from_mapping(cls, data: Any, *, where: str = CONFIG_FILE) -> PlayerConfig:
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise InvalidConfigError(f"{where}: expected a mapping of player settings")
        known = {"processors", "searchTimeout", "defaultMode", "defaultVolume", "blockFrames",
                 "saveDebounce", "positionSaveInterval", "fadeSeconds"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        config = cls()
        processors = data.get("processors", [])
        if not isinstance(processors, list) or not all(isinstance(p, str) and p for p in processors):
            raise InvalidConfigError(f"{where}: processors: expected a list of AudioProcessor plugin names")
        config.processors = list(processors)
        for key, attr, low in (("searchTimeout", "search_timeout", 0.01), ("saveDebounce", "save_debounce", 0.0),
                               ("positionSaveInterval", "position_save_interval", 0.1),
                               ("fadeSeconds", "fade_seconds", 0.0)):
            if key in data:
                value = data[key]
                if not isinstance(value, int | float) or isinstance(value, bool) or value < low:
                    raise InvalidConfigError(f"{where}: {key}: expected a number of seconds >= {low}, got {value!r}")
                setattr(config, attr, float(value))
        if "defaultMode" in data:
            try:
                config.default_mode = PlayMode(data["defaultMode"])
            except ValueError:
                raise InvalidConfigError(
                    f"{where}: defaultMode: expected one of {', '.join(m.value for m in PlayMode)}, "
                    f"got {data['defaultMode']!r}") from None
        if "defaultVolume" in data:
            volume = data["defaultVolume"]
            if not isinstance(volume, int) or isinstance(volume, bool) or not 0 <= volume <= 100:
                raise InvalidConfigError(f"{where}: defaultVolume: expected an integer 0..100, got {volume!r}")
            config.default_volume = volume
        if "blockFrames" in data:
            frames = data["blockFrames"]
            if not isinstance(frames, int) or isinstance(frames, bool) or not 64 <= frames <= 65536:
                raise InvalidConfigError(f"{where}: blockFrames: expected an integer 64..65536, got {frames!r}")
            config.block_frames = frames
        return config

    def to_mapping(self) -> dict[str, Any]:
        return {"processors": list(self.processors), "searchTimeout": self.search_timeout,
                "defaultMode": self.default_mode.value, "defaultVolume": self.default_volume,
                "blockFrames": self.block_frames, "saveDebounce": self.save_debounce,
                "positionSaveInterval": self.position_save_interval, "fadeSeconds": self.fade_seconds}

    @classmethod
    def load(cls, home: Path) -> PlayerConfig:
        path = home / CONFIG_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls()
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidConfigError(f"{path}: not valid YAML: {exc}") from None
        return cls.from_mapping(data, where=str(path))
