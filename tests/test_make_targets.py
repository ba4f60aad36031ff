"""``make run`` installs what running needs; ``make test`` adds what only the tests need.

Each target is asked what it would do (``make -n``) in a fresh venv folder, so no stamp is
there yet and every install step shows.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN_ONLY = ("libasound2-dev", "libsndfile1", "alsa-utils")
TEST_ONLY = ("prometheus", "pulseaudio", "libasound2-plugins", "kubernetes-client")


def _dry_run(target: str, venv: Path) -> str:
    result = subprocess.run(["make", "-n", "-s", "-C", str(REPO), target, f"VENV={venv}",
                             f"MFX_HOME={venv / 'home'}"], capture_output=True, text=True, check=True)
    return result.stdout


def test_run_installs_only_what_running_needs(tmp_path: Path) -> None:
    planned = _dry_run("run", tmp_path / "venv")
    assert all(package in planned for package in RUN_ONLY)
    assert not [package for package in TEST_ONLY if package in planned]


def test_test_installs_the_test_packages_too(tmp_path: Path) -> None:
    planned = _dry_run("test", tmp_path / "venv")
    assert all(package in planned for package in (*RUN_ONLY, *TEST_ONLY))


def test_a_venv_set_up_for_running_still_gets_the_test_packages(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".system").touch()  # the stamp `make run` leaves
    planned = _dry_run("test", venv)
    assert all(package in planned for package in TEST_ONLY)
    assert "libsndfile1" not in planned
