"""The HTTP API: the Kubernetes API shapes for the mfx kinds, served by Starlette.

Paths, objects, lists, watch events, Status errors, Table responses and patches follow the
Kubernetes API server, so mfx's CLI, kubectl and the Kubernetes client libraries can all
talk to it. The same app is served on the unix socket (no token: the socket is 0600) and on
the optional TCP listener (bearer token required).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio
import jsonpatch
import orjson
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import mfx
from mfx.api import selectors
from mfx.api.kinds import ALL_KINDS, EVENT, GROUP, USER_KINDS, VERSION, KindInfo
from mfx.api.objects import Obj, name_of, parse_time
from mfx.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    ErrorList,
    FieldError,
    GoneError,
    MfxError,
    NotFoundError,
    ValidationError,
)
from mfx.server import tables
from mfx.server.admission import Admission
from mfx.server.auth import token_matches
from mfx.server.bodies import json_type, read_body, read_object
from mfx.server.openapi import OpenApiDocuments
from mfx.server.server_side_apply import (
    ApplyConflictError,
    apply_create,
    apply_update,
    managed_fields_problems,
)
from mfx.server.status import status_from_error, status_object
from mfx.server.streams import until_shutdown
from mfx.store.base import EventRecord, Store, WatchEventType
from observability.fastmetrics import render_registry
from observability.metrics import Metrics

log = logging.getLogger("mfx.server")

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
# Aggregated discovery (kubectl >= 1.26 asks for it first): every group's resources in one answer.
DISCOVERY_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2"
# Events about cluster-scoped objects live in this namespace, as in Kubernetes.
EVENT_NAMESPACE = "default"

# Fields the server owns: a client's values for them are ignored on create.
_SERVER_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
                    "managedFields", "selfLink")


def json_response(data: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status_code, media_type=JSON)


def error_response(error: MfxError, *, kind: KindInfo | None = None, name: str | None = None) -> Response:
    status = status_from_error(error, kind=kind, name=name)
    if kind is not None and error.code == 422 and "details" in status:
        # Like the API server: an Invalid Status names the kind, a NotFound one the resource.
        status["details"]["kind"] = kind.kind
    if isinstance(error, ApplyConflictError):
        status.setdefault("details", {})["causes"] = error.causes
    return json_response(status, error.code)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@dataclass
class ApiServer:
    store: Store
    admission: Admission
    metrics: Metrics
    shutdown: anyio.Event = field(default_factory=anyio.Event)
    extra_routes: list[BaseRoute] = field(default_factory=list)
    ready: Callable[[], bool] = lambda: True
    _openapi: OpenApiDocuments | None = field(default=None, init=False, repr=False)
    # Unconditional writes to one object take turns: racing each other, all but one would
    # lose every commit round, and fifty clients would need fifty rounds to get through.
    _writers: KeyedLocks = field(default_factory=lambda: KeyedLocks(), init=False, repr=False)

    # --- app ----------------------------------------------------------------------------

    def app(self, *, token: str | None = None) -> Starlette:
        """The ASGI app; with ``token`` every request but the health checks needs it."""
        middleware = [Middleware(_RequestMetrics, metrics=self.metrics)]
        if token is not None:
            middleware.append(Middleware(_BearerAuth, token=token))
        middleware.append(Middleware(_InternalErrors))  # innermost: its 500s are measured too
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
            Route("/api", self.core_versions),
            Route("/api/v1", self.core_resources),
            Route("/apis", self.api_groups),
            Route(f"/apis/{GROUP}", self.api_group),
            Route(group_prefix, self.group_resources),
            Route("/openapi/v2", self.openapi_v2),
            Route("/openapi/v3", self.openapi_v3_index),
            Route("/openapi/v3/{path:path}", self.openapi_v3),
            *self.extra_routes,
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

    # --- discovery --------------------------------------------------------------------------

    async def core_versions(self, request: Request) -> Response:
        if _wants_aggregated(request):
            return _aggregated([_discovery_group("", "v1", [EVENT])])
        return json_response({"kind": "APIVersions", "versions": ["v1"],
                              "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]})

    async def core_resources(self, request: Request) -> Response:
        return json_response({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1",
                              "resources": [_api_resource(EVENT, namespaced=True)]})

    async def api_groups(self, request: Request) -> Response:
        if _wants_aggregated(request):
            return _aggregated([_discovery_group(GROUP, VERSION, list(USER_KINDS))])
        return json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": [_api_group()]})

    async def api_group(self, request: Request) -> Response:
        return json_response({"kind": "APIGroup", "apiVersion": "v1", **_api_group()})

    async def group_resources(self, request: Request) -> Response:
        resources: list[dict[str, Any]] = []
        for info in USER_KINDS:
            resources.append(_api_resource(info))
            resources.append({"name": f"{info.plural}/status", "singularName": "", "namespaced": False,
                              "kind": info.kind, "verbs": ["get", "patch", "update"]})
        return json_response({"kind": "APIResourceList", "apiVersion": "v1",
                              "groupVersion": f"{GROUP}/{VERSION}", "resources": resources})

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
        if not _accepts(request, JSON):
            return _not_acceptable(request, JSON)
        headers = {"ETag": f'"{self.openapi.hashes[path]}"'}
        if request.query_params.get("hash") == self.openapi.hashes[path]:
            headers["Cache-Control"] = "public, immutable"
        else:
            headers["Cache-Control"] = "no-cache, private"
        return Response(body, media_type=JSON, headers=headers)

    async def openapi_v2(self, request: Request) -> Response:
        # client-go asks for protobuf only; a 406 tells it to fall back (kubectl uses v3).
        if not _accepts(request, JSON):
            return _not_acceptable(request, JSON)
        return Response(self.openapi.v2, media_type=JSON, headers={"ETag": self.openapi.v2_etag})

    # --- objects ------------------------------------------------------------------------------

    def _kind(self, request: Request) -> KindInfo:
        plural = request.path_params.get("plural", "events")
        for info in ALL_KINDS:
            if info.plural == plural:
                return info
        raise NotFoundError(f'the server could not find the requested resource "{plural}"')

    async def collection(self, request: Request) -> Response:
        try:
            kind = self._kind(request)
        except MfxError as error:
            return error_response(error)
        try:
            if request.method == "GET":
                if request.query_params.get("watch") in ("true", "1"):
                    return await self._watch(request, kind)
                return await self._list(request, kind)
            if request.method == "POST":
                if kind is EVENT:
                    return await self._create_event(request)
                return await self._create(request, kind)
            return await self._delete_collection(request, kind)
        except MfxError as error:
            return error_response(error, kind=kind)

    async def item(self, request: Request) -> Response:
        try:
            kind = self._kind(request)
        except MfxError as error:
            return error_response(error)
        name = request.path_params["name"]
        try:
            if request.method == "GET":
                obj = _present(kind, await self.store.get(kind.kind, name))
                if not _in_namespace(request, obj):
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
        except MfxError as error:
            return error_response(error, kind=kind, name=name)

    async def status_item(self, request: Request) -> Response:
        try:
            kind = self._kind(request)
        except MfxError as error:
            return error_response(error)
        name = request.path_params["name"]
        try:
            if request.method == "GET":
                return json_response(await self.store.get(kind.kind, name))
            if request.method == "PUT":
                body: Any = await read_object(request)
            else:
                body = await read_body(request)

            async def attempt() -> Response:
                current = await self.store.get(kind.kind, name)
                updated = body if request.method == "PUT" else _apply_patch(
                    current, body, request.headers.get("content-type", ""))
                _check_identity(updated, kind, name)
                self.admission.check_status(updated)
                if request.method == "PATCH" and not _carries_resource_version(body):
                    updated["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                if _dry_run(request):
                    return json_response(updated)
                return json_response(await self.store.update_status(updated))

            return await _retry_lost_races(attempt, request.method == "PATCH" and not _carries_resource_version(body))
        except MfxError as error:
            return error_response(error, kind=kind, name=name)

    def _table(self, objects: list[Obj], kind: KindInfo, request: Request, *, resource_version: str = "",
               continue_token: str | None = None, include_columns: bool = True) -> dict[str, Any]:
        columns = EVENT_COLUMNS if kind is EVENT else self.admission.printer_columns(kind.kind)
        if kind is EVENT:
            objects = list(map(_with_event_cells, objects))
        return tables.table(
            objects, columns, resource_version=resource_version,
            continue_token=continue_token, include_object=request.query_params.get("includeObject", "Metadata"),
            include_columns=include_columns,
        )

    async def _list(self, request: Request, kind: KindInfo) -> Response:
        params = request.query_params
        limit = _int_param(request, "limit")
        result = await self.store.list(
            kind.kind, label_selector=params.get("labelSelector") or None,
            limit=limit, continue_token=params.get("continue") or None,
        )
        items = [obj for obj in map(partial(_present, kind), result.items) if _in_namespace(request, obj)]
        items = _filter_fields(items, params.get("fieldSelector"))
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
        params = request.query_params
        label_selector = selectors.parse_selector(params["labelSelector"]) if params.get("labelSelector") else None
        field_selector = params.get("fieldSelector")
        as_table = tables.wants_table(request.headers.get("accept"))
        timeout = _int_param(request, "timeoutSeconds")
        since = _int_param(request, "resourceVersion") or 0
        send_initial = since == 0
        initial: list[Obj] = []
        if send_initial:
            listed = await self.store.list(kind.kind)
            initial = listed.items
            since = listed.resource_version
        # Open the watch before streaming, so a compacted resourceVersion is reported at once.
        events = self.store.watch(kind.kind, since)

        def keep(obj: Obj) -> bool:
            if not _in_namespace(request, obj):
                return False
            if label_selector is not None and not label_selector.matches(obj.get("metadata", {}).get("labels") or {}):
                return False
            return bool(_filter_fields([obj], field_selector))

        def encode(type_: str, obj: Obj, first: bool) -> bytes:
            obj = _present(kind, obj)
            payload = self._table([obj], kind, request, include_columns=first) if as_table else obj
            return orjson.dumps({"type": type_, "object": payload}) + b"\n"

        async def stream() -> AsyncIterator[bytes]:
            first = True
            with anyio.move_on_after(timeout) if timeout else contextlib.nullcontext():
                try:
                    for obj in initial:
                        obj = _present(kind, obj)
                        if keep(obj):
                            yield encode("ADDED", obj, first)
                            first = False
                    async for event in until_shutdown(events, self.shutdown):
                        if event.type is WatchEventType.BOOKMARK or not keep(_present(kind, event.object)):
                            continue
                        yield encode(event.type.value, event.object, first)
                        first = False
                except GoneError as error:
                    yield orjson.dumps({"type": "ERROR", "object": status_from_error(error)}) + b"\n"
                finally:
                    await events.aclose()  # type: ignore[attr-defined]

        return StreamingResponse(stream(), media_type=JSON)

    async def _create(self, request: Request, kind: KindInfo) -> Response:
        body = await read_object(request)
        body.setdefault("apiVersion", kind.api_version)
        body.setdefault("kind", kind.kind)
        _check_identity(body, kind, None)
        metadata = body.get("metadata")
        if isinstance(metadata, dict):  # anything else is for validation to report
            for key in _SERVER_METADATA:
                metadata.pop(key, None)
        body.pop("status", None)
        try:
            obj = self.admission.admit(body)
        except ValidationError as error:
            metadata = body.get("metadata")
            name = metadata.get("name") if isinstance(metadata, dict) else None
            return error_response(error, kind=kind, name=name if isinstance(name, str) and name else None)
        if _dry_run(request):
            return json_response(obj, 201)
        return json_response(await self.store.create(obj), 201)

    async def _create_event(self, request: Request) -> Response:
        """An Event reported through the API (by a controller using a Kubernetes client).

        It goes through the store's recorder, so a repeat of the same event bumps its count.
        """
        body = await read_object(request)
        involved = body.get("involvedObject")
        involved = involved if isinstance(involved, dict) else {}
        errors = ErrorList()
        for key in ("kind", "name"):
            if not isinstance(involved.get(key), str) or not involved[key]:
                errors.add(f"involvedObject.{key}", "required: the kind and name of the object the event is about")
        event_type = body.get("type") or "Normal"
        if event_type not in ("Normal", "Warning"):
            errors.add("type", f'must be "Normal" or "Warning", not {event_type!r}')
        if not isinstance(body.get("reason"), str) or not body["reason"]:
            errors.add("reason", "required: a short CamelCase reason, e.g. Started")
        errors.raise_if_any(kind="Event")
        source = body.get("source")
        source = source if isinstance(source, dict) else {}
        record = EventRecord(
            involved_kind=involved["kind"], involved_name=involved["name"],
            involved_uid=str(involved.get("uid") or ""), involved_api_version=str(involved.get("apiVersion") or ""),
            type=event_type, reason=body["reason"], message=str(body.get("message") or ""),
            source=str(source.get("component") or body.get("reportingComponent") or "mfx"),
        )
        if _dry_run(request):
            return json_response(body, 201)
        return json_response(_present(EVENT, await self.store.record_event(record)), 201)

    async def _patch_event(self, request: Request, name: str) -> Response:
        """A merge or JSON patch of an event (a recorder bumping ``count`` and ``lastTimestamp``)."""
        patch = await read_body(request)
        conditional = _carries_resource_version(patch)

        async def attempt() -> Response:
            current = await self.store.get(EVENT.kind, name)
            if not _in_namespace(request, _present(EVENT, current)):
                raise NotFoundError(f'events "{name}" not found')
            updated = _apply_patch(current, patch, request.headers.get("content-type", ""), strategic=True)
            _check_identity(updated, EVENT, name)
            # Nothing validates events as it does user kinds, yet the recorder and the tables
            # read these fields back: their types are checked here.
            ErrorList(_event_problems(updated)).raise_if_any(kind="Event", name=name)
            updated["metadata"].pop("namespace", None)  # presented, never stored
            if not conditional:
                updated["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            if _dry_run(request):
                return json_response(_present(EVENT, updated))
            return json_response(_present(EVENT, await self.store.update(updated)))

        return await _retry_lost_races(attempt, not conditional)

    async def _replace(self, request: Request, kind: KindInfo, name: str) -> Response:
        body = await read_object(request)
        _check_identity(body, kind, name)
        metadata = body.get("metadata")
        if isinstance(metadata, dict) and metadata.get("managedFields") is None:
            # As the API server: an update that omits managedFields (or sends null) keeps them.
            current = await self.store.get(kind.kind, name)
            if "managedFields" in current["metadata"]:
                metadata["managedFields"] = current["metadata"]["managedFields"]
        return await self._write_update(request, kind, body)

    async def _patch(self, request: Request, kind: KindInfo, name: str) -> Response:
        if _media(request) == APPLY_PATCH:
            return await self._server_side_apply(request, kind, name)
        patch = await read_body(request)
        conditional = _carries_resource_version(patch)

        async def attempt() -> Response:
            current = await self.store.get(kind.kind, name)
            updated = _apply_patch(current, patch, request.headers.get("content-type", ""))
            _check_identity(updated, kind, name)
            if not conditional:  # the write is conditional on what this attempt read
                updated["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            return await self._write_update(request, kind, updated)

        if conditional:
            return await _retry_lost_races(attempt, False)
        async with self._writers.hold((kind.kind, name)):
            return await _retry_lost_races(attempt, True)

    async def _server_side_apply(self, request: Request, kind: KindInfo, name: str) -> Response:
        manager = request.query_params.get("fieldManager")
        if not manager:
            raise BadRequestError("fieldManager is required for apply requests (kubectl sends --field-manager)")
        # kubectl sends JSON; people and GitOps tools send YAML.
        config = await read_object(request, what="an apply configuration", yaml_allowed=True)
        force = request.query_params.get("force") in ("true", "1")
        conditional = _carries_resource_version(config)

        async def attempt() -> Response:
            try:
                current: Obj | None = await self.store.get(kind.kind, name)
            except NotFoundError:
                current = None
            if current is None:
                obj = apply_create(config, manager)
                _check_identity(obj, kind, name)
                admitted = self.admission.admit(obj)
                if _dry_run(request):
                    return json_response(admitted, 201)
                try:
                    return json_response(await self.store.create(admitted), 201)
                except AlreadyExistsError:  # created meanwhile: apply to that one
                    raise ConflictError(f'{kind.plural} "{name}" was created concurrently') from None
            updated = apply_update(current, config, manager, force=force)
            _check_identity(updated, kind, name)
            if not conditional:
                updated["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            return await self._write_update(request, kind, updated)

        return await _retry_lost_races(attempt, not conditional)

    async def _write_update(self, request: Request, kind: KindInfo, obj: Obj) -> Response:
        obj.pop("status", None)
        if obj["metadata"].get("managedFields", ()) is None:  # a patch that sets null removes them
            del obj["metadata"]["managedFields"]
        problems = managed_fields_problems(obj["metadata"])  # kept as sent: validation leaves them be
        if problems:
            raise ValidationError(problems, kind=kind.kind)
        admitted = self.admission.admit(obj)
        if _dry_run(request):
            current = await self.store.get(kind.kind, name_of(obj))
            preview = copy.deepcopy(current)
            preview["metadata"].update({k: v for k, v in admitted["metadata"].items() if k not in _SERVER_METADATA})
            for key in ("labels", "annotations"):
                if key not in admitted["metadata"]:
                    preview["metadata"].pop(key, None)
            if preview.get("spec") != admitted.get("spec"):
                preview["spec"] = admitted.get("spec")
                preview["metadata"]["generation"] = int(current["metadata"].get("generation", 1)) + 1
            return json_response(preview)
        return json_response(await self.store.update(admitted))

    async def _delete(self, request: Request, kind: KindInfo, name: str) -> Response:
        rv = _precondition(await read_object(request, what="DeleteOptions", default={}))
        if _dry_run(request):
            return json_response(await self.store.get(kind.kind, name))
        obj = await self.store.delete(kind.kind, name, resource_version=rv)
        return json_response(obj)

    async def _delete_collection(self, request: Request, kind: KindInfo) -> Response:
        result = await self.store.list(kind.kind, label_selector=request.query_params.get("labelSelector") or None)
        deleted = []
        for obj in result.items:
            if not _dry_run(request):
                try:
                    obj = await self.store.delete(kind.kind, name_of(obj))
                except NotFoundError:
                    continue
            deleted.append(obj)
        return json_response({"kind": kind.list_kind, "apiVersion": kind.api_version,
                              "metadata": {"resourceVersion": str(await self.store.current_resource_version())},
                              "items": deleted})


# --- helpers -----------------------------------------------------------------------------------


def _media_params(part: str) -> tuple[str, dict[str, str]]:
    media, *rest = part.split(";")
    params = {}
    for item in rest:
        key, _, value = item.partition("=")
        params[key.strip()] = value.strip()
    return media.strip().lower(), params


def _wants_aggregated(request: Request) -> bool:
    for part in request.headers.get("accept", "").split(","):
        media, params = _media_params(part)
        if (media == JSON and params.get("g") == "apidiscovery.k8s.io" and params.get("v") == "v2"
                and params.get("as") == "APIGroupDiscoveryList"):
            return True
    return False


def _accepts(request: Request, wanted: str) -> bool:
    """Whether the Accept header allows plain ``wanted`` (no header allows anything)."""
    accept = request.headers.get("accept")
    if not accept:
        return True
    for part in accept.split(","):
        media, params = _media_params(part)
        if params.get("q") == "0":
            continue
        if media in ("*/*", wanted.split("/")[0] + "/*") or (media == wanted and "as" not in params):
            return True
    return False


def _not_acceptable(request: Request, offered: str) -> Response:
    message = f'only {offered} is served here, not {request.headers.get("accept")!r}'
    return json_response(status_object(406, message, reason="NotAcceptable"), 406)


def _aggregated(groups: list[dict[str, Any]]) -> Response:
    return Response(orjson.dumps({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
                                  "metadata": {}, "items": groups}), media_type=DISCOVERY_V2)


def _discovery_group(group: str, version: str, kinds: list[KindInfo]) -> dict[str, Any]:
    resources = []
    for info in kinds:
        legacy = _api_resource(info)
        kind_ref = {"group": group, "version": version, "kind": info.kind}
        resource: dict[str, Any] = {
            "resource": info.plural, "responseKind": kind_ref,
            "scope": "Namespaced" if legacy["namespaced"] else "Cluster",
            "singularResource": info.singular, "verbs": legacy["verbs"],
            "shortNames": legacy["shortNames"],
        }
        if legacy["categories"]:
            resource["categories"] = legacy["categories"]
        if info is not EVENT:
            resource["subresources"] = [{"subresource": "status", "responseKind": kind_ref,
                                         "verbs": ["get", "patch", "update"]}]
        resources.append(resource)
    metadata: dict[str, Any] = {"name": group} if group else {}
    return {"metadata": metadata,
            "versions": [{"version": version, "resources": resources, "freshness": "Current"}]}


# --- events: cluster-scoped objects' events, in the "default" namespace as in Kubernetes ---------

EVENT_COLUMNS: list[dict[str, Any]] = [
    {"name": "Last Seen", "type": "date", "jsonPath": ".lastTimestamp", "description": "When it last happened."},
    {"name": "Type", "type": "string", "jsonPath": ".type", "description": "Normal or Warning."},
    {"name": "Reason", "type": "string", "jsonPath": ".reason", "description": "Why it happened."},
    {"name": "Object", "type": "string", "jsonPath": ".involvedObject.ref",
     "description": "The object it is about (kind/name)."},
    {"name": "Count", "type": "integer", "jsonPath": ".count", "description": "How many times.", "priority": 1},
    {"name": "Message", "type": "string", "jsonPath": ".message", "description": "What happened."},
]


_EVENT_STRINGS = ("message", "reportingComponent", "reportingInstance", "action")
_EVENT_TIMES = ("firstTimestamp", "lastTimestamp", "eventTime")


def _event_problems(event: Obj) -> list[FieldError]:
    """What in a written Event has a type its readers (the recorder, the tables) cannot use."""
    problems: list[FieldError] = []

    def problem(path: str, message: str) -> None:
        problems.append(FieldError(path=path, message=message))

    involved = event.get("involvedObject")
    if not isinstance(involved, dict):
        problem("involvedObject", f"expected an object naming the object (kind, name), got {json_type(involved)}")
    else:
        for key, value in involved.items():
            if not isinstance(value, str):
                problem(f"involvedObject.{key}", f"expected a string, got {json_type(value)}")
        for key in ("kind", "name"):
            if not involved.get(key):
                problem(f"involvedObject.{key}", "required: the kind and name of the object the event is about")
    if not isinstance(event.get("reason"), str) or not event["reason"]:
        problem("reason", "required: a short CamelCase reason, e.g. Started")
    if event.get("type", "Normal") not in ("Normal", "Warning"):
        problem("type", f'must be "Normal" or "Warning", not {event.get("type")!r}')
    count = event.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        problem("count", f"expected a whole number of 1 or more, got {count!r}")
    for key in _EVENT_STRINGS:
        if not isinstance(event.get(key, ""), str):
            problem(key, f"expected a string, got {json_type(event[key])}")
    for key in _EVENT_TIMES:
        value = event.get(key)
        if value is not None and not _is_rfc3339(value):
            problem(key, f"expected an RFC 3339 time such as 2026-01-02T15:04:05Z, got {value!r}")
    source = event.get("source", {})
    if not isinstance(source, dict) or not all(isinstance(v, str) for v in source.values()):
        problem("source", "expected an object of strings (component, host)")
    return problems


def _is_rfc3339(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parse_time(value)
    except ValueError:
        return False
    return True


def _present(kind: KindInfo, obj: Obj) -> Obj:
    """An object as the API shows it: events carry their namespace."""
    if kind is not EVENT or obj.get("metadata", {}).get("namespace"):
        return obj
    return {**obj, "metadata": {**obj.get("metadata", {}), "namespace": EVENT_NAMESPACE}}


def _in_namespace(request: Request, obj: Obj) -> bool:
    namespace = request.path_params.get("namespace")
    return namespace is None or obj.get("metadata", {}).get("namespace", "") == namespace


def _with_event_cells(event: Obj) -> Obj:
    involved = event.get("involvedObject") or {}
    ref = f'{str(involved.get("kind", "")).lower()}/{involved.get("name", "")}'
    return {**event, "involvedObject": {**involved, "ref": ref},
            "lastTimestamp": event.get("lastTimestamp") or event.get("metadata", {}).get("creationTimestamp")}


def _api_group() -> dict[str, Any]:
    gv = {"groupVersion": f"{GROUP}/{VERSION}", "version": VERSION}
    return {"name": GROUP, "versions": [gv], "preferredVersion": gv}


def _api_resource(info: KindInfo, *, namespaced: bool | None = None) -> dict[str, Any]:
    if info is EVENT:
        namespaced, verbs = True, ["create", "get", "list", "patch", "watch"]
    else:
        verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    return {
        "name": info.plural,
        "singularName": info.singular,
        "namespaced": info.namespaced if namespaced is None else namespaced,
        "kind": info.kind,
        "verbs": verbs,
        "shortNames": list(info.short_names),
        "categories": list(info.categories),
    }


# A patch without a resourceVersion of its own applies to whatever is current: when a
# concurrent write (a controller's) wins the race, read again and re-apply, as the API server does.
PATCH_ATTEMPTS = 64


class KeyedLocks:
    """One lock per key, existing only while someone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[Any, tuple[anyio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: Any) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = anyio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


async def _retry_lost_races(attempt: Callable[[], Awaitable[Response]], retry: bool) -> Response:
    """Run ``attempt`` again when a write without a resourceVersion lost a race: it applies as
    well to the newer object, so the client never sees a conflict it did not ask for (as
    kube-apiserver's GuaranteedUpdate). Writers that keep colliding spread out with jitter."""
    for tries in range(1, PATCH_ATTEMPTS + 1):
        try:
            return await attempt()
        except ApplyConflictError:
            raise
        except ConflictError:
            if not retry or tries == PATCH_ATTEMPTS:
                raise
            if tries >= 3:
                await anyio.sleep(random.uniform(0, 0.001 * tries))
    raise AssertionError("unreachable")


def _carries_resource_version(body: Any) -> bool:
    metadata = body.get("metadata") if isinstance(body, dict) else None
    return isinstance(metadata, dict) and bool(metadata.get("resourceVersion"))


def _media(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _apply_patch(current: Obj, patch: Any, content_type: str, *, strategic: bool = False) -> Any:
    """``patch`` applied to ``current``. ``strategic``: the kind has no list merged by key and no
    patch directives (Event), so a strategic merge patch means what a merge patch means.

    The result may be any JSON value: ``_check_identity`` refuses what is not an object."""
    media = content_type.split(";")[0].strip()
    if media == STRATEGIC_PATCH and strategic:
        _check_merge_patch(patch, "a strategic merge patch")
        if "$patch" in orjson.dumps(patch).decode() or "$retainKeys" in orjson.dumps(patch).decode():
            raise BadRequestError("strategic merge patch directives ($patch, $retainKeys) are not supported")
        return merge_patch(current, patch)
    if media == MERGE_PATCH or media == STRATEGIC_PATCH or media == JSON:
        # Custom resources have no strategic-merge schema: like the API server, refuse it.
        if media == STRATEGIC_PATCH:
            raise _unsupported_media("strategic merge patch is not supported for custom resources; "
                                     "use --type=merge or --type=json")
        _check_merge_patch(patch, "a merge patch")
        return merge_patch(current, patch)
    if media == JSON_PATCH:
        return _apply_json_patch(current, patch)
    if media == APPLY_PATCH:
        raise _unsupported_media("server-side apply is not supported for the status subresource; "
                                 f"use {MERGE_PATCH} or {JSON_PATCH}")
    raise _unsupported_media(f"unsupported patch type {media!r}; use {MERGE_PATCH} or {JSON_PATCH}")


def _unsupported_media(message: str) -> MfxError:
    error = MfxError(message, reason="UnsupportedMediaType")
    error.code = 415
    return error


def _check_merge_patch(patch: Any, what: str) -> None:
    # RFC 7386 lets a non-object patch replace the whole document; for an object that can
    # only ever produce something that is not an object.
    if not isinstance(patch, dict):
        raise BadRequestError(f"{what} must be a JSON object, not {json_type(patch)}")


_JSON_PATCH_OPS = ("add", "remove", "replace", "move", "copy", "test")


def _apply_json_patch(current: Obj, patch: Any) -> Any:
    """RFC 6902. The operations' shape is checked here: the library takes a string for a patch
    to parse (unhardened) and does not check every member's type itself."""
    if not isinstance(patch, list):
        raise BadRequestError(f"a JSON patch must be a list of operations, not {json_type(patch)}")
    problems: list[str] = []
    for index, operation in enumerate(patch):
        where = f"operation {index}"
        if not isinstance(operation, dict):
            problems.append(f'{where}: expected an object {{"op", "path", ...}}, got {json_type(operation)}')
            continue
        op = operation.get("op")
        if op not in _JSON_PATCH_OPS:
            problems.append(f"{where}: op: expected one of {', '.join(_JSON_PATCH_OPS)}, got {op!r}")
        members = ("path", "from") if op in ("move", "copy") else ("path",)
        for member in members:
            pointer = operation.get(member)
            if not isinstance(pointer, str) or (pointer and not pointer.startswith("/")):
                problems.append(f'{where}: {member}: expected a JSON pointer ("" or "/a/b"), got {pointer!r}')
        if op in ("add", "replace", "test") and "value" not in operation:
            problems.append(f'{where}: value: required for "{op}"')
    if problems:
        raise BadRequestError("the JSON patch is malformed: " + "; ".join(problems[:10]))
    try:
        return jsonpatch.apply_patch(current, patch)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
        raise BadRequestError(f"the JSON patch could not be applied: {error}") from None


def _check_identity(obj: Any, kind: KindInfo, name: str | None) -> None:
    """The object is one of ``kind`` named ``name``, with metadata an object (which later
    steps rely on); the rest is for validation."""
    if not isinstance(obj, dict):
        raise BadRequestError(f"the result is {json_type(obj)}, not a {kind.kind} object")
    metadata = obj.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise ValidationError([FieldError(
            path="metadata", message=f"expected an object with name, labels and annotations, got {json_type(metadata)}",
        )], kind=kind.kind)
    if obj.get("kind") != kind.kind or obj.get("apiVersion") != kind.api_version:
        raise BadRequestError(
            f'the object is {obj.get("apiVersion")}/{obj.get("kind")}, but the path is for '
            f"{kind.api_version}/{kind.kind}"
        )
    given = metadata.get("name") if isinstance(metadata, dict) else None
    if name is not None and given != name:
        raise BadRequestError(f'the name in the body ({json.dumps(given)}) does not match the name in the path ("{name}")')


_INT64_MAX = 2**63 - 1


def _whole_number(text: str) -> int | None:
    """``text`` as an int from 0 to int64's maximum (as Kubernetes and SQLite keep them), or None."""
    if not (text.isascii() and text.isdigit()) or len(text) > 19:  # isdigit refuses a sign too
        return None
    value = int(text)
    return value if value <= _INT64_MAX else None


def _int_param(request: Request, name: str) -> int | None:
    """A whole-number query parameter (absent or empty: None)."""
    text = request.query_params.get(name, "")
    if not text:
        return None
    value = _whole_number(text)
    if value is None:
        raise BadRequestError(f"{name}: expected a whole number from 0 to {_INT64_MAX}, got {text!r}")
    return value


def _precondition(options: dict[str, Any]) -> int | None:
    """The resourceVersion a delete is conditional on, from DeleteOptions."""
    preconditions = options.get("preconditions")
    if preconditions is None:
        return None
    if not isinstance(preconditions, dict):
        raise BadRequestError(f"preconditions: expected an object, got {json_type(preconditions)}")
    rv = preconditions.get("resourceVersion")
    if rv in (None, ""):
        return None
    value = _whole_number(rv) if isinstance(rv, str) else None
    if value is None:
        raise BadRequestError(f"preconditions.resourceVersion: expected a resourceVersion such as \"42\", got {rv!r}")
    return value


def _dry_run(request: Request) -> bool:
    return request.query_params.get("dryRun") == "All"


def _filter_fields(items: list[Obj], field_selector: str | None) -> list[Obj]:
    """Field selectors on equality (``metadata.name=x,involvedObject.kind=Y``), as kubectl sends them."""
    if not field_selector:
        return items
    terms: list[tuple[list[str], str, bool]] = []
    for part in field_selector.split(","):
        part = part.strip()
        if not part:
            continue
        negate = "!=" in part
        key, _, value = part.partition("!=" if negate else "==" if "==" in part else "=")
        terms.append((key.strip().split("."), value.strip(), negate))

    def value_of(obj: Obj, path: list[str]) -> str:
        current: Any = obj
        for step in path:
            current = current.get(step) if isinstance(current, dict) else None
        return "" if current is None else str(current)

    return [obj for obj in items if all((value_of(obj, path) == value) != negate for path, value, negate in terms)]


class _BearerAuth(BaseHTTPMiddleware):
    def __init__(self, app: Any, token: str) -> None:
        super().__init__(app)
        self.token = token

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if request.url.path in ("/healthz", "/livez", "/readyz"):
            return await call_next(request)
        if not token_matches(request.headers.get("authorization"), self.token):
            return json_response(status_object(401, "Unauthorized: a valid bearer token is required "
                                                    "(see 'mfx config kubeconfig')"), 401)
        return await call_next(request)


class _InternalErrors:
    """An exception no handler expected is a bug: log it with its traceback, and answer a
    Status a client can show rather than a bare "Internal Server Error" page.

    Plain ASGI rather than ``BaseHTTPMiddleware``, so streamed responses (watches, log
    follows) pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as error:
            log.exception("internal error answering %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise  # too late for a Status: the server ends the response
            message = f"internal error: {type(error).__name__}: {error} (the daemon log has the traceback)"
            await json_response(status_object(500, message), 500)(scope, receive, send)


class _RequestMetrics(BaseHTTPMiddleware):
    def __init__(self, app: Any, metrics: Metrics) -> None:
        super().__init__(app)
        self.metrics = metrics

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        verb = "WATCH" if request.query_params.get("watch") in ("true", "1") else request.method
        self.metrics.api_requests_total.labels(verb, str(response.status_code)).inc()
        self.metrics.api_request_duration_seconds.labels(verb).observe(time.perf_counter() - started)
        return response

