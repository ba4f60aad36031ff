"""A plugin that does not follow this mfx's ABI is refused the same way in every runtime:
``AbiMismatchError``, reason AbiMismatch, not retryable (the same bytes will not match on
the next attempt either, so the controller stalls instead of restarting)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mfx.errors import AbiMismatchError
from mfx.runtimes.clib import CLibraryRuntime
from mfx.runtimes.wasm import WasmRuntime
from tests.test_clib_runtime import build_fake
from tests.test_clib_runtime import request as clib_request
from tests.test_wasm_runtime import ECHO, NO_ABI, UNKNOWN_IMPORT, abi_module, write_module
from tests.test_wasm_runtime import request as wasm_request

pytestmark = pytest.mark.anyio

UNKNOWN_WASI_FUNCTION = abi_module(
    "(call $ret (local.get $in) (local.get $il))",
    imports='(import "wasi_snapshot_preview1" "open_the_pod_bay_doors" (func (param i32) (result i32)))')

MISTYPED_WASI_FUNCTION = abi_module(
    "(call $ret (local.get $in) (local.get $il))",
    imports='(import "wasi_snapshot_preview1" "fd_write" (func (param i64) (result i32)))')


def assert_permanent(error: AbiMismatchError) -> None:
    assert error.reason == "AbiMismatch"
    assert error.retryable is False


async def test_a_c_library_built_for_another_abi_is_a_permanent_mismatch(tmp_path: Path) -> None:
    build_fake(tmp_path, abi=2)
    async with CLibraryRuntime() as runtime:
        with pytest.raises(AbiMismatchError) as caught:
            await runtime.load(clib_request(tmp_path, tmp_path, "libfake.so"))
    assert_permanent(caught.value)


async def test_a_c_library_missing_a_symbol_is_the_same_permanent_mismatch(tmp_path: Path) -> None:
    build_fake(tmp_path, omit="mfx_plugin_health")
    async with CLibraryRuntime() as runtime:
        with pytest.raises(AbiMismatchError, match=r"does not export mfx_plugin_health\(\)") as caught:
            await runtime.load(clib_request(tmp_path, tmp_path, "libfake.so"))
    assert_permanent(caught.value)


@pytest.mark.parametrize(("wat", "names"), [
    (NO_ABI, "missing exports: alloc, call"),
    (UNKNOWN_IMPORT, "env::steal_credentials"),
    (UNKNOWN_WASI_FUNCTION, "open_the_pod_bay_doors"),
    (MISTYPED_WASI_FUNCTION, "fd_write must be a function"),
], ids=["missing-exports", "unknown-host-import", "unknown-wasi-function", "mistyped-wasi-function"])
async def test_a_wasm_module_off_the_abi_is_the_same_permanent_mismatch(
        tmp_path: Path, wat: str, names: str) -> None:
    write_module(tmp_path / "off", "off", wat)
    async with WasmRuntime() as runtime:
        with pytest.raises(AbiMismatchError, match=names) as caught:
            await runtime.load(wasm_request(tmp_path / "off", "off"))
        assert_permanent(caught.value)
        write_module(tmp_path / "echo", "echo", ECHO)
        good = await runtime.load(wasm_request(tmp_path / "echo", "echo"))
        assert await good.call("echo", [1]) == [1]
