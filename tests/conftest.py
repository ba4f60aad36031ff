"""Shared fixtures: the anyio backend, and a private MFX_HOME per test."""

from __future__ import annotations

from pathlib import Path

import pytest

# The etcd cluster fixture is session-wide: one cluster however many modules use it.
pytest_plugins = ["tests.etcd_env"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def mfx_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "mfx-home"
    home.mkdir()
    monkeypatch.setenv("MFX_HOME", str(home))
    return home
