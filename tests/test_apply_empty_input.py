"""`mfx apply/delete/diff -f` refuse an argument that holds no objects (empty file, comments
only, a lone `---`, a directory without manifests) instead of succeeding silently."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.daemon_harness import run_cli
from tests.test_apply import plugin_yaml


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n# and another\n", "---\n", "---\n# c\n---\n",
                                  "apiVersion: v1\nkind: List\nitems: []\n"])
def test_a_file_without_objects_is_an_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    result = run_cli(tmp_path / "home", "apply", "-f", str(path))
    assert result.exit_code == 1
    assert result.output == f"error: {path}: no objects found\n"


def test_a_directory_without_manifests_is_an_error_and_says_about_subdirectories(tmp_path: Path) -> None:
    folder = tmp_path / "manifests"
    (folder / "nested").mkdir(parents=True)
    (folder / "README.md").write_text("not a manifest\n")
    (folder / "nested" / "p.yaml").write_text(plugin_yaml("alpha"))
    result = run_cli(tmp_path / "home", "apply", "-f", str(folder))
    assert result.exit_code == 1
    assert result.output == f"error: {folder}: no objects found (use -R to read its subdirectories)\n"
    (folder / "nested" / "p.yaml").unlink()
    result = run_cli(tmp_path / "home", "apply", "-R", "-f", str(folder))
    assert result.output == f"error: {folder}: no objects found\n"


def test_empty_stdin_is_an_error(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "home", "apply", "-f", "-", input="# nothing here\n")
    assert result.exit_code == 1
    assert result.output == "error: <stdin>: no objects found\n"


def test_one_empty_argument_refuses_the_whole_apply(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(plugin_yaml("alpha"))
    empty = tmp_path / "empty.yaml"
    empty.write_text("---\n")
    # No daemon runs here: anything but the refusal would have tried to reach it.
    result = run_cli(tmp_path / "home", "apply", "-f", str(good), "-f", str(empty))
    assert result.output == f"error: {empty}: no objects found\n"


def test_delete_and_diff_refuse_an_empty_file_too(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    deleted = run_cli(tmp_path / "home", "delete", "-f", str(empty))
    assert deleted.exit_code == 1 and deleted.output == f"error: {empty}: no objects found\n"
    diffed = run_cli(tmp_path / "home", "diff", "-f", str(empty))
    assert diffed.exit_code == 2 and diffed.output == f"error: {empty}: no objects found\n"
