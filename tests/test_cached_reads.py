"""``CachedReads``: a node agent's reads answered from its watches, never staler than them.

A real daemon (API server over SQLite, no controllers) and an ``ApiStore`` on its HTTP
listener, as ``mfx agent`` has; what reaches the server is read from the server's own
``mfx_api_requests_total`` (the figure an operator sees on the dashboard). Each test waits for
the watch event it needs (``next_event``), never for time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mfx.errors import ConflictError, NotFoundError
from mfx.store.api_connection import ApiConnection
from mfx.store.api_store import ApiStore
from mfx.store.base import WatchEvent, WatchEventType
from mfx.store.cached_reads import CachedReads
from tests.daemon_harness import ThreadDaemon

PM = "PluginManifest"
pytestmark = pytest.mark.anyio


def plugin(name: str) -> dict[str, Any]:
    return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": PM, "metadata": {"name": name},
            "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m hello"}}


class Server:
    """The daemon, and the GET requests it has answered so far."""

    def __init__(self, daemon: ThreadDaemon) -> None:
        self.daemon = daemon

    def gets(self) -> float:
        metrics = self.daemon.context.metrics
        return sum(s.value for m in metrics.api_requests_total.collect() for s in m.samples
                   if s.name.endswith("_total") and s.labels.get("verb") == "GET")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[Server, ApiStore]]:
    daemon = ThreadDaemon(tmp_path / "home", listen_http="127.0.0.1:0")
    with daemon.running():
        url = "http://" + daemon.config.listen_http_address_path.read_text().strip()
        token = daemon.config.token_path.read_text().strip()
        async with ApiStore(ApiConnection((url,), token=token)) as api:
            yield Server(daemon), api


async def next_event(watch: Any, name: str, kind: WatchEventType | None = None) -> WatchEvent:
    async for event in watch:
        if event.object["metadata"].get("name") == name and (kind is None or event.type is kind):
            return event
    raise AssertionError("the watch ended")


async def holding(api: ApiStore, name: str) -> tuple[CachedReads, Any]:
    """A cache, and its watch, which has delivered ``name`` (just made)."""
    cache = CachedReads(api)
    watch = cache.watch(PM, await api.current_resource_version())
    await api.create(plugin(name))
    await next_event(watch, name)
    return cache, watch


async def test_an_object_its_watch_delivered_is_read_without_asking_the_server(
        server: tuple[Server, ApiStore]) -> None:
    daemon, api = server
    cache = CachedReads(api)
    since = (await api.create(plugin("a")))["metadata"]["resourceVersion"]
    watch = cache.watch(PM, int(since) - 1)
    await next_event(watch, "a")
    before = daemon.gets()
    for _ in range(5):
        assert (await cache.get(PM, "a"))["metadata"]["resourceVersion"] == since
    assert daemon.gets() == before, "each read went to the server"

    # A change made elsewhere is read as the watch brings it.
    changed = await api.patch(PM, "a", {"metadata": {"labels": {"tier": "x"}}})
    await next_event(watch, "a")
    assert (await cache.get(PM, "a"))["metadata"]["labels"] == {"tier": "x"}
    assert (await cache.get_many([(PM, "a")]))[(PM, "a")]["metadata"]["resourceVersion"] == \
        changed["metadata"]["resourceVersion"]
    assert daemon.gets() == before
    await watch.aclose()


async def test_without_a_watch_of_the_kind_every_read_asks_the_server(server: tuple[Server, ApiStore]) -> None:
    daemon, api = server
    cache = CachedReads(api)
    await api.create(plugin("a"))
    before = daemon.gets()
    await cache.get(PM, "a")
    await cache.get(PM, "a")
    assert daemon.gets() == before + 2


async def test_not_found_and_deleted_objects_are_asked_of_the_server(server: tuple[Server, ApiStore]) -> None:
    daemon, api = server
    cache, watch = await holding(api, "a")
    await api.delete(PM, "a")
    await next_event(watch, "a", WatchEventType.DELETED)
    before = daemon.gets()
    with pytest.raises(NotFoundError):
        await cache.get(PM, "a")
    with pytest.raises(NotFoundError):
        await cache.get(PM, "never-made")
    assert daemon.gets() == before + 2

    # Made again under the same name: the new object, not the tombstone, is what is read.
    await api.create(plugin("a"))
    await next_event(watch, "a", WatchEventType.ADDED)
    assert (await cache.get(PM, "a"))["metadata"]["name"] == "a"
    assert daemon.gets() == before + 2
    await watch.aclose()


async def test_its_own_writes_are_read_back_and_an_older_event_does_not_undo_them(
        server: tuple[Server, ApiStore]) -> None:
    daemon, api = server
    cache = CachedReads(api)
    created = await api.create(plugin("a"))
    watch = cache.watch(PM, int(created["metadata"]["resourceVersion"]) - 1)
    await next_event(watch, "a", WatchEventType.ADDED)
    first = await cache.patch(PM, "a", {"metadata": {"labels": {"step": "1"}}})
    second = await cache.patch(PM, "a", {"metadata": {"labels": {"step": "2"}}})
    before = daemon.gets()
    assert (await cache.get(PM, "a"))["metadata"]["resourceVersion"] == second["metadata"]["resourceVersion"]
    # The watch now delivers the first write's event, older than what the cache holds.
    event = await next_event(watch, "a", WatchEventType.MODIFIED)
    assert event.object["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert (await cache.get(PM, "a"))["metadata"]["labels"] == {"step": "2"}
    assert daemon.gets() == before
    await watch.aclose()


async def test_a_write_that_conflicts_makes_the_next_read_ask_the_server(server: tuple[Server, ApiStore]) -> None:
    daemon, api = server
    cache, watch = await holding(api, "a")
    stale = await cache.get(PM, "a")
    await api.patch(PM, "a", {"metadata": {"labels": {"by": "someone-else"}}})  # its event not read yet
    with pytest.raises(ConflictError):
        await cache.update({**stale, "metadata": {**stale["metadata"], "labels": {"by": "me"}}})
    before = daemon.gets()
    fresh = await cache.get(PM, "a")
    assert fresh["metadata"]["labels"] == {"by": "someone-else"}
    assert daemon.gets() == before + 1
    await watch.aclose()


async def test_when_its_last_watch_ends_the_kind_is_read_from_the_server_again(
        server: tuple[Server, ApiStore]) -> None:
    daemon, api = server
    cache, first = await holding(api, "a")
    second = cache.watch(PM, await api.current_resource_version())
    await first.aclose()
    before = daemon.gets()
    await cache.get(PM, "a")
    assert daemon.gets() == before, "another watch still follows the kind"
    await second.aclose()
    await cache.get(PM, "a")
    assert daemon.gets() == before + 1

    # Deleted while nothing watched: a watch started after that never tells, and the copy
    # from before must not be served.
    await api.delete(PM, "a")
    third = cache.watch(PM, await api.current_resource_version())
    await api.create(plugin("b"))
    await next_event(third, "b")
    with pytest.raises(NotFoundError):
        await cache.get(PM, "a")
    await third.aclose()


async def test_a_caller_changing_what_it_read_changes_nothing_for_the_next(server: tuple[Server, ApiStore]) -> None:
    _, api = server
    cache = CachedReads(api)
    watch = cache.watch(PM, await api.current_resource_version())
    await api.create(plugin("a"))
    event = await next_event(watch, "a")
    event.object["spec"]["version"] = "9.9.9"
    read = await cache.get(PM, "a")
    read["metadata"]["labels"] = {"changed": "by the caller"}
    again = await cache.get(PM, "a")
    assert again["spec"]["version"] == "1.0.0"
    assert "labels" not in again["metadata"]
    await watch.aclose()


async def test_an_informers_list_is_read_from_and_a_later_list_drops_what_was_deleted(
        server: tuple[Server, ApiStore]) -> None:
    daemon, api = server
    cache = CachedReads(api)
    await api.create(plugin("a"))
    await api.create(plugin("b"))
    listed = await cache.list(PM)  # as an informer lists before it watches
    watch = cache.watch(PM, listed.resource_version)
    await cache.list(PM)  # a second informer of the kind lists it too
    before = daemon.gets()
    assert (await cache.get(PM, "a"))["metadata"]["name"] == "a"
    assert daemon.gets() == before, "the listed object was asked of the server"
    await watch.aclose()

    # Listed again after a pause in which b was deleted (no watch told it): b is not held.
    await cache.list(PM)
    await api.delete(PM, "b")
    relisted = await cache.list(PM)
    watch = cache.watch(PM, relisted.resource_version)
    with pytest.raises(NotFoundError):
        await cache.get(PM, "b")
    await watch.aclose()


async def test_after_a_conflict_a_late_event_of_the_version_it_was_based_on_is_not_held_again(
        server: tuple[Server, ApiStore]) -> None:
    daemon, api = server
    cache = CachedReads(api)
    await api.create(plugin("a"))
    watch = cache.watch(PM, await api.current_resource_version())
    mine = await cache.patch(PM, "a", {"metadata": {"labels": {"step": "mine"}}})  # held, its event not read
    await api.patch(PM, "a", {"metadata": {"labels": {"step": "theirs"}}})
    with pytest.raises(ConflictError):
        await cache.update({**mine, "metadata": {**mine["metadata"], "labels": {"step": "mine-again"}}})
    late = await next_event(watch, "a", WatchEventType.MODIFIED)
    assert late.object["metadata"]["resourceVersion"] == mine["metadata"]["resourceVersion"]
    before = daemon.gets()
    assert (await cache.get(PM, "a"))["metadata"]["labels"] == {"step": "theirs"}
    assert daemon.gets() == before + 1
    await watch.aclose()
