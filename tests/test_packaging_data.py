"""``pip install -e .`` packages every file the daemon reads and says nothing about it.

setuptools warns ("Package would be ignored") about each folder below a listed package that
Python could import but ``[tool.setuptools] packages`` does not list, and packages a folder's
files only through that folder's own ``package-data``. These tests hold the configuration to
that rule for every folder of every listed package.
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _setuptools() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def _folders_of_listed_packages() -> dict[str, Path]:
    """Every folder below a listed package, by the dotted name Python would import it as."""
    config = _setuptools()
    # The identity mapping only (it makes the editable install a plain path entry): the
    # folders are packages as they are.
    assert config.get("package-dir", {"": "."}) == {"": "."}, "no package-dir mapping but the identity"
    found: dict[str, Path] = {}
    for package in config["packages"]:
        root = REPO / package.replace(".", "/")
        for folder in [root, *root.rglob("*")]:
            if not folder.is_dir() or "__pycache__" in folder.parts:
                continue
            dotted = ".".join([package, *folder.relative_to(root).parts])
            found.setdefault(dotted, folder)
    return found


def test_every_importable_folder_is_a_listed_package() -> None:
    listed = set(_setuptools()["packages"])
    missing = sorted(set(_folders_of_listed_packages()) - listed)
    assert not missing, f"add to [tool.setuptools] packages: {missing}"


def test_every_data_file_is_package_data() -> None:
    patterns: dict[str, list[str]] = _setuptools()["package-data"]
    unpackaged = []
    for dotted, folder in _folders_of_listed_packages().items():
        for file in folder.iterdir():
            if file.is_file() and file.suffix != ".py" and not any(
                    fnmatch.fnmatch(file.name, p) for p in patterns.get(dotted, [])):
                unpackaged.append(str(file.relative_to(REPO)))
    assert not unpackaged, f"not in [tool.setuptools.package-data]: {unpackaged}"
