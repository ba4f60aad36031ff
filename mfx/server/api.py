"""The HTTP API: the Kubernetes API shapes for the mfx kinds, served by Starlette.

Paths, objects, lists, watch events, Status errors, Table responses and patches follow the
Kubernetes API server, so mfx's CLI, kubectl and the Kubernetes client libraries can all
talk to it. The same app is served on the unix socket (no token: the socket is 0600) and on
the optional TCP listener (bearer token required).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import jsonpatch
import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

import mfx
from mfx.api import selectors
from mfx.api.kinds import ALL_KINDS, EVENT, GROUP, USER_KINDS, VERSION, KindInfo
from mfx.api.objects import Obj, name_of
from mfx.errors import BadRequestError, GoneError, MfxError, NotFoundError
from mfx.observability.metrics import Metrics
from mfx.server import tables
from mfx.server.admission import Admission
from mfx.server.auth import token_matches
from mfx.server.status import status_from_error, status_object
from mfx.store.base import Store, WatchEvent, WatchEventType

log = logging.getLogger("mfx.server")

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

# Fields the server owns: a client's values for them are ignored on create.
_SERVER_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
                    "managedFields", "selfLink")


def json_response(data: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status_code, media_type=JSON)


def error_response(error: MfxError, *, kind: KindInfo | None = None, name: str | None = None) -> Response:
    return json_response(status_from_error(error, kind=kind, name=name), error.code)


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

    # --- app ----------------------------------------------------------------------------

    def app(self, *, token: str | None = None) -> Starlette:
        """The ASGI app; with ``token`` every request but the health checks needs it."""
        middleware = [Middleware(_RequestMetrics, metrics=self.metrics)]
        if token is not None:
            middleware.append(Middleware(_BearerAuth, token=token))
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
            *self.extra_routes,
            Route("/api/v1/events", self.collection, methods=["GET"]),
            Route("/api/v1/namespaces/{namespace}/events", self.collection, methods=["GET"]),
            Route("/api/v1/namespaces/{namespace}/events/{name}", self.item, methods=["GET"]),
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
        data = await anyio.to_thread.run_sync(generate_latest, self.metrics.registry)
        return Response(data, media_type=CONTENT_TYPE_LATEST)

    # --- discovery --------------------------------------------------------------------------

    async def core_versions(self, request: Request) -> Response:
        return json_response({"kind": "APIVersions", "versions": ["v1"],
                              "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]})

    async def core_resources(self, request: Request) -> Response:
        return json_response({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1",
                              "resources": [_api_resource(EVENT, namespaced=True)]})

    async def api_groups(self, request: Request) -> Response:
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
                obj = await self.store.get(kind.kind, name)
                if tables.wants_table(request.headers.get("accept")):
                    return json_response(self._table([obj], kind, request))
                return json_response(obj)
            if request.method == "PUT":
                return await self._replace(request, kind, name)
            if request.method == "PATCH":
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
            current = await self.store.get(kind.kind, name)
            if request.method == "GET":
                return json_response(current)
            body = await _read_json(request)
            if request.method == "PUT":
                updated = body
            else:
                updated = _apply_patch(current, body, request.headers.get("content-type", ""))
            _check_identity(updated, kind, name)
            if _dry_run(request):
                return json_response(updated)
            return json_response(await self.store.update_status(updated))
        except MfxError as error:
            return error_response(error, kind=kind, name=name)

    def _table(self, objects: list[Obj], kind: KindInfo, request: Request, *, resource_version: str = "",
               continue_token: str | None = None, include_columns: bool = True) -> dict[str, Any]:
        return tables.table(
            objects, self.admission.printer_columns(kind.kind), resource_version=resource_version,
            continue_token=continue_token, include_object=request.query_params.get("includeObject", "Metadata"),
            include_columns=include_columns,
        )

    async def _list(self, request: Request, kind: KindInfo) -> Response:
        params = request.query_params
        limit = int(params["limit"]) if params.get("limit") else None
        result = await self.store.list(
            kind.kind, label_selector=params.get("labelSelector") or None,
            limit=limit, continue_token=params.get("continue") or None,
        )
        items = _filter_fields(result.items, params.get("fieldSelector"))
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
        since_text = params.get("resourceVersion", "")
        timeout = float(params["timeoutSeconds"]) if params.get("timeoutSeconds") else None
        send_initial = since_text in ("", "0")
        initial: list[Obj] = []
        since = int(since_text) if since_text not in ("", "0") else 0
        if send_initial:
            listed = await self.store.list(kind.kind)
            initial = listed.items
            since = listed.resource_version
        # Open the watch before streaming, so a compacted resourceVersion is reported at once.
        events = self.store.watch(kind.kind, since)

        def keep(obj: Obj) -> bool:
            if label_selector is not None and not label_selector.matches(obj.get("metadata", {}).get("labels") or {}):
                return False
            return bool(_filter_fields([obj], field_selector))

        def encode(type_: str, obj: Obj, first: bool) -> bytes:
            payload = self._table([obj], kind, request, include_columns=first) if as_table else obj
            return orjson.dumps({"type": type_, "object": payload}) + b"\n"

        async def stream() -> AsyncIterator[bytes]:
            first = True
            with anyio.move_on_after(timeout) if timeout else _no_timeout():
                try:
                    for obj in initial:
                        if keep(obj):
                            yield encode("ADDED", obj, first)
                            first = False
                    async for event in _until(events, self.shutdown):
                        if event.type is WatchEventType.BOOKMARK or not keep(event.object):
                            continue
                        yield encode(event.type.value, event.object, first)
                        first = False
                except GoneError as error:
                    yield orjson.dumps({"type": "ERROR", "object": status_from_error(error)}) + b"\n"
                finally:
                    await events.aclose()  # type: ignore[attr-defined]

        return StreamingResponse(stream(), media_type=JSON)

    async def _create(self, request: Request, kind: KindInfo) -> Response:
        body = await _read_json(request)
        if not isinstance(body, dict):
            raise BadRequestError("the request body must be a JSON object")
        body.setdefault("apiVersion", kind.api_version)
        body.setdefault("kind", kind.kind)
        _check_identity(body, kind, None)
        for key in _SERVER_METADATA:
            body.get("metadata", {}).pop(key, None)
        body.pop("status", None)
        obj = self.admission.admit(body)
        if _dry_run(request):
            return json_response(obj, 201)
        return json_response(await self.store.create(obj), 201)

    async def _replace(self, request: Request, kind: KindInfo, name: str) -> Response:
        body = await _read_json(request)
        if not isinstance(body, dict):
            raise BadRequestError("the request body must be a JSON object")
        _check_identity(body, kind, name)
        return await self._write_update(request, kind, body)

    async def _patch(self, request: Request, kind: KindInfo, name: str) -> Response:
        current = await self.store.get(kind.kind, name)
        patch = await _read_json(request)
        updated = _apply_patch(current, patch, request.headers.get("content-type", ""))
        _check_identity(updated, kind, name)
        # A patch applies to what it read: keep optimistic concurrency only if the patch asked.
        if not (isinstance(patch, dict) and patch.get("metadata", {}).get("resourceVersion")):
            updated.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
        return await self._write_update(request, kind, updated)

    async def _write_update(self, request: Request, kind: KindInfo, obj: Obj) -> Response:
        obj.pop("status", None)
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
        rv = None
        if request.headers.get("content-length") not in (None, "0"):
            options = await _read_json(request)
            if isinstance(options, dict):
                rv_text = (options.get("preconditions") or {}).get("resourceVersion")
                rv = int(rv_text) if rv_text else None
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


class _no_timeout:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


async def _until(events: AsyncIterator[WatchEvent], shutdown: anyio.Event) -> AsyncIterator[WatchEvent]:
    """Yield watch events until the daemon shuts down (so uvicorn can close watches)."""
    send, receive = anyio.create_memory_object_stream[WatchEvent | None](16)

    async def pump() -> None:
        async with send:
            async for event in events:
                await send.send(event)

    async def stop_on_shutdown() -> None:
        await shutdown.wait()
        await send.send(None)

    async with anyio.create_task_group() as group:
        group.start_soon(pump)
        group.start_soon(stop_on_shutdown)
        async with receive:
            async for event in receive:
                if event is None:
                    break
                yield event
        group.cancel_scope.cancel()


def _api_group() -> dict[str, Any]:
    gv = {"groupVersion": f"{GROUP}/{VERSION}", "version": VERSION}
    return {"name": GROUP, "versions": [gv], "preferredVersion": gv}


def _api_resource(info: KindInfo, *, namespaced: bool | None = None) -> dict[str, Any]:
    return {
        "name": info.plural,
        "singularName": info.singular,
        "namespaced": info.namespaced if namespaced is None else namespaced,
        "kind": info.kind,
        "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        "shortNames": list(info.short_names),
        "categories": list(info.categories),
    }


async def _read_json(request: Request) -> Any:
    body = await request.body()
    if len(body) > 3 * 1024 * 1024:
        raise BadRequestError("request body too large (limit 3 MiB)")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BadRequestError(f"the request body is not valid JSON: {error}") from None


def _apply_patch(current: Obj, patch: Any, content_type: str) -> Obj:
    media = content_type.split(";")[0].strip()
    if media == MERGE_PATCH or media == STRATEGIC_PATCH or media == JSON:
        # Custom resources have no strategic-merge schema; like the API server we treat the
        # strategic patches kubectl sends for them as merge patches only where they agree.
        if media == STRATEGIC_PATCH:
            raise MfxError("strategic merge patch is not supported for custom resources; "
                           "use --type=merge or --type=json", reason="UnsupportedMediaType")
        return merge_patch(current, patch)  # type: ignore[no-any-return]
    if media == JSON_PATCH:
        try:
            return jsonpatch.apply_patch(current, patch)  # type: ignore[no-any-return]
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
            raise BadRequestError(f"the JSON patch could not be applied: {error}") from None
    error = MfxError(f"unsupported patch type {media!r}; use {MERGE_PATCH} or {JSON_PATCH}",
                     reason="UnsupportedMediaType")
    error.code = 415
    raise error


def _check_identity(obj: Obj, kind: KindInfo, name: str | None) -> None:
    if obj.get("kind") != kind.kind or obj.get("apiVersion") != kind.api_version:
        raise BadRequestError(
            f'the object is {obj.get("apiVersion")}/{obj.get("kind")}, but the path is for '
            f"{kind.api_version}/{kind.kind}"
        )
    if name is not None and name_of(obj) != name:
        raise BadRequestError(f'the name in the body ("{name_of(obj)}") does not match the name in the path ("{name}")')


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

