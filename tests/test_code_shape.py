"""The shape of the code: each room one job, each piece of infrastructure written once.

These guard what a reader relies on to find things by name: long modules say why they stay
whole, and the helpers that used to be written again and again (home folder, backoff, the
task-group ownership of services, JSON type names) live in one place each.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("mfx", "controllers", "reconciler")
LONG_MODULE_LINES = 550  # "about 500": a little slack so one added function is no event
REASON_MARKER = "Kept as one module"


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_long_modules_say_why_they_stay_whole() -> None:
    unexplained = []
    for path in _modules():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") <= LONG_MODULE_LINES:
            continue
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if REASON_MARKER not in docstring:
            unexplained.append(f"{_relative(path)} ({text.count(chr(10))} lines)")
    assert not unexplained, (
        f"modules over {LONG_MODULE_LINES} lines without a '{REASON_MARKER}: ...' reason in their "
        f"docstring (split them by job, or say why not): {', '.join(unexplained)}")


def _definitions(name: str) -> list[str]:
    found = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
                found.append(f"{_relative(path)}:{node.lineno}")
    return found


@pytest.mark.parametrize("name", ["default_home", "json_type", "_json_type"])
def test_shared_helpers_are_defined_once(name: str) -> None:
    assert len(_definitions(name)) <= 1, _definitions(name)


def _lines_matching(pattern: str, *, outside: set[str]) -> list[str]:
    regex = re.compile(pattern)
    hits = []
    for path in _modules():
        if _relative(path) in outside:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if regex.search(line) and not line.lstrip().startswith("#"):
                hits.append(f"{_relative(path)}:{number}: {line.strip()}")
    return hits


def test_exponential_backoff_is_computed_in_one_place() -> None:
    hits = _lines_matching(r"\*\s*2\s*\*\*\s*min\(", outside={"mfx/backoff.py"})
    assert not hits, "use mfx.backoff instead of writing the formula again:\n" + "\n".join(hits)


def test_services_own_their_task_group_through_one_base() -> None:
    hits = _lines_matching(r"(_tg|tg)\.__aenter__\(\)", outside={"mfx/task_group.py"})
    assert not hits, "use mfx.task_group.TaskGroupOwner:\n" + "\n".join(hits)
