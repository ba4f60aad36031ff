"""Each node's own finalizer on a shared object, as ``NodeStatusStore`` writes it through the API.

A real daemon (API server over SQLite, no controllers) and one ``ApiStore`` per node, as two
``mfx agent`` processes would have; the controllers' side is played by calling the store as
the reconciler does (``update`` with the usual finalizer added or removed in the object read).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from controllers.node_status import NodeStatusStore
from controllers.placement import NodePlacement
from mfx.api.objects import FINALIZER, node_finalizer
from mfx.errors import NotFoundError
from mfx.store.api_store import ApiStore
from tests.daemon_harness import api_store_on_daemon

PM = "PluginManifest"
pytestmark = pytest.mark.anyio


def plugin(name: str, selector: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m hello"}
    if selector is not None:
        spec["nodeSelector"] = selector
    return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": PM, "metadata": {"name": name}, "spec": spec}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiStore]:
    async with api_store_on_daemon(tmp_path / "home") as store:
        yield store


def node(api: ApiStore, name: str, **labels: str) -> NodeStatusStore:
    return NodeStatusStore(api, NodePlacement(name, labels=dict(labels)), shared=True)


def with_finalizer(obj: dict[str, Any], present: bool) -> dict[str, Any]:
    finalizers = [f for f in obj["metadata"].get("finalizers") or [] if f != FINALIZER]
    return {**obj, "metadata": {**obj["metadata"], "finalizers": finalizers + ([FINALIZER] if present else [])}}


async def stored_finalizers(api: ApiStore, name: str) -> list[str]:
    return list((await api.get(PM, name))["metadata"].get("finalizers") or [])


async def test_each_node_adds_and_removes_only_its_own_finalizer(api: ApiStore) -> None:
    await api.create(plugin("p"))
    a, b = node(api, "node-a"), node(api, "node-b")
    seen_by_a = await a.get(PM, "p")
    assert FINALIZER not in (seen_by_a["metadata"].get("finalizers") or [])
    await a.update(with_finalizer(seen_by_a, True))
    await b.update(with_finalizer(await b.get(PM, "p"), True))
    assert await stored_finalizers(api, "p") == [node_finalizer("node-a"), node_finalizer("node-b")]
    # Each node sees its own as the usual finalizer, and the other's as it is.
    assert (await a.get(PM, "p"))["metadata"]["finalizers"] == [node_finalizer("node-b"), FINALIZER]

    await api.delete(PM, "p")  # held by both
    await a.update(with_finalizer(await a.get(PM, "p"), False))
    assert await stored_finalizers(api, "p") == [node_finalizer("node-b")]
    await b.update(with_finalizer(await b.get(PM, "p"), False))
    with pytest.raises(NotFoundError):
        await api.get(PM, "p")


async def test_a_first_finalizer_another_node_crossed_is_seen_missing_and_added_again(api: ApiStore) -> None:
    await api.create(plugin("p"))
    a = node(api, "node-a")
    await a.update(with_finalizer(await a.get(PM, "p"), True))
    # node-b read the object before node-a's write and creates the list too, last: node-a's is gone.
    await api.patch(PM, "p", {"metadata": {"finalizers": [node_finalizer("node-b")]}})
    seen_by_a = await a.get(PM, "p")
    assert FINALIZER not in seen_by_a["metadata"]["finalizers"], "the reconciler adds what it does not see"
    await a.update(with_finalizer(seen_by_a, True))
    assert await stored_finalizers(api, "p") == [node_finalizer("node-b"), node_finalizer("node-a")]


async def test_a_node_that_does_not_place_an_object_holds_no_finalizer_on_it(api: ApiStore) -> None:
    await api.create(plugin("kitchen-only", {"matchLabels": {"room": "kitchen"}}))
    hall = node(api, "node-hall", room="hall")
    seen = await hall.get(PM, "kitchen-only")
    assert FINALIZER in seen["metadata"]["finalizers"], "shown as held: the reconciler adds none"
    await hall.update(seen)
    assert await stored_finalizers(api, "kitchen-only") == []
