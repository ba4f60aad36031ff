"""Where a plugin's files come from: a plugin stalled on a missing entry point starts once the
files appear (a --plugin-path directory filled, a package installed), without a spec change;
when an installed package shadows a --plugin-path copy, status and events say which is used."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mfx.server.services import default_services
from tests.daemon_harness import ThreadDaemon
from tests.event_fixtures import reasons, wait_events
from tests.plugin_fixtures import (
    TESTKIT,
    add_plugin_dir,
    apply,
    get,
    manifest,
    wait_ready,
    wait_reason,
)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    home = tmp_path / "home"
    home.mkdir()
    root = tmp_path / "plugin-path"
    root.mkdir()
    with ThreadDaemon(home, services=default_services(), plugin_paths=[root]).running():
        yield home, root


def install(home: Path, name: str, version: str) -> Path:
    """What `mfx plugin install` leaves: the plugin's files under $MFX_HOME/plugins/NAME/VERSION."""
    directory = home / "plugins" / name / version
    directory.mkdir(parents=True)
    os.symlink(TESTKIT, directory / "testkit")
    return directory


def test_a_stalled_plugin_starts_when_its_files_appear_on_the_plugin_path(env: tuple[Path, Path]) -> None:
    home, root = env
    apply(home, manifest("late"))
    wait_reason(home, "late", "Stalled", "True", "EntryPointNotFound")
    add_plugin_dir(root, "late")
    wait_ready(home, "late")
    assert get(home, "late")["metadata"]["generation"] == 1  # no spec change was needed


def test_a_stalled_plugin_starts_when_its_package_is_installed(env: tuple[Path, Path]) -> None:
    home, _ = env
    apply(home, manifest("pkg"))
    wait_reason(home, "pkg", "Stalled", "True", "EntryPointNotFound")
    installed = install(home, "pkg", "1.0.0")
    wait_ready(home, "pkg")
    assert get(home, "pkg")["status"]["runtime"]["directory"] == str(installed)


def test_an_installed_package_shadowing_the_plugin_path_is_shown(env: tuple[Path, Path]) -> None:
    home, root = env
    on_path = add_plugin_dir(root, "dup")
    installed = install(home, "dup", "1.0.0")
    apply(home, manifest("dup"))
    wait_ready(home, "dup")
    assert get(home, "dup")["status"]["runtime"]["directory"] == str(installed)
    told = reasons(wait_events(home, "dup", lambda es: bool(reasons(es, "ShadowedCopy"))), "ShadowedCopy")
    assert len(told) == 1
    message = told[0][1]
    assert f"from {installed}" in message and f"also found in {on_path}, not used" in message
