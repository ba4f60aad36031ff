"""``mfx migrate go-musicfox``: a go-musicfox ``go-musicfox.ini`` as mfx desired state.

go-musicfox keeps its settings in ``go-musicfox.ini``: in ``$MUSICFOX_ROOT`` when that is
set, else in ``$XDG_CONFIG_HOME/go-musicfox`` (``~/.config/go-musicfox``) since it follows the
XDG layout, and in ``~/.config/musicfox`` or ``~/.go-musicfox`` before that. Sections are
``[startup] [progress] [main] [global_hotkey] [autoplay] [player] [unm] [lastfm]``. What has
an mfx equivalent becomes:

- ``[main] downloadDir`` (default ``download`` beside the ini): a music folder of the
  ``local-music`` PluginManifest, so the songs go-musicfox downloaded are the local library.
  The manifest is rewritten, not made up: everything else in it (dependencies, configSchema,
  limits, its other folders) stays as it was, so the result applies as it is;
- ``[autoplay] playMode``: the player's ``defaultMode`` in ``player.yaml``
  (listLoop -> loop-all, order -> in-order, singleLoop -> loop-one, random -> shuffle).

Every other setting is listed in the report as not carried over, with why, so nothing is
dropped silently.
"""

from __future__ import annotations

import configparser
import copy
import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mfx.api.music import PlayMode
from mfx.errors import BadRequestError, NotFoundError

CONFIG_NAME = "go-musicfox.ini"
MIGRATED_FROM = "mfx.musicfox.io/migrated-from"

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
    ("main", "showLyric"): "mfx has no such switch: lyrics are always there (`mfx now`, `mfx lyrics -f`)",
    ("main", "showLyricTrans"): "mfx has no such switch: translations show when the .lrc has them",
    ("player", "engine"): "mfx plays through an AudioSink (ALSA) instead; apply one for your device "
                          "(e.g. `mfx apply -f manifests/`)",
}


class ItemStatus(enum.StrEnum):
    MIGRATED = "migrated"  # carried over (or mfx does the same by itself)
    UNSUPPORTED = "unsupported"  # not carried over: mfx has no equivalent
    IGNORED = "ignored"  # not carried over: look and feel of go-musicfox's terminal UI


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
    local_music: dict[str, Any]  # the rewritten PluginManifest
    player_config: dict[str, Any]  # player.yaml settings to merge into the existing ones
    report: list[ReportItem] = field(default_factory=list)
    left_out_folders: list[str] = field(default_factory=list)  # base folders missing on this machine

    def manifests(self) -> dict[str, dict[str, Any]]:
        """File name -> document: only objects, so the folder they go to applies as it is."""
        return {"local-music.yaml": self.local_music}

    def carried_over(self) -> list[ReportItem]:
        return [item for item in self.report if item.status is ItemStatus.MIGRATED]

    def not_carried_over(self) -> list[ReportItem]:
        return [item for item in self.report if item.status is not ItemStatus.MIGRATED]


def config_candidates(env: Mapping[str, str] | None = None, home: Path | None = None) -> list[Path]:
    """Where go-musicfox keeps its ini, in the order it looks: ``$MUSICFOX_ROOT``, the XDG
    config folder (its current layout), then the folders of older versions."""
    env = os.environ if env is None else env
    home = Path.home() if home is None else home
    found: list[Path] = []
    if env.get("MUSICFOX_ROOT"):
        found.append(Path(env["MUSICFOX_ROOT"]).expanduser() / CONFIG_NAME)
    config_home = Path(env.get("XDG_CONFIG_HOME") or home / ".config").expanduser()
    found += [config_home / "go-musicfox" / CONFIG_NAME, home / ".config" / "musicfox" / CONFIG_NAME,
              home / ".go-musicfox" / CONFIG_NAME]
    return list(dict.fromkeys(found))


def find_config(candidates: list[Path]) -> Path:
    for path in candidates:
        if path.is_file():
            return path
    raise NotFoundError(f"no go-musicfox configuration found; looked for {', '.join(map(str, candidates))}; "
                        "pass --config PATH")


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


def migrate_go_musicfox(path: Path, base: dict[str, Any]) -> MigrationResult:
    """Read the ini at ``path`` and rewrite ``base`` (a local-music PluginManifest) with its
    download folder; the player settings and the report come with it."""
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
            if where == ("autoplay", "playMode"):
                report.append(_play_mode_item(value, mode))
            elif where == ("main", "downloadDir"):
                report.append(ReportItem(section, key, value, ItemStatus.MIGRATED,
                                         f"a music folder of local-music: {download_dir}"))
            elif where in _NO_EQUIVALENT:
                report.append(ReportItem(section, key, value, ItemStatus.UNSUPPORTED, _NO_EQUIVALENT[where]))
            elif section in ("startup", "progress", "global_hotkey") or (section == "main" and key in _UI_KEYS):
                report.append(ReportItem(section, key, value, ItemStatus.IGNORED,
                                         "appearance of go-musicfox's terminal UI"))
            else:
                report.append(ReportItem(section, key, value, ItemStatus.UNSUPPORTED, "no equivalent in mfx"))

    local_music, left_out = rewrite_local_music(base, folders, path)
    return MigrationResult(source=path, local_music=local_music, player_config=player, report=report,
                           left_out_folders=left_out)


def _play_mode_item(value: str, mode: PlayMode | None) -> ReportItem:
    if mode is not None:
        return ReportItem("autoplay", "playMode", value, ItemStatus.MIGRATED, f"player.yaml defaultMode: {mode.value}")
    if value.lower() == "last":
        return ReportItem("autoplay", "playMode", value, ItemStatus.MIGRATED,
                          "mfx keeps the last mode by itself (player.json)")
    return ReportItem("autoplay", "playMode", value, ItemStatus.UNSUPPORTED,
                      f"no equivalent of {value!r}; choose one of {', '.join(m.value for m in PlayMode)} with `mfx mode`")


def rewrite_local_music(base: dict[str, Any], folders: list[str], source: Path) -> tuple[dict[str, Any], list[str]]:
    """``base`` with ``folders`` added to its music folders and allowed paths; everything else
    (dependencies, configSchema, limits) kept. Folders of ``base`` that do not exist here (the
    first-party manifest's ``$MFX_HOME/music`` before ``make run`` fills it) are left out and returned, so the manifest
    never points the plugin at a folder it cannot read."""
    if base.get("kind") != "PluginManifest" or not isinstance(base.get("spec"), dict):
        raise BadRequestError("the manifest to rewrite is not a PluginManifest with a spec")
    doc = copy.deepcopy(base)
    doc.pop("status", None)
    metadata = doc.get("metadata") or {}
    # Only what a user writes: server-set fields (uid, resourceVersion, ...) would not apply.
    doc["metadata"] = {k: metadata[k] for k in ("name", "labels", "annotations") if metadata.get(k)}
    doc["metadata"].setdefault("name", "local-music")
    doc["metadata"].setdefault("annotations", {})[MIGRATED_FROM] = str(source)
    spec = doc["spec"]
    config = spec.setdefault("config", {})
    old = [f for f in config.get("folders") or [] if isinstance(f, str)]
    # As local-music reads them: $MFX_HOME (the default folder) and ~ expanded.
    left_out = [f for f in old if f not in folders and not Path(os.path.expandvars(f)).expanduser().is_dir()]
    config["folders"] = [f for f in old if f not in left_out and f not in folders] + folders
    security = spec.setdefault("security", {})
    allowed = [a for a in security.get("allowedPaths") or []
               if not (isinstance(a, dict) and (a.get("path") in left_out or a.get("path") in folders))]
    security["allowedPaths"] = allowed + [{"path": f, "writable": False} for f in folders]
    return doc, left_out


_UI_KEYS = {"showTitle", "loadingText", "primaryColor", "notifyIcon", "notifyAlbumCover", "showNotify",
            "pprofPort", "altScreen", "enableMouseEvent", "doubleColumn", "dynamicMenuRows",
            "showAllSongsOfPlaylist", "downloadLyricDir", "downloadFileNameTpl"}
