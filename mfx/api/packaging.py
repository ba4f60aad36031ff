"""Plugin packages: deterministic ``.tgz`` archives with checksums and an optional signature.

A package holds, at its root, the plugin's files (``plugin.yaml`` among them), an
``EXECUTABLES`` file (the paths whose executable bit is set, one a line, sorted), a
``SHA256SUMS`` file (``<hex>  <path>`` per file, ``EXECUTABLES`` included, sorted by path, as
``sha256sum`` writes it), and, when signed, a ``SIGNATURE`` file (JSON: ``keyFingerprint``,
``signature``). The package digest is ``sha256:`` + the sha256 of the ``SHA256SUMS`` bytes; the
signature is the Ed25519 signature of that digest (``mfx.api.signing``). Because
``EXECUTABLES`` is listed in ``SHA256SUMS``, the digest and the signature cover which files may
run, not only their bytes: a tar header's mode bits are never trusted on their own. The same
directory always packs to the same bytes: entries sorted, times, owners and gzip header
zeroed, modes normalised.

``verify`` checks every member against ``SHA256SUMS``, every mode against ``EXECUTABLES``, and
the signature against the trust policy. ``unpack`` refuses anything but plain files and
directories with safe names inside the destination, checks every file against ``SHA256SUMS``
while extracting, and sets the executable bit from ``EXECUTABLES`` alone, so what lands on disk
is what was verified (pass ``expected_digest`` from ``verify`` to tie the two).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mfx.api.signing import Policy, TrustStore, fingerprint, sign_digest
from mfx.errors import ChecksumMismatchError, PackageError

MANIFEST = "plugin.yaml"
SUMS = "SHA256SUMS"
SIGNATURE = "SIGNATURE"
EXECUTABLES = "EXECUTABLES"
RESERVED = frozenset({SUMS, SIGNATURE})  # not listed in SHA256SUMS
GENERATED = RESERVED | {EXECUTABLES}  # written by ``pack``; a plugin's own copy is not packed
# What a file system takes: a longer name would fail at unpack time, not at verification.
MAX_NAME_COMPONENT_BYTES = 255
MAX_NAME_BYTES = 1024
SKIPPED_NAMES = frozenset({"__pycache__", ".git", ".hg", ".svn", ".mypy_cache", ".pytest_cache"})
MAX_MEMBER_BYTES = 64 * 1024 * 1024
MAX_TOTAL_BYTES = 256 * 1024 * 1024
MAX_MEMBERS = 10_000
# Annotations of a PluginManifest installed from a package (``mfx plugin install``).
DIGEST_ANNOTATION = "mfx.musicfox.io/package-digest"
SIGNER_ANNOTATION = "mfx.musicfox.io/package-signer"  # the trusted key's name
SOURCE_ANNOTATION = "mfx.musicfox.io/package-source"  # the source it was installed from
PACKAGE_ANNOTATIONS = (DIGEST_ANNOTATION, SIGNER_ANNOTATION, SOURCE_ANNOTATION)


@dataclass(frozen=True)
class PackageInfo:
    path: Path
    name: str
    version: str
    type: str
    digest: str  # sha256:<hex> of SHA256SUMS
    files: Mapping[str, str]  # path -> sha256 hex
    signature: str | None = None
    key_fingerprint: str | None = None
    signer: str | None = None  # trusted key name, after ``verify``
    manifest: Mapping[str, object] = field(default_factory=dict)

    @property
    def signed(self) -> bool:
        return self.signature is not None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sums_text(files: Mapping[str, str]) -> bytes:
    return "".join(f"{files[p]}  {p}\n" for p in sorted(files)).encode()


def _parse_manifest(data: bytes, *, what: str) -> dict[str, object]:
    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise PackageError(f"{what}: {MANIFEST} is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("kind") != "PluginManifest":
        raise PackageError(f"{what}: {MANIFEST} must be one document of kind PluginManifest")
    meta, spec = doc.get("metadata"), doc.get("spec")
    problems = []
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        problems.append("metadata.name: expected a string")
    if not isinstance(spec, dict):
        problems.append("spec: expected a mapping")
    else:
        for key in ("version", "type", "entryPoint"):
            if not isinstance(spec.get(key), str):
                problems.append(f"spec.{key}: expected a string")
    if problems:
        raise PackageError(f"{what}: {MANIFEST}: " + "; ".join(problems))
    return doc


def _collect(plugin_dir: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for root, dirs, names in os.walk(plugin_dir):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_NAMES)
        for directory in dirs:
            if (Path(root) / directory).is_symlink():
                raise PackageError(
                    f"{Path(root) / directory} is a symlink; packages hold only regular files")
        for name in sorted(names):
            path = Path(root) / name
            rel = path.relative_to(plugin_dir).as_posix()
            if name.endswith((".pyc", ".pyo")) or rel in GENERATED:
                continue
            mode = path.lstat().st_mode
            if not stat.S_ISREG(mode):
                raise PackageError(
                    f"{path} is not a regular file (symlink, socket or device); packages hold "
                    "only regular files")
            files[rel] = path.read_bytes()
    return files


def directory_digests(plugin_dir: Path) -> dict[str, str]:
    """What ``pack`` would list in ``SHA256SUMS`` for a folder, less ``EXECUTABLES``."""
    return {rel: _sha256(data) for rel, data in _collect(Path(plugin_dir)).items()}


def _add(tar: tarfile.TarFile, name: str, data: bytes, *, executable: bool = False) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o755 if executable else 0o644
    tar.addfile(info, io.BytesIO(data))


def pack(plugin_dir: Path, out_path: Path, *,
         private_key: Ed25519PrivateKey | None = None) -> PackageInfo:
    """Pack ``plugin_dir`` (which must hold ``plugin.yaml``) into ``out_path``."""
    plugin_dir, out_path = Path(plugin_dir), Path(out_path)
    if not (plugin_dir / MANIFEST).is_file():
        raise PackageError(f"{plugin_dir} has no {MANIFEST}; a plugin directory needs its manifest")
    files = _collect(plugin_dir)
    manifest = _parse_manifest(files[MANIFEST], what=str(plugin_dir))
    executables = sorted(rel for rel in files if (plugin_dir / rel).stat().st_mode & stat.S_IXUSR)
    files[EXECUTABLES] = "".join(f"{rel}\n" for rel in executables).encode()
    sums = {rel: _sha256(data) for rel, data in files.items()}
    sums_text = _sums_text(sums)
    digest = "sha256:" + _sha256(sums_text)
    signature = key_fp = None
    if private_key is not None:
        signature = sign_digest(private_key, digest)
        key_fp = fingerprint(private_key.public_key())

    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for rel in sorted(files):
                _add(tar, rel, files[rel], executable=rel in executables)
            _add(tar, SUMS, sums_text)
            if signature is not None:
                _add(tar, SIGNATURE, _signature_doc(signature, key_fp))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(out_path)
    return _info(out_path, manifest, digest, sums, signature, key_fp)


def _signature_doc(signature: str, key_fp: str | None) -> bytes:
    return json.dumps({"keyFingerprint": key_fp, "signature": signature},
                      sort_keys=True, indent=2).encode() + b"\n"


def _info(path: Path, manifest: dict[str, object], digest: str, sums: Mapping[str, str],
          signature: str | None, key_fp: str | None, signer: str | None = None) -> PackageInfo:
    meta = manifest["metadata"]
    spec = manifest["spec"]
    assert isinstance(meta, dict) and isinstance(spec, dict)
    return PackageInfo(path=path, name=meta["name"], version=spec["version"], type=spec["type"],
                       digest=digest, files=dict(sums), signature=signature,
                       key_fingerprint=key_fp, signer=signer, manifest=manifest)


def _check_member(member: tarfile.TarInfo, *, what: str, max_member_bytes: int) -> str | None:
    """Return the member's safe relative name (None for a directory); refuse the rest."""
    name = member.name
    if member.issym() or member.islnk():
        kind = "symlink" if member.issym() else "hardlink"
        raise PackageError(f"{what}: member {name!r} is a {kind} (to {member.linkname!r}); "
                           "packages may hold only regular files")
    if not (member.isfile() or member.isdir()):
        raise PackageError(f"{what}: member {name!r} is a device, FIFO or other special file; "
                           "packages may hold only regular files")
    pure = PurePosixPath(name)
    if name.startswith("/") or pure.is_absolute() or "\\" in name:
        raise PackageError(f"{what}: member {name!r} has an absolute path; refused")
    if ".." in pure.parts:
        raise PackageError(f"{what}: member {name!r} leaves the package directory ('..'); refused")
    parts = [p for p in pure.parts if p != "."]
    if not parts:
        raise PackageError(f"{what}: member {name!r} has an empty name; refused")
    _check_name_length(name, parts, what=what)
    if member.isfile() and member.size > max_member_bytes:
        raise PackageError(f"{what}: member {name!r} is {member.size} bytes, over the limit of "
                           f"{max_member_bytes} bytes; refused")
    return None if member.isdir() else "/".join(parts)


def _check_name_length(name: str, parts: list[str], *, what: str) -> None:
    shown = name if len(name) <= 80 else name[:80] + "..."
    try:
        encoded = [part.encode("utf-8") for part in parts]
    except UnicodeEncodeError:
        raise PackageError(f"{what}: member {shown!r} has a name that is not UTF-8; refused") from None
    if sum(len(part) + 1 for part in encoded) > MAX_NAME_BYTES:
        raise PackageError(f"{what}: member {shown!r} has a path over {MAX_NAME_BYTES} bytes; refused")
    for part in encoded:
        if len(part) > MAX_NAME_COMPONENT_BYTES:
            raise PackageError(f"{what}: member {shown!r} has a name part of {len(part)} bytes, over "
                               f"the file system's limit of {MAX_NAME_COMPONENT_BYTES}; refused")
        if b"\0" in part:
            raise PackageError(f"{what}: member {shown!r} has a NUL byte in its name; refused")


def _read(package_path: Path, *, max_member_bytes: int = MAX_MEMBER_BYTES,
          max_total_bytes: int = MAX_TOTAL_BYTES) -> dict[str, tuple[bytes, int]]:
    """Every file member of the package as name -> (bytes, mode), after the safety checks."""
    what = str(package_path)
    try:
        tar = tarfile.open(package_path, mode="r:gz")
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise PackageError(f"{what} is not a readable .tgz package: {exc}") from exc
    files: dict[str, tuple[bytes, int]] = {}
    total = 0
    with tar:
        try:
            members = tar.getmembers()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise PackageError(f"{what} is truncated or corrupt: {exc}") from exc
        if len(members) > MAX_MEMBERS:
            raise PackageError(f"{what} has {len(members)} members, over the limit of {MAX_MEMBERS}")
        for member in members:
            name = _check_member(member, what=what, max_member_bytes=max_member_bytes)
            if name is None:
                continue
            if name in files:
                raise PackageError(f"{what}: member {name!r} appears twice; refused")
            total += member.size
            if total > max_total_bytes:
                raise PackageError(
                    f"{what}: members add up to more than {max_total_bytes} bytes at {name!r}; refused")
            extracted = tar.extractfile(member)
            assert extracted is not None
            files[name] = (extracted.read(), member.mode)
    return files


def _check_sums(files: Mapping[str, tuple[bytes, int]], *, what: str) -> tuple[dict[str, str], str]:
    if SUMS not in files:
        raise PackageError(f"{what} has no {SUMS}; it was not made by `mfx plugin pack`")
    sums_text = files[SUMS][0]
    listed: dict[str, str] = {}
    for number, line in enumerate(sums_text.decode("utf-8", "replace").splitlines(), start=1):
        hex_digest, sep, rel = line.partition("  ")
        if not sep or len(hex_digest) != 64:
            raise PackageError(f"{what}: {SUMS} line {number} is malformed: {line!r}")
        listed[rel] = hex_digest
    present = {name for name in files if name not in RESERVED}
    for rel in sorted(set(listed) - present):
        raise ChecksumMismatchError(f"{what}: {rel} is listed in {SUMS} but missing from the package")
    for rel in sorted(present - set(listed)):
        raise ChecksumMismatchError(f"{what}: {rel} is in the package but not listed in {SUMS}")
    for rel in sorted(listed):
        actual = _sha256(files[rel][0])
        if actual != listed[rel]:
            raise ChecksumMismatchError(
                f"{what}: checksum mismatch for {rel}: {SUMS} says {listed[rel]}, the file has "
                f"{actual}; the package was changed or damaged, fetch it again")
    if MANIFEST not in files:
        raise PackageError(f"{what} has no {MANIFEST}")
    return listed, "sha256:" + _sha256(sums_text)


def _check_modes(files: Mapping[str, tuple[bytes, int]], *, what: str) -> frozenset[str]:
    """The files that may be executable, as ``EXECUTABLES`` (covered by the digest) lists them;
    a member whose mode bits say otherwise was changed after packing."""
    listed: set[str] = set()
    if EXECUTABLES in files:
        try:
            text = files[EXECUTABLES][0].decode("utf-8")
        except UnicodeDecodeError:
            raise PackageError(f"{what}: {EXECUTABLES} is not UTF-8 text") from None
        listed = {line for line in text.splitlines() if line}
    for rel in sorted(listed):
        if rel in RESERVED or rel not in files:
            raise PackageError(f"{what}: {EXECUTABLES} lists {rel!r}, which is not a file of the package")
    for rel, (_data, mode) in sorted(files.items()):
        if rel in GENERATED:
            continue
        executable = bool(mode & 0o111)
        if executable != (rel in listed):
            said = "executable" if rel in listed else "not executable"
            raise ChecksumMismatchError(
                f"{what}: {rel} is {'executable' if executable else 'not executable'} in the archive but "
                f"{EXECUTABLES} (covered by {SUMS} and the signature) says {said}; the package was "
                "changed after it was packed: fetch it again, or pack it again with `mfx plugin pack`")
    return frozenset(listed)


def _read_signature(files: Mapping[str, tuple[bytes, int]], *, what: str) -> tuple[str | None, str | None]:
    if SIGNATURE not in files:
        return None, None
    try:
        doc = json.loads(files[SIGNATURE][0])
        return str(doc["signature"]), (str(doc["keyFingerprint"]) if doc.get("keyFingerprint") else None)
    except (ValueError, KeyError, TypeError) as exc:
        raise PackageError(f"{what}: {SIGNATURE} is malformed: {exc}") from exc


def verify(package_path: Path, trust_store: TrustStore, policy: Policy, *,
           source: str | None = None) -> PackageInfo:
    """Check every file against ``SHA256SUMS`` and the signature against ``policy``.

    ``source`` names where the package came from (a GitSource, a plugin path): it is what
    ``Policy.allow_unsigned_sources`` is matched against, never something the package says.
    """
    package_path = Path(package_path)
    what = str(package_path)
    files = _read(package_path)
    sums, digest = _check_sums(files, what=what)
    _check_modes(files, what=what)
    manifest = _parse_manifest(files[MANIFEST][0], what=what)
    signature, key_fp = _read_signature(files, what=what)
    signer = policy.check(trust_store, what=f"package {package_path.name}", digest=digest,
                          signature=signature, key_fingerprint=key_fp, source=source)
    return _info(package_path, manifest, digest, sums, signature, key_fp, signer)


def unpack(package_path: Path, dest_dir: Path, *, expected_digest: str | None = None,
           max_member_bytes: int = MAX_MEMBER_BYTES,
           max_total_bytes: int = MAX_TOTAL_BYTES) -> PackageInfo:
    """Extract the package's files into ``dest_dir`` (created; must be empty if it exists)."""
    package_path, dest_dir = Path(package_path), Path(dest_dir)
    what = str(package_path)
    files = _read(package_path, max_member_bytes=max_member_bytes, max_total_bytes=max_total_bytes)
    sums, digest = _check_sums(files, what=what)
    if expected_digest is not None and digest != expected_digest:
        raise ChecksumMismatchError(
            f"{what}: package digest is {digest}, expected {expected_digest}; the file changed "
            "since it was verified")
    executables = _check_modes(files, what=what)
    manifest = _parse_manifest(files[MANIFEST][0], what=what)
    if dest_dir.exists() and any(dest_dir.iterdir()):
        raise PackageError(f"{dest_dir} is not empty; unpack into a new directory")
    dest_dir.mkdir(parents=True, exist_ok=True)
    root = dest_dir.resolve()
    for name, (data, _mode) in sorted(files.items()):
        target = (root / name).resolve()
        if not target.is_relative_to(root):  # belt and braces after _check_member
            raise PackageError(f"{what}: member {name!r} resolves outside {dest_dir}; refused")
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                     0o755 if name in executables else 0o644)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    signature, key_fp = _read_signature(files, what=what)
    return _info(package_path, manifest, digest, sums, signature, key_fp)
