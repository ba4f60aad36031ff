"""``type: dynamic_library``: in-process plugins, Python modules or C-ABI shared objects.

The entry point picks the flavour: ``python:pkg.module:Class`` loads a Python class
(:mod:`mfx.runtimes.python_module`); a path ending in ``.so`` (or ``.so.N``) loads a shared
object through the C ABI (:mod:`mfx.runtimes.clib`). Both run with no isolation: this type
is for trusted, fast code (audio processing); use ``rpc`` or ``webassembly`` otherwise.
"""

from __future__ import annotations

import re
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Self

from mfx.errors import EntryPointNotFoundError
from mfx.runtimes.base import Loaded, LoadRequest, PluginInstance, PluginType, StartStep, bounded
from mfx.runtimes.clib import CLibraryRuntime
from mfx.runtimes.python_module import PYTHON_PREFIX, PythonModuleRuntime

_SHARED_OBJECT = re.compile(r"\.so(\.\d+)*$")


def is_shared_object(entry_point: str) -> bool:
    return bool(_SHARED_OBJECT.search(entry_point))


class DynamicLibraryRuntime:
    type = PluginType.DYNAMIC_LIBRARY

    def __init__(self, private_dir: Path | None = None) -> None:
        self.python = PythonModuleRuntime()
        self.clib = CLibraryRuntime(private_dir)
        self._stack: AsyncExitStack | None = None

    async def __aenter__(self) -> Self:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(self.python)
            await stack.enter_async_context(self.clib)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def load_started(self, request: LoadRequest, *, until: StartStep = StartStep.CHECKED,
                           health_seconds: float = 5.0) -> Loaded:
        if request.entry_point.strip().startswith(PYTHON_PREFIX):
            return await self.python.load_started(request, until=until, health_seconds=health_seconds)
        return Loaded(await bounded(f"loading {request.name}", request.start_timeout_seconds, self.load(request)),
                      StartStep.LOADED)

    async def load(self, request: LoadRequest) -> PluginInstance:
        entry = request.entry_point.strip()
        if entry.startswith(PYTHON_PREFIX):
            return await self.python.load(request)
        if is_shared_object(entry):
            return await self.clib.load(request)
        raise EntryPointNotFoundError(
            f"{request.name}: spec.entryPoint: a dynamic_library entry point is "
            f"'python:package.module:Class' or a path to a .so file, got {request.entry_point!r}"
        )
