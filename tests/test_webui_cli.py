"""``mfx serve --ui-address`` and ``mfx ui``: the daemon serves the page and the CLI says where."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.daemon_harness import SubprocessDaemon, run_cli


def test_mfx_serve_ui_address_serves_the_page_and_mfx_ui_prints_its_url(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert "no web UI is being served" in run_cli(home, "ui").output
    daemon = SubprocessDaemon(home, "--ui-address", "127.0.0.1:0").start()
    try:
        result = run_cli(home, "ui")
        assert result.exit_code == 0, result.output
        url = result.output.strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        page = httpx.get(url, timeout=10)
        assert page.status_code == 200 and '<div id="graph"' in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        # No sign-in on loopback, so another site must not reach it through the browser:
        # not under a host name of its own (DNS rebinding), nor with a cross-site write.
        assert httpx.get(url, headers={"Host": "music.example.com"}, timeout=10).status_code == 403
        player = url + "apis/player.mfx.musicfox.io/v1/pause"
        assert httpx.post(player, headers={"Origin": "http://music.example.com"}, timeout=10).status_code == 403
        assert httpx.post(player, headers={"Origin": url.rstrip("/")}, timeout=10).status_code != 403
    finally:
        assert daemon.stop() == 0
    assert not (home / "ui-address").exists()
