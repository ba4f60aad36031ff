"""A watcher with a thousand changes buffered (one bulk apply) lets the event loop run other
tasks while it hands them out: the answer to that very apply does not wait for all of them."""

from __future__ import annotations

from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from mfx.store.base import BatchAction, BatchWrite
from mfx.store.sqlite import SQLiteStore
from mfx.store.watch_hub import YIELD_EVERY

PM = "PluginManifest"
COUNT = 1000


@pytest.mark.anyio
async def test_a_watcher_draining_a_large_batch_lets_other_tasks_run(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "store.db") as store:
        watch = store.watch(PM, 0)
        await store.write_all([BatchWrite(BatchAction.CREATE, {
            "apiVersion": "mfx.musicfox.io/v1alpha1", "kind": PM, "metadata": {"name": f"p{i:04d}"},
            "spec": {"version": "1.0.0"}}) for i in range(COUNT)])
        received = 0
        seen_by_other: list[int] = []

        async def drain() -> None:
            nonlocal received
            async for _ in watch:
                received += 1
                if received == COUNT:
                    return

        async def other() -> None:
            await anyio.lowlevel.checkpoint()  # ready at once, like a request's next step
            seen_by_other.append(received)

        async with anyio.create_task_group() as group:
            group.start_soon(drain)
            group.start_soon(other)
        await watch.aclose()
    assert received == COUNT
    # The other task ran after a few of the watcher's turns, long before it had them all.
    assert seen_by_other and seen_by_other[0] <= 4 * YIELD_EVERY < COUNT
