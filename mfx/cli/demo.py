"""``mfx demo``: what ``make run`` runs — the whole player on embedded defaults.

It starts the daemon on a private home, applies the example desired state (``manifests/``
and the first-party plugins), waits for everything to be Ready, shows ``mfx get all``,
generates a demo track on first run (or uses ``MFX_MUSIC_DIR``), and plays it through the
default AudioSink. Without a sound card it plays into an ALSA file tap and says so.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mfx.cli.client import Client, Endpoint
from mfx.server.lock import HomeLock, in_use_error

if TYPE_CHECKING:
    from mfx.audio.file_tap import FileTap


def step(message: str) -> None:
    click.secho(f"==> {message}", fg="cyan", bold=True)


def run_mfx(home: Path, *args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mfx.cli", "--home", str(home), *args]
    click.secho("$ mfx " + " ".join(args), dim=True)
    result = subprocess.run(command, env=env, text=True)
    if check and result.returncode != 0:
        raise click.ClickException(f"'mfx {' '.join(args)}' failed (exit {result.returncode}); "
                                   f"the daemon's log is {home / 'daemon.log'}")
    return result


@click.command(hidden=False)
@click.option("--home", type=click.Path(path_type=Path), default=Path(".mfx-home"), show_default=True)
@click.option("--repo", type=click.Path(path_type=Path, exists=True), default=Path("."), show_default=True,
              help="The mfx source tree (for manifests/ and plugins/).")
@click.option("--metrics-address", default="127.0.0.1:9464", show_default=True)
@click.option("--once", is_flag=True, help="Stop the daemon after the demo instead of keeping it running.")
def demo(home: Path, repo: Path, metrics_address: str, once: bool) -> None:
    """Run the whole player on embedded defaults (what 'make run' does)."""
    # The audio package loads numpy: imported when the demo runs, not by every mfx command.
    from mfx.audio.file_tap import plan

    home = home.resolve()
    repo = repo.resolve()
    # Another daemon on this home would answer in place of ours: refuse before changing anything.
    holder = HomeLock(home / "mfx.lock").holder()
    if holder is not None:
        raise in_use_error(home, holder)
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MFX_HOME": str(home)}
    tap = plan(home, env)  # what the daemon will do (it sets the tap up itself)
    player_config = home / "player.yaml"
    if not player_config.exists():
        # The first-party C effects plugin (gain + EQ) processes what the player plays.
        player_config.write_text("processors: [effects]\ndefaultVolume: 80\n")
    # Before the daemon starts, so local-music finds the folder of its default configuration.
    music = _music_folder(home)
    log_path = home / "daemon.log"
    step(f"starting the daemon (home {home}, log {log_path})")
    with log_path.open("ab") as log:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "mfx.cli", "serve", "--home", str(home), "--plugin-path", str(repo / "plugins"),
             "--metrics-address", metrics_address], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_daemon(home, daemon)
        click.echo(f"    audio: {_audio(tap)}")
        step("applying the desired state: manifests/ and the first-party plugins")
        run_mfx(home, "apply", "-f", str(repo / "manifests"), env=env)
        run_mfx(home, "apply", "-R", "-f", str(repo / "plugins"), env=env)
        step("waiting for every plugin to be Ready")
        run_mfx(home, "wait", "--for=condition=Ready", "pm", "--all", "--timeout=120s", env=env)
        run_mfx(home, "wait", "--for=condition=Ready", "sink", "--all", "--timeout=60s", env=env, check=False)
        if music != _default_music_folder(home):
            # Music of the user's choosing (MFX_MUSIC_DIR): local-music's default is HOME/music.
            step(f"pointing local-music at {music}")
            patch = {"spec": {"config": {"folders": [str(music)]},
                              "security": {"allowedPaths": [{"path": str(music), "writable": False}]}}}
            run_mfx(home, "patch", "pm", "local-music", "--type", "merge", "-p", json.dumps(patch), env=env)
            run_mfx(home, "wait", "--for=condition=Ready", "pm/local-music", "--timeout=60s", env=env)
        step("mfx get all")
        run_mfx(home, "get", "all", "-o", "wide", env=env)
        _play_demo(home, env, tap)
        step("observability")
        click.echo(f"    Prometheus metrics: http://{metrics_address}/metrics")
        click.echo(f"    scrape config and Grafana dashboards: {repo / 'observability' / 'README.md'}")
        if once:
            return
        click.echo("\nThe daemon keeps running. In another terminal try:")
        click.echo(f"    export MFX_HOME={home}")
        click.echo("    .venv/bin/mfx get pm -o wide; .venv/bin/mfx describe pm local-music; .venv/bin/mfx top")
        click.echo("Press Ctrl-C to stop.")
        daemon.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
        step("daemon stopped")


DEMO_TITLE = "Morning Tune"
DEMO_LYRICS = """[00:00.00]mfx plays through its own ALSA sink
[00:02.00]a source plugin found this song
[00:04.00]a codec plugin decoded it
[00:06.00]the effects plugin shaped it
[00:08.00]and the sink wrote every frame
"""


def _music_folder(home: Path) -> Path:
    """The user's music (``MFX_MUSIC_DIR``), or a demo track generated once under HOME."""
    configured = os.environ.get("MFX_MUSIC_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    folder = _default_music_folder(home)
    track = folder / "morning-tune.flac"
    if not track.exists():
        _write_demo_track(track)
        click.echo(f"    generated a 10 s demo track: {track} (set MFX_MUSIC_DIR to use your own music)")
    return folder


def _default_music_folder(home: Path) -> Path:
    """Where local-music looks by default: ``$MFX_HOME/music`` (plugins/local-music/plugin.yaml)."""
    return home / "music"


def _audio(tap: FileTap | None) -> str:
    if tap is None:
        return "the system's default ALSA device"
    return f"no sound card: the daemon plays into an ALSA file tap at {tap.output} ({tap.listen_command()})"


def _write_demo_track(path: Path) -> None:
    import mutagen.flac
    import numpy as np
    import soundfile as sf

    rate = 44100
    t = np.arange(10 * rate, dtype=np.float64) / rate
    notes = np.array([261.63, 329.63, 392.00, 523.25])[(t // 0.5).astype(int) % 4]  # C E G C
    envelope = np.minimum(1.0, (t % 0.5) * 40) * np.exp(-(t % 0.5) * 3)
    mono = 0.25 * envelope * np.sin(2 * np.pi * notes * t)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.stack([mono, mono], axis=1).astype(np.float32), rate, format="FLAC", subtype="PCM_16")
    tags = mutagen.flac.FLAC(path)
    tags.update({"title": DEMO_TITLE, "artist": "mfx", "album": "Demo", "tracknumber": "1"})
    tags.save()
    path.with_suffix(".lrc").write_text(DEMO_LYRICS)


def _play_demo(home: Path, env: dict[str, str], tap: FileTap | None) -> None:
    step("playing music: search, play, and watch it go")
    run_mfx(home, "search", "morning", env=env, check=False)
    if run_mfx(home, "play", "morning", env=env, check=False).returncode != 0:
        click.echo("    (nothing to play: check 'mfx describe sink default' and 'mfx describe pm local-music')")
        return
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        shown = subprocess.run([sys.executable, "-m", "mfx.cli", "--home", str(home), "now"], env=env,
                               text=True, capture_output=True)
        click.echo("    " + shown.stdout.strip().replace("\n", "\n    "))
        if "stopped" in shown.stdout.lower():
            break
        time.sleep(2)  # a progress display, refreshed every 2 s
    run_mfx(home, "stop", env=env, check=False)
    if tap is not None and tap.output.exists():
        # The file tap is not paced by a clock: the song plays at decode speed, so show what landed.
        seconds = tap.output.stat().st_size / (48000 * 2 * 2)
        click.echo(f"    the sink wrote {seconds:.1f} s of audio to {tap.output}")
        click.echo(f"    listen on a machine with sound: {tap.listen_command()}")


def _wait_for_daemon(home: Path, daemon: subprocess.Popen[bytes]) -> None:
    client = Client(Endpoint(socket=home / "mfx.sock"), timeout=2)
    lock = HomeLock(home / "mfx.lock")
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if daemon.poll() is not None:
                raise click.ClickException(
                    f"the daemon exited with {daemon.returncode}; see {home / 'daemon.log'}")
            try:
                client.request("GET", "/readyz")
                if lock.holder() == daemon.pid:  # ours answered, not one that took the home meanwhile
                    return
                time.sleep(0.1)
            except Exception:  # not listening yet: start-up takes a moment
                time.sleep(0.1)
        raise click.ClickException(f"the daemon did not start within 60 s; see {home / 'daemon.log'}")
    finally:
        client.close()
