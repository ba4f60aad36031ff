"""The AudioSink controller on a device that runs in real time (a private PulseAudio null
sink), through a real daemon: a starved writer is an xrun in the object's status and the
stream recovers; losing the sound server is ``Ready=False``/``DeviceLost`` and getting it
back is ``Ready`` again with frames flowing; and a busy control plane causes no underrun.

Waits follow the store's watch or the engine's own counters; the timeouts only stop a
broken build from hanging.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest

from mfx.api.music import PlayerStatus
from mfx.api.objects import Obj
from mfx.audio import SinkEngine, float_to_pcm
from mfx.audio.registry import SinkRegistry
from mfx.errors import AudioError
from mfx.music.player import PlayerView
from mfx.server.services import default_services
from tests.audio_env import PrivatePulse, pulse, tone
from tests.daemon_harness import REPO, ThreadDaemon, run_cli
from tests.music_fixtures import Track, write_song
from tests.player_env import write_manifests
from tests.test_audiosink_controller import WAIT, apply, has, serving, sink_manifest, wait_sink

__all__ = ["pulse"]  # the fixture, imported for pytest

pytestmark = pytest.mark.integration
RATE = 48000


class Player:
    """What the player does with the default sink: keep its ring fed with a tone, taking the
    sink (and its ring) from the registry again whenever it changes."""

    def __init__(self, sinks: SinkRegistry) -> None:
        self.sinks = sinks
        self.written = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-player", daemon=True)

    def _run(self) -> None:
        block = tone(440, 0.05, rate=RATE, amplitude=0.3)
        while not self._stop.is_set():
            output = self.sinks.wait_for_default(timeout=0.1)
            if output is None:
                continue
            try:
                ring = output.ring
            except AudioError:  # being reopened with new parameters
                continue
            self.written += ring.write(float_to_pcm(block, output.params.format), timeout=0.1)

    def __enter__(self) -> Player:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def flowing(engine: SinkEngine, seconds: float = 0.2) -> None:
    """Wait until the device has taken ``seconds`` more audio than now."""
    start = engine.status().frames_written
    assert engine.wait_until(lambda s: s.frames_written >= start + int(seconds * RATE), timeout=WAIT), \
        f"frames stopped flowing: {engine.status()}"


def xruns_at_least(n: int) -> Callable[[Obj | None], bool]:
    return lambda obj: obj is not None and int(obj.get("status", {}).get("xruns", 0)) >= n


@pytest.fixture
def daemon(mfx_home: Path, pulse: PrivatePulse) -> Iterator[tuple[ThreadDaemon, SinkRegistry]]:
    with serving(mfx_home) as pair:
        yield pair


def start_speakers(running: ThreadDaemon, sinks: SinkRegistry, tmp_path: Path, periods: int = 4) -> SinkEngine:
    apply(running, tmp_path, sink_manifest("speakers", device="default", rate=RATE, periodFrames=1024,
                                           bufferPeriods=periods))
    wait_sink(running, "speakers", has("Ready", "True"))
    engine = sinks.get("speakers")
    assert isinstance(engine, SinkEngine)
    return engine


def test_a_starved_writer_is_an_xrun_in_status_and_the_stream_recovers(
        daemon: tuple[ThreadDaemon, SinkRegistry], tmp_path: Path) -> None:
    running, sinks = daemon
    engine = start_speakers(running, sinks, tmp_path)
    with Player(sinks):
        flowing(engine)
        assert engine.status().xruns == 0
        engine.stall_for(0.5)
        obj = wait_sink(running, "speakers", xruns_at_least(1))
        assert obj is not None
        flowing(engine)
        assert engine.status().state.value == "Open"
    obj = wait_sink(running, "speakers", has("Ready", "True"))
    assert obj is not None and obj["status"]["xruns"] >= 1
    assert running.context is not None
    xruns = running.context.metrics.registry.get_sample_value("mfx_audio_sink_xruns_total", {"sink": "speakers"})
    assert xruns is not None and xruns >= 1


def test_losing_the_sound_server_is_device_lost_and_its_return_is_ready(
        daemon: tuple[ThreadDaemon, SinkRegistry], pulse: PrivatePulse, tmp_path: Path) -> None:
    running, sinks = daemon
    engine = start_speakers(running, sinks, tmp_path)
    with Player(sinks):
        flowing(engine)
        pulse.kill()
        lost = wait_sink(running, "speakers", has("Ready", "False", "DeviceLost"))
        assert lost is not None
        assert [c for c in lost["status"]["conditions"] if c["type"] == "DeviceOpen"][0]["status"] == "False"
        assert running.context is not None
        ready = running.context.metrics.registry.get_sample_value("mfx_audio_sink_ready", {"sink": "speakers"})
        assert ready == 0

        pulse.start()
        back = wait_sink(running, "speakers", has("Ready", "True"))
        assert back is not None
        flowing(engine, 0.5)
        assert engine.status().reopens >= 1
        assert sinks.default() is engine, "the player kept the same sink throughout"


# --- a busy control plane --------------------------------------------------------------------------

# Running plugins, each reconfigured again and again. With 1000 of them starting and being
# probed, the writer thread (which shares the daemon's interpreter) still underruns a few times
# a minute on a busy 2-core machine: playback outside the daemon's process is the cure for that.
OBJECTS = 200
PLAY_SECONDS = 60.0
TRACK_SECONDS = 70.0  # longer than the measured minute: the measurement ends inside the track
BUFFER_PERIODS = 8
TRACK_TITLE = "Soak Tone"

# A client in its own process, as `mfx apply` would be: creates OBJECTS in-process Python
# plugins (copies of hello-python, which the controller really starts, probes and
# reconfigures), prints "created", then changes their config round after round until stdin
# closes, and prints how many updates it made. Every update is a config the controller applies
# to a running plugin.
CHURN = """
import sys, threading
from pathlib import Path
from mfx.api.kinds import PLUGIN_MANIFEST
from mfx.cli.client import Client, Endpoint

socket, count = Path(sys.argv[1]), int(sys.argv[2])
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()

def manifest(i):
    return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest",
            "metadata": {"name": f"churn-{i:04d}"},
            "spec": {"version": "0.1.0", "type": "dynamic_library",
                     "entryPoint": "python:hello_python.plugin:HelloPlugin",
                     "config": {"greeting": "Hello 0"},
                     "configSchema": {"type": "object", "properties": {"greeting": {"type": "string"}}}}}

updates = 0
with Client(Endpoint(socket=socket)) as client:
    for i in range(count):
        client.create(manifest(i), PLUGIN_MANIFEST)
    print("created", flush=True)
    round_ = 0
    while not stop.is_set():
        round_ += 1
        for i in range(0, count, 7):
            if stop.is_set():
                break
            name = f"churn-{(i + round_) % count:04d}"
            client.patch(PLUGIN_MANIFEST, name, {"spec": {"config": {"greeting": f"Hello {round_}"}}})
            updates += 1
print("updates", updates, flush=True)
"""


@pytest.fixture
def music(tmp_path: Path) -> Path:
    root = tmp_path / "music"
    write_song(root, Track(path="Soak/Soak Tone.flac", title=TRACK_TITLE, artists=("mfx",),
                           album="Soak", seconds=TRACK_SECONDS, frequency=440.0))
    return root


@pytest.fixture
def player_daemon(mfx_home: Path, pulse: PrivatePulse, music: Path,
                  tmp_path: Path) -> Iterator[tuple[ThreadDaemon, SinkRegistry]]:
    """`mfx serve` with the player and the music plugins, the library holding one long track,
    and a plugin path where each churned plugin finds its files (hello-python's)."""
    churn_plugins = tmp_path / "churn-plugins"
    churn_plugins.mkdir()
    for i in range(OBJECTS):
        (churn_plugins / f"churn-{i:04d}").symlink_to(REPO / "plugins" / "hello-python")
    paths = [REPO / "plugins", churn_plugins]
    # The daemon this test hosts plays real-time audio as `mfx serve` does, so it freezes its
    # start-up objects as `mfx serve` does (undone when it stops).
    with ThreadDaemon(mfx_home, services=default_services(), plugin_paths=paths,
                      freeze_startup_objects=True).running() as running:
        assert running.context is not None and running.context.sink_registry is not None
        manifests = write_manifests(tmp_path / "manifests", music)
        result = run_cli(mfx_home, "apply", "-f", str(manifests))
        assert result.exit_code == 0, result.output
        result = run_cli(mfx_home, "wait", "--for=condition=Ready", "pm", "--all", "--timeout=90s")
        assert result.exit_code == 0, result.output
        yield running, running.context.sink_registry


def player_state(running: ThreadDaemon, predicate: Callable[[PlayerView], bool]) -> PlayerView:
    async def wait() -> PlayerView:
        with anyio.fail_after(WAIT):
            return await running.context.player.wait_for(predicate)  # type: ignore[union-attr]
    return running.call(wait)  # type: ignore[no-any-return]


@pytest.mark.soak
def test_a_minute_of_music_plays_without_a_gap_while_the_control_plane_churns(
        player_daemon: tuple[ThreadDaemon, SinkRegistry], tmp_path: Path) -> None:
    running, sinks = player_daemon
    # 8 x 21.3 ms of device buffer: the cores are shared with the churning client and
    # PulseAudio; the writer's own work per period stays far below a period (bench_audiosink).
    engine = start_speakers(running, sinks, tmp_path, periods=BUFFER_PERIODS)
    churn = subprocess.Popen([sys.executable, "-c", CHURN, str(running.socket), str(OBJECTS)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert churn.stdout is not None and churn.stdin is not None
        assert churn.stdout.readline().strip() == "created"
        played = run_cli(running.config.home, "play", TRACK_TITLE)
        assert played.exit_code == 0, played.output
        player_state(running, lambda v: v.status == PlayerStatus.PLAYING and v.current is not None
                     and v.current.title == TRACK_TITLE)
        flowing(engine, 1.0)  # past the first fill of the device buffer
        started = engine.status()
        # The length of the run is the point of this test: a minute of the track under churn.
        assert engine.wait_until(
            lambda s: s.frames_written - started.frames_written >= PLAY_SECONDS * RATE or churn.poll() is not None,
            timeout=PLAY_SECONDS * 3), "audio stopped flowing"
        final = engine.status()
        assert churn.poll() is None, "the churning client stopped early"
        view = running.context.player.state()  # type: ignore[union-attr]
        churn.stdin.close()
        output = churn.stdout.read()
    finally:
        if churn.poll() is None:
            churn.kill()
        churn.wait()
    updates = int(output.split()[-1])
    assert updates > OBJECTS, "the control plane was busy for the whole run"
    # Still inside the same track: every frame measured is the track's, none is padding.
    assert view.status == PlayerStatus.PLAYING and view.current is not None and view.current.title == TRACK_TITLE
    assert view.position_seconds >= PLAY_SECONDS, view
    assert final.frames_written - started.frames_written >= PLAY_SECONDS * RATE
    assert final.silence_frames - started.silence_frames == 0, \
        f"the writer padded the track with silence (the player fell behind): {final}"
    assert final.xruns - started.xruns == 0, f"underruns while the control plane was busy: {final}"
    assert final.write_errors == started.write_errors
    obj = wait_sink(running, "speakers", has("Ready", "True"))
    assert obj is not None and obj["status"]["xruns"] == 0
    assert running.context is not None
    registry = running.context.metrics.registry
    applied = registry.get_sample_value("mfx_reconcile_total", {"controller": "pluginmanifest", "result": "success"})
    assert applied is not None and applied >= OBJECTS, "the reconciler worked through the churn"
    ready = run_cli(running.config.home, "get", "pm", "-o", "name")
    assert ready.output.count("churn-") == OBJECTS
