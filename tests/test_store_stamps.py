"""What the store stamps on a created object (a random version 4 UID, and the creation time of
the transaction that created it), and how often its WAL is copied into the file."""

from __future__ import annotations

import uuid
from pathlib import Path

import anyio

from mfx.store.base import BatchAction, BatchWrite
from mfx.store.sqlite import SQLiteStore
from mfx.store.strategy import new_uid


def test_uids_are_random_version_4_uuids_written_as_uuid_writes_them() -> None:
    uids = {new_uid() for _ in range(2000)}
    assert len(uids) == 2000
    for text in uids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text


def _manifest(name: str) -> dict[str, object]:
    return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest", "metadata": {"name": name},
            "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "x"}}


def test_objects_created_in_one_transaction_share_its_creation_time(tmp_path: Path) -> None:
    async def main() -> list[dict[str, object]]:
        async with SQLiteStore(tmp_path / "store.db") as store:
            return await store.write_all([BatchWrite(BatchAction.CREATE, _manifest(f"p{i}")) for i in range(50)])

    created = anyio.run(main)
    stamps = {obj["metadata"]["creationTimestamp"] for obj in created}  # type: ignore[index]
    assert len(stamps) == 1 and next(iter(stamps)).endswith("Z")
    assert len({obj["metadata"]["uid"] for obj in created}) == 50  # type: ignore[index]


def test_the_wal_is_checkpointed_after_8192_pages(tmp_path: Path) -> None:
    async def main() -> int:
        async with SQLiteStore(tmp_path / "store.db") as store:
            return int(store._database().conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])

    assert anyio.run(main) == 8192
