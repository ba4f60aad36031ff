"""The player commands a new user types, through the real ``mfx`` CLI against a real daemon
with the real plugins (local-music over a generated library, codec-soundfile, and a
MusicSource that hangs on every call) playing into an ALSA file tap.

Searching when no source answers is an error that says why; the library and the playlists
can be listed; volume and seek take relative steps (``+10``, ``-5``); ``mfx volume`` and
``mfx mode`` show the value now; playing without a usable AudioSink names the sink and its
reason. Waits are on player state, the object cache or the CLI's own ``mfx wait``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest
import yaml

from mfx.api.music import PlayerStatus
from mfx.api.objects import condition
from mfx.errors import BadRequestError
from mfx.music.player import PlayerView
from mfx.server.player_api import make_player_service
from mfx.server.services import controllers_service
from mfx.store.cache import Snapshot
from tests.audio_env import TapDevice
from tests.daemon_harness import REPO, ThreadDaemon, run_cli
from tests.music_fixtures import TRACKS, build_library, write_song
from tests.player_env import PlayerRig, start_rig, tap_env, write_manifests
from tests.test_player_cli import hung_plugin

__all__ = ["tap_env"]

WAIT = 30.0  # seconds; a safety net, never reached when things work
# The song the seeks move in: long enough to be still playing when a loaded machine gets to
# the pause. (A song the engine has played out while the daemon has not yet taken in its end
# leaves the engine nothing to seek in: "no track is playing".)
SONG_SECONDS = 20.0


@pytest.fixture
def rig(tmp_path: Path, tap_env: TapDevice) -> Iterator[PlayerRig]:
    plugins = tmp_path / "extra-plugins"
    library = build_library(tmp_path / "music")
    write_song(library.root, dataclasses.replace(TRACKS[0], seconds=SONG_SECONDS))
    yield from start_rig(tmp_path, tap_env, extra_manifests=[hung_plugin(plugins)], plugin_paths=[plugins],
                         library=library, player_yaml="searchTimeout: 0.5\n")


def ok(rig: PlayerRig, *args: str) -> str:
    result = rig.cli(*args)
    assert result.exit_code == 0, f"mfx {' '.join(args)}: {result.output}"
    return result.output


def fails(rig: PlayerRig, *args: str) -> str:
    result = rig.cli(*args)
    assert result.exit_code != 0, f"mfx {' '.join(args)} should fail: {result.output}"
    return result.output


# --- search -------------------------------------------------------------------------------------


def test_a_search_no_source_answered_is_an_error_that_names_the_sources(rig: PlayerRig) -> None:
    out = fails(rig, "search", "mar", "--source", "hung-source")
    assert "No results" not in out
    assert "no MusicSource answered: hung-source did not answer within 0.5s" in out
    assert "mfx describe pm hung-source" in out and "searchTimeout" in out
    # `mfx play QUERY` says the same instead of "no song matches".
    out = fails(rig, "play", "mar", "--source", "hung-source")
    assert "no MusicSource answered" in out and "no song matches" not in out
    # One source answering is enough: a search that finds nothing is not an error.
    out = ok(rig, "search", "zzzz-nothing-like-this")
    assert "No songs match 'zzzz-nothing-like-this' in local-music" in out


def test_a_search_with_no_ready_source_says_what_to_apply(rig: PlayerRig) -> None:
    ok(rig, "delete", "pm", "local-music", "hung-source")
    ok(rig, "wait", "--for=delete", "pm/local-music", "pm/hung-source", "--timeout=60s")
    out = fails(rig, "search", "mar")
    assert "no MusicSource is Ready" in out and "mfx apply -f plugins/local-music/plugin.yaml" in out
    assert "No results" not in out


def test_an_empty_search_or_page_is_refused_with_what_to_use(rig: PlayerRig) -> None:
    out = fails(rig, "search", "")
    assert "the query is empty" in out and "mfx library" in out
    assert "No songs" not in out

    async def search(limit: int, offset: int) -> None:
        await rig.player.search("mar", limit=limit, offset=offset)

    with pytest.raises(BadRequestError, match="limit: expected at least 1"):
        rig.call(search, 0, 0)
    with pytest.raises(BadRequestError, match="offset: expected 0 or more"):
        rig.call(search, 5, -1)


# --- library and playlists ------------------------------------------------------------------------


def test_the_library_and_the_playlists_are_listed(rig: PlayerRig) -> None:
    playlists = ok(rig, "playlists")
    assert "Evening" in playlists and "Mañana Mix" in playlists
    # A source that cannot list its catalogue is reported; the others still answer.
    assert "source hung-source failed:" in playlists and "browse is not supported" in playlists
    artists = ok(rig, "library", "--artists")
    assert "Beyoncé" in artists and "Energy 52" in artists
    assert "Café Del Mar" in ok(rig, "library", "--albums", "--source", "local-music")
    songs = ok(rig, "library", "--source", "local-music")
    assert "Café Del Mar" in songs and "Naughty Girl" in songs
    page = ok(rig, "library", "--songs", "--limit", "1", "--source", "local-music")
    assert "1-1 of" in page and "--offset 1" in page
    listing = json.loads(rig.cli("library", "--playlists", "-o", "json").stdout)
    assert listing["answered"] == ["local-music"] and list(listing["failed"]) == ["hung-source"]
    assert {p["name"] for p in listing["playlists"]} == {"Evening", "Mañana Mix"}


def test_an_unknown_playlist_names_the_playlists_there_are(rig: PlayerRig) -> None:
    out = fails(rig, "play", "--playlist", "Nope")
    assert "no playlist named 'Nope'" in out and "'Evening'" in out and "'Mañana Mix'" in out
    assert "mfx playlists" in out


def test_a_playlist_named_by_null_is_refused_not_looked_up_as_none(rig: PlayerRig) -> None:
    import httpx

    transport = httpx.HTTPTransport(uds=str(rig.home / "mfx.sock"))
    with httpx.Client(transport=transport, base_url="http://mfx") as http:
        for body in ({"playlist": None}, {"playlist": ""}, {"playlist": ["Evening"]},
                     {"playlist": "Evening", "source": 7}):
            answer = http.post("/apis/player.mfx.musicfox.io/v1/play", json=body)
            assert answer.status_code == 400, (body, answer.text)
            assert "expected a non-empty string" in answer.json()["message"]


# --- volume, seek, mode ---------------------------------------------------------------------------


def test_volume_takes_steps_and_shows_itself(rig: PlayerRig) -> None:
    assert "volume: 50" in ok(rig, "volume", "50")
    assert "volume: 60" in ok(rig, "volume", "+10")
    assert "volume: 55" in ok(rig, "volume", "-5")
    assert "volume: 50" in ok(rig, "volume", "--", "-5")
    assert "volume: 50" in ok(rig, "volume")
    assert "volume: 100" in ok(rig, "volume", "+80")  # kept within 0..100
    assert "volume: 0" in ok(rig, "volume", "-200")
    assert rig.player.state().volume == 0
    assert "expected 0-100" in fails(rig, "volume", "101")
    assert "expected 0-100, +STEP or -STEP" in fails(rig, "volume", "loud")


def test_seek_takes_steps_from_the_position_now(rig: PlayerRig) -> None:
    ok(rig, "play", "Café Del Mar", "--source", "local-music")
    rig.wait(lambda v: v.status is PlayerStatus.PLAYING and v.tracks_started == 1)
    ok(rig, "pause")  # a paused position stays put, so each step is exact

    def position() -> float:
        return rig.player.state().position_seconds

    ok(rig, "seek", "0:02")
    assert position() == 2.0
    ok(rig, "seek", "+1.5")
    assert position() == 3.5
    ok(rig, "seek", "-1")
    assert position() == 2.5
    ok(rig, "seek", "--", "-5")
    assert position() == 0.0  # not before the start
    ok(rig, "seek", "+2:00")
    assert position() == SONG_SECONDS  # nor past the end
    assert "expected seconds or M:SS" in fails(rig, "seek", "+soon")
    assert "go up to 59" in fails(rig, "seek", "1:99")
    assert position() == SONG_SECONDS


def test_mode_without_an_argument_shows_the_mode(rig: PlayerRig) -> None:
    assert "mode: in-order" in ok(rig, "mode")
    ok(rig, "mode", "shuffle")
    assert "mode: shuffle" in ok(rig, "mode")


# --- the sink -------------------------------------------------------------------------------------


@pytest.fixture
def daemon(tmp_path: Path, tap_env: TapDevice) -> Iterator[ThreadDaemon]:
    """A daemon whose player plays to the AudioSink controller's default sink, as in `mfx serve`."""
    home = tmp_path / "home"
    home.mkdir()
    library = build_library(tmp_path / "music")
    write_song(library.root, dataclasses.replace(TRACKS[0], seconds=30.0))  # still playing when the sink goes
    manifests = write_manifests(tmp_path / "manifests", library.root)
    running = ThreadDaemon(home, services=[controllers_service, make_player_service()],
                           plugin_paths=[REPO / "plugins"])
    with running.running():
        result = run_cli(home, "apply", "-f", str(manifests))
        assert result.exit_code == 0, result.output
        result = run_cli(home, "wait", "--for=condition=Ready", "pm", "--all", "--timeout=60s")
        assert result.exit_code == 0, result.output
        rescan(running)
        yield running


def rescan(daemon: ThreadDaemon) -> None:
    """Until local-music has indexed the library (its first scan runs in the background)."""
    assert daemon.context is not None and daemon.context.player is not None

    async def scan() -> None:
        for provider in daemon.context.player.sources():  # type: ignore[union-attr]
            if provider.name == "local-music":
                await provider.instance.call("rescan", None)

    daemon.call(scan)


def sink_file(tmp_path: Path, device: str) -> Path:
    path = tmp_path / f"sink-{device}.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "AudioSink",
                                    "metadata": {"name": "speakers"}, "spec": {"device": device}}))
    return path


def wait_player(daemon: ThreadDaemon, predicate: Callable[[PlayerView], bool]) -> PlayerView:
    assert daemon.context is not None and daemon.context.player is not None
    player = daemon.context.player

    async def waiter() -> PlayerView:
        with anyio.fail_after(WAIT):
            return await player.wait_for(predicate)  # type: ignore[no-any-return]

    return daemon.call(waiter)  # type: ignore[no-any-return]


def wait_cache(daemon: ThreadDaemon, predicate: Callable[[Snapshot], bool]) -> None:
    assert daemon.context is not None
    cache = daemon.context.cache

    async def waiter() -> None:
        with anyio.fail_after(WAIT):
            await cache.wait_for(predicate)

    daemon.call(waiter)


def test_play_without_a_usable_sink_names_the_sink_and_why(daemon: ThreadDaemon, tmp_path: Path) -> None:
    home = daemon.config.home
    out = run_cli(home, "play", "Café Del Mar")
    assert out.exit_code != 0 and "no AudioSink is applied" in out.output

    assert run_cli(home, "apply", "-f", str(sink_file(tmp_path, "nosuch"))).exit_code == 0

    def stalled(snapshot: Snapshot) -> bool:
        obj = snapshot.get("AudioSink", {}).get("speakers")
        ready = condition(obj, "Ready") if obj is not None else None
        return ready is not None and ready.get("reason") == "DeviceNotFound"

    wait_cache(daemon, stalled)
    out = run_cli(home, "play", "Café Del Mar")
    assert out.exit_code != 0
    assert "AudioSink speakers is not Ready: DeviceNotFound" in out.output and "'nosuch'" in out.output
    assert "mfx describe sink speakers" in out.output
    assert "apply an AudioSink" not in out.output


def test_deleting_the_sink_while_playing_pauses_and_says_why(daemon: ThreadDaemon, tmp_path: Path) -> None:
    home = daemon.config.home
    sink = sink_file(tmp_path, "tap")
    assert run_cli(home, "apply", "-f", str(sink)).exit_code == 0
    assert run_cli(home, "wait", "--for=condition=Ready", "audiosink/speakers", "--timeout=30s").exit_code == 0
    assert run_cli(home, "play", "Café Del Mar").exit_code == 0
    wait_player(daemon, lambda v: v.status is PlayerStatus.PLAYING and v.tracks_started == 1)

    assert run_cli(home, "delete", "audiosink", "speakers").exit_code == 0
    paused = wait_player(daemon, lambda v: v.status is PlayerStatus.PAUSED)
    assert paused.last_error is not None and paused.last_error.reason == "NoSink"
    assert not paused.last_error.skipped and paused.current is not None and paused.current.title == "Café Del Mar"
    now = run_cli(home, "now").output
    assert "paused" in now and "paused on Café Del Mar: NoSink: no AudioSink is applied" in now
    refused = run_cli(home, "play")
    assert refused.exit_code != 0 and "no AudioSink is applied" in refused.output

    # With a sink again, `mfx play` goes on with the same song from where it paused.
    assert run_cli(home, "apply", "-f", str(sink)).exit_code == 0
    assert run_cli(home, "wait", "--for=condition=Ready", "audiosink/speakers", "--timeout=30s").exit_code == 0
    resumed = run_cli(home, "play")
    assert resumed.exit_code == 0, resumed.output
    playing = wait_player(daemon, lambda v: v.status is PlayerStatus.PLAYING and v.tracks_started == 2)
    assert playing.current is not None and playing.current.title == "Café Del Mar"
    assert playing.position_seconds >= paused.position_seconds


def test_the_state_watch_sends_the_state_now_then_each_change(rig: PlayerRig) -> None:
    from mfx.cli.client import Client, Endpoint

    with Client(Endpoint.from_env(home=rig.home)) as client:
        lines = client.stream_lines("/apis/player.mfx.musicfox.io/v1/state", params={"watch": "true"})
        first = next(lines)
        assert first["type"] == "STATE"
        assert first["object"]["version"] == rig.player.state().version
        ok(rig, "volume", "37")
        volumes = []
        for event in lines:  # every change arrives, in order, without asking again
            volumes.append(event["object"]["volume"])
            if volumes[-1] == 37:
                break
        assert volumes[-1] == 37
        assert event["object"]["version"] > first["object"]["version"]
