"""Packages and trust through the CLI against a real daemon: keygen, pack, verify, trust,
install (and every way an install is refused), the plugin store, and rollback."""

from __future__ import annotations

import io
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import Result

from mfx.api.kinds import PLUGIN_MANIFEST
from mfx.api.packaging import DIGEST_ANNOTATION as DIGEST
from mfx.api.packaging import SIGNER_ANNOTATION as SIGNER
from mfx.api.packaging import SOURCE_ANNOTATION as SOURCE
from mfx.api.packaging import pack
from mfx.cli.client import Client, Endpoint
from mfx.errors import NotFoundError
from tests.daemon_harness import ThreadDaemon, run_cli

PACKAGES = "/apis/mfx.musicfox.io/v1alpha1/packages"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def daemon(home: Path) -> Iterator[ThreadDaemon]:
    with ThreadDaemon(home).running() as running:
        yield running


@pytest.fixture
def client(home: Path, daemon: ThreadDaemon) -> Iterator[Client]:
    with Client(Endpoint(socket=home / "mfx.sock")) as c:
        yield c


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def refused(result: Result, *fragments: str) -> str:
    assert result.exit_code == 1, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output
    return result.output


@pytest.fixture
def plugin(tmp_path: Path, home: Path) -> Path:
    """A fresh plugin folder made by `mfx plugin init`."""
    ok(run_cli(home, "plugin", "init", "greeter", "--type", "rpc", "--dir", str(tmp_path / "src")))
    return tmp_path / "src" / "greeter"


@pytest.fixture
def keys(tmp_path: Path, home: Path) -> dict[str, Any]:
    """Two key pairs, alice and mallory, made by `mfx plugin keygen`; their fingerprints."""
    found: dict[str, Any] = {}
    for name in ("alice", "mallory"):
        out = ok(run_cli(home, "plugin", "keygen", str(tmp_path / "keys" / f"{name}.key"),
                         str(tmp_path / "keys" / f"{name}.pub")))
        found[name] = re.search(r"fingerprint: (sha256:[0-9a-f]{64})", out).group(1)  # type: ignore[union-attr]
    found["dir"] = tmp_path / "keys"
    return found


def pack_cli(home: Path, plugin: Path, out: Path, key: Path | None = None) -> str:
    args = ["plugin", "pack", str(plugin), "-o", str(out)]
    return ok(run_cli(home, *args, *(["--key", str(key)] if key else [])))


def digest_of(pack_output: str) -> str:
    return re.search(r"digest:\s+(sha256:[0-9a-f]{64})", pack_output).group(1)  # type: ignore[union-attr]


def rewrite(package: Path, out: Path, *, change: dict[str, bytes] | None = None,
            extra: tarfile.TarInfo | None = None, extra_data: bytes = b"") -> Path:
    """Copy a package as an attacker would: members changed, or one hostile member added."""
    with tarfile.open(package) as src, tarfile.open(out, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            data = (change or {}).get(member.name, data)
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
        if extra is not None:
            dst.addfile(extra, io.BytesIO(extra_data) if extra.isfile() else None)
    return out


def nothing_installed(home: Path, client: Client, name: str = "greeter") -> None:
    assert not (home / "plugins").exists() or not any((home / "plugins").iterdir())
    assert not (home / "tmp").exists() or not any((home / "tmp").iterdir())  # no upload left behind
    with pytest.raises(NotFoundError):
        client.get(PLUGIN_MANIFEST, name)


def test_a_signed_package_is_trusted_installed_and_applied(
        tmp_path: Path, home: Path, daemon: ThreadDaemon, client: Client, plugin: Path,
        keys: dict[str, Any]) -> None:
    out = pack_cli(home, plugin, tmp_path / "greeter.tgz", keys["dir"] / "alice.key")
    assert "name:      greeter" in out and "version:   0.1.0" in out
    assert f"signed by: {keys['alice']}" in out
    digest = digest_of(out)

    ok(run_cli(home, "trust", "add", "alice", str(keys["dir"] / "alice.pub")))
    assert (home / "trust" / "alice.pub").read_bytes() == (keys["dir"] / "alice.pub").read_bytes()
    out = ok(run_cli(home, "plugin", "install", str(tmp_path / "greeter.tgz")))
    assert "pluginmanifest.mfx.musicfox.io/greeter created: version 0.1.0" in out
    assert "signed by 'alice'" in out and "mfx wait --for=condition=Ready pm/greeter" in out

    obj = client.get(PLUGIN_MANIFEST, "greeter")
    annotations = obj["metadata"]["annotations"]
    assert annotations[DIGEST] == digest and annotations[SIGNER] == "alice"
    assert SOURCE not in annotations
    packed = yaml.safe_load((plugin / "plugin.yaml").read_text())
    assert obj["spec"]["entryPoint"] == packed["spec"]["entryPoint"] == "python -m greeter"
    assert obj["spec"]["config"] == packed["spec"]["config"]

    installed = home / "plugins" / "greeter" / "0.1.0"
    for rel in ("plugin.yaml", "greeter/__main__.py", "greeter/plugin.py", "README.md"):
        assert (installed / rel).read_bytes() == (plugin / rel).read_bytes()
    assert not any((home / "tmp").iterdir())

    listing = ok(run_cli(home, "plugin", "list"))
    assert re.search(rf"greeter\s+0\.1\.0\s+true\s+{digest}", listing), listing
    described = ok(run_cli(home, "describe", "pm", "greeter"))
    assert "PackageInstalled" in described and "signed by alice" in described

    # The same package again changes nothing.
    out = ok(run_cli(home, "plugin", "install", str(tmp_path / "greeter.tgz")))
    assert "greeter unchanged: version 0.1.0" in out


def test_an_unsigned_package_needs_a_source_the_daemon_allows(
        tmp_path: Path, home: Path, daemon: ThreadDaemon, client: Client, plugin: Path) -> None:
    out = pack_cli(home, plugin, tmp_path / "greeter.tgz")
    assert "signed by: nobody (unsigned)" in out
    refused(run_cli(home, "plugin", "install", str(tmp_path / "greeter.tgz")),
            "greeter.tgz is not signed", "mfx trust add NAME KEYFILE", "--source NAME")
    nothing_installed(home, client)
    refused(run_cli(home, "plugin", "install", str(tmp_path / "greeter.tgz"), "--source", "community"),
            "source 'community' cannot be checked by this daemon")
    nothing_installed(home, client)

    out = ok(run_cli(home, "plugin", "install", str(tmp_path / "greeter.tgz"), "--source", "local"))
    assert "unsigned, from source 'local'" in out
    annotations = client.get(PLUGIN_MANIFEST, "greeter")["metadata"]["annotations"]
    assert annotations[SOURCE] == "local" and SIGNER not in annotations
    assert (home / "plugins" / "greeter" / "0.1.0" / "plugin.yaml").is_file()


def test_a_package_signed_by_a_key_the_daemon_does_not_trust_is_refused(
        tmp_path: Path, home: Path, daemon: ThreadDaemon, client: Client, plugin: Path,
        keys: dict[str, Any]) -> None:
    ok(run_cli(home, "trust", "add", "alice", str(keys["dir"] / "alice.pub")))
    pack_cli(home, plugin, tmp_path / "greeter.tgz", keys["dir"] / "mallory.key")
    refused(run_cli(home, "plugin", "install", str(tmp_path / "greeter.tgz")),
            f"signed by key {keys['mallory']}, which is not trusted", "mfx trust add NAME KEYFILE")
    nothing_installed(home, client)


def test_a_tampered_package_is_refused_naming_the_file(
        tmp_path: Path, home: Path, daemon: ThreadDaemon, client: Client, plugin: Path,
        keys: dict[str, Any]) -> None:
    ok(run_cli(home, "trust", "add", "alice", str(keys["dir"] / "alice.pub")))
    pack_cli(home, plugin, tmp_path / "greeter.tgz", keys["dir"] / "alice.key")
    source = (plugin / "greeter" / "plugin.py").read_bytes()
    rewrite(tmp_path / "greeter.tgz", tmp_path / "tampered.tgz",
            change={"greeter/plugin.py": source.replace(b"Hello", b"Pwned")})
    out = refused(run_cli(home, "plugin", "install", str(tmp_path / "tampered.tgz")),
                  "tampered.tgz: checksum mismatch for greeter/plugin.py")
    assert str(home / "tmp") not in out  # the daemon's temporary paths are not shown
    nothing_installed(home, client)


def _member(name: str, type_: bytes = tarfile.REGTYPE, linkname: str = "", size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = type_, linkname, size
    return info


@pytest.mark.parametrize(("member", "message"), [
    (_member("../../escape.txt", size=4), "leaves the package directory"),
    (_member("greeter/../../../escape.txt", size=4), "leaves the package directory"),
    (_member("/tmp/escape.txt", size=4), "absolute path"),
    (_member("greeter/shadow", tarfile.SYMTYPE, linkname="/etc/shadow"), "is a symlink"),
    (_member("greeter/hard", tarfile.LNKTYPE, linkname="plugin.yaml"), "is a hardlink"),
])
def test_an_evil_archive_is_refused_naming_the_member_and_nothing_is_written(
        tmp_path: Path, home: Path, daemon: ThreadDaemon, client: Client, plugin: Path,
        keys: dict[str, Any], member: tarfile.TarInfo, message: str) -> None:
    ok(run_cli(home, "trust", "add", "alice", str(keys["dir"] / "alice.pub")))
    pack_cli(home, plugin, tmp_path / "greeter.tgz", keys["dir"] / "alice.key")
    rewrite(tmp_path / "greeter.tgz", tmp_path / "evil.tgz", extra=member,
            extra_data=b"evil" if member.isfile() else b"")
    refused(run_cli(home, "plugin", "install", str(tmp_path / "evil.tgz"), "--source", "local"),
            f"evil.tgz: member {member.name!r}", message)
    nothing_installed(home, client)
    for escaped in (home / "escape.txt", home.parent / "escape.txt", Path("/tmp/escape.txt")):
        assert not escaped.exists()


def test_a_version_installed_with_other_contents_is_refused(
        tmp_path: Path, home: Path, daemon: ThreadDaemon, client: Client, plugin: Path) -> None:
    pack_cli(home, plugin, tmp_path / "first.tgz")
    ok(run_cli(home, "plugin", "install", str(tmp_path / "first.tgz"), "--source", "local"))
    before = (home / "plugins" / "greeter" / "0.1.0" / "README.md").read_bytes()
    (plugin / "README.md").write_text("changed after the release\n")
    pack_cli(home, plugin, tmp_path / "second.tgz")
    refused(run_cli(home, "plugin", "install", str(tmp_path / "second.tgz"), "--source", "local"),
            "greeter version 0.1.0 is already installed", "give the new build a new spec.version")
    assert (home / "plugins" / "greeter" / "0.1.0" / "README.md").read_bytes() == before


def test_an_invalid_manifest_is_refused_with_its_fields_and_nothing_is_written(
        tmp_path: Path, home: Path, daemon: ThreadDaemon, client: Client, plugin: Path) -> None:
    manifest = (plugin / "plugin.yaml").read_text()
    (plugin / "plugin.yaml").write_text(manifest.replace("timeout: 5s", "timeout: soon"))
    refused(run_cli(home, "plugin", "pack", str(plugin)), "spec.resources.limits.timeout")
    pack(plugin, tmp_path / "bad.tgz")  # the library packs what the CLI refuses to
    refused(run_cli(home, "plugin", "install", str(tmp_path / "bad.tgz"), "--source", "local"),
            "bad.tgz:plugin.yaml: spec.resources.limits.timeout")
    nothing_installed(home, client)


def test_the_api_answers_refusals_with_status_codes_and_reasons(
        tmp_path: Path, home: Path, daemon: ThreadDaemon, plugin: Path) -> None:
    pack(plugin, tmp_path / "unsigned.tgz")
    transport = httpx.HTTPTransport(uds=str(home / "mfx.sock"))
    with httpx.Client(transport=transport, base_url="http://mfx") as http:
        def post(data: bytes, content_type: str = "application/gzip", **params: str) -> httpx.Response:
            return http.post(PACKAGES, content=data, params=params, headers={"Content-Type": content_type})

        untrusted = post((tmp_path / "unsigned.tgz").read_bytes())
        assert untrusted.status_code == 403
        assert untrusted.json()["reason"] == "Untrusted" and "mfx trust add NAME KEYFILE" in untrusted.json()["message"]
        broken = post(b"\x1f\x8b not really gzip", source="local")
        assert broken.status_code == 400 and broken.json()["reason"] == "InvalidPackage"
        assert post(b"{}", "application/json").status_code == 415
        assert post(b"", source="local").status_code == 400
        (plugin / "plugin.yaml").write_text((plugin / "plugin.yaml").read_text().replace("version: 0.1.0", "version: '1.0'"))
        pack(plugin, tmp_path / "invalid.tgz")
        invalid = post((tmp_path / "invalid.tgz").read_bytes(), source="local")
        assert invalid.status_code == 422
        assert [c["field"] for c in invalid.json()["details"]["causes"]] == ["spec.version"]
        assert http.get(PACKAGES, params={"name": "../etc"}).status_code == 400


def test_trusted_keys_are_listed_and_removed(
        tmp_path: Path, home: Path, daemon: ThreadDaemon, client: Client, plugin: Path,
        keys: dict[str, Any]) -> None:
    assert "No trusted keys" in ok(run_cli(home, "trust", "list"))
    for name in ("alice", "mallory"):
        out = ok(run_cli(home, "trust", "add", name, str(keys["dir"] / f"{name}.pub")))
        assert f'trusted key "{name}" added ({keys[name]})' in out
    listing = ok(run_cli(home, "trust", "list"))
    assert re.search(rf"alice\s+{keys['alice']}", listing) and re.search(rf"mallory\s+{keys['mallory']}", listing)
    refused(run_cli(home, "trust", "add", "alice", str(keys["dir"] / "mallory.pub")), "exists already")
    refused(run_cli(home, "trust", "add", "secret", str(keys["dir"] / "alice.key")), "holds a private key")
    refused(run_cli(home, "trust", "add", "Bad Name", str(keys["dir"] / "alice.pub")), "is invalid")
    (tmp_path / "junk.pub").write_text("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    refused(run_cli(home, "trust", "add", "junk", str(tmp_path / "junk.pub")), "not a PEM public key")

    ok(run_cli(home, "trust", "remove", "alice"))
    listing = ok(run_cli(home, "trust", "list"))
    assert "alice" not in listing and "mallory" in listing
    assert not (home / "trust" / "alice.pub").exists()
    refused(run_cli(home, "trust", "remove", "alice"), "no trusted key named 'alice'", "mfx trust list")

    # A key no longer trusted no longer installs anything.
    pack_cli(home, plugin, tmp_path / "greeter.tgz", keys["dir"] / "alice.key")
    refused(run_cli(home, "plugin", "install", str(tmp_path / "greeter.tgz")), "not trusted")
    nothing_installed(home, client)


def test_pack_is_deterministic_and_keeps_private_keys_out(
        tmp_path: Path, home: Path, plugin: Path, keys: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    first = pack_cli(home, plugin, tmp_path / "a.tgz", keys["dir"] / "alice.key")
    (plugin / "README.md").touch()  # a new mtime changes nothing
    second = pack_cli(home, plugin, tmp_path / "b.tgz", keys["dir"] / "alice.key")
    assert (tmp_path / "a.tgz").read_bytes() == (tmp_path / "b.tgz").read_bytes()
    assert digest_of(first) == digest_of(second)

    # Without -o the package is NAME-VERSION.tgz in the current directory.
    monkeypatch.chdir(tmp_path)
    ok(run_cli(home, "plugin", "pack", str(plugin)))
    assert (tmp_path / "greeter-0.1.0.tgz").read_bytes() != (tmp_path / "a.tgz").read_bytes()  # unsigned

    (plugin / "oops.key").write_bytes((keys["dir"] / "alice.key").read_bytes())
    refused(run_cli(home, "plugin", "pack", str(plugin), "-o", str(tmp_path / "c.tgz")),
            "oops.key", "a private key would be published")
    assert not (tmp_path / "c.tgz").exists()
    refused(run_cli(home, "plugin", "pack", str(tmp_path)), "has no plugin.yaml")


def test_verify_reports_what_it_checked_and_exits_1_with_the_reason(
        tmp_path: Path, home: Path, daemon: ThreadDaemon, plugin: Path, keys: dict[str, Any]) -> None:
    pack_cli(home, plugin, tmp_path / "signed.tgz", keys["dir"] / "alice.key")
    pack_cli(home, plugin, tmp_path / "unsigned.tgz")
    trust = tmp_path / "my-trust"
    trust.mkdir()
    (trust / "alice.pub").write_bytes((keys["dir"] / "alice.pub").read_bytes())

    out = ok(run_cli(home, "plugin", "verify", str(tmp_path / "signed.tgz"), "--trust-dir", str(trust)))
    assert "checksums: 6 files match SHA256SUMS, executable bits included" in out
    assert f"signature: valid, by trusted key 'alice' ({keys['alice']})" in out
    assert "manifest:  PluginManifest greeter 0.1.0 (rpc) is valid" in out

    # The default trust store is the daemon home's trust/: empty until `mfx trust add`.
    refused(run_cli(home, "plugin", "verify", str(tmp_path / "signed.tgz")), "which is not trusted")
    ok(run_cli(home, "trust", "add", "alice", str(keys["dir"] / "alice.pub")))
    ok(run_cli(home, "plugin", "verify", str(tmp_path / "signed.tgz")))

    refused(run_cli(home, "plugin", "verify", str(tmp_path / "unsigned.tgz")), "is not signed")
    out = ok(run_cli(home, "plugin", "verify", str(tmp_path / "unsigned.tgz"), "--allow-unsigned"))
    assert "signature: none (accepted: --allow-unsigned)" in out
    rewrite(tmp_path / "signed.tgz", tmp_path / "tampered.tgz", change={"README.md": b"changed\n"})
    refused(run_cli(home, "plugin", "verify", str(tmp_path / "tampered.tgz"), "--allow-unsigned"),
            "checksum mismatch for README.md")


def _install_version(home: Path, plugin: Path, tmp_path: Path, version: str) -> str:
    manifest = plugin / "plugin.yaml"
    manifest.write_text(re.sub(r"version: \S+", f"version: {version}", manifest.read_text(), count=1))
    out = pack_cli(home, plugin, tmp_path / f"greeter-{version}.tgz")
    ok(run_cli(home, "plugin", "install", str(tmp_path / f"greeter-{version}.tgz"), "--source", "local"))
    return digest_of(out)


def test_rollback_goes_back_to_the_previous_installed_version(
        tmp_path: Path, home: Path, daemon: ThreadDaemon, client: Client, plugin: Path) -> None:
    old = _install_version(home, plugin, tmp_path, "0.1.0")
    _install_version(home, plugin, tmp_path, "0.2.0")
    assert client.get(PLUGIN_MANIFEST, "greeter")["spec"]["version"] == "0.2.0"

    out = ok(run_cli(home, "rollback", "pm/greeter"))
    assert "greeter rolled back: 0.2.0 -> 0.1.0" in out and "from the plugin store" in out
    obj = client.get(PLUGIN_MANIFEST, "greeter")
    assert obj["spec"]["version"] == "0.1.0"
    assert obj["metadata"]["annotations"][DIGEST] == old
    assert re.search(r"greeter\s+0\.1\.0\s+true", ok(run_cli(home, "plugin", "list")))

    refused(run_cli(home, "rollback", "pm/greeter"), "no version of greeter to go back to", "--to VERSION")
    refused(run_cli(home, "rollback", "pm/greeter", "--to", "0.1.0"), "at version 0.1.0 already")
    refused(run_cli(home, "rollback", "pm/greeter", "--to", "9.9.9"),
            "neither installed nor in status.history", "known: 0.2.0")
    refused(run_cli(home, "rollback", "pm/greeter", "--to", "one"), "--to:")
    refused(run_cli(home, "rollback", "sink/default"), "rollback works on plugins")
    refused(run_cli(home, "rollback", "pm/nobody"), "not found")
    ok(run_cli(home, "rollback", "greeter", "--to", "0.2.0"))
    assert client.get(PLUGIN_MANIFEST, "greeter")["spec"]["version"] == "0.2.0"


def test_rollback_prefers_the_versions_the_controller_recorded(
        tmp_path: Path, home: Path, daemon: ThreadDaemon, client: Client, plugin: Path) -> None:
    _install_version(home, plugin, tmp_path, "0.1.0")
    _install_version(home, plugin, tmp_path, "0.3.0")
    client.patch(PLUGIN_MANIFEST, "greeter", {"status": {"history": [
        {"version": "0.3.0", "result": "Running"},
        {"version": "0.4.0", "result": "RolledBack"},  # failed to start: never a target
        {"version": "0.2.5", "result": "Replaced"},
        {"version": "0.1.0", "result": "Replaced"},
    ]}}, subresource="status")
    out = ok(run_cli(home, "rollback", "pm/greeter"))
    assert "0.3.0 -> 0.2.5" in out and "from status.history" in out
    obj = client.get(PLUGIN_MANIFEST, "greeter")
    assert obj["spec"]["version"] == "0.2.5"
    # 0.2.5 is not in the plugin store: no package annotation describes it.
    assert not {DIGEST, SOURCE} & set(obj["metadata"].get("annotations") or {})


@pytest.mark.parametrize("command", [
    ("plugin",), ("plugin", "init"), ("plugin", "keygen"), ("plugin", "pack"), ("plugin", "verify"),
    ("plugin", "install"), ("plugin", "list"), ("trust",), ("trust", "add"), ("trust", "list"),
    ("trust", "remove"), ("rollback",),
])
def test_every_command_explains_itself_with_examples(tmp_path: Path, command: tuple[str, ...]) -> None:
    out = ok(run_cli(tmp_path, *command, "--help"))
    assert "Example" in out or "A plugin's life" in out
    assert f"mfx {' '.join(command)}" in out
