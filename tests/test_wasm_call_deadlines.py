"""Every call into a WebAssembly plugin ends at its deadline, whatever the guest is doing:
epoch interruption stops wasm code, but a guest blocked in a host or WASI call (a FIFO that
never gets a writer, a sleep of an hour) must not hold the caller, the plugin's neighbours,
or the thread pool the rest of the daemon shares."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from mfx.errors import PluginCrashedError, PluginError, PluginTimeoutError
from mfx.runtimes.base import AllowedPath, Limits
from mfx.runtimes.wasm import WasmRuntime
from tests.test_wasm_runtime import (
    ECHO,
    FS_PROBE,
    INFINITE_LOOP,
    abi_module,
    load,
    request,
    write_module,
)

pytestmark = pytest.mark.anyio

HOUR_NS = 3600 * 10**9
MILLISECOND_NS = 10**6
STUCK_PLUGINS = 45  # more than anyio's default thread limiter has tokens (40)

# Sleeps through WASI poll_oneoff with one relative clock subscription: an hour when the
# method starts with "l" (long), a millisecond otherwise; then echoes its input.
SLEEPER = abi_module(
    f"""
    (i64.store (i32.const 1024) (i64.const 42))
    (i32.store8 (i32.const 1032) (i32.const 0))
    (i32.store (i32.const 1040) (i32.const 1))
    (i64.store (i32.const 1048)
      (select (i64.const {HOUR_NS}) (i64.const {MILLISECOND_NS})
        (i32.eq (i32.load8_u (local.get $m)) (i32.const 108))))
    (i64.store (i32.const 1056) (i64.const 0))
    (i32.store16 (i32.const 1064) (i32.const 0))
    (if (call $poll (i32.const 1024) (i32.const 1104) (i32.const 1) (i32.const 1200))
      (then (unreachable)))
    (if (i64.ne (i64.load (i32.const 1104)) (i64.const 42)) (then (unreachable)))
    (call $ret (local.get $in) (local.get $il))""",
    imports='(import "wasi_snapshot_preview1" "poll_oneoff" '
            '(func $poll (param i32 i32 i32 i32) (result i32)))')

# Polls its stdin (an fd_read subscription) and echoes its input only when the event says
# ENOTSUP (58): the sandbox has nothing to wait for on a descriptor.
FD_POLLER = abi_module(
    """
    (i64.store (i32.const 1024) (i64.const 7))
    (i32.store8 (i32.const 1032) (i32.const 1))
    (i32.store (i32.const 1040) (i32.const 0))
    (if (call $poll (i32.const 1024) (i32.const 1104) (i32.const 1) (i32.const 1200))
      (then (unreachable)))
    (if (i32.ne (i32.load (i32.const 1200)) (i32.const 1)) (then (unreachable)))
    (if (i32.ne (i32.load16_u (i32.const 1112)) (i32.const 58)) (then (unreachable)))
    (call $ret (local.get $in) (local.get $il))""",
    imports='(import "wasi_snapshot_preview1" "poll_oneoff" '
            '(func $poll (param i32 i32 i32 i32) (result i32)))')

# Reads its monotonic clock, sleeps until 1 ms later on that clock (an absolute clock
# subscription), checks the clock got there, then echoes its input.
ABSOLUTE_SLEEPER = abi_module(
    f"""
    (local $t i64)
    (if (call $now (i32.const 1) (i64.const 0) (i32.const 1304)) (then (unreachable)))
    (local.set $t (i64.add (i64.load (i32.const 1304)) (i64.const {MILLISECOND_NS})))
    (i64.store (i32.const 1024) (i64.const 42))
    (i32.store8 (i32.const 1032) (i32.const 0))
    (i32.store (i32.const 1040) (i32.const 1))
    (i64.store (i32.const 1048) (local.get $t))
    (i64.store (i32.const 1056) (i64.const 0))
    (i32.store16 (i32.const 1064) (i32.const 1))
    (if (call $poll (i32.const 1024) (i32.const 1104) (i32.const 1) (i32.const 1200))
      (then (unreachable)))
    (if (call $now (i32.const 1) (i64.const 0) (i32.const 1304)) (then (unreachable)))
    (if (i64.lt_u (i64.load (i32.const 1304)) (local.get $t)) (then (unreachable)))
    (call $ret (local.get $in) (local.get $il))""",
    imports='(import "wasi_snapshot_preview1" "poll_oneoff" '
            '(func $poll (param i32 i32 i32 i32) (result i32)))'
            '(import "wasi_snapshot_preview1" "clock_time_get" '
            '(func $now (param i32 i64 i32) (result i32)))')

SHORT_DEADLINE = Limits(fuel=None, memory_bytes=1 << 20, timeout_seconds=0.1)


@contextlib.contextmanager
def fifo_in(directory: Path) -> Iterator[Path]:
    """A FIFO nobody writes to; on exit a writer comes and goes, so every reader that is
    still blocked opening it gets end-of-file and its thread returns."""
    directory.mkdir(parents=True, exist_ok=True)
    fifo = directory / "never"
    os.mkfifo(fifo)
    try:
        yield fifo
    finally:
        with contextlib.suppress(OSError):  # ENXIO: no reader left
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


async def test_a_sleep_past_the_deadline_fails_the_call_and_a_short_one_is_served(
        tmp_path: Path) -> None:
    async with WasmRuntime() as runtime:
        sleeper = await load(runtime, tmp_path, "sleeper", SLEEPER, limits=SHORT_DEADLINE)
        with pytest.raises(PluginTimeoutError, match="poll_oneoff asked to sleep 3600s") as caught:
            await sleeper.call("long", {"n": 1})
        assert caught.value.reason == "DeadlineExceeded"
        assert await sleeper.call("short", {"n": 2}) == {"n": 2}
        async with anyio.create_task_group() as tg:
            for _ in range(STUCK_PLUGINS):
                tg.start_soon(expect_deadline, sleeper.call("long", None))
        assert await sleeper.call("short", "still serving") == "still serving"
        assert sleeper.details["abandonedCalls"] == 0


async def test_an_absolute_sleep_is_measured_on_the_guests_own_clock(tmp_path: Path) -> None:
    async with WasmRuntime() as runtime:
        sleeper = await load(runtime, tmp_path, "sleeper", SLEEPER, limits=SHORT_DEADLINE)
        absolute = await load(runtime, tmp_path, "absolute", ABSOLUTE_SLEEPER, limits=SHORT_DEADLINE)
        # Short sleeps until the store has lived longer than a whole deadline: its clock's
        # readings are then larger than any deadline, and must not be taken for durations.
        started = time.monotonic()
        while time.monotonic() - started < 2 * SHORT_DEADLINE.timeout_seconds:
            await absolute.call("warm up", None)
            await sleeper.call("short", None)
        assert await absolute.call("sleep", {"n": 4}) == {"n": 4}


async def test_polling_a_descriptor_is_refused_at_once(tmp_path: Path) -> None:
    async with WasmRuntime() as runtime:
        poller = await load(runtime, tmp_path, "poller", FD_POLLER, limits=SHORT_DEADLINE)
        assert await poller.call("poll", {"n": 3}) == {"n": 3}


async def expect_deadline(call: object) -> None:
    with pytest.raises(PluginTimeoutError):
        await call  # type: ignore[misc]


async def test_a_guest_blocked_in_a_host_call_is_abandoned_at_its_deadline(tmp_path: Path) -> None:
    exits: list[PluginError] = []
    with fifo_in(tmp_path / "shared") as fifo:
        async with WasmRuntime() as runtime:
            write_module(tmp_path / "probe", "probe", FS_PROBE)
            blocked = await runtime.load(request(
                tmp_path / "probe", "probe", limits=SHORT_DEADLINE, on_exit=exits.append,
                allowed_paths=(AllowedPath(fifo.parent),)))
            await blocked.start()
            with pytest.raises(PluginTimeoutError, match="blocked outside WebAssembly") as caught:
                await blocked.call("read", fifo.name)
            assert caught.value.reason == "DeadlineExceeded"
            # Not reused in an unknown state: the instance is gone and the controller told.
            assert [type(e) for e in exits] == [PluginTimeoutError]
            assert blocked.details["abandonedCalls"] == 1
            with pytest.raises(PluginCrashedError, match="must be reloaded"):
                await blocked.call("read", fifo.name)
            with pytest.raises(PluginCrashedError):
                await blocked.health()


async def test_stuck_plugins_hold_neither_their_neighbours_nor_the_shared_thread_pool(
        tmp_path: Path) -> None:
    with fifo_in(tmp_path / "shared") as fifo:
        async with WasmRuntime() as runtime:
            write_module(tmp_path / "probe", "probe", FS_PROBE)
            stuck = []
            for _ in range(STUCK_PLUGINS):
                instance = await runtime.load(request(
                    tmp_path / "probe", "probe", limits=SHORT_DEADLINE,
                    allowed_paths=(AllowedPath(fifo.parent),)))
                await instance.start()
                stuck.append(instance)
            async with anyio.create_task_group() as tg:
                for instance in stuck:
                    tg.start_soon(expect_deadline, instance.call("read", fifo.name))
            assert all(i.details["abandonedCalls"] == 1 for i in stuck)
            # Every one of them is still blocked in its own thread, and yet:
            echo = await load(runtime, tmp_path, "echo", ECHO)
            assert await echo.call("echo", {"fine": True}) == {"fine": True}
            assert await anyio.to_thread.run_sync(lambda: "the default pool answers") == \
                "the default pool answers"


async def calls_while_the_loop_beats(call: Any) -> tuple[int, BaseException | None]:
    """Await ``call`` beside a task that counts its turns on the event loop while the call
    is in flight: how many turns the loop gave it, and what the call raised."""
    in_flight = False
    beats = 0

    async def heartbeat() -> None:
        nonlocal beats
        while True:
            beats += in_flight
            await anyio.lowlevel.checkpoint()

    raised: BaseException | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(heartbeat)
        await anyio.lowlevel.checkpoint()  # the heartbeat is running before the call starts
        in_flight = True
        try:
            await call
        except PluginError as exc:
            raised = exc
        in_flight = False
        tg.cancel_scope.cancel()
    return beats, raised


async def test_a_guest_spinning_until_its_deadline_does_not_hold_the_event_loop(
        tmp_path: Path) -> None:
    async with WasmRuntime() as runtime:
        looping = await load(runtime, tmp_path, "loop", INFINITE_LOOP, limits=SHORT_DEADLINE)
        beats, raised = await calls_while_the_loop_beats(looping.call("spin", None))
        assert isinstance(raised, PluginTimeoutError) and raised.reason == "DeadlineExceeded"
        assert beats > 0  # the loop served others while the guest spun
        echo = await load(runtime, tmp_path, "echo", ECHO)
        assert await echo.call("echo", [1]) == [1]


async def test_inline_calls_hold_the_event_loop_until_the_deadline(tmp_path: Path) -> None:
    # The opt-in trades this away for the thread hand-off; the default path does not.
    async with WasmRuntime(inline_calls=True) as runtime:
        looping = await load(runtime, tmp_path, "loop", INFINITE_LOOP, limits=SHORT_DEADLINE)
        beats, raised = await calls_while_the_loop_beats(looping.call("spin", None))
        assert isinstance(raised, PluginTimeoutError) and raised.reason == "DeadlineExceeded"
        assert beats == 0


# Reads its monotonic clock (a WASI call that returns at once), then echoes its input.
CLOCK_READER = abi_module(
    """
    (if (call $now (i32.const 1) (i64.const 0) (i32.const 1304)) (then (unreachable)))
    (call $ret (local.get $in) (local.get $il))""",
    imports='(import "wasi_snapshot_preview1" "clock_time_get" '
            '(func $now (param i32 i64 i32) (result i32)))')


FD_WRITE = ('(import "wasi_snapshot_preview1" "fd_write" '
            '(func (param i32 i32 i32 i32) (result i32)))')
PATH_OPEN = ('(import "wasi_snapshot_preview1" "path_open" '
             '(func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))')


async def test_a_module_that_can_wait_in_wasi_is_never_called_inline(tmp_path: Path) -> None:
    async with WasmRuntime(inline_calls=True) as runtime:
        clock = await load(runtime, tmp_path, "clock", CLOCK_READER)
        assert clock.details["inlineCalls"] is True
        assert await clock.call("now", {"n": 5}) == {"n": 5}
        # Writing reaches only stdout and stderr, unless the module can open files.
        printer = await load(runtime, tmp_path, "printer", abi_module(
            "(call $ret (local.get $in) (local.get $il))", imports=FD_WRITE))
        opener = await load(runtime, tmp_path, "opener", abi_module(
            "(call $ret (local.get $in) (local.get $il))", imports=FD_WRITE + PATH_OPEN))
        assert printer.details["inlineCalls"] is True
        assert opener.details["inlineCalls"] is False
        sleeper = await load(runtime, tmp_path, "sleeper", SLEEPER, limits=SHORT_DEADLINE)
        probe = await load(runtime, tmp_path, "probe", FS_PROBE)
        assert sleeper.details["inlineCalls"] is False
        assert probe.details["inlineCalls"] is False
        assert await sleeper.call("short", {"n": 6}) == {"n": 6}
    async with WasmRuntime() as runtime:
        echo = await load(runtime, tmp_path, "echo", ECHO)
        assert echo.details["inlineCalls"] is False  # the default: every module on its thread


# Echoes calls; its health check never ends.
HEALTH_SPINNER = abi_module(
    "(call $ret (local.get $in) (local.get $il))",
    extra='(func (export "health") (result i32) (loop $forever (br $forever)) (unreachable))')


async def test_a_health_check_is_interrupted_at_the_health_timeout_not_the_call_timeout(tmp_path: Path) -> None:
    # A probe's own timeout cannot cancel a wait for a store (it is shielded): the health
    # call itself gets healthCheck.timeout as its deadline, where that is the shorter one.
    async with WasmRuntime() as runtime:
        spinner = await load(runtime, tmp_path, "spinner", HEALTH_SPINNER,
                             limits=Limits(fuel=None, memory_bytes=1 << 20, timeout_seconds=60),
                             health_timeout_seconds=0.2)
        with anyio.fail_after(30):  # a guard against the 60 s, not a timing
            with pytest.raises(PluginTimeoutError, match=r"^spinner\.health exceeded its deadline of 0\.2s "
                                                         r"\(spec\.healthCheck\.timeout\) and was interrupted$"):
                await spinner.health()
        assert await spinner.call("echo", [1]) == [1]  # a fresh store; calls keep their own deadline
