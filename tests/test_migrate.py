"""``mfx migrate go-musicfox``: a go-musicfox.ini becomes a local-music manifest that
validates, a player.yaml the player accepts, and a report of what has no equivalent."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from mfx.api.schema import load_schemas
from mfx.cli.main import build_cli
from mfx.cli.manifests import collect_sources, load_and_validate
from mfx.music.migrate import ItemStatus, migrate_go_musicfox
from mfx.music.player import PlayerConfig

INI = """# go-musicfox settings
[startup]
show=true
signIn=false

[main]
showTitle=true
songLevel=higher
primaryColor="#ea403f"
showLyric=true
lyricOffset=200
showLyricTrans=true
downloadDir=download
cacheDir=

[autoplay]
autoPlay=true
autoPlayList=dailyReco
offset=0
playMode=random

[player]
engine=beep
maxPlayErrCount=3

[unm]
switch=true
sources=kuwo
"""


def write_ini(root: Path, text: str = INI) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "go-musicfox.ini"
    path.write_text(text, encoding="utf-8")
    return path


def test_settings_become_manifests_and_a_report(tmp_path: Path) -> None:
    result = migrate_go_musicfox(write_ini(tmp_path / ".go-musicfox"))
    spec = result.local_music["spec"]
    assert spec["config"]["folders"] == [str(tmp_path / ".go-musicfox" / "download")]
    assert result.player_config == {"defaultMode": "shuffle"}
    assert PlayerConfig.from_mapping(result.player_config).default_mode.value == "shuffle"
    by_key = {(i.section, i.key): i for i in result.report}
    assert by_key[("unm", "switch")].status is ItemStatus.UNSUPPORTED
    assert by_key[("main", "lyricOffset")].status is ItemStatus.UNSUPPORTED
    assert by_key[("player", "engine")].status is ItemStatus.MIGRATED
    assert by_key[("main", "primaryColor")].status is ItemStatus.IGNORED
    assert by_key[("main", "primaryColor")].value == "#ea403f"


def test_the_cli_writes_files_that_validate(tmp_path: Path) -> None:
    ini = write_ini(tmp_path / "fox", INI.replace("downloadDir=download", f"downloadDir={tmp_path / 'songs'}")
                    .replace("playMode=random", "playMode=last"))
    out = tmp_path / "out"
    result = CliRunner().invoke(build_cli(), ["migrate", "go-musicfox", "--config", str(ini), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "unsupported: [unm] switch = 'true'" in result.output
    manifests = load_and_validate(collect_sources((str(out / "local-music.yaml"),), recursive=False), load_schemas())
    assert manifests[0].obj["spec"]["config"]["folders"] == [str(tmp_path / "songs")]
    assert yaml.safe_load((out / "player.yaml").read_text()) == {}  # "last": the player keeps its mode


def test_a_missing_or_broken_file_is_named(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(build_cli(), ["migrate", "go-musicfox", "--config", str(tmp_path / "none.ini")])
    assert missing.exit_code == 1 and "none.ini: no go-musicfox configuration here" in missing.output
    broken = write_ini(tmp_path / "b", "key-before-any-section=1\n")
    result = runner.invoke(build_cli(), ["migrate", "go-musicfox", "--config", str(broken)])
    assert result.exit_code == 1 and f"{broken}: not a valid INI file" in result.output
