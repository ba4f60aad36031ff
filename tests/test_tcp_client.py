"""``mfx --server`` against the daemon's TCP listeners: HTTPS for HOST:PORT and https://,
verified against the daemon's CA; plain HTTP only for an explicit http://; and an error that
says what to do for a missing CA, a CA of another daemon, or the wrong scheme for a port."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_harness import ThreadDaemon, run_cli


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("tcp") / "home"
    with ThreadDaemon(home, listen="127.0.0.1:0", listen_http="127.0.0.1:0").running():
        yield home


def address(home: Path, name: str = "listen-address") -> str:
    return (home / name).read_text().strip()


@pytest.mark.parametrize("server", ["{https}", "https://{https}", "http://{http}"])
def test_the_cli_works_over_each_listener(home: Path, server: str) -> None:
    server = server.format(https=address(home), http=address(home, "listen-http-address"))
    result = run_cli(home, "--server", server, "get", "pm")
    assert result.exit_code == 0, result.output


def test_a_missing_ca_names_where_it_is_expected_and_the_plain_alternative(home: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    token = (home / "token").read_text().strip()
    result = run_cli(elsewhere, "--server", address(home), "--token", token, "get", "pm")
    assert result.exit_code == 1
    assert f"no CA certificate in {elsewhere / 'tls' / 'ca.crt'}" in result.output
    assert "--listen-http" in result.output and "http://HOST:PORT" in result.output
    # Copying the daemon's CA is the fix.
    (elsewhere / "tls").mkdir(parents=True)
    shutil.copy(home / "tls" / "ca.crt", elsewhere / "tls" / "ca.crt")
    fixed = run_cli(elsewhere, "--server", address(home), "--token", token, "get", "pm")
    assert fixed.exit_code == 0, fixed.output


def test_a_certificate_from_another_ca_is_refused(home: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    with ThreadDaemon(other, listen="127.0.0.1:0").running():
        pass  # its own CA, in other/tls
    token = (home / "token").read_text().strip()
    result = run_cli(other, "--server", address(home), "--token", token, "get", "pm")
    assert result.exit_code == 1
    assert f"no TLS connection to the mfx daemon at https://{address(home)}" in result.output
    assert str(other / "tls" / "ca.crt") in result.output


def test_the_wrong_scheme_for_a_port_says_which_to_use(home: Path) -> None:
    plain_to_https = run_cli(home, "--server", f"http://{address(home)}", "get", "pm")
    assert plain_to_https.exit_code == 1
    assert "serves only HTTPS" in plain_to_https.output and "https://HOST:PORT" in plain_to_https.output
    tls_to_plain = run_cli(home, "--server", address(home, "listen-http-address"), "get", "pm")
    assert tls_to_plain.exit_code == 1
    assert "no TLS connection" in tls_to_plain.output and "--server http://HOST:PORT" in tls_to_plain.output


def test_an_unknown_scheme_is_refused(home: Path) -> None:
    result = run_cli(home, "--server", f"ftp://{address(home)}", "get", "pm")
    assert result.exit_code == 1 and "give HOST:PORT or https://HOST:PORT" in result.output


def test_serve_help_explains_both_listeners(tmp_path: Path) -> None:
    shown = run_cli(tmp_path / "home", "serve", "--help")
    text = " ".join(shown.output.split())
    assert shown.exit_code == 0
    assert "--listen HOST:PORT Also serve the API over HTTPS" in text and "HOME/tls/ca.crt" in text
    assert "--listen-http HOST:PORT Also serve the API over plain HTTP" in text and "bearer token" in text
