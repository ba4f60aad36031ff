"""The player through the ``mfx`` CLI against a real daemon with the real plugins.

local-music (configured with a library generated at test time), codec-soundfile, and a
second MusicSource written here that hangs on every search, to show that one stuck source
never holds up a search. Audio goes to an ALSA file tap. Waits are on player state.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mfx.api.music import PlayerStatus
from tests.audio_env import TapDevice
from tests.music_fixtures import TRACKS, build_library, write_song
from tests.player_env import PlayerRig, start_rig, tap_env

__all__ = ["tap_env"]

HUNG_SOURCE = '''
import threading
from mfx.sdk import serve
from mfx.sdk.music import MusicSource

class Hung(MusicSource):
    release = threading.Event()

    def search(self, query, type="song", limit=30, offset=0):
        self.release.wait(20)  # far past the player's search deadline
        return {"songs": []}

    def playlist_detail(self, id): raise KeyError(id)
    def song_detail(self, id): raise KeyError(id)
    def song_url(self, id, quality="standard"): raise KeyError(id)
    def lyrics(self, id): return None

    def stop(self):
        self.release.set()

serve(Hung())
'''


def hung_plugin(root: Path) -> dict[str, object]:
    folder = root / "hung-source"
    folder.mkdir(parents=True)
    (folder / "hung.py").write_text(HUNG_SOURCE)
    return {
        "apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest",
        "metadata": {"name": "hung-source"},
        "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python hung.py", "interfaces": ["MusicSource"],
                 "priority": 10, "resources": {"limits": {"timeout": "30s"}}},
    }


@pytest.fixture
def rig(tmp_path: Path, tap_env: TapDevice) -> Iterator[PlayerRig]:
    plugins = tmp_path / "extra-plugins"
    manifest = hung_plugin(plugins)
    library = build_library(tmp_path / "music")
    write_song(library.root, dataclasses.replace(TRACKS[0], seconds=6.0))  # long enough for its lyrics
    yield from start_rig(tmp_path, tap_env, extra_manifests=[manifest], plugin_paths=[plugins],
                         library=library, player_yaml="searchTimeout: 0.5\n")


def ok(rig: PlayerRig, *args: str) -> str:
    result = rig.cli(*args)
    assert result.exit_code == 0, f"mfx {' '.join(args)}: {result.output}"
    return result.output


def ok_json(rig: PlayerRig, *args: str) -> dict[str, object]:
    result = rig.cli(*args, "-o", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_search_ranks_and_a_hung_source_does_not_block(rig: PlayerRig) -> None:
    text = ok(rig, "search", "Café Del Mar")
    rows = [line for line in text.splitlines()[1:] if line.strip()]
    assert "Café Del Mar" in rows[0]  # the exact title first, then the rest of the album
    assert "hung-source did not answer in time" in text
    data = ok_json(rig, "search", "mar")
    assert data["answered"] == ["local-music"] and data["timedOut"] == ["hung-source"]
    assert len(data["songs"]) >= 3
    timeouts = rig.daemon.context.metrics.player_source_timeouts_total.labels("hung-source")._value.get()
    assert timeouts == 2
    only_local = ok_json(rig, "search", "beyoncé", "--type", "artist", "--source", "local-music")
    assert only_local["timedOut"] == [] and only_local["artists"][0]["name"] == "Beyoncé"
    assert "Evening" in ok(rig, "search", "evening", "--type", "playlist", "--source", "local-music")


def test_queue_play_modes_volume_and_lyrics_from_the_cli(rig: PlayerRig) -> None:
    ok(rig, "queue", "add", "Olas", "--source", "local-music")
    listing = ok(rig, "queue")
    assert listing.count("Olas") == 3
    ok(rig, "queue", "add", "Café Del Mar", "--first", "--source", "local-music")
    ok(rig, "queue", "mv", "3", "0")
    ok(rig, "queue", "rm", "3")
    titles = [s.title for s in rig.player.state().queue]
    assert titles[0] == "Café Del Mar" and len(titles) == 3
    assert "volume: 70" in ok(rig, "volume", "70")
    assert "muted" in ok(rig, "mute")
    assert "unmuted" in ok(rig, "mute", "--off")
    assert "mode: in-order" in ok(rig, "mode", "in-order")
    ok(rig, "play", "-i", "0")
    rig.wait(lambda v: v.tracks_started == 3 and v.status is PlayerStatus.STOPPED)
    # The .lrc of Café Del Mar, read at a position.
    ok(rig, "queue", "clear")
    ok(rig, "play", "Café Del Mar", "--source", "local-music")
    started = rig.wait(lambda v: v.status is PlayerStatus.STOPPED and v.tracks_started == 4)
    assert started.current is not None and started.current.title == "Café Del Mar"
    ok(rig, "seek", "0:01.6")
    lyrics = ok(rig, "lyrics")
    assert "> [0:01] First line" in lyrics and "  [0:00] Intro" in lyrics
    now = ok(rig, "now")
    assert "Café Del Mar - Energy 52" in now and "0:01/0:06" in now and "♪ First line" in now
    ok(rig, "play")  # no argument: on from 1.6 s to the end
    rig.wait(lambda v: v.status is PlayerStatus.STOPPED and v.tracks_started == 5)
    bad = rig.cli("seek", "soon")
    assert bad.exit_code == 1 and "expected seconds or M:SS" in bad.output
    assert "mode: shuffle" in ok(rig, "mode", "shuffle")
    ok(rig, "stop")
    assert "queue cleared" in ok(rig, "queue", "clear")


def test_play_a_playlist_by_name(rig: PlayerRig) -> None:
    out = ok(rig, "play", "--playlist", "Evening", "--source", "local-music")
    assert "Café Del Mar" in out
    view = rig.wait(lambda v: v.status is PlayerStatus.STOPPED and v.tracks_started == 2)
    assert [s.title for s in view.queue] == ["Café Del Mar", "Naughty Girl"]
    missing = rig.cli("play", "--playlist", "Nope", "--source", "local-music")
    assert missing.exit_code == 1 and "no playlist named 'Nope'" in missing.output
