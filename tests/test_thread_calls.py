"""ThreadCalls: blocking calls on an owner's own worker threads, awaited from the event loop."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable

import anyio
import pytest

from mfx.thread_calls import ThreadCalls

pytestmark = pytest.mark.anyio

WHO = contextvars.ContextVar("who", default="nobody")


def _threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(f"mfx-{name}-")]


async def test_a_call_runs_off_the_loop_with_the_callers_context_and_raises_its_errors() -> None:
    calls = ThreadCalls("t-basic")
    WHO.set("caller")
    try:
        where, who = await calls.run(lambda: (threading.get_ident(), WHO.get()))
        assert where != threading.get_ident() and who == "caller"
        with pytest.raises(ValueError, match="bad"):
            await calls.run(int, "bad")

        def stops() -> None:
            raise StopIteration("over")

        with pytest.raises(RuntimeError, match="StopIteration"):
            await calls.run(stops)
    finally:
        calls.close()


async def test_no_more_than_max_threads_calls_run_at_once() -> None:
    calls = ThreadCalls("t-bound", max_threads=2)
    release = threading.Event()
    lock = threading.Lock()
    running: list[int] = []
    most = 0
    two_in = threading.Event()

    def hold(i: int) -> int:
        nonlocal most
        with lock:
            running.append(i)
            most = max(most, len(running))
            if len(running) == 2:
                two_in.set()
        release.wait(30)
        with lock:
            running.remove(i)
        return i

    results: list[int] = []

    async def one(i: int) -> None:
        results.append(await calls.run(hold, i))

    try:
        async with anyio.create_task_group() as tg:
            for i in range(5):
                tg.start_soon(one, i)
            await anyio.to_thread.run_sync(two_in.wait, 30)
            assert len(_threads("t-bound")) == 2, "no third thread while two calls hold both"
            release.set()
        assert sorted(results) == [0, 1, 2, 3, 4] and most == 2
    finally:
        calls.close()


async def test_one_thread_runs_the_calls_in_the_order_they_were_made() -> None:
    calls = ThreadCalls("t-order", max_threads=1)
    seen: list[int] = []
    gate = threading.Event()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(calls.run, gate.wait, 30)
            for i in range(20):
                tg.start_soon(calls.run, seen.append, i)
                await anyio.lowlevel.checkpoint()  # each call handed over before the next
            gate.set()
        assert seen == list(range(20))
    finally:
        calls.close()


async def test_a_cancelled_caller_leaves_its_call_to_finish_alone() -> None:
    calls = ThreadCalls("t-cancel", max_threads=1)
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(30)
        finished.set()
        return "late"

    try:
        with anyio.move_on_after(30) as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(calls.run, slow)
                await anyio.to_thread.run_sync(started.wait, 30)
                tg.cancel_scope.cancel()
        assert not scope.cancelled_caught, "the caller left at once, without waiting for the call"
        assert not finished.is_set()
        release.set()
        assert await calls.run(lambda: "next") == "next", "the call finished; the thread took the next"
        assert finished.is_set()
    finally:
        calls.close()


async def test_closed_calls_refuse_new_work_and_their_threads_end() -> None:
    calls = ThreadCalls("t-close", max_threads=3)
    await calls.run(lambda: None)
    threads = _threads("t-close")
    assert threads
    calls.close()
    for thread in threads:
        await anyio.to_thread.run_sync(thread.join, 30)
        assert not thread.is_alive()
    with pytest.raises(RuntimeError, match="closed"):
        await calls.run(lambda: None)


async def test_without_abandonable_a_call_whose_caller_left_is_still_made_in_turn() -> None:
    # A store's commits: every call handed over is made, one at a time, whoever still waits.
    calls = ThreadCalls("t-kept", max_threads=1)
    gate, seen = threading.Event(), []
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(calls.run, gate.wait, 30)
            await anyio.lowlevel.checkpoint()
            with anyio.CancelScope() as scope:
                scope.cancel()
                await calls.run(seen.append, "left")
            gate.set()
        await calls.run(seen.append, "after")
        assert seen == ["left", "after"]
    finally:
        calls.close()


def blocker() -> tuple[Callable[[], None], threading.Event, threading.Event]:
    """A call that blocks until released: (the call, set once it runs, its release)."""
    started, release = threading.Event(), threading.Event()

    def blocked() -> None:
        started.set()
        release.wait(60)

    return blocked, started, release


async def test_an_abandonable_pool_never_makes_a_call_whose_caller_left_before_it_ran() -> None:
    calls = ThreadCalls("t-skip", max_threads=1, abandonable=True)
    hold, started, gate = blocker()
    seen: list[str] = []
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(calls.run, hold)
            await anyio.to_thread.run_sync(started.wait, 30)
            with anyio.move_on_after(0.05):  # queued behind hold: its caller gives up
                await calls.run(seen.append, "left")
            gate.set()
        await calls.run(seen.append, "after")  # one thread, in order: "left" was passed over
        assert seen == ["after"]
    finally:
        calls.close()


async def test_a_call_stuck_with_its_caller_gone_does_not_take_the_pool_from_the_others() -> None:
    # A plugin stuck in a call forever: its thread no longer counts, the next call gets one.
    calls = ThreadCalls("t-stuck", max_threads=1, abandonable=True)
    stuck, started, release = blocker()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(calls.run, stuck)
            await anyio.to_thread.run_sync(started.wait, 30)
            tg.cancel_scope.cancel()
        assert calls.stuck == 1
        with anyio.fail_after(30):  # a guard against a hang, not a timing
            assert await calls.run(lambda: "served") == "served"
        assert len(_threads("t-stuck")) == 2
        release.set()
        # The stuck call returns: its thread is one more than the pool needs, and ends.
        for thread in _threads("t-stuck"):
            if thread.name.endswith("-1"):
                await anyio.to_thread.run_sync(thread.join, 30)
                assert not thread.is_alive()
        assert calls.stuck == 0 and len(_threads("t-stuck")) == 1
    finally:
        calls.close()
