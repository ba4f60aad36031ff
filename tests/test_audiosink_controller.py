"""The AudioSink controller through a real daemon, a real SQLite store, the real CLI and real
ALSA (a file-tap configuration, no sound card) in the audio engine process: Ready with the
parameters the device accepted, bit-exact audio played through the engine, drain and close on
delete, clear reasons for specs a device cannot take, reconfiguration, and the default sink.

Every wait follows the store's watch (or the engine's reports); the timeouts only stop a
broken build from hanging.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
import soundfile as sf

from mfx.api.objects import Obj, now_rfc3339
from mfx.audio import SampleFormat, float_to_pcm
from mfx.engine.api import AudioEngine, PluginLoad, PluginRole, SinkReport, TrackRequest
from mfx.engine.sink_registry import SinkRegistry
from mfx.errors import NotFoundError
from mfx.server.services import default_services
from reconciler import get_condition
from tests.audio_env import TAP_CONFIG, TapDevice, tone
from tests.daemon_harness import REPO, ThreadDaemon, run_cli

WAIT = 30.0  # seconds; a safety net, never reached when things work

# The tap configuration plus a device that refuses the usual rate.
EXTRA_PCMS = 'pcm.rate44k { type linear  slave { pcm "null"  format S16_LE  rate 44100 } }\n'


# --- the daemon, wired as `mfx serve` wires it ----------------------------------------------------


@pytest.fixture
def tap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TapDevice:
    config = tmp_path / "asound-tap.conf"
    config.write_text(TAP_CONFIG + EXTRA_PCMS)
    device = TapDevice(config=config, file=tmp_path / "tap.raw")
    for key, value in device.env.items():
        monkeypatch.setenv(key, value)
    return device


@contextmanager
def serving(home: Path, **config: object) -> Iterator[tuple[ThreadDaemon, SinkRegistry]]:
    """A real daemon with the services of `mfx serve`; yields it and its sink registry."""
    with ThreadDaemon(home, services=default_services(), **config).running() as running:
        assert running.context is not None and running.context.sink_registry is not None
        yield running, running.context.sink_registry


@pytest.fixture
def daemon(mfx_home: Path, tap: TapDevice) -> Iterator[tuple[ThreadDaemon, SinkRegistry]]:
    with serving(mfx_home) as pair:
        yield pair


def sink_manifest(name: str, **spec: Any) -> str:
    lines = "\n".join(f"  {key}: {value}" for key, value in spec.items()) or "  device: default"
    return textwrap.dedent(f"""\
        apiVersion: mfx.musicfox.io/v1alpha1
        kind: AudioSink
        metadata:
          name: {name}
        spec:
        """) + lines + "\n"


def apply(daemon: ThreadDaemon, tmp_path: Path, text: str) -> None:
    path = tmp_path / f"manifest-{abs(hash(text))}.yaml"
    path.write_text(text)
    result = run_cli(daemon.config.home, "apply", "-f", str(path))
    assert result.exit_code == 0, result.output


def wait_sink(daemon: ThreadDaemon, name: str, pred: Callable[[Obj | None], bool],
              kind: str = "AudioSink") -> Obj | None:
    """Until ``pred`` holds for the stored object (None once it is gone), following the watch."""
    assert daemon.context is not None
    store = daemon.context.store

    async def waiter() -> Obj | None:
        with anyio.fail_after(WAIT):
            rv = await store.current_resource_version()
            try:
                obj: Obj | None = await store.get(kind, name)
            except NotFoundError:
                obj = None
            if pred(obj):
                return obj
            async with store.watch(kind, rv) as stream:
                async for event in stream:
                    if event.object["metadata"]["name"] != name:
                        continue
                    obj = None if event.type == "DELETED" else event.object
                    if pred(obj):
                        return obj
        raise AssertionError("unreachable")

    return daemon.call(waiter)  # type: ignore[no-any-return]


def cond(obj: Obj | None, type_: str) -> dict[str, Any]:
    assert obj is not None
    found = get_condition(obj, type_)
    return found or {}


def has(type_: str, status: str, reason: str | None = None, generation: int | None = None
        ) -> Callable[[Obj | None], bool]:
    def check(obj: Obj | None) -> bool:
        if obj is None:
            return False
        c = get_condition(obj, type_)
        if c is None or c.get("status") != status or (reason is not None and c.get("reason") != reason):
            return False
        return generation is None or obj.get("status", {}).get("observedGeneration") == generation
    return check


def gone(obj: Obj | None) -> bool:
    return obj is None


def nonzero_frames(frames: np.ndarray) -> np.ndarray:
    return frames[np.any(frames != 0, axis=1)]


def engine_of(running: ThreadDaemon) -> AudioEngine:
    assert running.context is not None and running.context.audio_engine is not None
    return running.context.audio_engine


CODEC = PluginLoad(name="codec-soundfile", role=PluginRole.CODEC, directory=str(REPO / "plugins" / "codec-soundfile"),
                   entry_point="python:codec_soundfile.plugin:SoundfileCodec", config={}, generation=1)


def play_file(running: ThreadDaemon, path: Path, sink: str) -> None:
    """Play ``path`` through the engine on ``sink``, the way the player does, to its end."""
    engine = engine_of(running)

    async def play() -> None:
        with anyio.fail_after(WAIT):
            assert (await engine.load_plugins([CODEC]))["codec-soundfile"] is None
            events = engine.events()
            await engine.open_track(TrackRequest(label="tone", path=str(path), codec="codec-soundfile"))
            await engine.play("tone", sink=sink)
            async for event in events:
                if type(event).__name__ == "PlaybackIdle":
                    return
    running.call(play)


def sink_report(running: ThreadDaemon, name: str) -> SinkReport:
    return running.call(engine_of(running).sink_report, name)  # type: ignore[no-any-return]


# --- tests -----------------------------------------------------------------------------------------


def test_applied_sink_is_ready_plays_bit_exact_and_drains_on_delete(
        daemon: tuple[ThreadDaemon, SinkRegistry], tap: TapDevice, tmp_path: Path) -> None:
    running, sinks = daemon
    apply(running, tmp_path, sink_manifest("speakers", device="default", rate=48000, channels=2,
                                           format="S16_LE", periodFrames=512, bufferPeriods=4))
    obj = wait_sink(running, "speakers", has("Ready", "True"))
    assert obj is not None
    status = obj["status"]
    assert status["actual"] == {"rate": 48000, "channels": 2, "format": "S16_LE", "periodFrames": 512,
                                "bufferFrames": 2048}
    assert cond(obj, "DeviceOpen")["status"] == "True"
    assert status["latencySeconds"] == pytest.approx(2048 / 48000, abs=1e-6)
    assert status["xruns"] == 0
    assert cond(obj, "Default")["reason"] == "OnlySink", "the only sink is the default one"
    assert get_condition(obj, "Reconciling") is None and get_condition(obj, "Stalled") is None

    # The player's way in: the default sink, and a file the engine decodes and plays on it.
    default = sinks.default()
    assert default is not None and default.name == "speakers"
    audio = float_to_pcm(tone(1000, 1.5, rate=48000), SampleFormat.S16_LE)
    wav = tmp_path / "tone.wav"
    sf.write(wav, audio, 48000, subtype="PCM_16")
    play_file(running, wav, "speakers")
    assert running.context is not None
    assert running.context.metrics.registry.get_sample_value("mfx_audio_sink_ready", {"sink": "speakers"}) == 1
    before_delete = sink_report(running, "speakers")

    result = run_cli(running.config.home, "delete", "audiosink", "speakers")
    assert result.exit_code == 0, result.output
    wait_sink(running, "speakers", gone)
    assert sinks.get("speakers") is None and sinks.default() is None
    with pytest.raises(NotFoundError):
        sink_report(running, "speakers")

    played = tap.read(SampleFormat.S16_LE, 2)
    assert np.array_equal(nonzero_frames(played), audio), "every frame played arrived, in order, unchanged"
    assert before_delete.xruns == 0 and before_delete.paced, "the file tap is paced by the engine"
    samples = running.context.metrics.registry.get_sample_value
    assert samples("mfx_audio_sink_ready", {"sink": "speakers"}) is None, "series removed on delete"
    assert samples("mfx_audio_sink_frames_written_total", {"sink": "speakers"}) is None


def test_specs_a_device_cannot_take_stall_with_a_clear_reason_until_fixed(
        daemon: tuple[ThreadDaemon, SinkRegistry], tmp_path: Path) -> None:
    running, sinks = daemon
    apply(running, tmp_path, "---\n".join([
        sink_manifest("missing", device="nosuch"),
        sink_manifest("floaty", device="s16only", format="FLOAT_LE"),
        sink_manifest("slow", device="rate44k", rate=48000),
    ]))
    missing = wait_sink(running, "missing", has("Stalled", "True"))
    ready = cond(missing, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "DeviceNotFound")
    assert "'nosuch'" in ready["message"] and "spec.device" in ready["message"]
    assert "Traceback" not in ready["message"]
    assert cond(missing, "DeviceOpen")["reason"] == "DeviceNotFound"

    floaty = wait_sink(running, "floaty", has("Stalled", "True"))
    ready = cond(floaty, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "UnsupportedFormat")
    assert "'s16only'" in ready["message"]
    assert "asked rate=48000 format=FLOAT_LE" in ready["message"] and "offered" in ready["message"]

    slow = wait_sink(running, "slow", has("Stalled", "True"))
    ready = cond(slow, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "UnsupportedFormat")
    assert "'rate44k'" in ready["message"] and "asked rate=48000" in ready["message"]
    assert sinks.names() == [], "nothing that failed is offered to the player"

    # Fixing the spec ends the stall.
    apply(running, tmp_path, sink_manifest("missing", device="null"))
    fixed = wait_sink(running, "missing", has("Ready", "True", generation=2))
    assert get_condition(fixed, "Stalled") is None
    assert sinks.names() == ["missing"]


def test_spec_change_reopens_the_device_with_the_new_parameters(
        daemon: tuple[ThreadDaemon, SinkRegistry], tmp_path: Path) -> None:
    running, sinks = daemon
    apply(running, tmp_path, sink_manifest("out", device="null", rate=48000, periodFrames=1024))
    wait_sink(running, "out", has("Ready", "True", generation=1))
    assert sinks.get("out") is not None
    pid = engine_of(running).info.pid

    apply(running, tmp_path, sink_manifest("out", device="null", rate=44100, format="S32_LE", periodFrames=256))
    obj = wait_sink(running, "out", has("Ready", "True", generation=2))
    assert obj is not None
    assert obj["status"]["actual"] == {"rate": 44100, "channels": 2, "format": "S32_LE", "periodFrames": 256,
                                       "bufferFrames": 1024}
    report = sink_report(running, "out")
    assert report.actual is not None and report.actual.rate == 44100 and report.actual.format is SampleFormat.S32_LE
    assert report.reopens == 0 and engine_of(running).info.pid == pid, "the same engine, the sink reopened"


def test_default_sink_is_the_marked_one_and_the_oldest_wins_a_conflict(
        daemon: tuple[ThreadDaemon, SinkRegistry], tmp_path: Path) -> None:
    running, sinks = daemon
    apply(running, tmp_path, sink_manifest("zeta", device="null", default="true"))
    zeta = wait_sink(running, "zeta", has("Ready", "True"))
    assert cond(zeta, "Default")["status"] == "True"
    created = zeta["metadata"]["creationTimestamp"] if zeta else ""
    while now_rfc3339() == created:  # creation times have one-second resolution
        anyio.run(anyio.sleep, 0.05)

    apply(running, tmp_path, sink_manifest("alpha", device="null", default="true") + "---\n"
          + sink_manifest("plain", device="null"))
    alpha = wait_sink(running, "alpha", has("Default", "False", "DefaultConflict"))
    assert "'zeta'" in cond(alpha, "Default")["message"] and "older" in cond(alpha, "Default")["message"]
    assert cond(alpha, "Ready")["status"] == "True" or wait_sink(running, "alpha", has("Ready", "True"))
    plain = wait_sink(running, "plain", has("Default", "False", "NotDefault"))
    assert "'zeta'" in cond(plain, "Default")["message"]
    output = sinks.default()
    assert output is not None and output.name == "zeta"

    assert run_cli(running.config.home, "delete", "audiosink", "zeta").exit_code == 0
    wait_sink(running, "alpha", has("Default", "True", "DefaultSink"))
    assert sinks.default_name == "alpha"
    output = sinks.default()
    assert output is not None and output.name == "alpha"
