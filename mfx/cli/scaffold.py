"""``mfx plugin init``: a new plugin folder of each type that applies and becomes Ready unchanged.

Each scaffold is a ``plugin.yaml`` (a PluginManifest: version 0.1.0, interfaces, a config
with its JSON Schema, limits, health check and restart policy), the smallest source that
implements the type's contract, and a README with the commands that come next:

- ``rpc``: a Python package run as ``python -m PKG``: a ``mfx.sdk.Plugin`` subclass served
  with ``mfx.sdk.serve`` (a greeter);
- ``dynamic_library``: an in-process Python module, ``python:PKG.plugin:Class``
  (an ``AudioProcessor`` applying a gain);
- ``hot_reload``: the same shape, a ``UIExtension`` whose ``render`` can be edited while the
  daemon runs;
- ``webassembly``: a WAT module implementing the mfx WebAssembly ABI
  (``plugins/include/mfx_wasm_abi.md``), with a Makefile that compiles it with
  ``wasmtime.wat2wasm`` under this interpreter; ``init`` compiles it once so it is ready.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mfx.cli.scaffold_names import TYPES, Names
from mfx.cli.scaffold_python import dynamic_library, hot_reload, rpc
from mfx.cli.scaffold_wasm import compile_wat, webassembly
from mfx.errors import BadRequestError

_SUFFIX = {"rpc": "Plugin", "dynamic_library": "Processor", "hot_reload": "View", "webassembly": ""}
_TEMPLATES: dict[str, Callable[[Names], dict[str, str]]] = {
    "rpc": rpc, "dynamic_library": dynamic_library, "hot_reload": hot_reload, "webassembly": webassembly,
}


def scaffold(name: str, type_: str, parent: Path) -> tuple[Path, list[Path]]:
    """Write the plugin folder ``parent/name``; return it and the files written (in order)."""
    if type_ not in _TEMPLATES:
        raise BadRequestError(f"unknown plugin type {type_!r}; choose one of {', '.join(TYPES)}")
    names = Names.of(name, _SUFFIX[type_], str(parent))
    target = Path(parent) / name
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BadRequestError(f"{target} exists and is not empty; choose another --dir or name")
    files = _TEMPLATES[type_](names)
    written = []
    for rel, text in files.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    if type_ == "webassembly":
        written.append(compile_wat(target, names.package))
    return target, written
