"""``mfx migrate go-musicfox``: a go-musicfox ``go-musicfox.ini`` as mfx desired state.

go-musicfox keeps its settings in an INI file in ``$MUSICFOX_ROOT`` (by default
``~/.go-musicfox``), with sections ``[startup] [progress] [main] [global_hotkey] [autoplay]
[player] [unm] [lastfm]``. What has an mfx equivalent becomes:

- ``[main] downloadDir`` (default ``download`` under the root): a folder of a ``local-music``
  PluginManifest, so the songs go-musicfox downloaded are the local library;
- ``[autoplay] playMode``: the player's ``defaultMode`` in ``player.yaml``
  (listLoop -> loop-all, order -> in-order, singleLoop -> loop-one, random -> shuffle);
- ``[player] engine``: replaced by an AudioSink (mfx plays through ALSA itself).

Every other setting is listed in the report, with why it has no equivalent, so nothing is
dropped silently.
"""

from __future__ import annotations

import configparser
import enum
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mfx.api.music import PlayMode
from mfx.errors import BadRequestError, NotFoundError

CONFIG_NAME = "go-musicfox.ini"
API_VERSION = "mfx.musicfox.io/v1alpha1"

PLAY_MODES = {"listloop": PlayMode.LOOP_ALL, "order": PlayMode.IN_ORDER,
              "singleloop": PlayMode.LOOP_ONE, "random": PlayMode.SHUFFLE}

# Settings without an equivalent, and why (section, key) -> note.
_NO_EQUIVALENT = {
    ("main", "songLevel"): "local files play at their own quality",
    ("main", "lyricOffset"): "mfx shows lyrics at their own timestamps; no offset setting",
    ("main", "cacheDir"): "mfx streams nothing, so it keeps no audio cache",
    ("main", "cacheLimit"): "mfx keeps no audio cache",
    ("autoplay", "autoPlay"): "mfx restores the queue paused at its position; `mfx resume` continues",
    ("autoplay", "autoPlayList"): "Netease playlists are not available; use `mfx play --playlist NAME`",
    ("autoplay", "offset"): "the restored queue keeps its current song",
    ("unm", "switch"): "UnblockNeteaseMusic is Netease-specific; there is no Netease source",
    ("startup", "signIn"): "there is no Netease account",
}
_MAPPED_ELSEWHERE = {
    ("main", "showLyric"): "lyrics are always available: `mfx now` and `mfx lyrics -f`",
    ("main", "showLyricTrans"): "translations are shown when the .lrc has them",
    ("main", "downloadDir"): "a music folder of the local-music PluginManifest",
    ("autoplay", "playMode"): "player.yaml defaultMode",
    ("player", "engine"): "mfx plays through an AudioSink (ALSA); apply one for your device",
}


class ItemStatus(enum.StrEnum):
    MIGRATED = "migrated"
    UNSUPPORTED = "unsupported"
    IGNORED = "ignored"  # look and feel of go-musicfox's terminal UI


@dataclass(frozen=True)
class ReportItem:
    section: str
    key: str
    value: str
    status: ItemStatus
    note: str


@dataclass
class MigrationResult:
    source: Path
    local_music: dict[str, Any]
    player_config: dict[str, Any]
    report: list[ReportItem] = field(default_factory=list)

    def files(self) -> dict[str, dict[str, Any]]:
        return {"local-music.yaml": self.local_music, "player.yaml": self.player_config}

    def unsupported(self) -> list[ReportItem]:
        return [item for item in self.report if item.status is ItemStatus.UNSUPPORTED]


def default_config_path() -> Path:
    root = os.environ.get("MUSICFOX_ROOT") or str(Path.home() / ".go-musicfox")
    return Path(root).expanduser() / CONFIG_NAME


def read_ini(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False, inline_comment_prefixes=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are camelCase
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"{path}: no go-musicfox configuration here; pass --config PATH "
                            f"(go-musicfox keeps it in $MUSICFOX_ROOT/{CONFIG_NAME})") from None
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise BadRequestError(f"{path}: not a valid INI file: {exc}") from None
    return parser


def _value(raw: str) -> str:
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return value


def migrate_go_musicfox(path: Path) -> MigrationResult:
    parser = read_ini(path)
    root = path.parent
    report: list[ReportItem] = []
    player: dict[str, Any] = {}

    main = parser["main"] if parser.has_section("main") else {}
    download = _value(main.get("downloadDir", "")) or "download"
    download_dir = Path(os.path.expanduser(download))
    if not download_dir.is_absolute():
        download_dir = root / download_dir  # go-musicfox resolves it under $MUSICFOX_ROOT
    folders = [str(download_dir)]

    autoplay = parser["autoplay"] if parser.has_section("autoplay") else {}
    mode_text = _value(autoplay.get("playMode", "last"))
    mode = PLAY_MODES.get(mode_text.lower())
    if mode is not None:
        player["defaultMode"] = mode.value

    for section in parser.sections():
        for key, raw in parser.items(section):
            value = _value(raw)
            where = (section, key)
            if where == ("autoplay", "playMode") and mode is None:
                note = ("mfx keeps the last mode by itself (player.json)" if mode_text.lower() == "last"
                        else f"no equivalent of {mode_text!r}; choose one of "
                             f"{', '.join(m.value for m in PlayMode)} with `mfx mode`")
                status = ItemStatus.MIGRATED if mode_text.lower() == "last" else ItemStatus.UNSUPPORTED
                report.append(ReportItem(section, key, value, status, note))
            elif where in _MAPPED_ELSEWHERE:
                report.append(ReportItem(section, key, value, ItemStatus.MIGRATED, _MAPPED_ELSEWHERE[where]))
            elif where in _NO_EQUIVALENT:
                report.append(ReportItem(section, key, value, ItemStatus.UNSUPPORTED, _NO_EQUIVALENT[where]))
            elif section in ("startup", "progress", "global_hotkey") or (section == "main" and key in _UI_KEYS):
                report.append(ReportItem(section, key, value, ItemStatus.IGNORED,
                                         "appearance of go-musicfox's terminal UI"))
            else:
                report.append(ReportItem(section, key, value, ItemStatus.UNSUPPORTED, "no equivalent in mfx"))

    local_music = {
        "apiVersion": API_VERSION,
        "kind": "PluginManifest",
        "metadata": {"name": "local-music", "annotations": {"mfx.musicfox.io/migrated-from": str(path)}},
        "spec": {
            "version": "1.0.0",
            "type": "rpc",
            "entryPoint": "python -m local_music",
            "interfaces": ["MusicSource"],
            "config": {"folders": folders, "watch": True},
            "security": {"allowedPaths": [{"path": f, "writable": False} for f in folders]},
        },
    }
    return MigrationResult(source=path, local_music=local_music, player_config=player, report=report)


_UI_KEYS = {"showTitle", "loadingText", "primaryColor", "notifyIcon", "notifyAlbumCover", "showNotify",
            "pprofPort", "altScreen", "enableMouseEvent", "doubleColumn", "dynamicMenuRows",
            "showAllSongsOfPlaylist", "downloadLyricDir", "downloadFileNameTpl"}
