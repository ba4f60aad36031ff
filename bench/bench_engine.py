"""The audio engine process: writer timing under a busy control plane, control latency, CPU.

1. Writer deadline misses and worst lateness (as a share of one 1024-frame period at 48 kHz,
   21.3 ms) on a real-time device (a private PulseAudio null sink, default 4-period buffer)
   while a real daemon plays a song through its engine: control plane idle (the baseline),
   then a client process applying and updating 1000 objects, then five 500 ms stalls of the
   daemon's event loop with the GIL held. Target: 0 misses, worst lateness < 50 % of a period.
2. `play` (from idle) -> first sample at the device, and `pause` -> silence at the device,
   p50/p99 over 20 tries on the engine-paced null device, against one period. "At the device" is the
   engine's own account: the frame its paced device has played, stamped with the monotonic
   clock; silence comes once the device has played out what it held when the pause cut the
   stream (the engine reports that length).
3. Engine CPU per second of audio (the engine process's utime+stime while it plays a FLAC on
   the paced null device) against ``soundfile`` decoding the same file alone, per second of
   audio. Target: ratio <= 1.5.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import soundfile as sf

from bench.common import Figure, percentile

RATE = 48000
PERIOD = 1024
PHASE_SECONDS = 8.0
STALLS = 5
REPO = Path(__file__).resolve().parents[1]


def _write_flac(path: Path, seconds: float, rate: int) -> None:
    from tests.music_fixtures import Track, tag

    t = np.arange(int(seconds * rate), dtype=np.float32) / rate
    mono = (0.2 * np.sin(2 * np.pi * 330.0 * t)).astype(np.float32)
    noise = 0.01 * np.random.default_rng(3).standard_normal(len(t)).astype(np.float32)
    sf.write(path, np.stack([mono + noise, mono - noise], axis=1), rate, subtype="PCM_16", format="FLAC")
    tag(path, Track(path.name, path.stem, ("Bench",), "Bench", 1))


def _writer_timing(root: Path) -> list[Figure]:
    from tests.audio_env import PrivatePulse, TapDevice
    from tests.daemon_harness import mfx_command
    from tests.music_fixtures import LibraryLayout
    from tests.player_env import start_rig
    from tests.test_audio_engine_under_load import hold_the_gil, manifests

    pulse = PrivatePulse(root / "pa")
    pulse.start()
    saved = os.environ.get("ALSA_CONFIG_PATH")
    os.environ["ALSA_CONFIG_PATH"] = str(pulse.alsa_config())
    library = LibraryLayout(root=root / "music")
    library.root.mkdir(parents=True)
    _write_flac(library.root / "Bench Long.flac", 3 * PHASE_SECONDS + 20, RATE)
    (root / "rig").mkdir(parents=True)
    rigs = start_rig(root / "rig", TapDevice(pulse.alsa_config(), root / "unused.raw"), library=library,
                     pacing="auto", rate=RATE)
    try:
        rig = next(rigs)
        song = next(s for s in rig.songs("Bench Long") if s.title == "Bench Long")
        rig.call(rig.player.add, [song])
        rig.call(rig.player.play, 0)
        time.sleep(1.0)  # past the first fill of the device buffer
        phases: dict[str, tuple[int, float]] = {}
        start = rig.sink_report()

        def phase(name: str, load: Callable[[], None]) -> None:
            before = rig.sink_report()
            deadline = time.monotonic() + PHASE_SECONDS
            load()
            time.sleep(max(0.0, deadline - time.monotonic()))
            after = rig.sink_report()
            phases[name] = (after.deadline_misses - before.deadline_misses + after.xruns - before.xruns,
                            after.worst_lateness_seconds / after.period_seconds * 100)

        def churn() -> None:
            for generation in (1, 2):
                subprocess.run([*mfx_command(), "--home", str(rig.home), "apply", "-f",
                                str(manifests(root / "load", generation))], capture_output=True, check=True)

        def stalls() -> None:
            for _ in range(STALLS):
                rig.call(hold_the_gil, 0.5)

        phase("idle", lambda: None)
        phase("churning", churn)
        phase("500 ms GIL stalls", stalls)
        end = rig.sink_report()
    finally:
        rigs.close()
        pulse.stop()
        if saved is None:
            os.environ.pop("ALSA_CONFIG_PATH", None)
        else:
            os.environ["ALSA_CONFIG_PATH"] = saved
    idle_misses, idle_late = phases["idle"]
    figures = []
    for name in ("churning", "500 ms GIL stalls"):
        misses, late = phases[name]
        figures.append(Figure(f"engine writer deadline misses + xruns, {name}", misses, "misses",
                              "control plane idle", idle_misses, "0"))
        figures.append(Figure(f"engine writer worst lateness so far, {name}", late, "% of a period",
                              "control plane idle", idle_late, "< 50 %"))
    figures.append(Figure("xruns over the whole run (default 4 x 1024 buffer, 85 ms)", end.xruns - start.xruns,
                          "xruns", target="0"))
    return figures


async def _with_engine(home: Path, body: Callable[[Any], Any]) -> Any:
    from mfx.engine.supervisor import EngineSupervisor

    async with EngineSupervisor(home) as supervisor:
        try:
            return await body(supervisor.client)
        finally:
            await supervisor.stop(keep_running=False)


def _codec() -> Any:
    from mfx.engine.api import PluginLoad, PluginRole

    return PluginLoad(name="codec-soundfile", role=PluginRole.CODEC, directory=str(REPO / "plugins" / "codec-soundfile"),
                      entry_point="python:codec_soundfile.plugin:SoundfileCodec", config={}, generation=1)


def _control_latency(root: Path, song: Path) -> list[Figure]:
    from mfx.audio.alsa_device import DeviceParams
    from mfx.engine.api import Pacing, PlaybackState, SinkConfig, TrackRequest

    period = PERIOD / RATE
    starts: list[float] = []
    silences: list[float] = []

    async def body(engine: Any) -> None:
        await engine.configure_sink(SinkConfig("null", DeviceParams(device="null", rate=RATE), Pacing.AUTO, True))
        await engine.load_plugins([_codec()])
        for i in range(20):
            await engine.open_track(TrackRequest(label=f"t{i}", path=str(song), codec="codec-soundfile"))
            asked = time.monotonic()
            await engine.play(f"t{i}")
            while True:
                report = await engine.playback()
                if report.label == f"t{i}" and report.frame > 0:
                    # The first frame played at report.at - frame/rate on the engine's clock.
                    starts.append(report.at - report.frame / report.rate - asked)
                    break
                await anyio.sleep(0.001)
            await anyio.sleep(0.2)
            asked = time.monotonic()
            report = await engine.pause()
            answered = time.monotonic()
            held = (await engine.sink_report("null")).latency_seconds  # what the device still plays
            assert report.state is PlaybackState.PAUSED
            silences.append(answered - asked + held)
            await engine.stop()
            await anyio.sleep(0.3)  # the device plays out what it held: the next play starts from idle

    anyio.run(_with_engine, root / "home-latency", body)
    return [
        Figure("play (idle) -> first sample at the device, p50", percentile(starts, 50) * 1000, "ms",
               "one period", period * 1000, "about a period"),
        Figure("play (idle) -> first sample at the device, p99", percentile(starts, 99) * 1000, "ms",
               "one period", period * 1000),
        Figure("pause -> silence at the device, p50", percentile(silences, 50) * 1000, "ms",
               "one period", period * 1000, "<= the device buffer (4 periods)"),
        Figure("pause -> silence at the device, p99", percentile(silences, 99) * 1000, "ms",
               "one period", period * 1000),
    ]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _engine_cpu(root: Path, song: Path, seconds: float) -> list[Figure]:
    from mfx.audio.alsa_device import DeviceParams
    from mfx.engine.api import Pacing, PlaybackIdle, SinkConfig, TrackRequest

    used: list[float] = []

    async def body(engine: Any) -> None:
        await engine.configure_sink(SinkConfig("null", DeviceParams(device="null", rate=44100), Pacing.AUTO, True))
        await engine.load_plugins([_codec()])
        events = engine.events()
        await engine.open_track(TrackRequest(label="cpu", path=str(song), codec="codec-soundfile"))
        before = _cpu_seconds(engine.info.pid)
        await engine.play("cpu")
        async for event in events:
            if isinstance(event, PlaybackIdle):
                break
        used.append(_cpu_seconds(engine.info.pid) - before)

    anyio.run(_with_engine, root / "home-cpu", body)
    started = time.process_time()
    for _ in range(3):
        sf.read(str(song), dtype="float32")
    decode = (time.process_time() - started) / 3
    return [Figure("engine CPU per second of audio (FLAC 44.1 kHz, paced null device)", used[0] / seconds * 1000,
                   "ms/s", "soundfile decode alone", decode / seconds * 1000, "ratio <= 1.5")]


def run() -> list[Figure]:
    from tests.audio_env import write_tap_config

    root = Path(tempfile.mkdtemp(prefix="mfx-bench-engine-", dir="/tmp"))
    saved = {k: os.environ.get(k) for k in ("ALSA_CONFIG_PATH", "ALSA_TAP_FILE")}
    figures: list[Figure] = []
    try:
        if shutil.which("pulseaudio"):
            figures += _writer_timing(root / "timing")
        os.environ.update(write_tap_config(root).env)  # defines the null device
        short = root / "short.flac"
        _write_flac(short, 2.0, RATE)
        figures += _control_latency(root, short)
        cpu_song = root / "cpu.flac"
        _write_flac(cpu_song, 20.0, 44100)
        figures += _engine_cpu(root, cpu_song, 20.0)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(root, ignore_errors=True)
    return figures


if __name__ == "__main__":
    for figure in run():
        print(figure.line())
    sys.exit(0)
