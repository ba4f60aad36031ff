"""Checksums that cover the bytes actually loaded.

Checking a file's digest and then loading the file by its path is a check-then-use race:
the file can change in between. Here the bytes are read once, verified, and written into
a private directory (mode 0700) that nothing else writes to; the loader is then given that
copy, so the bytes that were checked are the bytes that run.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import stat
from pathlib import Path

from mfx.errors import ChecksumMismatchError, PluginLoadError, SecurityError

_CHECKSUM = re.compile(r"sha256:([0-9a-fA-F]{64})")


def verify_bytes(data: bytes, checksum: str | None) -> str:
    """Return the digest of ``data`` as ``sha256:<hex>``.

    When ``checksum`` (``"sha256:<64 hex digits>"``, as in ``spec.security.checksum``) is
    given and differs, raise ``ChecksumMismatchError`` naming the expected and actual digest.
    """
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    if checksum is None:
        return actual
    match = _CHECKSUM.fullmatch(checksum.strip())
    if match is None:
        raise SecurityError(
            f"spec.security.checksum: expected 'sha256:<64 hex digits>', got {checksum!r}"
        )
    expected = "sha256:" + match.group(1).lower()
    if not hmac.compare_digest(expected, actual):
        raise ChecksumMismatchError(
            f"checksum mismatch: spec.security.checksum is {expected} but the file is {actual}; "
            "rebuild the plugin or update the manifest's checksum"
        )
    return actual


def stage_verified(source: Path, checksum: str | None, private_dir: Path) -> Path:
    """Copy ``source`` into ``private_dir`` after verifying its bytes; return the copy's path.

    The file is read once; the digest is checked against exactly those bytes, which are then
    written to a new, uniquely named, read-only file in ``private_dir`` (created with mode
    0700 if missing). Each call gives a new name, so a shared library staged twice is loaded
    twice (``dlopen`` would otherwise hand back the first, shared copy). The caller deletes
    the copy when it is done with it.
    """
    try:
        data = source.read_bytes()
    except FileNotFoundError:
        raise PluginLoadError(f"{source}: file not found") from None
    except OSError as exc:
        raise PluginLoadError(f"{source}: cannot read: {exc.strerror}") from exc
    digest = verify_bytes(data, checksum)
    _ensure_private_dir(private_dir)
    target = private_dir / f"{digest[7:23]}-{secrets.token_hex(4)}-{source.name}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(target, flags, 0o400)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target


def _ensure_private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise SecurityError(f"{path}: expected a private directory, found something else")
    if info.st_uid != os.getuid():
        raise SecurityError(f"{path}: the private directory belongs to uid {info.st_uid}, not to us")
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(path, 0o700)
