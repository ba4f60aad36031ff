"""The checksum covers exactly the bytes that get loaded (no check-then-use race)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from mfx.errors import ChecksumMismatchError, PluginLoadError, SecurityError
from mfx.runtimes.verified_files import stage_verified, verify_bytes

DATA = b"\x7fELF not really, but bytes all the same\n" * 10
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()


def test_verify_bytes_returns_the_digest_and_accepts_a_matching_checksum() -> None:
    assert verify_bytes(DATA, None) == DIGEST
    assert verify_bytes(DATA, DIGEST) == DIGEST
    assert verify_bytes(DATA, DIGEST.upper().replace("SHA256", "sha256")) == DIGEST


def test_a_mismatch_names_the_expected_and_the_actual_digest() -> None:
    wrong = "sha256:" + "0" * 64
    with pytest.raises(ChecksumMismatchError) as caught:
        verify_bytes(DATA, wrong)
    assert wrong in str(caught.value) and DIGEST in str(caught.value)
    assert caught.value.retryable is False


@pytest.mark.parametrize("bad", ["md5:abc", "sha256:xyz", "sha256:" + "0" * 63, DIGEST[7:]])
def test_a_malformed_checksum_names_the_field_and_the_expected_form(bad: str) -> None:
    with pytest.raises(SecurityError, match=r"spec\.security\.checksum: expected 'sha256:<64 hex digits>'"):
        verify_bytes(DATA, bad)


def test_stage_verified_writes_the_checked_bytes_into_a_private_directory(tmp_path: Path) -> None:
    source = tmp_path / "libx.so"
    source.write_bytes(DATA)
    private = tmp_path / "private"
    staged = stage_verified(source, DIGEST, private)
    assert staged.parent == private
    assert staged.read_bytes() == DATA
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(staged).st_mode) == 0o400
    # What runs is the copy: replacing the original afterwards changes nothing loaded.
    source.write_bytes(b"something else")
    assert staged.read_bytes() == DATA


def test_every_staging_gets_its_own_file(tmp_path: Path) -> None:
    source = tmp_path / "libx.so"
    source.write_bytes(DATA)
    first = stage_verified(source, None, tmp_path / "p")
    second = stage_verified(source, None, tmp_path / "p")
    assert first != second and first.name.endswith("libx.so")


def test_nothing_is_staged_when_the_checksum_does_not_match(tmp_path: Path) -> None:
    source = tmp_path / "libx.so"
    source.write_bytes(DATA)
    private = tmp_path / "private"
    with pytest.raises(ChecksumMismatchError):
        stage_verified(source, "sha256:" + "1" * 64, private)
    assert not private.exists() or not any(private.iterdir())


def test_an_existing_private_directory_is_made_private(tmp_path: Path) -> None:
    source = tmp_path / "libx.so"
    source.write_bytes(DATA)
    private = tmp_path / "private"
    private.mkdir(mode=0o755)
    stage_verified(source, None, private)
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o700


def test_a_symlink_as_private_directory_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "libx.so"
    source.write_bytes(DATA)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / "private"
    link.symlink_to(elsewhere)
    with pytest.raises(SecurityError, match="private directory"):
        stage_verified(source, None, link)


def test_a_missing_source_is_a_load_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(PluginLoadError, match="libgone.so: file not found"):
        stage_verified(tmp_path / "libgone.so", None, tmp_path / "p")
