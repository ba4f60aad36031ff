"""Importing an in-process Python plugin (``entryPoint: "python:pkg.module:Class"``) from
its directory.

The package is looked up in the plugin directory only (never on ``sys.path``) and imported
under a unique module name per load (``_mfx_<plugin>_<id>.module``), so two versions of the
same plugin can live side by side (hot reload) and unloading drops every module of a load
from ``sys.modules``. Modules are compiled straight from their source: no ``__pycache__``
is read or written, so an edit that keeps a file's size and second-resolution mtime is
still seen, and installed plugin directories stay untouched. Each runtime keeps the code
objects it compiled, keyed by the file itself (device and inode, whatever symlinks led to it)
and the SHA-256 of the source bytes (``CodeCache``), so many instances of one plugin compile it
once while an edited file is always recompiled; tracebacks name the file's real path. Nothing
on the way resolves a path component by component: each ``lstat`` releases the interpreter
lock, and a daemon starting hundreds of plugins would hand the lock to another thread (and
wait for it back) a few dozen times per import. Code objects hold no module state,
so unloading still frees everything a load created. Inside its package a plugin
imports its own modules relatively (``from . import util``); ``import pkg.util`` would look on
``sys.path`` and fail.

Checksums: nothing is hashed unless ``LoadRequest.checksum`` is given. Then it covers the
entry module's file only (``pkg/module.py`` of ``python:pkg.module:Class``), not the rest of
the package: those bytes are read once, verified and compiled as read, so the checked
bytes are the bytes that run. Sign or checksum whole packages at install time instead.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import stat
import sys
import threading
import traceback
import types
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mfx.errors import EntryPointNotFoundError, PluginLoadError
from mfx.runtimes.base import LoadRequest, LogLevel, PluginLogRecord
from mfx.runtimes.import_gate import ImportGate
from mfx.runtimes.verified_files import verify_bytes

PYTHON_PREFIX = "python:"
ROOT_PREFIX = "_mfx_"  # unique module names of loaded plugins start with this

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class PythonEntryPoint:
    """``python:pkg.module:Class`` split into its parts."""

    module: str  # "pkg.module"
    attribute: str  # "Class"

    @classmethod
    def parse(cls, text: str) -> PythonEntryPoint:
        body = text[len(PYTHON_PREFIX) :] if text.startswith(PYTHON_PREFIX) else text
        module, sep, attribute = body.partition(":")
        parts = module.split(".")
        if not sep or not all(_IDENTIFIER.fullmatch(p) for p in [*parts, attribute]):
            raise EntryPointNotFoundError(
                f"spec.entryPoint: expected 'python:package.module:Class', got {text!r}"
            )
        return cls(module=module, attribute=attribute)

    @property
    def parts(self) -> list[str]:
        return self.module.split(".")

    def __str__(self) -> str:
        return f"{PYTHON_PREFIX}{self.module}:{self.attribute}"


def module_candidates(plugin_dir: str | Path, dotted: Sequence[str]) -> tuple[str, str]:
    """The files module ``dotted`` may be under ``plugin_dir``, in the order looked at: a
    package before a module of the same name, as Python's import (and ``PluginFinder``) does,
    so the file a checksum covers is the file that runs."""
    base = os.path.join(plugin_dir, *dotted)
    return os.path.join(base, "__init__.py"), base + ".py"


def module_file(plugin_dir: str | Path, dotted: Sequence[str]) -> str | None:
    """The file of module ``dotted`` under ``plugin_dir``, if there is one. Strings, not
    ``Path``s: the controller asks this on the event loop for every plugin it starts."""
    return _first_file(module_candidates(plugin_dir, dotted))


def locate_module(plugin_dir: Path, dotted: Sequence[str]) -> tuple[Path | None, list[Path]]:
    """Find the file of module ``dotted`` under ``plugin_dir``: (path or None, paths tried)."""
    candidates = module_candidates(plugin_dir, dotted)
    found = _first_file(candidates)
    return (None if found is None else Path(found)), [Path(c) for c in candidates]


def _first_file(paths: Sequence[str]) -> str | None:
    return next((path for path in paths if os.path.isfile(path)), None)


class CodeCache:
    """Compiled module code by (file identity, SHA-256 of source), least recently used dropped first.

    The identity (device, inode) lets plugin directories that link to one installed copy share
    its code. Shared by the worker threads that import plugins, hence the lock.
    """

    def __init__(self, max_entries: int = 256) -> None:
        self._max_entries = max_entries
        self._codes: OrderedDict[tuple[int, int, str], types.CodeType] = OrderedDict()
        self._lock = threading.Lock()
        self.compiles = 0  # how many times a source was actually compiled

    def code_for(self, path: Path, source: bytes, identity: tuple[int, int]) -> types.CodeType:
        """The code of ``source``, read from ``path``, the file ``identity`` (``st_dev, st_ino``)."""
        key = (*identity, hashlib.sha256(source).hexdigest())
        with self._lock:
            code = self._codes.get(key)
            if code is not None:
                self._codes.move_to_end(key)
                return code
        # Compiled outside the lock: two threads may both compile a new file once; same result.
        code = compile(source, os.path.realpath(path), "exec", dont_inherit=True)
        with self._lock:
            self.compiles += 1
            self._codes[key] = code
            self._codes.move_to_end(key)
            while len(self._codes) > self._max_entries:
                self._codes.popitem(last=False)
        return code

    def clear(self) -> None:
        with self._lock:
            self._codes.clear()


@dataclass(frozen=True)
class _Source:
    """A module file as read: its bytes and the identity (``st_dev, st_ino``) of the file read."""

    data: bytes
    identity: tuple[int, int]


def _read_source(path: str) -> _Source | None:
    """The bytes of the regular file at ``path``, or None when there is none.

    Four system calls (open, fstat, read, close) where ``open(path, "rb").read()`` makes ten
    and a stat before it one more: each lets go of the interpreter lock, and a worker thread
    importing one of hundreds of starting plugins waits for the lock again after each.
    ``O_NONBLOCK``: a FIFO named like a module is not waited on (it is not a regular file).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode):
            return None
        data = os.read(fd, found.st_size + 1)
        if len(data) > found.st_size:  # it grew since the fstat: read on to its end
            parts = [data]
            while chunk := os.read(fd, 1 << 16):
                parts.append(chunk)
            data = b"".join(parts)
        return _Source(data, (found.st_dev, found.st_ino))
    finally:
        os.close(fd)


class _SourceLoader(importlib.abc.Loader):
    """Runs a module from the source its finder read (or an empty package); no bytecode files."""

    def __init__(self, path: Path | None, source: _Source | None = None,
                 codes: CodeCache | None = None) -> None:
        self.path = path
        self.source = source
        self.codes = codes

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        if self.path is None or self.source is None:  # a directory without __init__.py: an empty package
            return
        if self.codes is None:
            code = compile(self.source.data, str(self.path), "exec", dont_inherit=True)
        else:
            code = self.codes.code_for(self.path, self.source.data, self.source.identity)
        exec(code, module.__dict__)


@dataclass(frozen=True)
class _Root:
    directory: Path  # for "pkg.module": <plugin_dir>/pkg (or <plugin_dir>/pkg.py)
    overrides: Mapping[Path, bytes]  # verified source bytes to compile instead of the file
    # Every module name the finder has resolved under this root: what unloading forgets,
    # without a scan of sys.modules per unload (a daemon stopping N plugins would make N).
    modules: list[str] = field(default_factory=list)


class PluginFinder(importlib.abc.MetaPathFinder):
    """Resolves ``<root>`` and ``<root>.x.y`` to files under the directory registered for
    ``<root>``, for the unique root names of the loads of one runtime.

    A runtime puts its finder first on ``sys.meta_path`` when it is entered and removes it
    when it exits; loads only add and remove dictionary entries. (Changing ``sys.meta_path``
    per load could make an import running in another thread skip a finder.) Any name that is
    not a registered root is answered with None at the cost of one string comparison.
    """

    def __init__(self, codes: CodeCache | None = None, gate: ImportGate | None = None) -> None:
        self.roots: dict[str, _Root] = {}
        self.codes = codes
        self.gate = gate or ImportGate()  # the loads of one runtime go through it one at a time

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(ROOT_PREFIX):
            return None
        root_name, _, rest_text = fullname.partition(".")
        root = self.roots.get(root_name)
        if root is None:
            return None
        root.modules.append(fullname)
        rest = rest_text.split(".") if rest_text else []
        # The order ``locate_module`` looks in (and so the file a checksum covers). Each
        # candidate is read as it is looked for: a missing one costs one failed open.
        candidates = module_candidates(root.directory, rest)
        base = os.path.join(root.directory, *rest)
        for found in candidates:
            source = _read_source(found)
            if source is None:
                continue
            path = Path(found)
            verified = root.overrides.get(path)
            if verified is not None:  # the checked bytes are the bytes that run
                source = _Source(verified, source.identity)
            loader = _SourceLoader(path, source, self.codes)
            if found == candidates[0]:  # a package's __init__.py
                return importlib.util.spec_from_file_location(
                    fullname, path, loader=loader, submodule_search_locations=[base]
                )
            return importlib.util.spec_from_file_location(fullname, path, loader=loader)
        if os.path.isdir(base):
            spec = importlib.machinery.ModuleSpec(fullname, _SourceLoader(None), is_package=True)
            spec.submodule_search_locations = [base]
            return spec
        return None


@dataclass
class LoadedModule:
    """One import of a plugin: its unique root module name, finder and the plugin object."""

    root_name: str
    module_name: str
    module_file: Path
    plugin: Any
    finder: PluginFinder
    checksum: str | None = None
    unloaded: bool = field(default=False)

    def unload(self) -> None:
        """Forget every module of this load so the plugin's code can be collected."""
        if self.unloaded:
            return
        self.unloaded = True
        root = self.finder.roots.pop(self.root_name, None)
        for key in root.modules if root is not None else ():
            sys.modules.pop(key, None)
        self.plugin = None


def import_plugin(request: LoadRequest, entry: PythonEntryPoint, finder: PluginFinder) -> LoadedModule:
    """Import the entry point's module under a fresh unique name and instantiate the class.

    Blocking (reads files, runs module code): call it in a worker thread.
    """
    plugin_dir = Path(os.path.abspath(request.plugin_dir))  # not resolved: see the module's docstring
    overrides: dict[Path, bytes] = {}
    checksum = None
    if request.checksum is not None:  # the entry module's bytes are read and checked before any code runs
        module_file, _ = locate_module(plugin_dir, entry.parts)
        if module_file is None:
            raise _entry_module_missing(request, entry, plugin_dir)
        data = module_file.read_bytes()
        checksum = verify_bytes(data, request.checksum)
        overrides[module_file] = data
    safe = re.sub(r"[^A-Za-z0-9_]", "_", request.name)
    root_name = f"{ROOT_PREFIX}{safe}_{uuid.uuid4().hex[:12]}"
    parts = entry.parts
    module_name = ".".join([root_name, *parts[1:]])
    loaded = LoadedModule(root_name, module_name, Path(), None, finder, checksum)
    finder.roots[root_name] = _Root(plugin_dir / parts[0], overrides)
    try:
        with finder.gate.passage():  # see mfx.runtimes.import_gate
            module = _import_entry_module(request, entry, module_name, plugin_dir)
            loaded.module_file = Path(getattr(module, "__file__", None) or plugin_dir)
            loaded.plugin = _instantiate(request, entry, module, loaded.module_file)
        return loaded
    except BaseException:
        loaded.unload()
        raise


def _import_entry_module(request: LoadRequest, entry: PythonEntryPoint, module_name: str,
                         plugin_dir: Path) -> types.ModuleType:
    root_name, parts = module_name.partition(".")[0], entry.parts
    # The entry module and the packages it is in: a missing one is a missing entry point.
    chain = {".".join([root_name, *parts[1:i]]) for i in range(1, len(parts) + 1)}
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name in chain:
            raise _entry_module_missing(request, entry, plugin_dir) from None
        if exc.name is not None and exc.name.startswith(root_name):
            raise PluginLoadError(
                f"{request.name}: {entry}: cannot import {exc.name.replace(root_name, parts[0], 1)!r} "
                f"from {plugin_dir}; inside the package use relative imports"
            ) from exc
        raise _load_error(request, entry, exc) from exc
    except Exception as exc:
        raise _load_error(request, entry, exc) from exc


def _instantiate(request: LoadRequest, entry: PythonEntryPoint, module: types.ModuleType, module_file: Path) -> Any:
    target = getattr(module, entry.attribute, None)
    if target is None:
        raise EntryPointNotFoundError(
            f"{request.name}: entry point {entry}: {module_file} defines no {entry.attribute!r}"
        )
    if not isinstance(target, type):
        raise PluginLoadError(
            f"{request.name}: entry point {entry}: {entry.attribute!r} is a "
            f"{type(target).__name__}, expected a class"
        )
    try:
        return target()
    except Exception as exc:
        raise _load_error(request, entry, exc) from exc


def _entry_module_missing(request: LoadRequest, entry: PythonEntryPoint, plugin_dir: Path) -> EntryPointNotFoundError:
    looked = ", ".join(module_candidates(plugin_dir, entry.parts))
    return EntryPointNotFoundError(
        f"{request.name}: entry point {entry}: no module {entry.module!r} in {plugin_dir} "
        f"(looked for {looked}); check spec.entryPoint and the plugin's files"
    )


def _load_error(request: LoadRequest, entry: PythonEntryPoint, exc: BaseException) -> PluginLoadError:
    tb = "".join(traceback.format_exception(exc))
    request.log(
        PluginLogRecord(request.name, LogLevel.ERROR, f"loading {entry} failed", "python", {"traceback": tb})
    )
    err = PluginLoadError(f"{request.name}: loading {entry} failed: {type(exc).__name__}: {exc}")
    err.plugin_traceback = tb  # type: ignore[attr-defined]
    return err
