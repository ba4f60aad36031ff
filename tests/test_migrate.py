"""``mfx migrate go-musicfox``: a go-musicfox.ini (found where go-musicfox keeps it now, or
where it kept it before) becomes a rewritten local-music manifest that a real daemon accepts
as it is, player settings merged into the daemon's player.yaml, and a report that lists every
setting that did not carry over."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result

from mfx.music.migrate import ItemStatus, migrate_go_musicfox
from mfx.music.player import PlayerConfig
from mfx.server.services import controllers_service
from tests.daemon_harness import REPO, ThreadDaemon, run_cli

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


def first_party() -> dict[str, Any]:
    return yaml.safe_load((REPO / "plugins" / "local-music" / "plugin.yaml").read_text())  # type: ignore[no-any-return]


def deps(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    return [(d["name"], d["version"]) for d in manifest["spec"]["dependencies"]]


def migrate(home: Path, *args: str) -> Result:
    return run_cli(home, "migrate", "go-musicfox", *args)


def test_settings_become_manifests_and_a_report(tmp_path: Path) -> None:
    result = migrate_go_musicfox(write_ini(tmp_path / ".go-musicfox"), first_party())
    spec = result.local_music["spec"]
    assert spec["config"]["folders"] == [str(tmp_path / ".go-musicfox" / "download")]
    assert result.player_config == {"defaultMode": "shuffle"}
    assert PlayerConfig.from_mapping(result.player_config).default_mode.value == "shuffle"
    by_key = {(i.section, i.key): i for i in result.report}
    assert by_key[("unm", "switch")].status is ItemStatus.UNSUPPORTED
    assert by_key[("main", "lyricOffset")].status is ItemStatus.UNSUPPORTED
    assert by_key[("main", "primaryColor")].status is ItemStatus.IGNORED
    assert by_key[("main", "primaryColor")].value == "#ea403f"


def test_the_report_lists_every_setting_and_only_what_carried_over_as_such(tmp_path: Path) -> None:
    result = migrate_go_musicfox(write_ini(tmp_path / ".go-musicfox"), first_party())
    keys = [(i.section, i.key) for i in result.report]
    in_ini = [(s, k) for s, body in _sections(INI) for k in body]
    assert sorted(keys) == sorted(in_ini), "each setting once, none dropped silently"
    assert {(i.section, i.key) for i in result.carried_over()} == {("main", "downloadDir"), ("autoplay", "playMode")}
    not_carried = {(i.section, i.key): i.note for i in result.not_carried_over()}
    # Nothing is written for these, so they are not called migrated.
    assert "AudioSink" in not_carried[("player", "engine")]
    assert ("main", "showLyric") in not_carried and ("player", "maxPlayErrCount") in not_carried


def _sections(text: str) -> list[tuple[str, list[str]]]:
    found: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("["):
            found.append((line.strip("[]"), []))
        elif "=" in line and found:
            found[-1][1].append(line.split("=", 1)[0])
    return found


def test_the_current_location_is_read_before_the_old_ones(tmp_path: Path, mfx_home: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "user"
    monkeypatch.setenv("HOME", str(user))
    monkeypatch.delenv("MUSICFOX_ROOT", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    missing = migrate(mfx_home, "-o", str(tmp_path / "none"))
    assert missing.exit_code == 1
    for place in (".config/go-musicfox/go-musicfox.ini", ".go-musicfox/go-musicfox.ini"):
        assert str(user / place) in missing.output
    write_ini(user / ".go-musicfox", INI.replace("playMode=random", "playMode=order"))
    old = migrate(mfx_home, "-o", str(tmp_path / "old"))
    assert old.exit_code == 0, old.output
    assert f"read {user / '.go-musicfox' / 'go-musicfox.ini'}" in old.output
    write_ini(user / ".config" / "go-musicfox")
    current = migrate(mfx_home, "-o", str(tmp_path / "current"))
    assert current.exit_code == 0, current.output
    assert f"read {user / '.config' / 'go-musicfox' / 'go-musicfox.ini'}" in current.output
    assert yaml.safe_load((mfx_home / "player.yaml").read_text()) == {"defaultMode": "shuffle"}


def test_the_output_applies_as_it_is_and_keeps_the_manifest(tmp_path: Path, mfx_home: Path) -> None:
    songs = tmp_path / "songs"
    ini = write_ini(tmp_path / "fox", INI.replace("downloadDir=download", f"downloadDir={songs}"))
    (mfx_home / "player.yaml").write_text("defaultVolume: 80\n")
    with ThreadDaemon(mfx_home, services=[controllers_service], plugin_paths=[REPO / "plugins"]).running():
        out = tmp_path / "out"
        result = migrate(mfx_home, "--config", str(ini), "-o", str(out))
        assert result.exit_code == 0, result.output
        assert "not carried over (" in result.output and "[unm] switch = 'true'" in result.output
        assert "left out music folder $MFX_HOME/music" in result.output  # the first-party default, empty here
        assert sorted(p.name for p in out.iterdir()) == ["local-music.yaml"]
        applied = run_cli(mfx_home, "apply", "-f", str(out))
        assert applied.exit_code == 0, applied.output
        obj = json.loads(run_cli(mfx_home, "get", "pm", "local-music", "-o", "json").stdout)
        base = first_party()["spec"]
        assert deps(obj) == deps({"spec": base})
        assert obj["spec"]["configSchema"] == base["configSchema"]
        assert obj["spec"]["config"]["folders"] == [str(songs)]
        assert obj["spec"]["security"]["allowedPaths"] == [{"path": str(songs), "writable": False}]
        # The player settings went to the daemon's player.yaml, beside what it held.
        assert yaml.safe_load((mfx_home / "player.yaml").read_text()) == {"defaultVolume": 80,
                                                                            "defaultMode": "shuffle"}

        # Again, now that the daemon runs local-music with a folder of its own: that folder stays.
        mine = tmp_path / "mine"
        mine.mkdir()
        patch = json.dumps({"spec": {"config": {"folders": [str(mine)]},
                                     "security": {"allowedPaths": [{"path": str(mine)}]}}})
        assert run_cli(mfx_home, "patch", "pm", "local-music", "-p", patch).exit_code == 0
        again = migrate(mfx_home, "--config", str(ini), "-o", str(out))
        assert again.exit_code == 0 and "rewritten from the daemon's pm/local-music" in again.output
        applied = run_cli(mfx_home, "apply", "-f", str(out))
        assert applied.exit_code == 0, applied.output
        obj = json.loads(run_cli(mfx_home, "get", "pm", "local-music", "-o", "json").stdout)
        assert obj["spec"]["config"]["folders"] == [str(mine), str(songs)]
        assert deps(obj) == deps({"spec": base})


def test_a_missing_or_broken_file_is_named(tmp_path: Path, mfx_home: Path) -> None:
    missing = migrate(mfx_home, "--config", str(tmp_path / "none.ini"))
    assert missing.exit_code == 1 and "none.ini: no go-musicfox configuration here" in missing.output
    broken = write_ini(tmp_path / "b", "key-before-any-section=1\n")
    result = migrate(mfx_home, "--config", str(broken))
    assert result.exit_code == 1 and f"{broken}: not a valid INI file" in result.output
