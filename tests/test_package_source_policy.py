"""The daemon, not the client, decides what may be installed unsigned: a claimed source is
checked (``local`` only over the unix socket, ``first-party`` only when identical to the
plugin in ``--plugin-path``), trusting a key ends unsigned local installs, and hostile
archives get a 4xx, never a 500."""

from __future__ import annotations

import io
import shutil
import ssl
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mfx.api.packaging import pack
from tests.daemon_harness import REPO, ThreadDaemon, run_cli

PACKAGES = "/apis/mfx.musicfox.io/v1alpha1/packages"


def ok(result) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == 0, result.output
    return result.output


def refused(result, *fragments: str) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == 1, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output
    return result.output


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    """A copy of the first-party hello-python plugin, as a plugin path of its own."""
    root = tmp_path / "plugin-path"
    shutil.copytree(REPO / "plugins" / "hello-python", root / "hello-python",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "build"))
    return root / "hello-python"


def unix_post(home: Path, data: bytes, **params: str) -> httpx.Response:
    transport = httpx.HTTPTransport(uds=str(home / "mfx.sock"))
    with httpx.Client(transport=transport, base_url="http://mfx") as http:
        return http.post(PACKAGES, content=data, params=params,
                         headers={"Content-Type": "application/gzip"})


def installed(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "plugins").glob("*/*"))


def test_trusting_a_key_ends_unsigned_local_installs(tmp_path: Path, plugin: Path) -> None:
    home = tmp_path / "home"
    pack(plugin, tmp_path / "unsigned.tgz")
    ok(run_cli(home, "plugin", "keygen", str(tmp_path / "k.key"), str(tmp_path / "k.pub")))
    with ThreadDaemon(home).running():
        ok(run_cli(home, "trust", "add", "alice", str(tmp_path / "k.pub")))
        refused(run_cli(home, "plugin", "install", str(tmp_path / "unsigned.tgz"), "--source", "local"),
                "is not signed", "this daemon accepts unsigned plugins from first-party")
        assert installed(home) == []
    # The operator says so explicitly: unsigned local uploads are accepted again.
    with ThreadDaemon(home, allow_unsigned_sources=("local",)).running():
        out = ok(run_cli(home, "plugin", "install", str(tmp_path / "unsigned.tgz"), "--source", "local"))
        assert "unsigned, from source 'local'" in out
        assert installed(home) == ["0.1.0"]


def test_allow_unsigned_none_refuses_every_unsigned_package(tmp_path: Path, plugin: Path) -> None:
    home = tmp_path / "home"
    pack(plugin, tmp_path / "unsigned.tgz")
    with ThreadDaemon(home, allow_unsigned_sources=("none",), plugin_paths=[plugin.parent]).running():
        for source in ("local", "first-party"):
            refused(run_cli(home, "plugin", "install", str(tmp_path / "unsigned.tgz"), "--source", source),
                    "this daemon accepts no unsigned plugins")
        assert installed(home) == []


def test_a_source_the_daemon_cannot_check_vouches_for_nothing(tmp_path: Path, plugin: Path) -> None:
    home = tmp_path / "home"
    pack(plugin, tmp_path / "unsigned.tgz")
    with ThreadDaemon(home).running():
        answer = unix_post(home, (tmp_path / "unsigned.tgz").read_bytes(), source="community")
        assert answer.status_code == 403, answer.text
        assert "source 'community' cannot be checked" in answer.json()["message"]
        assert installed(home) == []


def test_first_party_is_checked_against_the_plugin_path(tmp_path: Path, plugin: Path) -> None:
    home = tmp_path / "home"
    pack(plugin, tmp_path / "same.tgz")
    (tmp_path / "changed").mkdir()
    shutil.copytree(plugin, tmp_path / "changed" / plugin.name)
    with (tmp_path / "changed" / plugin.name / "plugin.yaml").open("a") as manifest:
        manifest.write("# one more line than the first-party copy\n")
    pack(tmp_path / "changed" / plugin.name, tmp_path / "changed.tgz")
    ok(run_cli(home, "plugin", "keygen", str(tmp_path / "k.key"), str(tmp_path / "k.pub")))
    with ThreadDaemon(home, plugin_paths=[plugin.parent]).running():
        ok(run_cli(home, "trust", "add", "alice", str(tmp_path / "k.pub")))  # local is no longer enough
        refused(run_cli(home, "plugin", "install", str(tmp_path / "changed.tgz"), "--source", "first-party"),
                "claims source first-party, but its files differ")
        assert installed(home) == []
        out = ok(run_cli(home, "plugin", "install", str(tmp_path / "same.tgz"), "--source", "first-party"))
        assert "unsigned, from source 'first-party'" in out


def test_source_local_is_refused_over_the_network_listener(tmp_path: Path, plugin: Path) -> None:
    home = tmp_path / "home"
    pack(plugin, tmp_path / "unsigned.tgz")
    with ThreadDaemon(home, listen="127.0.0.1:0", listen_http="127.0.0.1:0").running():
        token = (home / "token").read_text().strip()
        ca = ssl.create_default_context(cafile=home / "tls" / "ca.crt")
        for scheme, address_file, verify in (("https", "listen-address", ca), ("http", "listen-http-address", True)):
            address = (home / address_file).read_text().strip()
            with httpx.Client(base_url=f"{scheme}://{address}", verify=verify) as http:
                answer = http.post(PACKAGES, content=(tmp_path / "unsigned.tgz").read_bytes(),
                                   params={"source": "local"},
                                   headers={"Content-Type": "application/gzip", "Authorization": f"Bearer {token}"})
            assert answer.status_code == 403, answer.text
            assert "only over the daemon's unix socket" in answer.json()["message"]
            assert installed(home) == []
        # The same bytes over the unix socket are the owner's own upload.
        assert unix_post(home, (tmp_path / "unsigned.tgz").read_bytes(), source="local").status_code == 201


@pytest.fixture
def daemon_home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    with ThreadDaemon(home).running():
        yield home


@pytest.mark.parametrize("name", ["x" * 256, "/".join(["d" * 250] * 5), "ok/" + "y" * 300])
def test_an_overlong_member_name_is_a_400_naming_it(daemon_home: Path, tmp_path: Path, name: str) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        member = tarfile.TarInfo(name)
        member.size = 4
        tar.addfile(member, io.BytesIO(b"evil"))
    answer = unix_post(daemon_home, buffer.getvalue(), source="local")
    assert answer.status_code == 400, answer.text
    assert answer.json()["reason"] == "InvalidPackage"
    assert "over" in answer.json()["message"] and "refused" in answer.json()["message"]


def test_a_trusted_key_body_is_read_like_every_other_body(daemon_home: Path) -> None:
    transport = httpx.HTTPTransport(uds=str(daemon_home / "mfx.sock"))
    with httpx.Client(transport=transport, base_url="http://mfx") as http:
        keys = "/apis/mfx.musicfox.io/v1alpha1/trustedkeys"
        duplicate = http.post(keys, content=b'{"name": "a", "name": "b", "publicKeyPem": "x"}',
                              headers={"Content-Type": "application/json"})
        assert duplicate.status_code == 422 and 'duplicate key "name"' in duplicate.json()["message"]
        huge = http.post(keys, json={"name": "a", "publicKeyPem": "x" * 100_000})
        assert huge.status_code == 413, huge.text
        assert http.get(keys).json()["items"] == []
