"""AudioSink controller: writer-thread headroom while the control plane is busy.

A real daemon (the services of ``mfx serve``, in a thread of this process) opens an AudioSink
on a private PulseAudio null sink, which paces the writer in real time (1024-frame periods
at 48 kHz: 21.3 ms, four of them in the device buffer). A producer thread keeps the sink's
ring full through the ``SinkRegistry`` the player uses. The writer's work per period
(everything outside the blocking device write and the wait for data) is recorded.

Baseline: the control plane idle. Measured: a client in another process creating 1000
suspended PluginManifests through the API and then updating them continuously, so the
daemon's event loop (API, store, reconciler, status writes) competes with the writer for the
GIL and the CPU. Target: p99 work well under one period, and no xruns.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import Figure, percentile
from mfx.api.kinds import AUDIO_SINK
from mfx.audio import SinkEngine, float_to_pcm
from mfx.audio.registry import SinkRegistry
from mfx.cli.client import Client, Endpoint

SECONDS = 8.0
OBJECTS = 1000
PERIOD = 1024
RATE = 48000


def _feed(sinks: SinkRegistry, stop: threading.Event) -> None:
    from tests.audio_env import tone

    block = tone(440, 0.1, rate=RATE, amplitude=0.3)
    while not stop.is_set():
        output = sinks.wait_for_default(timeout=0.1)
        if output is not None:
            output.ring.write(float_to_pcm(block, output.params.format), timeout=0.1)


def _window(engine: SinkEngine, seconds: float) -> tuple[list[float], int]:
    """Writer work per period and xruns over the next ``seconds``."""
    skip = len(engine.writer_loop_seconds())
    xruns = engine.status().xruns
    time.sleep(seconds)  # a measurement window, not a synchronisation
    return engine.writer_loop_seconds()[skip:], engine.status().xruns - xruns


def run() -> list[Figure]:
    from mfx.server.services import default_services
    from tests.audio_env import PrivatePulse
    from tests.daemon_harness import ThreadDaemon
    from tests.test_audiosink_realtime import CHURN

    if shutil.which("pulseaudio") is None:
        return []
    saved = os.environ.get("ALSA_CONFIG_PATH")
    root = Path(tempfile.mkdtemp(prefix="mfx-pa-", dir="/tmp"))
    home = Path(tempfile.mkdtemp(prefix="mfx-bench-sink-"))
    pulse = PrivatePulse(root)
    stop = threading.Event()
    try:
        pulse.start()
        os.environ["ALSA_CONFIG_PATH"] = str(pulse.alsa_config())
        with ThreadDaemon(home, services=default_services()).running() as daemon:
            assert daemon.context is not None and daemon.context.sink_registry is not None
            sinks = daemon.context.sink_registry
            with Client(Endpoint(socket=daemon.socket)) as client:
                client.create({"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "AudioSink",
                               "metadata": {"name": "bench"},
                               "spec": {"device": "default", "rate": RATE, "periodFrames": PERIOD,
                                        "bufferPeriods": 4}}, AUDIO_SINK)
            output = sinks.wait_for_default(timeout=30)
            assert isinstance(output, SinkEngine), "the AudioSink did not open"
            engine = output
            feeder = threading.Thread(target=_feed, args=(sinks, stop), daemon=True)
            feeder.start()
            engine.wait_until(lambda s: s.frames_written >= 8 * PERIOD, timeout=30)
            idle, idle_xruns = _window(engine, SECONDS)

            churn = subprocess.Popen([sys.executable, "-c", CHURN, str(daemon.socket), str(OBJECTS)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                assert churn.stdin is not None and churn.stdout is not None
                skip = len(engine.writer_loop_seconds())
                xruns = engine.status().xruns
                started = time.perf_counter()
                churn.stdout.readline()  # "created": OBJECTS objects applied and being reconciled
                created_in = time.perf_counter() - started
                rest, rest_xruns = _window(engine, SECONDS)
                loaded = engine.writer_loop_seconds()[skip:]
                busy_xruns = engine.status().xruns - xruns
                churn.stdin.close()
                updates = int(churn.stdout.read().split()[-1])
            finally:
                if churn.poll() is None:
                    churn.kill()
                churn.wait()
            del rest, rest_xruns
            stop.set()
            feeder.join()
    finally:
        stop.set()
        pulse.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
        if saved is None:
            os.environ.pop("ALSA_CONFIG_PATH", None)
        else:
            os.environ["ALSA_CONFIG_PATH"] = saved

    period_ms = PERIOD / RATE * 1000
    idle_p99 = percentile(idle, 99) * 1000
    busy_p99 = percentile(loaded, 99) * 1000
    return [
        Figure("writer work per period, p99, control plane churning", busy_p99, "ms",
               "control plane idle", idle_p99, f"< {period_ms:.1f} ms (one period)"),
        Figure("writer work p99 as a share of the period, churning", busy_p99 / period_ms * 100, "%",
               "idle", idle_p99 / period_ms * 100, "< 50 %"),
        Figure("writer work per period, max, churning", max(loaded) * 1000, "ms",
               "idle", max(idle) * 1000, f"< {period_ms * 3:.1f} ms (the buffer minus one period)"),
        Figure(f"xruns while churning ({created_in:.1f} s creating {OBJECTS} + {SECONDS:.0f} s of "
               f"{updates} updates)", busy_xruns, "xruns", f"idle {SECONDS:.0f} s", idle_xruns, "0"),
    ]
