"""An acknowledged write survives the daemon being SIGKILLed at any moment."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from mfx.store import SQLiteStore

# The child writes without end and says "written <i>" only after the store acknowledged both
# the create of obj-<i> and the update of the counter to <i>.
WRITER = """
import sys
from pathlib import Path

import anyio

from mfx.store import SQLiteStore


async def main(path: str, prefix: str) -> None:
    async with SQLiteStore(Path(path)) as store:
        try:
            counter = await store.get("PluginManifest", "counter")
        except Exception:
            counter = await store.create(
                {"kind": "PluginManifest", "metadata": {"name": "counter"}, "spec": {"value": -1}}
            )
        i = 0
        while True:
            await store.create({
                "apiVersion": "mfx.musicfox.io/v1alpha1",
                "kind": "PluginManifest",
                "metadata": {"name": f"{prefix}-{i:06d}", "labels": {"round": prefix}},
                "spec": {"index": i, "payload": "x" * 300},
            })
            counter["spec"] = {"value": i, "round": prefix}
            counter = await store.update(counter)
            print(f"written {i}", flush=True)
            i += 1


anyio.run(main, sys.argv[1], sys.argv[2])
"""


async def write_until_killed(script: Path, db: Path, prefix: str, acknowledged: int) -> int:
    """Run the writer, SIGKILL it as soon as it acknowledged ``acknowledged`` writes; returns the last index."""
    last = -1
    process = await anyio.open_process(
        [sys.executable, str(script), str(db), prefix],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        lines = BufferedByteReceiveStream(process.stdout)
        with anyio.fail_after(60):  # a hang guard, not a speed check
            while last + 1 < acknowledged:
                try:
                    line = await lines.receive_until(b"\n", 1024)
                except (anyio.IncompleteRead, anyio.EndOfStream):
                    assert process.stderr is not None
                    error = (await process.stderr.receive()).decode(errors="replace")
                    pytest.fail(f"the writer died on its own: {error}")
                word, index = line.decode().split()
                assert word == "written"
                last = int(index)
        process.send_signal(signal.SIGKILL)
        assert await process.wait() == -signal.SIGKILL
    finally:
        if process.returncode is None:
            process.kill()
        await process.aclose()
    return last


@pytest.mark.anyio
async def test_every_acknowledged_write_survives_sigkill(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    db = tmp_path / "store.db"
    rounds = {"r1": 1, "r2": 40, "r3": 250}
    last_acknowledged: dict[str, int] = {}
    for prefix, count in rounds.items():
        last_acknowledged[prefix] = await write_until_killed(script, db, prefix, count)
        async with SQLiteStore(db) as store:
            for earlier, last in last_acknowledged.items():
                objs = (await store.list("PluginManifest", label_selector=f"round={earlier}")).items
                indexes = [o["spec"]["index"] for o in objs]
                # Every acknowledged write is there; writes after the last acknowledgement may be too.
                assert indexes[: last + 1] == list(range(last + 1)), earlier
                assert indexes == list(range(len(indexes))), "no holes"
            counter = await store.get("PluginManifest", "counter")
            assert (
                counter["spec"]["round"] == prefix
                and counter["spec"]["value"] >= last_acknowledged[prefix]
            )
            newest = max(
                int(o["metadata"]["resourceVersion"])
                for o in (await store.list("PluginManifest")).items
            )
            # The counter row is written in each write's transaction: it is exactly the newest write.
            assert await store.current_resource_version() == newest
            probe = await store.create(
                {"kind": "AudioSink", "metadata": {"name": f"probe-{prefix}"}, "spec": {}}
            )
            assert int(probe["metadata"]["resourceVersion"]) == newest + 1
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
