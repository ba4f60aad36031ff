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

import os
import shlex
from collections.abc import Sequence
from pathlib import Path

from mfx.errors import EntryPointNotFoundError
from mfx.runtimes.dynamic_library import is_shared_object
from mfx.runtimes.python_module import PYTHON_PREFIX, PythonEntryPoint, module_file

_PYTHONS = {"python", "python3"}

# The look runs on the event loop for every plugin started: plain strings and one stat per
# file asked about (``pathlib`` made it several times dearer than the system calls).


def candidate_dirs(name: str, version: str, home: Path, plugin_paths: Sequence[Path]) -> list[Path]:
    return [Path(d) for d in _candidates(name, version, home, plugin_paths)]


def _candidates(name: str, version: str, home: Path, plugin_paths: Sequence[Path]) -> list[str]:
    return [os.path.join(home, "plugins", name, version), *(os.path.join(p, name) for p in plugin_paths)]


def entry_point_present(directory: str | Path, plugin_type: str, entry_point: str) -> bool:
    """Whether ``directory`` holds the file(s) ``entry_point`` names (a cheap, early check)."""
    if not os.path.isdir(directory):
        return False
    entry = entry_point.strip()
    if entry.startswith(PYTHON_PREFIX):
        try:
            parsed = PythonEntryPoint.parse(entry)
        except EntryPointNotFoundError:
            return False
        return module_file(directory, parsed.parts) is not None
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
                return module_file(directory, parts) is not None or os.path.isdir(os.path.join(directory, *parts))
            if len(argv) >= 2 and not argv[1].startswith("-"):
                return os.path.isabs(argv[1]) or os.path.isfile(os.path.join(directory, argv[1]))
            return True
        if os.path.isabs(argv[0]):
            return os.path.isfile(argv[0])
        return os.path.exists(os.path.join(directory, argv[0]))
    if plugin_type in ("dynamic_library", "webassembly") or is_shared_object(entry):
        return os.path.isfile(os.path.join(directory, entry))
    return os.path.exists(os.path.join(directory, entry))


def copies(name: str, version: str, plugin_type: str, entry_point: str | None, *,
           home: Path, plugin_paths: Sequence[Path]) -> list[Path]:
    """Every candidate directory that holds the entry point, the one used first."""
    if not entry_point:
        return []
    return [Path(d) for d in _candidates(name, version, home, plugin_paths)
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
