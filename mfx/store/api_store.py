"""``ApiStore``: the ``Store`` protocol over the Kubernetes-style HTTP API of an API server.

A node agent (``mfx agent``) runs the same controllers as ``mfx serve`` but holds no store
of its own: every read and write goes to an API server (``mfx serve``, or a Kubernetes API
server with mfx's CRDs installed), which applies the object rules of ``mfx.store.base``
itself. Each call is one request to the paths kubectl uses:

- get/list: ``GET /apis/mfx.musicfox.io/v1alpha1/<plural>[/<name>]`` (``labelSelector``,
  ``limit``, ``continue``); events under ``/api/v1/namespaces/default/events``.
- create: ``POST``; update: ``PUT`` (a stale ``metadata.resourceVersion`` is a 409
  ``ConflictError``); update_status: ``PUT .../<name>/status``; delete: ``DELETE`` with
  ``preconditions.resourceVersion``.
- record_event: ``POST`` of a core/v1 Event (the server counts repeats).
- watch: ``?watch=true&resourceVersion=RV``, resumed after a dropped connection
  (``mfx.store.api_store_watch``).

Where one HTTP request cannot do what a local store does in one transaction, the calls are
sequential and the docstrings say so: ``write_status`` (status, then its events; with
``with_metadata`` the object first, then its status) and ``write_all`` (one request per
write, in order: not all-or-none; the bulk path ``/apply`` has kubectl-apply semantics, not
``write_all``'s creates and updates). ``get_many`` reads the objects one request each.

Errors are the ``mfx.errors`` a local store raises, from the API's Status answers
(``mfx.store.api_errors``); no reachable server is ``StoreUnavailableError``
(``mfx.store.api_connection`` fails over between servers).
"""

from __future__ import annotations

import builtins
import weakref
from collections.abc import Sequence
from typing import Any, Self, Unpack

import anyio

from mfx.api import selectors
from mfx.api.kinds import ALL_KINDS, EVENT, KindInfo
from mfx.api.objects import Obj, now_rfc3339
from mfx.errors import BadRequestError, MfxError, NotFoundError, StoreError
from mfx.store import strategy
from mfx.store.api_connection import ApiConnection, ApiServers, log
from mfx.store.api_store_watch import ApiWatch
from mfx.store.base import BatchAction, BatchWrite, EventRecord, ListOptions, ListResult
from mfx.store.events import involved_api_version

EVENT_NAMESPACE = "default"  # where events about cluster-scoped objects live, as in Kubernetes


def _kind_info(kind: str) -> KindInfo:
    for info in ALL_KINDS:
        if info.kind == kind:
            return info
    raise BadRequestError(f"kind {kind!r} is not served by the mfx API; "
                          f"known kinds: {', '.join(k.kind for k in ALL_KINDS)}")


def _collection(info: KindInfo) -> str:
    if info is EVENT:
        return f"/api/v1/namespaces/{EVENT_NAMESPACE}/events"
    return f"/apis/{info.group}/{info.version}/{info.plural}"


def _shape(info: KindInfo, obj: Obj) -> Obj:
    """An object as a local store holds it: kind and apiVersion set (Kubernetes leaves them
    out of list items of some kinds), events without the namespace the API shows them in."""
    obj.setdefault("kind", info.kind)
    obj.setdefault("apiVersion", info.api_version)
    if info is EVENT:
        obj.get("metadata", {}).pop("namespace", None)
    return obj


def _rv(obj: Any) -> int:
    try:
        return int(obj["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return 0


class ApiStore:
    """``async with ApiStore(ApiConnection(("https://cp:6443",), token=...)) as store``."""

    def __init__(self, connection: ApiConnection) -> None:
        self.connection = connection
        self._servers: ApiServers | None = None
        # Weak: a watch its caller dropped (``break`` out of ``async for``) goes by itself.
        self._watches: weakref.WeakSet[ApiWatch] = weakref.WeakSet()
        # The newest resourceVersion any answer carried: "now", as far as this client knows.
        self._seen = 0

    # --- lifecycle -------------------------------------------------------------------------

    async def open(self) -> Self:
        if self._servers is None:
            self._servers = ApiServers(self.connection)
        return self

    async def close(self) -> None:
        for watch in list(self._watches):
            watch.cancel()
        self._watches.clear()
        servers, self._servers = self._servers, None
        if servers is not None:
            await servers.aclose()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def watchers(self) -> int:
        """How many watches are open."""
        return len(self._watches)

    @property
    def server(self) -> str:
        """The URL of the API server in use (the last one that answered)."""
        return self._api().current_url

    def _api(self) -> ApiServers:
        if self._servers is None:
            raise StoreError("the API store is not open; use 'async with ApiStore(...)' or await open()")
        return self._servers

    async def _request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                       body: Any = None, content_type: str = "application/json") -> Any:
        answer = await self._api().request(method, path, params=params, body=body, content_type=content_type)
        self._saw(_rv(answer))
        return answer

    def _saw(self, rv: int) -> None:
        if rv > self._seen:
            self._seen = rv

    # --- reads -----------------------------------------------------------------------------

    async def get(self, kind: str, name: str) -> Obj:
        info = _kind_info(kind)
        return _shape(info, await self._request("GET", f"{_collection(info)}/{name}"))

    async def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Obj]:
        """The objects among ``keys`` that exist (the missing ones are left out). One request
        each, so unlike a local store's, not as of one moment."""
        found: dict[tuple[str, str], Obj] = {}

        async def fetch(key: tuple[str, str]) -> None:
            try:
                found[key] = await self.get(*key)
            except NotFoundError:
                pass

        async with anyio.create_task_group() as group:
            for key in keys:
                group.start_soon(fetch, key)
        return {key: found[key] for key in keys if key in found}

    async def list(self, kind: str, **options: Unpack[ListOptions]) -> ListResult:
        info = _kind_info(kind)
        selector = options.get("label_selector")
        selectors.parse_selector(selector)  # a bad one fails here, as in a local store
        params: dict[str, Any] = {}
        if selector:
            params["labelSelector"] = selector
        if options.get("limit"):
            params["limit"] = str(options["limit"])
        if options.get("continue_token"):
            params["continue"] = options["continue_token"]
        answer = await self._request("GET", _collection(info), params=params)
        metadata = answer.get("metadata") or {}
        rv = int(metadata.get("resourceVersion") or 0)
        self._saw(rv)
        items = [_shape(info, item) for item in answer.get("items") or []]
        return ListResult(items=items, resource_version=rv, continue_token=metadata.get("continue") or None)

    async def current_resource_version(self) -> int:
        # The API has no call for it; a one-item list carries the store's resourceVersion.
        return (await self.list(ALL_KINDS[0].kind, limit=1)).resource_version

    async def list_events(self, involved_kind: str | None = None,
                          involved_name: str | None = None) -> builtins.list[Obj]:
        """Events about one object or kind (both optional), oldest last occurrence first."""
        fields = []
        if involved_kind:
            fields.append(f"involvedObject.kind={involved_kind}")
        if involved_name:
            fields.append(f"involvedObject.name={involved_name}")
        params = {"fieldSelector": ",".join(fields)} if fields else None
        answer = await self._request("GET", _collection(EVENT), params=params)
        items = [_shape(EVENT, item) for item in answer.get("items") or []]
        return sorted(items, key=_rv)  # each event's resourceVersion is that of its last occurrence

    # --- writes ----------------------------------------------------------------------------

    async def create(self, obj: Obj) -> Obj:
        kind, _ = strategy.identity(obj)
        info = _kind_info(kind)
        return _shape(info, await self._request("POST", _collection(info), body=obj))

    async def update(self, obj: Obj) -> Obj:
        kind, name = strategy.identity(obj)
        info = _kind_info(kind)
        return _shape(info, await self._request("PUT", f"{_collection(info)}/{name}", body=obj))

    async def update_status(self, obj: Obj) -> Obj:
        kind, name = strategy.identity(obj)
        info = _kind_info(kind)
        return _shape(info, await self._request("PUT", f"{_collection(info)}/{name}/status", body=obj))

    async def patch(self, kind: str, name: str, patch: Obj) -> Obj:
        """A JSON merge patch (RFC 7386) on the object, without a resourceVersion."""
        info = _kind_info(kind)
        return _shape(info, await self._request("PATCH", f"{_collection(info)}/{name}", body=patch,
                                                content_type="application/merge-patch+json"))

    async def json_patch(self, kind: str, name: str, operations: builtins.list[dict[str, Any]]) -> Obj:
        """A JSON patch (RFC 6902) on the object: applied to what the server has, so a ``test``
        operation is the precondition (one that fails is a ``BadRequestError``)."""
        info = _kind_info(kind)
        return _shape(info, await self._request("PATCH", f"{_collection(info)}/{name}", body=operations,
                                                content_type="application/json-patch+json"))

    async def patch_status(self, kind: str, name: str, patch: Obj) -> Obj:
        """A JSON merge patch (RFC 7386) on the status subresource, without a resourceVersion:
        the server applies it to what it has, so writers of different fields never conflict."""
        info = _kind_info(kind)
        return _shape(info, await self._request("PATCH", f"{_collection(info)}/{name}/status", body=patch,
                                                content_type="application/merge-patch+json"))

    async def write_status(self, obj: Obj, events: Sequence[EventRecord] = (), *,
                           with_metadata: bool = False) -> Obj:
        """The status, then each event: separate requests, not one transaction.

        ``with_metadata`` (a controller adding its finalizer with its first status) patches
        the finalizers first, on the version the caller read (a merge patch that carries the
        resourceVersion, so a stale one is a conflict, and the spec is never written through
        a status write), then writes the status on the version that made: the finalizer is
        stored before anything it guards. An event that cannot be reported is
        logged, not raised: the status it goes with is written, and raising would write it
        again."""
        if with_metadata:
            meta = obj["metadata"]
            updated = await self.patch(obj["kind"], meta["name"], {"metadata": {
                "finalizers": meta.get("finalizers") or [], "resourceVersion": meta.get("resourceVersion")}})
            obj = {**obj, "metadata": {**obj["metadata"],
                                       "resourceVersion": updated["metadata"]["resourceVersion"]}}
        written = await self.update_status(obj)
        for record in events:
            try:
                await self.record_event(record)
            except MfxError as error:
                log.warning("could not report event %s about %s %s: %s", record.reason,
                            record.involved_kind, record.involved_name, error)
        return written

    async def write_all(self, writes: Sequence[BatchWrite]) -> builtins.list[Obj]:
        """Each create and update in order, one request each. Not all-or-none as in a local
        store: a failure stops the rest, and the writes before it stay."""
        return [await (self.create if w.action is BatchAction.CREATE else self.update)(w.obj) for w in writes]

    async def delete(self, kind: str, name: str, *, resource_version: int | None = None) -> Obj:
        info = _kind_info(kind)
        options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if resource_version is not None:
            options["preconditions"] = {"resourceVersion": str(resource_version)}
        answer = await self._request("DELETE", f"{_collection(info)}/{name}", body=options)
        if answer.get("kind") == "Status":  # Kubernetes may answer a finished delete so
            return {"apiVersion": info.api_version, "kind": info.kind, "metadata": {"name": name}}
        return _shape(info, answer)

    async def record_event(self, event: EventRecord) -> Obj:
        stamp = now_rfc3339()
        body = {
            "apiVersion": "v1", "kind": "Event",
            # Kubernetes needs a name; the mfx API names it itself and counts repeats.
            "metadata": {"generateName": f"{event.involved_name}.", "namespace": EVENT_NAMESPACE},
            "involvedObject": {"kind": event.involved_kind, "name": event.involved_name,
                               "uid": event.involved_uid, "apiVersion": involved_api_version(event)},
            "type": event.type, "reason": event.reason, "message": event.message,
            "source": {"component": event.source}, "reportingComponent": event.source,
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
        }
        return _shape(EVENT, await self._request("POST", _collection(EVENT), body=body))

    # --- watch -----------------------------------------------------------------------------

    def watch(self, kind: str | None, since: int) -> ApiWatch:
        """Changes of ``kind`` after ``since``, then live ones; ``since=0``: after the newest
        resourceVersion this store has seen (or, before any answer, from when the watch
        connects). The stream reconnects by itself; ``GoneError`` when ``since`` is too old."""
        if kind is None:
            raise BadRequestError("the Kubernetes API watches one kind at a time: watch each kind")
        since = int(since)
        if since < 0:
            raise BadRequestError(f"resourceVersion: invalid value {since}, expected 0 or more")
        info = _kind_info(kind)
        watch = ApiWatch(self._api(), _collection(info), since or self._seen,
                         resolve_now=self.current_resource_version,
                         shape=lambda obj: _shape(info, obj), seen=self._saw, released=self._watches.discard)
        self._watches.add(watch)
        return watch
