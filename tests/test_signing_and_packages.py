"""Plugin packages: deterministic packing, tamper detection, signatures and the trust
policy, and an unpacker that refuses every kind of hostile archive."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from mfx.api.packaging import pack, unpack, verify
from mfx.api.signing import (
    Policy,
    TrustStore,
    generate_keypair,
    load_private_key,
    load_public_key,
    sign_digest,
    verify_signature,
)
from mfx.errors import ChecksumMismatchError, PackageError, SignatureError, UntrustedSourceError

MANIFEST = """apiVersion: mfx.musicfox.io/v1alpha1
kind: PluginManifest
metadata: {name: now-playing}
spec: {version: 1.0.0, type: webassembly, entryPoint: now_playing.wasm, interfaces: [NowPlaying]}
"""


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    d = tmp_path / "plugin"
    (d / "lib").mkdir(parents=True)
    (d / "plugin.yaml").write_text(MANIFEST)
    (d / "now_playing.wasm").write_bytes(b"\0asm\1\0\0\0")
    (d / "lib" / "helper.txt").write_text("helper")
    (d / "run.sh").write_text("#!/bin/sh\n")
    (d / "run.sh").chmod(0o755)
    return d


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for name in ("alice", "mallory"):
        generate_keypair(tmp_path / f"{name}.key", tmp_path / f"{name}.pub")
        paths[name] = tmp_path / name
    return paths


@pytest.fixture
def trust(tmp_path: Path, keys: dict[str, Path]) -> TrustStore:
    store = TrustStore(tmp_path / "trust")
    store.add("alice", tmp_path / "alice.pub")
    return store


def test_keys_sign_and_verify_digests(tmp_path: Path, keys: dict[str, Path]) -> None:
    private = load_private_key(tmp_path / "alice.key")
    assert (tmp_path / "alice.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "alice.key").read_text().startswith("-----BEGIN PRIVATE KEY-----")
    signature = sign_digest(private, "sha256:" + "ab" * 32)
    verify_signature(load_public_key(tmp_path / "alice.pub"), "sha256:" + "ab" * 32, signature)
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(load_public_key(tmp_path / "alice.pub"), "sha256:" + "cd" * 32, signature)
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(load_public_key(tmp_path / "mallory.pub"), "sha256:" + "ab" * 32, signature)
    with pytest.raises(SignatureError, match="base64"):
        verify_signature(load_public_key(tmp_path / "alice.pub"), "sha256:" + "ab" * 32, "not base64!")
    with pytest.raises(SignatureError, match="already exists"):
        generate_keypair(tmp_path / "alice.key", tmp_path / "other.pub")


def test_trust_store_adds_lists_verifies_and_removes_keys(
        tmp_path: Path, keys: dict[str, Path], trust: TrustStore) -> None:
    trust.add("mallory", tmp_path / "mallory.pub")
    assert [k.name for k in trust.list()] == ["alice", "mallory"]
    digest = "sha256:" + "12" * 32
    signature = sign_digest(load_private_key(tmp_path / "mallory.key"), digest)
    assert trust.verify(digest, signature) == "mallory"
    trust.remove("mallory")
    with pytest.raises(SignatureError, match="mfx trust add NAME KEYFILE"):
        trust.verify(digest, signature)
    with pytest.raises(SignatureError, match="exists already"):
        trust.add("alice", tmp_path / "mallory.pub")
    with pytest.raises(SignatureError, match="invalid"):
        trust.add("../escape", tmp_path / "mallory.pub")
    with pytest.raises(SignatureError, match="not a PEM public key"):
        trust.add("bogus", tmp_path / "alice.key")
    with pytest.raises(SignatureError, match="no trusted key named"):
        trust.remove("nobody")
    with pytest.raises(UntrustedSourceError, match="no trusted keys"):
        TrustStore(tmp_path / "empty").verify(digest, signature)


def test_the_same_directory_packs_to_the_same_bytes(tmp_path: Path, plugin_dir: Path,
                                                    keys: dict[str, Path]) -> None:
    key = load_private_key(tmp_path / "alice.key")
    first = pack(plugin_dir, tmp_path / "a.tgz", private_key=key)
    (plugin_dir / "now_playing.wasm").touch()  # a new mtime changes nothing
    second = pack(plugin_dir, tmp_path / "b.tgz", private_key=key)
    assert (tmp_path / "a.tgz").read_bytes() == (tmp_path / "b.tgz").read_bytes()
    assert first.digest == second.digest and first.name == "now-playing"
    with tarfile.open(tmp_path / "a.tgz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [
        "EXECUTABLES", "lib/helper.txt", "now_playing.wasm", "plugin.yaml", "run.sh", "SHA256SUMS", "SIGNATURE"]
    assert all(m.mtime == 0 and m.uid == 0 and m.uname == "" for m in members)
    assert {m.name: m.mode for m in members}["run.sh"] == 0o755


def test_a_signed_package_verifies_and_unpacks(tmp_path: Path, plugin_dir: Path,
                                               keys: dict[str, Path], trust: TrustStore) -> None:
    packed = pack(plugin_dir, tmp_path / "p.tgz", private_key=load_private_key(tmp_path / "alice.key"))
    info = verify(tmp_path / "p.tgz", trust, Policy())
    assert info.signer == "alice" and info.digest == packed.digest
    assert info.version == "1.0.0" and info.type == "webassembly"
    assert set(info.files) == {"EXECUTABLES", "lib/helper.txt", "now_playing.wasm", "plugin.yaml", "run.sh"}
    dest = tmp_path / "installed"
    unpack(tmp_path / "p.tgz", dest, expected_digest=info.digest)
    assert (dest / "lib" / "helper.txt").read_text() == "helper"
    assert (dest / "now_playing.wasm").read_bytes() == b"\0asm\1\0\0\0"
    assert (dest / "run.sh").stat().st_mode & 0o777 == 0o755


def rewrite(package: Path, out: Path, change: dict[str, bytes]) -> None:
    """Copy a package, replacing members' contents (as an attacker would)."""
    with tarfile.open(package) as src, tarfile.open(out, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            data = change.get(member.name, data)
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))


def test_a_changed_byte_is_a_checksum_error_naming_the_file(
        tmp_path: Path, plugin_dir: Path, keys: dict[str, Path], trust: TrustStore) -> None:
    pack(plugin_dir, tmp_path / "p.tgz", private_key=load_private_key(tmp_path / "alice.key"))
    rewrite(tmp_path / "p.tgz", tmp_path / "evil.tgz", {"now_playing.wasm": b"\0asm\1\0\0\1"})
    with pytest.raises(ChecksumMismatchError, match="checksum mismatch for now_playing.wasm"):
        verify(tmp_path / "evil.tgz", trust, Policy())
    with pytest.raises(ChecksumMismatchError, match="now_playing.wasm"):
        unpack(tmp_path / "evil.tgz", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_rewriting_the_checksums_breaks_the_signature(
        tmp_path: Path, plugin_dir: Path, keys: dict[str, Path], trust: TrustStore) -> None:
    pack(plugin_dir, tmp_path / "p.tgz", private_key=load_private_key(tmp_path / "alice.key"))
    with tarfile.open(tmp_path / "p.tgz") as tar:
        sums = tar.extractfile("SHA256SUMS").read().decode()  # type: ignore[union-attr]
    evil = b"\0asm\1\0\0\1"
    sums = sums.replace(hashlib.sha256(b"\0asm\1\0\0\0").hexdigest(), hashlib.sha256(evil).hexdigest())
    rewrite(tmp_path / "p.tgz", tmp_path / "evil.tgz",
            {"now_playing.wasm": evil, "SHA256SUMS": sums.encode()})
    with pytest.raises(SignatureError, match="bad signature for trusted key 'alice'"):
        verify(tmp_path / "evil.tgz", trust, Policy())
    # Even a source allowed to deliver unsigned plugins cannot deliver a forged signature.
    with pytest.raises(SignatureError):
        verify(tmp_path / "evil.tgz", trust, Policy(frozenset({"local"})), source="local")


def test_a_garbled_signature_is_refused(tmp_path: Path, plugin_dir: Path,
                                        keys: dict[str, Path], trust: TrustStore) -> None:
    packed = pack(plugin_dir, tmp_path / "p.tgz", private_key=load_private_key(tmp_path / "alice.key"))
    bad = base64.b64encode(b"\1" * 64).decode()
    doc = json.dumps({"keyFingerprint": packed.key_fingerprint, "signature": bad}).encode()
    rewrite(tmp_path / "p.tgz", tmp_path / "evil.tgz", {"SIGNATURE": doc})
    with pytest.raises(SignatureError, match="does not match"):
        verify(tmp_path / "evil.tgz", trust, Policy())


def test_a_package_signed_by_an_untrusted_key_is_refused_with_what_to_do(
        tmp_path: Path, plugin_dir: Path, keys: dict[str, Path], trust: TrustStore) -> None:
    pack(plugin_dir, tmp_path / "p.tgz", private_key=load_private_key(tmp_path / "mallory.key"))
    with pytest.raises(UntrustedSourceError, match="not trusted.*mfx trust add NAME KEYFILE"):
        verify(tmp_path / "p.tgz", trust, Policy())
    trust.add("mallory", tmp_path / "mallory.pub")
    assert verify(tmp_path / "p.tgz", trust, Policy()).signer == "mallory"


def test_unsigned_packages_need_a_source_allowed_to_deliver_them(
        tmp_path: Path, plugin_dir: Path, trust: TrustStore) -> None:
    pack(plugin_dir, tmp_path / "p.tgz")
    policy = Policy(allow_unsigned_sources=frozenset({"local-dev"}))
    with pytest.raises(UntrustedSourceError, match="not signed.*mfx trust add"):
        verify(tmp_path / "p.tgz", trust, policy, source="community")
    with pytest.raises(UntrustedSourceError, match="not signed"):
        verify(tmp_path / "p.tgz", trust, policy)
    info = verify(tmp_path / "p.tgz", trust, policy, source="local-dev")
    assert info.signer is None and not info.signed


def evil_tarball(path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        ok = tarfile.TarInfo("plugin.yaml")
        ok.size = len(MANIFEST)
        tar.addfile(ok, io.BytesIO(MANIFEST.encode()))
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


def _member(name: str, type_: bytes = tarfile.REGTYPE, linkname: str = "", size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = type_
    info.linkname = linkname
    info.size = size
    return info


@pytest.mark.parametrize(("member", "message"), [
    (_member("../../etc/cron.d/evil", size=4), "leaves the package directory"),
    (_member("lib/../../escape", size=4), "leaves the package directory"),
    (_member("/etc/passwd", size=4), "absolute path"),
    (_member("link", tarfile.SYMTYPE, linkname="/etc/shadow"), "is a symlink"),
    (_member("hard", tarfile.LNKTYPE, linkname="plugin.yaml"), "is a hardlink"),
    (_member("tty", tarfile.CHRTYPE), "device"),
    (_member("disk", tarfile.BLKTYPE), "device"),
    (_member("pipe", tarfile.FIFOTYPE), "device, FIFO"),
    (_member("a" * 256, size=4), "name part of 256 bytes, over the file system's limit of 255"),
    (_member("/".join(["d" * 200] * 6), size=4), "has a path over 1024 bytes"),
])
def test_unpack_refuses_hostile_members_naming_them(
        tmp_path: Path, member: tarfile.TarInfo, message: str) -> None:
    package = evil_tarball(tmp_path / "evil.tgz", member, b"evil" if member.isfile() else b"")
    dest = tmp_path / "dest"
    with pytest.raises(PackageError, match=message) as caught:
        unpack(package, dest)
    assert repr(member.name)[:60] in str(caught.value)  # long names are shown shortened
    assert not dest.exists()
    assert not (tmp_path / "escape").exists()


def test_unpack_refuses_oversized_members(tmp_path: Path) -> None:
    package = evil_tarball(tmp_path / "big.tgz", _member("big.bin", size=4096), b"\0" * 4096)
    with pytest.raises(PackageError, match="'big.bin' is 4096 bytes, over the limit of 1024"):
        unpack(package, tmp_path / "dest", max_member_bytes=1024)


def test_unpack_refuses_archives_that_are_not_packages(tmp_path: Path, plugin_dir: Path) -> None:
    (tmp_path / "junk.tgz").write_bytes(gzip.compress(b"not a tar at all" * 100))
    with pytest.raises(PackageError, match="junk.tgz"):
        unpack(tmp_path / "junk.tgz", tmp_path / "dest")
    package = evil_tarball(tmp_path / "nosums.tgz", _member("x.txt", size=1), b"x")
    with pytest.raises(PackageError, match="has no SHA256SUMS"):
        unpack(package, tmp_path / "dest")
    info = pack(plugin_dir, tmp_path / "p.tgz")
    rewrite(tmp_path / "p.tgz", tmp_path / "other.tgz", {})
    with pytest.raises(ChecksumMismatchError, match="expected sha256:0+"):
        unpack(tmp_path / "other.tgz", tmp_path / "dest", expected_digest="sha256:" + "0" * 64)
    unpack(tmp_path / "other.tgz", tmp_path / "dest", expected_digest=info.digest)


def test_pack_refuses_symlinks_and_needs_a_manifest(tmp_path: Path, plugin_dir: Path) -> None:
    (plugin_dir / "leak").symlink_to("/etc/passwd")
    with pytest.raises(PackageError, match="leak is not a regular file"):
        pack(plugin_dir, tmp_path / "p.tgz")
    (plugin_dir / "leak").unlink()
    (plugin_dir / "plugin.yaml").unlink()
    with pytest.raises(PackageError, match="has no plugin.yaml"):
        pack(plugin_dir, tmp_path / "p.tgz")


def rewrite_mode(package: Path, out: Path, name: str, mode: int) -> None:
    """Copy a package, changing one member's mode bits only (its bytes stay the same)."""
    with tarfile.open(package) as src, tarfile.open(out, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == name:
                member.mode = mode
            dst.addfile(member, io.BytesIO(data))


@pytest.mark.parametrize(("name", "mode", "said"), [
    ("lib/helper.txt", 0o755, "lib/helper.txt is executable in the archive but EXECUTABLES"),
    ("run.sh", 0o644, "run.sh is not executable in the archive but EXECUTABLES"),
])
def test_the_executable_bit_is_covered_by_the_checksums_and_the_signature(
        tmp_path: Path, plugin_dir: Path, keys: dict[str, Path], trust: TrustStore,
        name: str, mode: int, said: str) -> None:
    pack(plugin_dir, tmp_path / "p.tgz", private_key=load_private_key(tmp_path / "alice.key"))
    with tarfile.open(tmp_path / "p.tgz") as tar:
        assert tar.extractfile("EXECUTABLES").read() == b"run.sh\n"  # type: ignore[union-attr]
    rewrite_mode(tmp_path / "p.tgz", tmp_path / "evil.tgz", name, mode)
    with pytest.raises(ChecksumMismatchError, match=said):
        verify(tmp_path / "evil.tgz", trust, Policy())
    with pytest.raises(ChecksumMismatchError, match=said):
        unpack(tmp_path / "evil.tgz", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # Listing the file as executable too changes the digest, which the signature no longer matches.
    rewrite(tmp_path / "evil.tgz", tmp_path / "evil2.tgz", {"EXECUTABLES": b"lib/helper.txt\nrun.sh\n"})
    with pytest.raises(ChecksumMismatchError, match="checksum mismatch for EXECUTABLES"):
        verify(tmp_path / "evil2.tgz", trust, Policy())


def test_a_repacked_installed_folder_packs_to_the_same_digest(
        tmp_path: Path, plugin_dir: Path) -> None:
    first = pack(plugin_dir, tmp_path / "p.tgz")
    unpack(tmp_path / "p.tgz", tmp_path / "installed", expected_digest=first.digest)
    assert (tmp_path / "installed" / "EXECUTABLES").read_text() == "run.sh\n"
    assert pack(tmp_path / "installed", tmp_path / "again.tgz").digest == first.digest
