"""Where a plugin's files are: ``$MFX_HOME/plugins/<name>/<version>/`` first (installed
packages), then ``<dir>/<name>/`` for each ``--plugin-path`` directory.

The first directory that holds the manifest's entry point wins. When none does, the plugin
cannot start until its spec (or the files) change: ``EntryPointNotFoundError``, which the
controller reports as ``Stalled`` with reason ``EntryPointNotFound``.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from mfx.errors import EntryPointNotFoundError
from mfx.runtimes.dynamic_library import is_shared_object
from mfx.runtimes.python_module import PYTHON_PREFIX, PythonEntryPoint, locate_module

_PYTHONS = {"python", "python3"}


def candidate_dirs(name: str, version: str, home: Path, plugin_paths: Sequence[Path]) -> list[Path]:
    return [home / "plugins" / name / version, *(Path(p) / name for p in plugin_paths)]


def entry_point_present(directory: Path, plugin_type: str, entry_point: str) -> bool:
    """Whether ``directory`` holds the file(s) ``entry_point`` names (a cheap, early check)."""
    if not directory.is_dir():
        return False
    entry = entry_point.strip()
    if entry.startswith(PYTHON_PREFIX):
        try:
            parsed = PythonEntryPoint.parse(entry)
        except EntryPointNotFoundError:
            return False
        return locate_module(directory, parsed.parts)[0] is not None
    if plugin_type == "rpc":
        try:
            argv = shlex.split(entry)
        except ValueError:
            return False
        if not argv:
            return False
        if argv[0] in _PYTHONS:
            if len(argv) >= 3 and argv[1] == "-m":
                parts = argv[2].split(".")
                return locate_module(directory, parts)[0] is not None or (directory.joinpath(*parts)).is_dir()
            if len(argv) >= 2 and not argv[1].startswith("-"):
                return Path(argv[1]).is_absolute() or (directory / argv[1]).is_file()
            return True
        program = Path(argv[0])
        if program.is_absolute():
            return program.is_file()
        return (directory / program).exists()
    if plugin_type in ("dynamic_library", "webassembly") or is_shared_object(entry):
        return (directory / entry).is_file()
    return (directory / entry).exists()


def resolve_plugin_dir(name: str, version: str, plugin_type: str, entry_point: str | None, *,
                       home: Path, plugin_paths: Sequence[Path]) -> Path:
    """The directory to load ``name`` from; raises ``EntryPointNotFoundError``."""
    if not entry_point:
        raise EntryPointNotFoundError(f"{name}: spec.entryPoint is empty; name the file or module to load")
    tried = candidate_dirs(name, version, home, plugin_paths)
    for directory in tried:
        if entry_point_present(directory, plugin_type, entry_point):
            return directory
    where = ", ".join(str(d) for d in tried)
    raise EntryPointNotFoundError(
        f"{name}: entry point {entry_point!r} not found in any plugin directory (tried {where}); "
        "install the plugin, start the daemon with --plugin-path DIR holding NAME/, or fix spec.entryPoint")
