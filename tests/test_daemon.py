"""The daemon as a process: durability across SIGKILL, one daemon per home, socket mode,
bearer token on TCP, clean shutdown on SIGTERM."""

from __future__ import annotations

import gc
import signal
import socket
import ssl
import stat
import subprocess
from pathlib import Path

import httpx
import pytest

from mfx.collector import YOUNG_COLLECTION_THRESHOLD, young_collections_every
from tests.daemon_harness import SubprocessDaemon, ThreadDaemon, mfx_command
from tests.test_apply import plugin_yaml


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mfx(home: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*mfx_command(), "--home", str(home), *args], input=input, capture_output=True,
                          text=True, timeout=60)


def test_nothing_acknowledged_is_lost_when_the_daemon_is_sigkilled(tmp_path: Path) -> None:
    home = tmp_path / "home"
    daemon = SubprocessDaemon(home).start()
    try:
        documents = "---\n".join(plugin_yaml(f"p{i:03d}") for i in range(40))
        applied = mfx(home, "apply", "-f", "-", input=documents)
        assert applied.returncode == 0, applied.stderr
        assert applied.stdout.count(" created") == 40
    finally:
        daemon.stop(signal.SIGKILL)
    restarted = SubprocessDaemon(home).start()
    try:
        names = mfx(home, "get", "pm", "-o", "name").stdout.split()
        assert names == [f"pluginmanifest.mfx.musicfox.io/p{i:03d}" for i in range(40)]
    finally:
        assert restarted.stop(signal.SIGTERM) == 0


def test_a_second_daemon_on_the_same_home_refuses_to_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = SubprocessDaemon(home).start()
    try:
        second = subprocess.run([*mfx_command(), "serve", "--home", str(home)], capture_output=True, text=True,
                                timeout=60)
        assert second.returncode == 1
        assert "another mfx daemon" in second.stderr and str(home) in second.stderr
        assert "Traceback" not in second.stderr
        assert mfx(home, "get", "pm").returncode == 0  # the first one still serves
    finally:
        first.stop()


def test_socket_is_private_and_tcp_needs_the_token(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port, http_port = free_port(), free_port()
    daemon = SubprocessDaemon(home, "--listen", f"127.0.0.1:{port}", "--listen-http", f"127.0.0.1:{http_port}").start()
    try:
        mode = stat.S_IMODE((home / "mfx.sock").stat().st_mode)
        assert mode == 0o600
        token_file = home / "token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        ca = ssl.create_default_context(cafile=home / "tls" / "ca.crt")
        for base, verify in ((f"https://127.0.0.1:{port}", ca), (f"http://127.0.0.1:{http_port}", True)):
            url = f"{base}/apis/mfx.musicfox.io/v1alpha1/pluginmanifests"
            anonymous = httpx.get(url, verify=verify)
            assert anonymous.status_code == 401
            assert anonymous.json()["kind"] == "Status" and anonymous.json()["code"] == 401
            wrong = httpx.get(url, headers={"Authorization": "Bearer nope"}, verify=verify)
            assert wrong.status_code == 401
            ok = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, verify=verify)
            assert ok.status_code == 200 and ok.json()["kind"] == "PluginManifestList"
            assert httpx.get(f"{base}/healthz", verify=verify).status_code == 200
        for server in (f"127.0.0.1:{port}", f"https://127.0.0.1:{port}", f"http://127.0.0.1:{http_port}"):
            via_tcp = subprocess.run([*mfx_command(), "--home", str(home), "--server", server, "get", "pm"],
                                     capture_output=True, text=True, timeout=60)
            assert via_tcp.returncode == 0, (server, via_tcp.stderr)
    finally:
        daemon.stop()


def test_sigterm_shuts_down_cleanly_and_removes_the_socket(tmp_path: Path) -> None:
    home = tmp_path / "home"
    daemon = SubprocessDaemon(home).start()
    assert daemon.stop(signal.SIGTERM) == 0
    assert not (home / "mfx.sock").exists()
    assert "Traceback" not in daemon.output()


def test_a_daemon_run_in_process_leaves_the_garbage_collector_alone(tmp_path: Path) -> None:
    """gc.freeze() is for the process that is only a daemon (``mfx serve``), not for its embedders."""
    frozen = gc.get_freeze_count()
    thresholds = gc.get_threshold()
    with ThreadDaemon(tmp_path / "home").running():
        assert gc.get_freeze_count() == frozen
        assert gc.get_threshold() == thresholds
    assert gc.get_freeze_count() == frozen


def test_a_daemon_that_owns_its_process_freezes_start_up_objects_until_it_stops(tmp_path: Path) -> None:
    """``mfx serve`` (freeze_startup_objects) keeps start-up objects out of full collections."""
    assert gc.get_freeze_count() == 0
    with ThreadDaemon(tmp_path / "home", freeze_startup_objects=True).running():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


def test_a_daemon_that_owns_its_process_collects_young_objects_less_often_until_it_stops(tmp_path: Path) -> None:
    """``mfx serve`` (young_collection_threshold): young collections after 20 000 allocations,
    not 700; the older generations' thresholds and the process's own afterwards unchanged."""
    before = gc.get_threshold()
    with ThreadDaemon(tmp_path / "home", young_collection_threshold=YOUNG_COLLECTION_THRESHOLD).running():
        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, *before[1:])
    assert gc.get_threshold() == before


def test_a_young_collection_threshold_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="1 or more, got 0"):
        young_collections_every(0)
