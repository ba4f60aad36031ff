"""local-music plays ``$MFX_HOME/music`` until told otherwise: the daemon passes its home to
plugins, and a folder may name environment variables (an unset one is a config error)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from mfx.errors import InvalidConfigError
from mfx.runtimes.base import LoadRequest, PluginType
from mfx.runtimes.process import build_environment

REPO = Path(__file__).resolve().parents[1]
PLUGIN_DIR = REPO / "plugins" / "local-music"
if str(PLUGIN_DIR) not in sys.path:
    sys.path.insert(0, str(PLUGIN_DIR))

from local_music.library import LibraryConfig  # noqa: E402


def _shipped_config() -> dict:
    return yaml.safe_load((PLUGIN_DIR / "plugin.yaml").read_text())["spec"]["config"]


def test_the_shipped_default_is_the_music_folder_of_the_daemons_home(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MFX_HOME", str(tmp_path / "home"))
    config = LibraryConfig.from_mapping(_shipped_config(), cwd=tmp_path)
    assert config.folders == (str(tmp_path / "home" / "music"),)


def test_braced_variables_and_the_home_are_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SONGS", str(tmp_path / "songs"))
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    config = LibraryConfig.from_mapping({"folders": ["${SONGS}/new", "~/Music"]}, cwd=tmp_path)
    assert config.folders == (str(tmp_path / "songs" / "new"), str(tmp_path / "me" / "Music"))


def test_an_unset_variable_is_a_config_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_FOLDER_VAR", raising=False)
    with pytest.raises(InvalidConfigError, match=r"config\.folders\[1\].*\$NO_SUCH_FOLDER_VAR.*not set"):
        LibraryConfig.from_mapping({"folders": [str(tmp_path), "$NO_SUCH_FOLDER_VAR/music"]}, cwd=tmp_path)


def test_plugins_get_the_daemons_home(tmp_path: Path) -> None:
    request = LoadRequest(name="local-music", version="1.0.0", type=PluginType.RPC, entry_point="python -m x",
                          plugin_dir=tmp_path / "plugin", state_dir=tmp_path / "state")
    env = build_environment(request, tmp_path / "sock", parent={"PATH": "/usr/bin", "MFX_HOME": "/srv/mfx"})
    assert env["MFX_HOME"] == "/srv/mfx"
