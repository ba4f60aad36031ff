"""The shape of mfx.cli: commands share code only through modules that define no command,
nothing but the entry point (``main``) imports ``root`` (it only assembles), no name crosses
modules privately, and every verb has one meaning; plus the start-up cost every ``mfx`` call
pays (``test_cli_start_imports`` has the commands answered without click)."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest

from tests.daemon_harness import run_cli

CLI = Path(__file__).resolve().parents[1] / "mfx" / "cli"
PACKAGE = "mfx.cli"


def _modules() -> dict[str, ast.Module]:
    return {path.stem: ast.parse(path.read_text(), str(path)) for path in sorted(CLI.glob("*.py"))}


MODULES = _modules()


def _defines_commands(tree: ast.Module) -> bool:
    """Whether a module makes click commands (``click.command(...)``, ``click.group(...)``)."""
    return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
               and node.func.attr in ("command", "group")
               and isinstance(node.func.value, ast.Name) and node.func.value.id == "click"
               for node in ast.walk(tree))


# root assembles the group, main is the entry point: neither is a command nor a leaf.
ASSEMBLY = {"root", "main", "__main__"}
COMMAND_MODULES = {name for name, tree in MODULES.items() if _defines_commands(tree) and name not in ASSEMBLY}
LEAVES = set(MODULES) - COMMAND_MODULES - ASSEMBLY


def _cli_imports(tree: ast.Module) -> Iterator[tuple[str, str | None]]:
    """(module, name) for every import of an mfx.cli module, at the top or inside a function;
    name is None for a whole module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == PACKAGE:
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE + "."):
            for alias in node.names:
                yield str(node.module).removeprefix(PACKAGE + "."), alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE + "."):
                    yield alias.name.removeprefix(PACKAGE + "."), None


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_the_modules_are_sorted_into_commands_and_leaves() -> None:
    # A guard for the tests below: they would pass vacuously if detection failed.
    assert {"apply", "get", "gitops", "player_transport"} <= COMMAND_MODULES
    assert {"context", "output", "refs", "waiting"} <= LEAVES


def test_nothing_imports_main_but_the_module_entry_point() -> None:
    importers = {name for name, tree in MODULES.items() if any(m == "main" for m, _ in _cli_imports(tree))}
    assert importers <= {"__main__"}


def test_only_the_entry_point_imports_the_assembled_group() -> None:
    # help_texts imports it only when run as a script, to write the help it keeps.
    importers = {name for name, tree in MODULES.items() if any(m == "root" for m, _ in _cli_imports(tree))}
    assert importers <= {"main", "help_texts"}


def test_no_private_name_crosses_a_module() -> None:
    crossings = []
    for name, tree in MODULES.items():
        imported_modules = {m for m, n in _cli_imports(tree) if n is None}
        crossings += [f"{name}: from {m} import {n}" for m, n in _cli_imports(tree) if n and _private(n)]
        crossings += [f"{name}: {node.value.id}.{node.attr}" for node in ast.walk(tree)
                      if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                      and node.value.id in imported_modules and _private(node.attr)]
    assert crossings == []


def test_commands_import_only_leaves() -> None:
    wrong = sorted(f"{name} imports {module}" for name in COMMAND_MODULES
                   for module, _ in _cli_imports(MODULES[name]) if module in COMMAND_MODULES | ASSEMBLY)
    assert wrong == []


def test_leaves_import_no_command() -> None:
    wrong = sorted(f"{name} imports {module}" for name in LEAVES if name != "help_texts"
                   for module, _ in _cli_imports(MODULES[name]) if module in COMMAND_MODULES | ASSEMBLY)
    assert wrong == []


def test_every_module_is_small_or_says_why_it_is_not() -> None:
    # A module over the limit keeps one job only if its docstring says why it stays whole.
    long = [path.name for path in sorted(CLI.glob("*.py"))
            if len(path.read_text().splitlines()) > 500 and "stays whole" not in (ast.get_docstring(MODULES[path.stem]) or "")]
    assert long == []


def test_the_cli_modules_import_each_other_without_a_cycle() -> None:
    graph = {name: {m for m, _ in _cli_imports(tree) if m in MODULES} for name, tree in MODULES.items()}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, "import cycle: " + " -> ".join((*path, name))
        if name in done:
            return
        for target in sorted(graph[name]):
            visit(target, (*path, name))
        done.add(name)

    for name in sorted(graph):
        visit(name, ())


def test_no_command_name_is_registered_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    # click replaces a command registered under a taken name without a word: record every
    # registration build_cli makes, on the root group and the sub-groups alike.
    registered: dict[tuple[int, str], list[click.Command]] = {}
    original = click.Group.add_command

    def recording(group: click.Group, cmd: click.Command, name: str | None = None) -> None:
        registered.setdefault((id(group), name or str(cmd.name)), []).append(cmd)
        original(group, cmd, name)

    monkeypatch.setattr(click.Group, "add_command", recording)
    from mfx.cli.main import build_cli

    build_cli()
    twice = {name for (_, name), commands in registered.items() if len({id(c) for c in commands}) > 1}
    assert registered and twice == set()


def test_the_mfx_group_refuses_a_second_meaning_for_a_verb() -> None:
    from mfx.cli.main import build_cli

    cli = build_cli()
    with pytest.raises(ValueError, match="mfx resume is registered twice"):
        cli.add_command(click.Command("resume"))


def test_resume_is_for_objects_and_play_continues_playback(tmp_path: Path) -> None:
    bare = run_cli(tmp_path, "resume")
    assert bare.exit_code == 1
    assert "name the objects to resume" in bare.output and "mfx play" in bare.output
    assert "mfx play continues" in run_cli(tmp_path, "pause", "--help").output
    assert "mfx resume gitsource/plugins" in run_cli(tmp_path, "resume", "--help").output


HEAVY = ("pydantic", "jsonschema", "cryptography", "numpy", "prometheus_client", "networkx", "wasmtime",
         "mfx.music", "mfx.audio", "controllers")


def test_starting_mfx_imports_nothing_heavy() -> None:
    # Every mfx call pays for what main imports: the heavy modules belong in the commands that use them.
    script = ("import sys; from mfx.cli.main import build_cli; build_cli(); "
              f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    loaded: Any = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                                 cwd=CLI.parents[1])
    assert loaded.stdout.split() == []
