"""Card-free ALSA environments for audio tests.

- ``alsa_tap``: an ALSA configuration whose ``default`` PCM is a file tap (``type file`` over
  ``type null``): every sample played lands, unpaced, in a raw file of its own per test.
- ``pulse``: a private PulseAudio daemon with a null sink (paced in real time), reached from
  ALSA through the ``pulse`` plugin; it can be killed and restarted to lose the device.

libasound reads ``ALSA_CONFIG_PATH`` again on every PCM open (it compares the file list and
modification times with its cache; verified here, no ``snd_config_update_free_global``
needed), and ``ALSA_TAP_FILE`` at open too, so tests share one process and each sets its
own environment with ``monkeypatch`` before it opens a device.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from mfx.audio.alsa_device import AlsaDevice, DeviceParams, PcmDevice
from mfx.audio.formats import SampleFormat, pcm_from_bytes

TAP_CONFIG = """\
pcm.null { type null  hint { show on description "Discard all samples" } }
pcm.tap {
    type file
    slave.pcm "null"
    file { @func getenv  vars [ ALSA_TAP_FILE ]  default "/tmp/alsa-tap.raw" }
    format "raw"
    hint { show on description "Raw samples to $ALSA_TAP_FILE" }
}
# A device that only takes 16-bit integers: asked for FLOAT_LE it offers S8 instead.
pcm.s16only { type linear  slave { pcm "null"  format S16_LE } }
pcm.!default "tap"
ctl.!default { type hw card 0 }
"""


@dataclass
class TapDevice:
    config: Path
    file: Path

    @property
    def env(self) -> dict[str, str]:
        return {"ALSA_CONFIG_PATH": str(self.config), "ALSA_TAP_FILE": str(self.file)}

    def read(self, fmt: SampleFormat, channels: int) -> np.ndarray:
        """Everything played so far (read it after the device is drained or closed)."""
        return pcm_from_bytes(self.file.read_bytes(), fmt, channels)


def write_tap_config(directory: Path) -> TapDevice:
    config = directory / "asound-tap.conf"
    config.write_text(TAP_CONFIG)
    return TapDevice(config=config, file=directory / "tap.raw")


def use_tap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TapDevice:
    """Make the file tap this test's ALSA ``default``."""
    tap = write_tap_config(tmp_path)
    for key, value in tap.env.items():
        monkeypatch.setenv(key, value)
    return tap


@pytest.fixture
def alsa_tap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TapDevice:
    return use_tap(tmp_path, monkeypatch)


# --- PulseAudio -------------------------------------------------------------------------------


def _wait_until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout} s")
        time.sleep(0.02)


def _realtime_prefix() -> list[str]:
    """Run a helper (the keepalive stream) in the real-time class, if this user may."""
    if shutil.which("chrt") is None:
        return []
    probe = subprocess.run(["chrt", "--rr", "10", "true"], capture_output=True)
    return ["chrt", "--rr", "10"] if probe.returncode == 0 else []


def _make_realtime(pid: int) -> None:
    """Put a sound server's main thread in the real-time class. It stands in for a sound card,
    whose DMA no CPU load can delay: PulseAudio makes only its sink thread real-time, and its
    main thread, which moves every client's data to the sink, would otherwise compete with a
    test's CPU hogs, so the stand-in device would underrun where a card would not."""
    try:
        os.sched_setscheduler(pid, os.SCHED_RR, os.sched_param(10))
    except OSError:
        pass  # not permitted: the device stays as PulseAudio made it


@dataclass
class PrivatePulse:
    """A PulseAudio daemon with a 48 kHz stereo null sink, all state in ``root``."""

    root: Path
    rate: int = 48000
    server: subprocess.Popen[bytes] | None = None
    keepalive: subprocess.Popen[bytes] | None = None
    log: list[Path] = field(default_factory=list)

    @property
    def socket(self) -> Path:
        return self.root / "native"

    @property
    def address(self) -> str:
        return f"unix:{self.socket}"

    def alsa_config(self) -> Path:
        config = self.root / "asound-pulse.conf"
        config.write_text(
            "pcm.null { type null }\n"
            f'pcm.!default {{ type pulse  server "{self.address}" }}\n'
            f'ctl.!default {{ type pulse  server "{self.address}" }}\n')
        return config

    def _client_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PULSE_SERVER"] = self.address
        return env

    def start(self) -> None:
        for sub in ("home", "run", "state"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        script = self.root / "test.pa"
        script.write_text(
            f"load-module module-null-sink sink_name=testsink rate={self.rate} channels=2\n"
            f"load-module module-native-protocol-unix auth-anonymous=1 socket={self.socket}\n"
            "set-default-sink testsink\n")
        if self.socket.exists():  # left behind by a killed daemon
            self.socket.unlink()
        env = dict(os.environ)
        env.update(HOME=str(self.root / "home"), PULSE_RUNTIME_PATH=str(self.root / "run"),
                   PULSE_STATE_PATH=str(self.root / "state"), XDG_RUNTIME_DIR=str(self.root / "run"))
        log = self.root / f"pulse-{len(self.log)}.log"
        self.log.append(log)
        with log.open("wb") as out:
            self.server = subprocess.Popen(
                ["pulseaudio", "-n", "-F", str(script), "--daemonize=no", "--exit-idle-time=-1",
                 "--disable-shm=yes", "--use-pid-file=no", "--system=no", "--realtime=yes",
                 "--high-priority=yes", "--log-target=stderr"],
                env=env, stdout=out, stderr=subprocess.STDOUT)
        _wait_until(self._ready, 15, "PulseAudio start")
        _make_realtime(self.server.pid)
        # An idle null sink stalls the first blocking write for about a second; a running
        # stream keeps it awake.
        self.keepalive = subprocess.Popen(
            [*_realtime_prefix(), "pacat", "--playback", "--raw", "--format=s16le", "--channels=2", f"--rate={self.rate}",
             "--latency-msec=20", "/dev/zero"],
            env=self._client_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_until(self._keepalive_connected, 15, "keepalive stream")

    def _ready(self) -> bool:
        if self.server is not None and self.server.poll() is not None:
            raise RuntimeError(f"pulseaudio exited: {self.log[-1].read_text()[-2000:]}")
        return subprocess.run(["pactl", "info"], env=self._client_env(), capture_output=True).returncode == 0

    def _keepalive_connected(self) -> bool:
        result = subprocess.run(["pactl", "list", "short", "sink-inputs"], env=self._client_env(),
                                capture_output=True, text=True)
        return bool(result.stdout.strip())

    def kill(self) -> None:
        """Kill the daemon outright (SIGKILL), as a crashed sound server would go."""
        for proc in (self.server, self.keepalive):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
        self.server = self.keepalive = None

    def stop(self) -> None:
        self.kill()


@pytest.fixture
def pulse(monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivatePulse]:
    if shutil.which("pulseaudio") is None or shutil.which("pacat") is None:
        pytest.skip("needs pulseaudio and pacat: apt-get install pulseaudio libasound2-plugins")
    # A short directory: the socket path must fit in a sockaddr_un (108 bytes).
    root = Path(tempfile.mkdtemp(prefix="mfx-pa-", dir="/tmp"))
    server = PrivatePulse(root)
    try:
        server.start()
        monkeypatch.setenv("ALSA_CONFIG_PATH", str(server.alsa_config()))
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


# --- The codec plugin ----------------------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent
CODEC_PLUGIN_DIR = REPO / "plugins" / "codec-soundfile"


def load_soundfile_codec() -> object:
    """A ``SoundfileCodec`` imported from the plugin's directory, the way the manifest's
    ``python:codec_soundfile.plugin:SoundfileCodec`` names it (without the daemon)."""
    import importlib.util
    import sys

    name = "codec_soundfile"
    if name not in sys.modules:
        package = CODEC_PLUGIN_DIR / name
        spec = importlib.util.spec_from_file_location(name, package / "__init__.py",
                                                      submodule_search_locations=[str(package)])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    from codec_soundfile.plugin import SoundfileCodec  # type: ignore[import-not-found]

    codec = SoundfileCodec()
    codec.initialize({})
    return codec


def tone(freq: float, seconds: float, rate: int = 48000, channels: int = 2,
         amplitude: float = 0.5) -> np.ndarray:
    """A float32 sine, (frames, channels), phase-shifted half a sample so no sample is 0."""
    t = (np.arange(round(seconds * rate)) + 0.5) / rate
    mono = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.repeat(mono[:, None], channels, axis=1).copy()


def write_audio(path: Path, samples: np.ndarray, rate: int, fmt: str, subtype: str,
                **options: object) -> Path:
    """Write with soundfile in chunks of 65536 frames (one big Vorbis write crashes libvorbis)."""
    import soundfile as sf

    with sf.SoundFile(str(path), "w", rate, samples.shape[1], subtype, format=fmt, **options) as out:
        for start in range(0, len(samples), 65536):
            out.write(samples[start:start + 65536])
    return path


# --- A device the test lets play period by period ---------------------------------------------


class Gate:
    """Lets device writes through one at a time, as the test allows them: how much a sink
    has played is then the test's decision, not the machine's speed."""

    def __init__(self) -> None:
        self._permits = threading.Semaphore(0)

    def allow(self, writes: int = 1) -> None:
        self._permits.release(writes)

    def pass_one(self, timeout: float) -> bool:
        return self._permits.acquire(timeout=timeout)


class GatedDevice:
    """A real device (the tap) whose writes wait at a ``Gate``. A write the gate does not let
    through within a moment takes nothing (as a non-blocking PCM would), so the sink's
    writer thread stays responsive to a stop."""

    def __init__(self, inner: PcmDevice, gate: Gate) -> None:
        self.inner = inner
        self.gate = gate
        self.requested = inner.requested
        self.actual = inner.actual

    @classmethod
    def opener(cls, gate: Gate) -> Callable[[DeviceParams], PcmDevice]:
        return lambda params: cls(AlsaDevice.open(params), gate)

    def write(self, frames: np.ndarray) -> int:
        if not self.gate.pass_one(timeout=0.01):
            return 0
        return self.inner.write(frames)

    def avail(self) -> int:
        return self.inner.avail()

    def drain(self) -> None:
        self.inner.drain()

    def drop(self) -> None:
        self.inner.drop()

    def close(self) -> None:
        self.inner.close()
