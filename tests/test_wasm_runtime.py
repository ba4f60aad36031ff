"""The webassembly runtime: real wasmtime, real modules (built from WAT at test time), and
hostile plugins that must fail one call each and never the runtime."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from mfx.errors import (
    ChecksumMismatchError,
    EntryPointNotFoundError,
    MemoryLimitExceededError,
    OutOfFuelError,
    PluginInitError,
    PluginLoadError,
    PluginRuntimeError,
    PluginTimeoutError,
    ProtocolError,
    SecurityError,
    TrapError,
)
from mfx.runtimes.base import AllowedPath, Limits, LoadRequest, PluginLogRecord, PluginType
from mfx.runtimes.wasm import DEFAULT_MEMORY_BYTES, WasmPluginInstance, WasmRuntime

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[1]

# The ABI boilerplate every test module shares: memory, a mark/release arena, and a
# helper returning a static response. ``$ret`` packs (ptr, len) as the ABI wants.
PREAMBLE = r"""
  (memory (export "memory") {pages})
  (global $top (mut i32) (i32.const 65536))
  (func $alloc (export "alloc") (param $n i32) (result i32) (local $p i32)
    (local.set $p (global.get $top))
    (global.set $top (i32.and (i32.add (i32.add (local.get $p) (local.get $n)) (i32.const 7)) (i32.const -8)))
    (local.get $p))
  (func (export "dealloc") (param $p i32) (param $n i32)
    (if (i32.and (i32.ge_u (local.get $p) (i32.const 65536)) (i32.lt_u (local.get $p) (global.get $top)))
      (then (global.set $top (local.get $p)))))
  (func $ret (param $p i32) (param $n i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $p)) (i64.const 32)) (i64.extend_i32_u (local.get $n))))
"""


def abi_module(call_body: str, *, extra: str = "", imports: str = "", pages: int = 2) -> str:
    return (f"(module {imports} {PREAMBLE.format(pages=pages)} {extra}\n"
            f"  (func (export \"call\") (param $m i32) (param $ml i32) (param $in i32) (param $il i32)"
            f" (result i64) {call_body}))")


# Echoes its input back: the good plugin every hostile test checks afterwards.
ECHO = abi_module("(call $ret (local.get $in) (local.get $il))")

INFINITE_LOOP = abi_module("(loop $forever (br $forever)) (unreachable)")

# Grows memory a page at a time until growth is refused, then aborts like an allocator does.
MEMORY_BOMB = abi_module("""
    (block $refused (loop $grow
      (br_if $refused (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
      (br $grow)))
    (unreachable)""")

INVALID_JSON = abi_module(
    "(call $ret (i32.const 1024) (i32.const 9))",
    extra='(data (i32.const 1024) "{not json")')

PLUGIN_ERROR = abi_module(
    "(call $ret (i32.const 1024) (i32.const 54))",
    extra=r'(data (i32.const 1024) "{\"error\":{\"type\":\"NotFound\",\"message\":\"no such song\"}}")')

DIVIDE_BY_ZERO = abi_module(
    "(drop (call $boom (i32.const 0))) (call $ret (local.get $in) (local.get $il))",
    extra="(func $boom (param $d i32) (result i32) (i32.div_u (i32.const 1) (local.get $d)))")

UNKNOWN_IMPORT = abi_module(
    "(call $steal) (call $ret (local.get $in) (local.get $il))",
    imports='(import "env" "steal_credentials" (func $steal))')

NO_ABI = '(module (memory (export "memory") 1) (func (export "dealloc") (param i32 i32)))'

# Logs through mfx::log and writes a line to WASI stdout, then echoes.
CHATTY = abi_module(
    """
    (call $log (i32.const 2) (i32.const 1024) (i32.const 14))
    (i32.store (i32.const 2048) (i32.const 1040))
    (i32.store (i32.const 2052) (i32.const 15))
    (drop (call $fd_write (i32.const 1) (i32.const 2048) (i32.const 1) (i32.const 2056)))
    (call $ret (local.get $in) (local.get $il))""",
    imports="""(import "mfx" "log" (func $log (param i32 i32 i32)))
      (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))""",
    extra='(data (i32.const 1024) "careful, loud!") (data (i32.const 1040) "hello, stdout!\\n")')

# A file probe written against WASI preview 1. Method "read" opens the path given as a
# JSON string (no escapes) relative to the first preopened directory (fd 3) and returns
# {"errno":N,"content":"..."}; method "write" creates/truncates it and writes 8 bytes.
FS_PROBE = abi_module(
    r"""
    (local $err i32)
    (if (i32.eq (i32.load8_u (local.get $m)) (i32.const 119))
      (then
        (local.set $err (call $path_open (i32.const 3) (i32.const 0)
          (i32.add (local.get $in) (i32.const 1)) (i32.sub (local.get $il) (i32.const 2))
          (i32.const 9) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 4096)))
        (if (i32.eqz (local.get $err)) (then
          (i32.store (i32.const 4100) (i32.const 2048)) (i32.store (i32.const 4104) (i32.const 8))
          (local.set $err (call $fd_write (i32.load (i32.const 4096)) (i32.const 4100) (i32.const 1) (i32.const 4108)))
          (drop (call $fd_close (i32.load (i32.const 4096))))))
        (return (call $respond (local.get $err) (i32.const 0) (i32.const 0)))))
    (local.set $err (call $path_open (i32.const 3) (i32.const 0)
      (i32.add (local.get $in) (i32.const 1)) (i32.sub (local.get $il) (i32.const 2))
      (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 4096)))
    (if (local.get $err) (then (return (call $respond (local.get $err) (i32.const 0) (i32.const 0)))))
    (i32.store (i32.const 4100) (i32.const 12288)) (i32.store (i32.const 4104) (i32.const 1024))
    (local.set $err (call $fd_read (i32.load (i32.const 4096)) (i32.const 4100) (i32.const 1) (i32.const 4108)))
    (drop (call $fd_close (i32.load (i32.const 4096))))
    (call $respond (local.get $err) (i32.const 12288) (i32.load (i32.const 4108)))""",
    imports="""
      (import "wasi_snapshot_preview1" "path_open"
        (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))""",
    extra=r"""
      (data (i32.const 2048) "{\"errno\":")
      (data (i32.const 2064) ",\"content\":\"")
      (func $respond (param $errno i32) (param $src i32) (param $n i32) (result i64) (local $o i32)
        (memory.copy (i32.const 8192) (i32.const 2048) (i32.const 9))
        (local.set $o (i32.const 8201))
        (if (i32.ge_u (local.get $errno) (i32.const 10)) (then
          (i32.store8 (local.get $o) (i32.add (i32.const 48) (i32.rem_u (i32.div_u (local.get $errno) (i32.const 10)) (i32.const 10))))
          (local.set $o (i32.add (local.get $o) (i32.const 1)))))
        (i32.store8 (local.get $o) (i32.add (i32.const 48) (i32.rem_u (local.get $errno) (i32.const 10))))
        (local.set $o (i32.add (local.get $o) (i32.const 1)))
        (memory.copy (local.get $o) (i32.const 2064) (i32.const 12))
        (local.set $o (i32.add (local.get $o) (i32.const 12)))
        (memory.copy (local.get $o) (local.get $src) (local.get $n))
        (local.set $o (i32.add (local.get $o) (local.get $n)))
        (i32.store16 (local.get $o) (i32.const 0x7d22))
        (call $ret (i32.const 8192) (i32.sub (i32.add (local.get $o) (i32.const 2)) (i32.const 8192))))""")


@pytest.fixture
async def runtime() -> AsyncIterator[WasmRuntime]:
    async with WasmRuntime() as rt:
        yield rt


def write_module(directory: Path, name: str, wat: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.wasm"
    path.write_bytes(wasmtime.wat2wasm(wat))
    return path


def request(plugin_dir: Path, name: str, *, limits: Limits | None = None,
            logs: list[PluginLogRecord] | None = None, **extra: Any) -> LoadRequest:
    return LoadRequest(
        name=name, version="1.0.0", type=PluginType.WEBASSEMBLY, entry_point=f"{name}.wasm",
        plugin_dir=plugin_dir, state_dir=plugin_dir / "state",
        limits=limits or Limits(fuel=1_000_000, memory_bytes=1 << 20, timeout_seconds=5.0),
        log=(logs.append if logs is not None else (lambda record: None)), **extra)


async def load(rt: WasmRuntime, tmp_path: Path, name: str, wat: str, **kwargs: Any) -> WasmPluginInstance:
    write_module(tmp_path / name, name, wat)
    instance = await rt.load(request(tmp_path / name, name, **kwargs))
    await instance.initialize({})
    await instance.start()
    return instance


async def assert_still_serves(rt: WasmRuntime, tmp_path: Path) -> None:
    good = await load(rt, tmp_path, "echo", ECHO)
    assert await good.call("echo", {"still": "alive"}) == {"still": "alive"}
    await good.cleanup()


@pytest.fixture
def now_playing_dir(tmp_path: Path) -> Path:
    """A copy of plugins/now-playing built by its own Makefile."""
    plugin_dir = tmp_path / "now-playing"
    shutil.copytree(REPO / "plugins" / "now-playing", plugin_dir,
                    ignore=shutil.ignore_patterns("*.wasm"))
    subprocess.run(["make", "-s", "-C", str(plugin_dir), f"PYTHON={sys.executable}"], check=True)
    return plugin_dir


async def test_now_playing_plugin_builds_with_make_and_formats_a_status_line(
        runtime: WasmRuntime, now_playing_dir: Path, tmp_path: Path) -> None:
    plugin_dir = now_playing_dir
    wasm = plugin_dir / "now_playing.wasm"
    checksum = "sha256:" + hashlib.sha256(wasm.read_bytes()).hexdigest()
    logs: list[PluginLogRecord] = []
    instance = await runtime.load(LoadRequest(
        name="now-playing", version="1.0.0", type=PluginType.WEBASSEMBLY,
        entry_point="now_playing.wasm", plugin_dir=plugin_dir, state_dir=tmp_path / "state",
        limits=Limits(fuel=1_000_000, memory_bytes=2 << 20, timeout_seconds=1.0),
        checksum=checksum, log=logs.append))
    await instance.initialize({})
    await instance.start()
    await instance.health()

    track = {"title": "Bohemian Rhapsody", "artist": "Queen", "position": 83.4, "duration": 354}
    assert await instance.call("format", track) == {"line": "Queen - Bohemian Rhapsody  1:23/5:54"}
    assert await instance.call("format", {"title": "Só \"live\"", "position": 3725, "duration": 7200}) \
        == {"line": 'Só "live"  1:02:05/2:00:00'}
    assert await instance.call("format", {"title": "Intro", "artist": None}) == {"line": "Intro"}
    with pytest.raises(PluginRuntimeError, match="InvalidInput"):
        await instance.call("format", {"title": 42})
    with pytest.raises(PluginRuntimeError, match="UnknownMethod"):
        await instance.call("play", {})

    assert [r.message for r in logs if r.stream == "wasm"] == ["now-playing ready"]
    details = instance.details
    assert details["digest"] == checksum
    assert details["calls"] == 5 and details["traps"] == 0
    assert 0 < details["fuelLastCall"] <= details["fuelConsumedTotal"]
    # The arena is released after every call: many calls do not grow memory.
    before = details["memoryBytes"]
    for second in range(300):
        await instance.call("format", {**track, "position": second})
    assert instance.details["memoryBytes"] == before
    await instance.stop()
    await instance.cleanup()


async def test_a_module_that_does_not_match_its_checksum_is_refused(
        runtime: WasmRuntime, tmp_path: Path) -> None:
    write_module(tmp_path / "echo", "echo", ECHO)
    with pytest.raises(ChecksumMismatchError, match="echo.wasm: checksum mismatch"):
        await runtime.load(request(tmp_path / "echo", "echo", checksum="sha256:" + "0" * 64))
    with pytest.raises(SecurityError, match="echo.wasm: spec.security.checksum: expected"):
        await runtime.load(request(tmp_path / "echo", "echo", checksum="md5:abc"))


async def test_an_entry_point_outside_the_plugin_directory_is_refused(
        runtime: WasmRuntime, tmp_path: Path) -> None:
    write_module(tmp_path, "outside", ECHO)
    req = request(tmp_path / "inside", "outside")
    with pytest.raises(EntryPointNotFoundError, match="outside its plugin directory"):
        await runtime.load(LoadRequest(**{**req.__dict__, "entry_point": "../outside.wasm"}))
    with pytest.raises(EntryPointNotFoundError, match="does not exist"):
        await runtime.load(request(tmp_path / "missing", "missing"))


async def test_each_plugin_version_is_compiled_once(runtime: WasmRuntime, tmp_path: Path) -> None:
    first = await load(runtime, tmp_path, "echo", ECHO)
    second = await runtime.load(request(tmp_path / "echo", "echo"))
    assert runtime.compiled_modules() == 1
    assert await first.call("x", 1) == 1 and await second.call("x", 2) == 2


async def test_an_infinite_loop_runs_out_of_fuel_and_the_plugin_recovers(
        runtime: WasmRuntime, tmp_path: Path) -> None:
    looping = await load(runtime, tmp_path, "loop", INFINITE_LOOP,
                         limits=Limits(fuel=200_000, timeout_seconds=30.0))
    with pytest.raises(OutOfFuelError, match="ran out of fuel"):
        await looping.call("spin", None)
    assert looping.details["traps"] == 1
    assert looping.details["reinstantiations"] == 1
    assert looping.details["fuelLastCall"] == 200_000
    # A trap fails one call, never the plugin: the next call runs on a fresh store.
    with pytest.raises(OutOfFuelError):
        await looping.call("spin", None)
    assert looping.details["traps"] == 2
    await assert_still_serves(runtime, tmp_path)


async def test_an_infinite_loop_with_unlimited_fuel_hits_the_deadline(
        runtime: WasmRuntime, tmp_path: Path) -> None:
    looping = await load(runtime, tmp_path, "loop", INFINITE_LOOP,
                         limits=Limits(fuel=None, timeout_seconds=0.05))
    with pytest.raises(PluginTimeoutError) as caught:
        await looping.call("spin", None)
    assert caught.value.reason == "DeadlineExceeded"
    assert "deadline of 0.05s" in str(caught.value)
    await assert_still_serves(runtime, tmp_path)


async def test_a_memory_bomb_hits_the_memory_limit(runtime: WasmRuntime, tmp_path: Path) -> None:
    bomb = await load(runtime, tmp_path, "bomb", MEMORY_BOMB,
                      limits=Limits(fuel=10_000_000, memory_bytes=4 << 20))
    with pytest.raises(MemoryLimitExceededError, match="growth refused"):
        await bomb.call("explode", None)
    assert bomb.details["traps"] == 1
    await assert_still_serves(runtime, tmp_path)


async def test_a_module_needing_more_memory_than_allowed_fails_to_load(
        runtime: WasmRuntime, tmp_path: Path) -> None:
    write_module(tmp_path / "big", "big", abi_module("(call $ret (local.get $in) (local.get $il))", pages=64))
    with pytest.raises(PluginLoadError) as caught:
        await runtime.load(request(tmp_path / "big", "big", limits=Limits(memory_bytes=1 << 20)))
    assert caught.value.reason == "MemoryLimitExceeded"
    await assert_still_serves(runtime, tmp_path)


async def test_other_traps_carry_the_wasm_backtrace(runtime: WasmRuntime, tmp_path: Path) -> None:
    plugin = await load(runtime, tmp_path, "divide", DIVIDE_BY_ZERO)
    with pytest.raises(TrapError) as caught:
        await plugin.call("divide", 1)
    message = str(caught.value)
    assert "integer divide by zero" in message
    assert "wasm backtrace" in message and "boom" in message
    await assert_still_serves(runtime, tmp_path)


async def test_wasi_reads_only_inside_allowed_paths_and_writes_only_where_writable(
        runtime: WasmRuntime, tmp_path: Path) -> None:
    music = tmp_path / "music"
    music.mkdir()
    (music / "song.txt").write_text("inside the preopen")
    (tmp_path / "secret.txt").write_text("host secret")
    writable = tmp_path / "cache"
    writable.mkdir()

    reader = await load(runtime, tmp_path, "probe", FS_PROBE,
                        allowed_paths=(AllowedPath(music, writable=False),))
    assert await reader.call("read", "song.txt") == {"errno": 0, "content": "inside the preopen"}
    for path in ("../secret.txt", str(tmp_path / "secret.txt"), "../../etc/passwd"):
        answer = await reader.call("read", path)
        assert answer["errno"] != 0 and answer["content"] == "", path
    # Read-only is enforced: no new file, no overwrite.
    assert (await reader.call("write", "new.txt"))["errno"] != 0
    assert (await reader.call("write", "song.txt"))["errno"] != 0
    assert sorted(p.name for p in music.iterdir()) == ["song.txt"]
    assert (music / "song.txt").read_text() == "inside the preopen"

    writer = await runtime.load(request(tmp_path / "probe", "probe",
                                        allowed_paths=(AllowedPath(writable, writable=True),)))
    assert await writer.call("write", "new.txt") == {"errno": 0, "content": ""}
    assert (writable / "new.txt").read_bytes() == b'{"errno"'  # the 8 bytes the probe writes
    await assert_still_serves(runtime, tmp_path)


async def test_a_module_without_preopens_cannot_open_anything(
        runtime: WasmRuntime, tmp_path: Path) -> None:
    probe = await load(runtime, tmp_path, "probe", FS_PROBE)
    answer = await probe.call("read", "/etc/hostname")
    assert answer["errno"] != 0  # fd 3 does not exist: EBADF


async def test_log_calls_and_stdout_are_forwarded_to_the_plugin_log(
        runtime: WasmRuntime, tmp_path: Path) -> None:
    logs: list[PluginLogRecord] = []
    chatty = await load(runtime, tmp_path, "chatty", CHATTY, logs=logs)
    assert await chatty.call("talk", [1]) == [1]
    assert [(r.stream, r.level.value, r.message) for r in logs] == [
        ("wasm", "warning", "careful, loud!"), ("stdout", "info", "hello, stdout!")]
    assert all(r.plugin == "chatty" for r in logs)


async def test_an_import_the_host_does_not_provide_fails_the_load_by_name(
        runtime: WasmRuntime, tmp_path: Path) -> None:
    write_module(tmp_path / "thief", "thief", UNKNOWN_IMPORT)
    with pytest.raises(PluginLoadError, match="env::steal_credentials") as caught:
        await runtime.load(request(tmp_path / "thief", "thief"))
    assert caught.value.reason == "AbiMismatch"
    await assert_still_serves(runtime, tmp_path)


async def test_a_module_without_the_abi_exports_fails_the_load_naming_them(
        runtime: WasmRuntime, tmp_path: Path) -> None:
    write_module(tmp_path / "bare", "bare", NO_ABI)
    with pytest.raises(PluginLoadError, match="missing exports: alloc, call") as caught:
        await runtime.load(request(tmp_path / "bare", "bare"))
    assert "dealloc" not in str(caught.value)  # present with the right type
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "garbage.wasm").write_bytes(b"\0asm-not-really")
    with pytest.raises(PluginLoadError, match="not a valid WebAssembly module"):
        await runtime.load(request(tmp_path / "garbage", "garbage"))
    await assert_still_serves(runtime, tmp_path)


async def test_a_response_that_is_not_json_is_a_protocol_error(
        runtime: WasmRuntime, tmp_path: Path) -> None:
    broken = await load(runtime, tmp_path, "broken", INVALID_JSON)
    with pytest.raises(ProtocolError, match="invalid JSON.*not json"):
        await broken.call("anything", {})
    await assert_still_serves(runtime, tmp_path)


async def test_an_error_response_is_raised_as_the_plugins_error(
        runtime: WasmRuntime, tmp_path: Path) -> None:
    plugin = await load(runtime, tmp_path, "errs", PLUGIN_ERROR)
    with pytest.raises(PluginRuntimeError, match="NotFound: no such song") as caught:
        await plugin.call("lookup", {"id": 1})
    assert caught.value.plugin_error_type == "NotFound"  # type: ignore[attr-defined]
    assert plugin.details["traps"] == 0


async def test_inline_calls_give_the_same_results_and_limits(tmp_path: Path) -> None:
    async with WasmRuntime(inline_calls=True) as rt:
        echo = await load(rt, tmp_path, "echo", ECHO)
        assert await echo.call("x", {"a": [1, 2]}) == {"a": [1, 2]}
        looping = await load(rt, tmp_path, "loop", INFINITE_LOOP,
                             limits=Limits(fuel=None, timeout_seconds=0.05))
        with pytest.raises(PluginTimeoutError):
            await looping.call("spin", None)
        assert await echo.call("x", "again") == "again"


async def test_a_stopped_plugin_refuses_calls_and_the_runtime_must_be_running(tmp_path: Path) -> None:
    async with WasmRuntime() as rt:
        echo = await load(rt, tmp_path, "echo", ECHO)
        await echo.stop()
        with pytest.raises(PluginRuntimeError, match="stopped"):
            await echo.call("x", 1)
        await echo.start()
        assert await echo.call("x", 1) == 1
    with pytest.raises(PluginRuntimeError, match="runtime .* has stopped"):
        await echo.call("x", 1)
    with pytest.raises(PluginLoadError, match="not running"):
        await rt.load(request(tmp_path / "echo", "echo"))


async def test_health_and_init_exports_report_failure(runtime: WasmRuntime, tmp_path: Path) -> None:
    grumpy = abi_module(
        "(call $ret (local.get $in) (local.get $il))",
        extra='(func (export "health") (result i32) (i32.const 7))'
              '(func (export "init") (param i32 i32) (result i32) (i32.const 1))')
    write_module(tmp_path / "grumpy", "grumpy", grumpy)
    instance = await runtime.load(request(tmp_path / "grumpy", "grumpy"))
    with pytest.raises(PluginInitError, match="init returned 1"):
        await instance.initialize({"volume": 11})
    with pytest.raises(PluginRuntimeError, match=r"health\(\) returned 7") as caught:
        await instance.health()
    assert caught.value.reason == "Unhealthy"
    assert await instance.call("still", "works") == "works"



async def test_a_plugin_without_a_memory_limit_gets_the_default_cap(
        runtime: WasmRuntime, tmp_path: Path) -> None:
    greedy = await load(runtime, tmp_path, "greedy", MEMORY_BOMB,
                        limits=Limits(fuel=10_000_000, memory_bytes=None))
    assert greedy.details["memoryLimitBytes"] == DEFAULT_MEMORY_BYTES < 1 << 30
    with pytest.raises(MemoryLimitExceededError, match=f"of {DEFAULT_MEMORY_BYTES} bytes"):
        await greedy.call("grab", None)
    await assert_still_serves(runtime, tmp_path)


async def test_the_epoch_ticker_runs_only_once_a_module_is_loaded(tmp_path: Path) -> None:
    """A daemon without WebAssembly plugins wakes no thread every tick."""
    import threading

    def tickers() -> int:
        return sum(1 for thread in threading.enumerate() if thread.name == "mfx-wasm-epoch")

    async with WasmRuntime() as rt:
        assert tickers() == 0
        instance = await load(rt, tmp_path, "echo", ECHO)
        assert tickers() == 1
        await instance.cleanup()
    assert tickers() == 0
