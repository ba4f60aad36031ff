"""The HTTP API: the Kubernetes API shapes for the mfx kinds, served by Starlette.

Paths, objects, lists, watch events, Status errors, Table responses and patches follow the
Kubernetes API server, so mfx's CLI, kubectl and the Kubernetes client libraries can all
talk to it. The same app is served on the unix socket (no token: the socket is 0600) and on
the optional TCP listener (bearer token required).

This module routes requests and reads and writes objects; patch bodies are
``api_patch``'s, retries of unconditional writes ``api_retry``'s, request parameters
``api_request``'s, Status answers ``api_responses``', discovery ``api_discovery``'s, Events
``api_events``', watch streams ``api_watch``'s and the middleware ``api_middleware``'s.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

import mfx
from mfx.api.kinds import ALL_KINDS, EVENT, GROUP, VERSION, KindInfo
from mfx.api.objects import Obj, name_of
from mfx.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    ErrorList,
    MfxError,
    NotFoundError,
    ValidationError,
)
from mfx.server import api_discovery as discovery
from mfx.server import tables
from mfx.server.admission import Admission
from mfx.server.api_accept import accepts, not_acceptable
from mfx.server.api_bulk import bulk_apply_routes
from mfx.server.api_events import (
    EVENT_COLUMNS,
    EVENT_NAMESPACE,
    event_problems,
    event_record,
    present,
    with_event_cells,
)
from mfx.server.api_middleware import BearerAuth, InternalErrors, RequestMetrics
from mfx.server.api_patch import PatchType, apply_patch, merge_patch, patch_type
from mfx.server.api_request import (
    SERVER_OWNED_METADATA,
    carries_resource_version,
    check_identity,
    dry_run,
    filter_fields,
    in_namespace,
    int_param,
    precondition,
)
from mfx.server.api_responses import JSON, error_response, json_response
from mfx.server.api_retry import PATCH_ATTEMPTS, KeyedLocks, pin_to_read, retry_lost_races
from mfx.server.api_watch import watch_response
from mfx.server.bodies import read_body, read_object
from mfx.server.openapi import OpenApiDocuments
from mfx.server.server_side_apply import apply_create, apply_update, managed_fields_problems
from mfx.server.status import status_object
from mfx.store.base import Store
from mfx.store.strategy import next_generation
from observability.fastmetrics import render_registry
from observability.metrics import Metrics

# Importable from here as well: the other API modules of the daemon answer with them.
__all__ = [
    "EVENT_NAMESPACE",
    "PATCH_ATTEMPTS",
    "ApiServer",
    "KeyedLocks",
    "error_response",
    "json_response",
    "merge_patch",
]

log = logging.getLogger("mfx.server")

Handler = Callable[[Request, KindInfo], Awaitable[Response]]


@dataclass
class ApiServer:
    store: Store
    admission: Admission
    metrics: Metrics
    shutdown: anyio.Event = field(default_factory=anyio.Event)
    extra_routes: list[BaseRoute] = field(default_factory=list)
    ready: Callable[[], bool] = lambda: True
    # The one-request bulk apply (``api_bulk``); off, the daemon answers as one without it.
    bulk_apply: bool = True
    _openapi: OpenApiDocuments | None = field(default=None, init=False, repr=False)
    # Unconditional writes to one object take turns: racing each other, all but one would
    # lose every commit round, and fifty clients would need fifty rounds to get through.
    _writers: KeyedLocks = field(default_factory=lambda: KeyedLocks(), init=False, repr=False)

    # --- app ----------------------------------------------------------------------------

    def app(self, *, token: str | None = None) -> Starlette:
        """The ASGI app; with ``token`` every request but the health checks needs it."""
        middleware = [Middleware(RequestMetrics, metrics=self.metrics)]
        if token is not None:
            middleware.append(Middleware(BearerAuth, token=token))
        middleware.append(Middleware(InternalErrors))  # innermost: its 500s are measured too
        return Starlette(routes=self.routes(), middleware=middleware)

    def metrics_app(self) -> Starlette:
        """Only /metrics and the health checks, for a Prometheus scrape address without a token."""
        return Starlette(routes=[
            Route("/metrics", self.prometheus_metrics),
            Route("/healthz", self.healthz),
            Route("/readyz", self.readyz),
        ])

    def routes(self) -> list[BaseRoute]:
        group_prefix = f"/apis/{GROUP}/{VERSION}"
        return [
            Route("/healthz", self.healthz),
            Route("/livez", self.healthz),
            Route("/readyz", self.readyz),
            Route("/version", self.version),
            Route("/metrics", self.prometheus_metrics),
            Route("/api", discovery.core_versions),
            Route("/api/v1", discovery.core_resources),
            Route("/apis", discovery.api_groups),
            Route(f"/apis/{GROUP}", discovery.api_group),
            Route(group_prefix, discovery.group_resources),
            Route("/openapi/v2", self.openapi_v2),
            Route("/openapi/v3", self.openapi_v3_index),
            Route("/openapi/v3/{path:path}", self.openapi_v3),
            *self.extra_routes,
            *(bulk_apply_routes(self.store, self.admission) if self.bulk_apply else []),
            Route("/api/v1/events", self.collection, methods=["GET"]),
            Route("/api/v1/namespaces/{namespace}/events", self.collection, methods=["GET", "POST"]),
            Route("/api/v1/namespaces/{namespace}/events/{name}", self.item, methods=["GET", "PATCH"]),
            Route(group_prefix + "/{plural}", self.collection, methods=["GET", "POST", "DELETE"]),
            Route(group_prefix + "/{plural}/{name}", self.item, methods=["GET", "PUT", "PATCH", "DELETE"]),
            Route(group_prefix + "/{plural}/{name}/status", self.status_item, methods=["GET", "PUT", "PATCH"]),
        ]

    # --- health, version, metrics ---------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return Response("ok", media_type="text/plain")

    async def readyz(self, request: Request) -> Response:
        if self.ready():
            return Response("ok", media_type="text/plain")
        return Response("not ready: controllers are starting", status_code=503, media_type="text/plain")

    async def version(self, request: Request) -> Response:
        major, minor, *_ = (mfx.__version__.split(".") + ["0", "0"])
        return json_response({
            "major": major, "minor": minor, "gitVersion": f"v{mfx.__version__}",
            "platform": "linux", "goVersion": "", "compiler": "cpython",
            "buildDate": "", "gitCommit": "", "gitTreeState": "",
        })

    async def prometheus_metrics(self, request: Request) -> Response:
        data = await anyio.to_thread.run_sync(render_registry, self.metrics.registry)
        return Response(data, media_type=CONTENT_TYPE_LATEST)

    # --- OpenAPI -------------------------------------------------------------------------------

    @property
    def openapi(self) -> OpenApiDocuments:
        if self._openapi is None:
            self._openapi = OpenApiDocuments(self.admission.schemas)
        return self._openapi

    async def openapi_v3_index(self, request: Request) -> Response:
        return json_response(self.openapi.index())

    async def openapi_v3(self, request: Request) -> Response:
        path = request.path_params["path"].strip("/")
        body = self.openapi.v3.get(path)
        if body is None:
            return json_response(status_object(404, f'no OpenAPI document for "{path}"'), 404)
        if not accepts(request, JSON):
            return not_acceptable(request, JSON)
        headers = {"ETag": f'"{self.openapi.hashes[path]}"'}
        if request.query_params.get("hash") == self.openapi.hashes[path]:
            headers["Cache-Control"] = "public, immutable"
        else:
            headers["Cache-Control"] = "no-cache, private"
        return Response(body, media_type=JSON, headers=headers)

    async def openapi_v2(self, request: Request) -> Response:
        # client-go asks for protobuf only; a 406 tells it to fall back (kubectl uses v3).
        if not accepts(request, JSON):
            return not_acceptable(request, JSON)
        return Response(self.openapi.v2, media_type=JSON, headers={"ETag": self.openapi.v2_etag})

    # --- objects ------------------------------------------------------------------------------

    def _kind(self, request: Request) -> KindInfo:
        plural = request.path_params.get("plural", "events")
        for info in ALL_KINDS:
            if info.plural == plural:
                return info
        raise NotFoundError(f'the server could not find the requested resource "{plural}"')

    async def collection(self, request: Request) -> Response:
        return await self._answer(request, self._collection)

    async def item(self, request: Request) -> Response:
        return await self._answer(request, self._item)

    async def status_item(self, request: Request) -> Response:
        return await self._answer(request, self._status_item)

    async def _answer(self, request: Request, handler: Handler) -> Response:
        """``handler``'s answer for the kind the path names; an mfx error becomes its Status."""
        try:
            kind = self._kind(request)
        except MfxError as error:
            return error_response(error)
        try:
            return await handler(request, kind)
        except MfxError as error:
            return error_response(error, kind=kind, name=request.path_params.get("name"))

    async def _collection(self, request: Request, kind: KindInfo) -> Response:
        if request.method == "GET":
            if request.query_params.get("watch") in ("true", "1"):
                return await self._watch(request, kind)
            return await self._list(request, kind)
        if request.method == "POST":
            if kind is EVENT:
                return await self._create_event(request)
            return await self._create(request, kind)
        return await self._delete_collection(request, kind)

    async def _item(self, request: Request, kind: KindInfo) -> Response:
        name = request.path_params["name"]
        if request.method == "GET":
            obj = present(kind, await self.store.get(kind.kind, name))
            if not in_namespace(request, obj):
                raise NotFoundError(f'{kind.plural} "{name}" not found')
            if tables.wants_table(request.headers.get("accept")):
                return json_response(self._table([obj], kind, request))
            return json_response(obj)
        if request.method == "PUT":
            return await self._replace(request, kind, name)
        if request.method == "PATCH":
            if kind is EVENT:
                return await self._patch_event(request, name)
            return await self._patch(request, kind, name)
        return await self._delete(request, kind, name)

    async def _status_item(self, request: Request, kind: KindInfo) -> Response:
        name = request.path_params["name"]
        if request.method == "GET":
            return json_response(await self.store.get(kind.kind, name))
        if request.method == "PUT":
            body: Any = await read_object(request)
        else:
            body = await read_body(request)
        conditional = carries_resource_version(body)

        async def attempt() -> Response:
            current = await self.store.get(kind.kind, name)
            updated = body if request.method == "PUT" else apply_patch(
                current, body, request.headers.get("content-type", ""))
            check_identity(updated, kind, name)
            self.admission.check_status(updated)
            if request.method == "PATCH" and not conditional:
                pin_to_read(updated, current)
            if dry_run(request):
                return json_response(updated)
            return json_response(await self.store.update_status(updated))

        return await retry_lost_races(attempt, request.method == "PATCH" and not conditional)

    def _table(self, objects: list[Obj], kind: KindInfo, request: Request, *, resource_version: str = "",
               continue_token: str | None = None, include_columns: bool = True) -> dict[str, Any]:
        columns = EVENT_COLUMNS if kind is EVENT else self.admission.printer_columns(kind.kind)
        if kind is EVENT:
            objects = list(map(with_event_cells, objects))
        return tables.table(
            objects, columns, resource_version=resource_version,
            continue_token=continue_token, include_object=request.query_params.get("includeObject", "Metadata"),
            include_columns=include_columns,
        )

    async def _list(self, request: Request, kind: KindInfo) -> Response:
        params = request.query_params
        limit = int_param(request, "limit")
        result = await self.store.list(
            kind.kind, label_selector=params.get("labelSelector") or None,
            limit=limit, continue_token=params.get("continue") or None,
        )
        items = [obj for obj in map(partial(present, kind), result.items) if in_namespace(request, obj)]
        items = filter_fields(items, params.get("fieldSelector"))
        rv = str(result.resource_version)
        if tables.wants_table(request.headers.get("accept")):
            return json_response(self._table(items, kind, request, resource_version=rv,
                                             continue_token=result.continue_token))
        metadata: dict[str, Any] = {"resourceVersion": rv}
        if result.continue_token:
            metadata["continue"] = result.continue_token
        return json_response({"kind": kind.list_kind, "apiVersion": kind.api_version,
                              "metadata": metadata, "items": items})

    async def _watch(self, request: Request, kind: KindInfo) -> Response:
        def tabulate(objects: list[Obj], include_columns: bool) -> dict[str, Any]:
            return self._table(objects, kind, request, include_columns=include_columns)

        return await watch_response(self.store, request, kind, shutdown=self.shutdown, tabulate=tabulate)

    async def _create(self, request: Request, kind: KindInfo) -> Response:
        body = await read_object(request)
        body.setdefault("apiVersion", kind.api_version)
        body.setdefault("kind", kind.kind)
        check_identity(body, kind, None)
        metadata = body.get("metadata")
        if isinstance(metadata, dict):  # anything else is for validation to report
            for key in SERVER_OWNED_METADATA:
                metadata.pop(key, None)
        body.pop("status", None)
        try:
            obj = self.admission.admit(body)
        except ValidationError as error:
            metadata = body.get("metadata")
            name = metadata.get("name") if isinstance(metadata, dict) else None
            return error_response(error, kind=kind, name=name if isinstance(name, str) and name else None)
        if dry_run(request):
            return json_response(obj, 201)
        return json_response(await self.store.create(obj), 201)

    async def _create_event(self, request: Request) -> Response:
        """An Event reported through the API (by a controller using a Kubernetes client).

        It goes through the store's recorder, so a repeat of the same event bumps its count.
        """
        body = await read_object(request)
        record = event_record(body)
        if dry_run(request):
            return json_response(body, 201)
        return json_response(present(EVENT, await self.store.record_event(record)), 201)

    async def _patch_event(self, request: Request, name: str) -> Response:
        """A merge or JSON patch of an event (a recorder bumping ``count`` and ``lastTimestamp``)."""
        patch = await read_body(request)
        conditional = carries_resource_version(patch)

        async def attempt() -> Response:
            current = await self.store.get(EVENT.kind, name)
            if not in_namespace(request, present(EVENT, current)):
                raise NotFoundError(f'events "{name}" not found')
            updated = apply_patch(current, patch, request.headers.get("content-type", ""), strategic=True)
            check_identity(updated, EVENT, name)
            # Nothing validates events as it does user kinds, yet the recorder and the tables
            # read these fields back: their types are checked here.
            ErrorList(event_problems(updated)).raise_if_any(kind="Event", name=name)
            updated["metadata"].pop("namespace", None)  # presented, never stored
            if not conditional:
                pin_to_read(updated, current)
            if dry_run(request):
                return json_response(present(EVENT, updated))
            return json_response(present(EVENT, await self.store.update(updated)))

        return await retry_lost_races(attempt, not conditional)

    async def _replace(self, request: Request, kind: KindInfo, name: str) -> Response:
        body = await read_object(request)
        check_identity(body, kind, name)
        metadata = body.get("metadata")
        if isinstance(metadata, dict) and metadata.get("managedFields") is None:
            # As the API server: an update that omits managedFields (or sends null) keeps them.
            current = await self.store.get(kind.kind, name)
            if "managedFields" in current["metadata"]:
                metadata["managedFields"] = current["metadata"]["managedFields"]
        return await self._write_update(request, kind, body)

    async def _patch(self, request: Request, kind: KindInfo, name: str) -> Response:
        if patch_type(request.headers.get("content-type", "").lower()) is PatchType.APPLY:
            return await self._server_side_apply(request, kind, name)
        patch = await read_body(request)
        conditional = carries_resource_version(patch)

        async def attempt() -> Response:
            current = await self.store.get(kind.kind, name)
            updated = apply_patch(current, patch, request.headers.get("content-type", ""))
            check_identity(updated, kind, name)
            if not conditional:
                pin_to_read(updated, current)
            return await self._write_update(request, kind, updated)

        if conditional:
            return await retry_lost_races(attempt, False)
        async with self._writers.hold((kind.kind, name)):
            return await retry_lost_races(attempt, True)

    async def _server_side_apply(self, request: Request, kind: KindInfo, name: str) -> Response:
        manager = request.query_params.get("fieldManager")
        if not manager:
            raise BadRequestError("fieldManager is required for apply requests (kubectl sends --field-manager)")
        # kubectl sends JSON; people and GitOps tools send YAML.
        config = await read_object(request, what="an apply configuration", yaml_allowed=True)
        force = request.query_params.get("force") in ("true", "1")
        conditional = carries_resource_version(config)

        async def attempt() -> Response:
            try:
                current: Obj | None = await self.store.get(kind.kind, name)
            except NotFoundError:
                current = None
            if current is None:
                obj = apply_create(config, manager)
                check_identity(obj, kind, name)
                admitted = self.admission.admit(obj)
                if dry_run(request):
                    return json_response(admitted, 201)
                try:
                    return json_response(await self.store.create(admitted), 201)
                except AlreadyExistsError:  # created meanwhile: apply to that one
                    raise ConflictError(f'{kind.plural} "{name}" was created concurrently') from None
            updated = apply_update(current, config, manager, force=force)
            check_identity(updated, kind, name)
            if not conditional:
                pin_to_read(updated, current)
            return await self._write_update(request, kind, updated)

        return await retry_lost_races(attempt, not conditional)

    async def _write_update(self, request: Request, kind: KindInfo, obj: Obj) -> Response:
        obj.pop("status", None)
        if obj["metadata"].get("managedFields", ()) is None:  # a patch that sets null removes them
            del obj["metadata"]["managedFields"]
        problems = managed_fields_problems(obj["metadata"])  # kept as sent: validation leaves them be
        if problems:
            raise ValidationError(problems, kind=kind.kind)
        admitted = self.admission.admit(obj)
        if dry_run(request):
            current = await self.store.get(kind.kind, name_of(obj))
            preview = copy.deepcopy(current)
            preview["metadata"].update({k: v for k, v in admitted["metadata"].items() if k not in SERVER_OWNED_METADATA})
            for key in ("labels", "annotations"):
                if key not in admitted["metadata"]:
                    preview["metadata"].pop(key, None)
            if preview.get("spec") != admitted.get("spec"):
                preview["spec"] = admitted.get("spec")
                preview["metadata"]["generation"] = next_generation(current["metadata"])
            return json_response(preview)
        return json_response(await self.store.update(admitted))

    async def _delete(self, request: Request, kind: KindInfo, name: str) -> Response:
        rv = precondition(await read_object(request, what="DeleteOptions", default={}))
        if dry_run(request):
            return json_response(await self.store.get(kind.kind, name))
        obj = await self.store.delete(kind.kind, name, resource_version=rv)
        return json_response(obj)

    async def _delete_collection(self, request: Request, kind: KindInfo) -> Response:
        result = await self.store.list(kind.kind, label_selector=request.query_params.get("labelSelector") or None)
        deleted = []
        for obj in result.items:
            if not dry_run(request):
                try:
                    obj = await self.store.delete(kind.kind, name_of(obj))
                except NotFoundError:
                    continue
            deleted.append(obj)
        return json_response({"kind": kind.list_kind, "apiVersion": kind.api_version,
                              "metadata": {"resourceVersion": str(await self.store.current_resource_version())},
                              "items": deleted})
