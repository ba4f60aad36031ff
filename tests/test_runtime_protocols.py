"""``implements``: the runtime-checkable protocols decided once per class, as ``isinstance`` decides them."""

from __future__ import annotations

import pytest

from mfx.runtimes.base import EagerRuntime, QuickHealth, implements
from mfx.runtimes.clib import CLibraryRuntime
from mfx.runtimes.dynamic_library import DynamicLibraryRuntime
from mfx.runtimes.hot_reload import HotReloadRuntime
from mfx.runtimes.python_module import PythonModuleInstance, PythonModuleRuntime
from mfx.runtimes.rpc import RpcRuntime
from mfx.runtimes.wasm import WasmRuntime


class _Quick:
    def quick_health(self) -> None:
        return None


class _SetToNone:
    quick_health = None


@pytest.mark.parametrize("cls", [CLibraryRuntime, DynamicLibraryRuntime, HotReloadRuntime, PythonModuleRuntime, RpcRuntime,
                                 WasmRuntime, PythonModuleInstance, _Quick, _SetToNone, object])
@pytest.mark.parametrize("protocol", [EagerRuntime, QuickHealth])
def test_implements_answers_as_isinstance_does(cls: type, protocol: type) -> None:
    obj = cls.__new__(cls)  # no constructor runs: the answer is the class's
    assert implements(obj, protocol) is isinstance(obj, protocol) is implements(obj, protocol)


def test_the_runtimes_that_start_eagerly_and_the_instances_with_quick_checks_are_seen() -> None:
    assert implements(PythonModuleRuntime.__new__(PythonModuleRuntime), EagerRuntime)
    assert not implements(RpcRuntime.__new__(RpcRuntime), EagerRuntime)
    assert implements(_Quick(), QuickHealth) and not implements(_SetToNone(), QuickHealth)
