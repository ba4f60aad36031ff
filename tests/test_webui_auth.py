"""The web UI off loopback: without the API token every request is refused with the login
form; the form sets an HttpOnly session cookie; no answer ever carries the token; every
answer carries a Content-Security-Policy that allows no inline script."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from mfx.webui.auth import COOKIE
from tests.daemon_harness import ThreadDaemon
from tests.webui_env import chromium, new_page, screenshot, ui_daemon, ui_url

pytestmark = pytest.mark.slow
PATHS = ["/", "/static/js/main.js", "/ui/stream?topics=plugins", "/apis/player.mfx.musicfox.io/v1/state",
         "/static/vendor/cytoscape/LICENSE"]


def non_loopback_address() -> str:
    """An address of this machine that is not loopback (the traffic still stays on it)."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True,
                         text=True, check=False).stdout
    for line in out.splitlines():
        address = line.split()[3].split("/")[0]
        with socket.socket() as probe:
            try:
                probe.bind((address, 0))
            except OSError:
                continue
        return address
    pytest.skip("this machine has no non-loopback IPv4 address to bind the web UI on")


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadDaemon]:
    home = tmp_path_factory.mktemp("webui-auth") / "home"
    daemon = ui_daemon(home, address=f"{non_loopback_address()}:0")
    with daemon.running():
        yield daemon


def csp(response: httpx.Response) -> str:
    return response.headers.get("content-security-policy", "")


def test_without_the_token_every_request_is_refused_with_the_login_form(remote: ThreadDaemon) -> None:
    url = ui_url(remote.config.home).rstrip("/")
    assert not url.startswith("http://127.")
    token = (remote.config.home / "token").read_text().strip()
    with httpx.Client(timeout=10) as client:
        for path in PATHS:
            response = client.get(url + path)
            assert response.status_code == 401, path
            assert 'name="token"' in response.text and "<script" not in response.text
            assert "script-src 'self'" in csp(response) and "unsafe-inline" not in csp(response).split("script-src")[1].split(";")[0]
            assert token not in response.text
        wrong = client.post(url + "/login", data={"token": "not-the-token"})
        assert wrong.status_code == 401 and "not the API token" in wrong.text
        assert COOKIE not in wrong.headers.get("set-cookie", "")
        # A bearer header is no way in either: the page never holds the token.
        assert client.get(url + "/", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_signing_in_sets_an_httponly_cookie_and_never_serves_the_token(remote: ThreadDaemon) -> None:
    url = ui_url(remote.config.home).rstrip("/")
    token = (remote.config.home / "token").read_text().strip()
    with httpx.Client(timeout=10) as client:
        signed = client.post(url + "/login", data={"token": token})
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and token not in cookie
        for path in PATHS[:2] + PATHS[4:]:
            response = client.get(url + path)
            assert response.status_code == 200, path
            assert "script-src 'self'" in csp(response)
            assert token not in response.text
        with client.stream("GET", url + PATHS[2]) as stream:
            assert stream.status_code == 200 and "script-src 'self'" in csp(stream)
            first = next(line for line in stream.iter_lines() if line.startswith("data: "))
            assert token not in first


def test_the_login_form_in_a_browser(remote: ThreadDaemon) -> None:
    token = (remote.config.home / "token").read_text().strip()
    with chromium() as browser:
        page = new_page(browser, ui_url(remote.config.home))
        page.wait_for_selector("input[name=token]")
        screenshot(page, "login")
        page.console_errors.clear()  # the refused first load is reported as a 401
        page.fill("input[name=token]", token)
        page.click("button[type=submit]")
        page.wait_for_selector("#graph canvas", state="attached")
        assert page.evaluate("document.cookie") == ""  # HttpOnly: no script can read the session
        assert page.console_errors == []
