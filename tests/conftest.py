"""Shared fixtures: the anyio backend, and a private MFX_HOME per test."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def mfx_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "mfx-home"
    home.mkdir()
    monkeypatch.setenv("MFX_HOME", str(home))
    return home
