"""Where a plugin's files are, and which copy is used when there are several.

The candidates, in this order:

1. ``$MFX_HOME/plugins/<name>/<version>/``: the installed package of exactly ``spec.version``
   (``mfx plugin install``);
2. ``<dir>/<name>/`` for each ``--plugin-path`` directory, in the order given.

The first candidate that holds the manifest's entry point is used, so an installed package
shadows a ``--plugin-path`` copy of the same plugin. The choice is never silent: the
directory in use is ``status.runtime.directory``, and when another candidate holds the entry
point too, an event (reason ``ShadowedCopy``) names the copy chosen and the ones left unused.

When no candidate holds it, the plugin cannot start: ``EntryPointNotFoundError``, which the
controller reports as ``Stalled`` with reason ``EntryPointNotFound``. The files may still
appear without a spec change (a package installed, a directory filled), so the controller
looks again with a capped backoff and starts the plugin once they are there.
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


def copies(name: str, version: str, plugin_type: str, entry_point: str | None, *,
           home: Path, plugin_paths: Sequence[Path]) -> list[Path]:
    """Every candidate directory that holds the entry point, the one used first."""
    if not entry_point:
        return []
    return [d for d in candidate_dirs(name, version, home, plugin_paths)
            if entry_point_present(d, plugin_type, entry_point)]


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
        "install the plugin, start the daemon with --plugin-path DIR holding NAME/, or fix spec.entryPoint "
        "(it starts by itself once the files are there)")
