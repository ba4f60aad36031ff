"""A real daemon with the real music plugins and the player, playing into an ALSA file tap.

``player_daemon`` starts ``mfx serve`` in a thread with the controllers and the player
services and ``--plugin-path <repo>/plugins``, writes the test library (``music_fixtures``),
applies local-music (configured with that folder) and codec-soundfile with ``mfx apply``,
waits for them to be Ready and for the library's scan. The player plays through the
daemon's audio engine process to an AudioSink ``tap`` on the file tap (unpaced unless the
test asks for pacing).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from mfx.api.music import Song
from mfx.engine.api import AudioEngine, SinkReport
from mfx.music.player import Player, PlayerView
from mfx.server.player_api import make_player_service
from mfx.server.services import controllers_service
from tests.audio_env import TapDevice, use_tap
from tests.daemon_harness import REPO, ThreadDaemon, run_cli
from tests.music_fixtures import LibraryLayout, build_library

RATE = 44100


def local_music_manifest(folder: Path, *, name: str = "local-music") -> dict[str, Any]:
    doc = yaml.safe_load((REPO / "plugins" / "local-music" / "plugin.yaml").read_text())
    doc["metadata"]["name"] = name
    doc["spec"]["config"] = {"folders": [str(folder)], "watch": False}
    doc["spec"]["security"] = {"allowedPaths": [{"path": str(folder), "writable": False}]}
    return doc


def tap_sink_manifest(*, pacing: str = "none", name: str = "tap", device: str = "default",
                      rate: int = RATE) -> dict[str, Any]:
    return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "AudioSink", "metadata": {"name": name},
            "spec": {"device": device, "rate": rate, "channels": 2, "format": "S16_LE",
                     "periodFrames": 1024, "bufferPeriods": 4, "default": True, "pacing": pacing}}


def write_manifests(directory: Path, music: Path, *, sink: dict[str, Any] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "local-music.yaml").write_text(yaml.safe_dump(local_music_manifest(music)))
    codec = (REPO / "plugins" / "codec-soundfile" / "plugin.yaml").read_text()
    (directory / "codec.yaml").write_text(codec)
    if sink is not None:
        (directory / "sink.yaml").write_text(yaml.safe_dump(sink))
    return directory


@dataclass
class PlayerRig:
    home: Path
    daemon: ThreadDaemon
    library: LibraryLayout
    tap: TapDevice

    @property
    def player(self) -> Player:
        return self.daemon.context.player  # type: ignore[attr-defined,union-attr]

    @property
    def engine(self) -> AudioEngine:
        engine = self.daemon.context.audio_engine  # type: ignore[union-attr]
        assert engine is not None
        return engine

    def sink_report(self, name: str = "tap") -> SinkReport:
        return self.daemon.call(self.engine.sink_report, name)  # type: ignore[no-any-return]

    def close_sink(self, name: str = "tap") -> None:
        """Delete the AudioSink and wait until it is gone: the engine drains the device, so
        everything played is in the tap file."""
        result = self.cli("delete", "sink", name)
        assert result.exit_code == 0, result.output

    def cli(self, *args: str) -> Any:
        return run_cli(self.home, *args)

    def call(self, fn: Any, *args: Any) -> Any:
        return self.daemon.call(fn, *args)

    def wait(self, predicate: Callable[[PlayerView], bool], timeout: float = 30.0) -> PlayerView:
        async def waiter() -> PlayerView:
            with anyio.fail_after(timeout):
                return await self.player.wait_for(predicate)
        return self.daemon.call(waiter)  # type: ignore[no-any-return]

    def rescan(self) -> None:
        async def rescan() -> None:
            for provider in self.player.sources():
                if provider.name == "local-music":
                    await provider.instance.call("rescan", None)
        self.daemon.call(rescan)

    def songs(self, query: str) -> list[Song]:
        async def search() -> list[Song]:
            return (await self.player.search(query)).songs
        return self.daemon.call(search)  # type: ignore[no-any-return]


@pytest.fixture
def tap_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TapDevice:
    return use_tap(tmp_path, monkeypatch)


def start_rig(tmp_path: Path, tap: TapDevice, *, extra_manifests: list[dict[str, Any]] | None = None,
              library: LibraryLayout | None = None, player_yaml: str | None = None,
              plugin_paths: list[Path] | None = None, pacing: str = "none",
              device: str = "default", rate: int = RATE,
              extra_listeners: list[Any] | None = None) -> Iterator[PlayerRig]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    if player_yaml is not None:
        (home / "player.yaml").write_text(textwrap.dedent(player_yaml))
    layout = library or build_library(tmp_path / "music")
    manifests = write_manifests(tmp_path / "manifests", layout.root, sink=tap_sink_manifest(pacing=pacing, device=device, rate=rate))
    for index, doc in enumerate(extra_manifests or []):
        (manifests / f"extra-{index}.yaml").write_text(yaml.safe_dump(doc))
    daemon = ThreadDaemon(home, services=[controllers_service, make_player_service()],
                          plugin_paths=[REPO / "plugins", *(plugin_paths or [])],
                          extra_listeners=extra_listeners or [])
    with daemon.running():
        rig = PlayerRig(home, daemon, layout, tap)
        result = rig.cli("apply", "-f", str(manifests))
        assert result.exit_code == 0, result.output
        for kind in ("pm", "sink"):
            result = rig.cli("wait", "--for=condition=Ready", kind, "--all", "--timeout=60s")
            assert result.exit_code == 0, result.output
        rig.rescan()
        yield rig
