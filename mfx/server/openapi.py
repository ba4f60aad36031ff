"""OpenAPI documents of the API, built from the CRDs, as the Kubernetes API server serves them.

kubectl reads ``/openapi/v3`` (an index of group-versions) and the per-group-version
documents it points to: ``kubectl explain`` renders their schemas, ``kubectl apply`` looks
there for the ``fieldValidation`` parameter (then lets the server validate) and for the
patch types a kind accepts (merge patch for custom resources). ``/openapi/v2`` is the same
API as one Swagger 2.0 document, for older tools.

Schema names follow the API server: the group reversed (``io.musicfox.mfx.v1alpha1.PluginManifest``),
``x-kubernetes-group-version-kind`` on kinds and operations, metadata by reference to the
``io.k8s.apimachinery.pkg.apis.meta.v1`` definitions.
"""

from __future__ import annotations

import copy
import functools
import hashlib

import orjson

import mfx
from mfx.api.kinds import EVENT, GROUP, USER_KINDS, VERSION, KindInfo
from mfx.api.schema import Schemas, load_schemas
from mfx.server.openapi_definitions import (
    GVK,
    MEDIA,
    META,
    Schema,
    event_definitions,
    meta_definitions,
    ref,
    wrapped,
)
from mfx.server.openapi_v2 import swagger_v2

# The patch types the server accepts; no strategic merge patch, as for any custom resource.
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml")


def schema_name(info: KindInfo, kind: str | None = None) -> str:
    group = ".".join(reversed(info.group.split("."))) if info.group else "io.k8s.api.core"
    return f"{group}.{info.version}.{kind or info.kind}"


# --- kinds, from the CRDs ----------------------------------------------------------------------


def _gvk(info: KindInfo, kind: str | None = None) -> dict[str, str]:
    return {"group": info.group, "kind": kind or info.kind, "version": info.version}


def kind_definitions(schemas: Schemas, info: KindInfo) -> dict[str, Schema]:
    """The kind's schema (from its CRD) and its list's, named as the API server names them."""
    schema = copy.deepcopy(schemas.openapi(info.kind))
    props = schema.setdefault("properties", {})
    props["metadata"] = wrapped(f"{META}.ObjectMeta", "Standard object's metadata: name, labels, annotations, "
                                                       "and the fields the server maintains.")
    schema[GVK] = [_gvk(info)]
    list_schema = {
        "description": f"{info.list_kind} is a list of {info.kind}.",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": props.get("apiVersion", {"type": "string"}),
            "items": {"description": f"List of {info.plural}.", "type": "array",
                      "items": ref(schema_name(info))},
            "kind": props.get("kind", {"type": "string"}),
            "metadata": wrapped(f"{META}.ListMeta", "Standard list metadata."),
        },
        GVK: [_gvk(info, info.list_kind)],
    }
    return {schema_name(info): schema, schema_name(info, info.list_kind): list_schema}


# --- paths ----------------------------------------------------------------------------------------


def _param(name: str, description: str, *, kind: str = "string", where: str = "query",
           required: bool = False) -> Schema:
    param: Schema = {"name": name, "in": where, "description": description, "schema": {"type": kind}}
    if required:
        param["required"] = True
    return param


DRY_RUN = _param("dryRun", "All: validate and answer, but persist nothing.")
FIELD_MANAGER = _param("fieldManager", "Name of the workflow making the change (server-side apply).")
FIELD_VALIDATION = _param("fieldValidation", "Ignore, Warn or Strict: what to do with unknown or duplicate "
                                             "fields. mfx always rejects unknown fields (Strict).")
FORCE = _param("force", "Server-side apply: take fields owned by other managers.", kind="boolean")
LIST_PARAMS = [
    _param("continue", "Token from a previous page, to get the next one."),
    _param("fieldSelector", "Only objects whose fields match, e.g. metadata.name=x."),
    _param("labelSelector", "Only objects whose labels match, e.g. tier=core,app!=ui."),
    _param("limit", "At most this many objects; metadata.continue has the rest.", kind="integer"),
    _param("resourceVersion", "For a watch: the version to start after."),
    _param("timeoutSeconds", "End the watch after this many seconds.", kind="integer"),
    _param("watch", "Stream changes (ADDED, MODIFIED, DELETED) instead of listing.", kind="boolean"),
]


def _responses(schema: Schema, *codes: str) -> Schema:
    content = {media: {"schema": schema} for media in MEDIA}
    responses: Schema = {code: {"description": {"200": "OK", "201": "Created", "202": "Accepted"}[code],
                                "content": content} for code in codes}
    responses["401"] = {"description": "Unauthorized"}
    return responses


def _operation(info: KindInfo, action: str, verb: str, schema: Schema, *, params: list[Schema],
               body: Schema | None = None, body_types: tuple[str, ...] = ("*/*",), codes: tuple[str, ...] = ("200",),
               subresource: str = "") -> Schema:
    plural = "".join(part.capitalize() for part in info.plural.split("."))
    op_id = f"{verb}{''.join(p.capitalize() for p in (info.group or 'core').split('.'))}" \
            f"{info.version.capitalize()}{info.kind if action != 'list' else plural}{subresource.capitalize()}"
    operation: Schema = {
        "tags": [f"{info.group or 'core'}_{info.version}"],
        "description": f"{action} {'the status of ' if subresource else ''}{info.kind}",
        "operationId": op_id,
        "parameters": params,
        "responses": _responses(schema, *codes),
        "x-kubernetes-action": action,
        GVK: _gvk(info),
    }
    if body is not None:
        operation["requestBody"] = {"content": {media: {"schema": body} for media in body_types}, "required": True}
    return operation


def kind_paths(info: KindInfo, *, writable: bool = True) -> dict[str, Schema]:
    obj = ref(schema_name(info))
    listing = ref(schema_name(info, info.list_kind))
    status = ref(f"{META}.Status")
    patch = ref(f"{META}.Patch")
    delete_options = ref(f"{META}.DeleteOptions")
    base = info.resource_path
    write = [DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION]
    collection: Schema = {
        "get": _operation(info, "list", "list", listing, params=LIST_PARAMS),
        "parameters": [_param("pretty", "Indent the output.")],
    }
    item: Schema = {
        "get": _operation(info, "get", "read", obj, params=[]),
        "parameters": [_param("name", f"name of the {info.kind}", where="path", required=True),
                       _param("pretty", "Indent the output.")],
    }
    paths = {base: collection, base + "/{name}": item}
    if not writable:
        return paths
    collection["post"] = _operation(info, "post", "create", obj, params=write, body=obj, codes=("200", "201", "202"))
    collection["delete"] = _operation(info, "deletecollection", "deletecollection", status,
                                      params=[DRY_RUN, *LIST_PARAMS[:4]], body=delete_options)
    item["put"] = _operation(info, "put", "replace", obj, params=write, body=obj, codes=("200", "201"))
    item["patch"] = _operation(info, "patch", "patch", obj, params=[*write, FORCE], body=patch,
                               body_types=PATCH_TYPES, codes=("200", "201"))
    item["delete"] = _operation(info, "delete", "delete", obj, params=[DRY_RUN], body=delete_options,
                                codes=("200", "202"))
    paths[base + "/{name}/status"] = {
        "get": _operation(info, "get", "read", obj, params=[], subresource="status"),
        "put": _operation(info, "put", "replace", obj, params=write, body=obj, codes=("200", "201"),
                          subresource="status"),
        "patch": _operation(info, "patch", "patch", obj, params=[*write, FORCE], body=patch,
                            body_types=PATCH_TYPES, codes=("200", "201"), subresource="status"),
        "parameters": item["parameters"],
    }
    return paths


# --- documents -----------------------------------------------------------------------------------


def _document(title: str, paths: dict[str, Schema], schemas: dict[str, Schema]) -> Schema:
    return {
        "openapi": "3.0.0",
        "info": {"title": title, "version": mfx.__version__},
        "paths": paths,
        "components": {"schemas": dict(sorted(schemas.items())),
                       "securitySchemes": {"BearerToken": {"type": "apiKey", "name": "authorization",
                                                           "in": "header", "description": "Bearer token"}}},
        "security": [{"BearerToken": []}],
    }


def group_document(schemas: Schemas) -> Schema:
    """The OpenAPI v3 document of ``mfx.musicfox.io/v1alpha1``."""
    definitions = meta_definitions()
    paths: dict[str, Schema] = {}
    for info in USER_KINDS:
        definitions.update(kind_definitions(schemas, info))
        paths.update(kind_paths(info))
    return _document("mfx", paths, definitions)


def core_document() -> Schema:
    """The OpenAPI v3 document of the core group as mfx serves it: Events (list, watch, get, and
    create in a namespace; events of the cluster-scoped mfx kinds are in "default")."""
    definitions = {**meta_definitions(), **event_definitions()}
    paths = kind_paths(EVENT, writable=False)
    namespaced = {p.replace("/api/v1/", "/api/v1/namespaces/{namespace}/"): dict(v) for p, v in paths.items()}
    event = ref(schema_name(EVENT))
    namespaced["/api/v1/namespaces/{namespace}/events"]["post"] = _operation(
        EVENT, "post", "create", event, params=[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION], body=event, codes=("200", "201", "202"))
    namespaced["/api/v1/namespaces/{namespace}/events/{name}"]["patch"] = _operation(
        EVENT, "patch", "patch", event, params=[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION], body=ref(f"{META}.Patch"),
        body_types=(*PATCH_TYPES[:2], "application/strategic-merge-patch+json"), codes=("200", "201"))
    for item in namespaced.values():
        item["parameters"] = [*item.get("parameters", []),
                              _param("namespace", "object name and auth scope", where="path", required=True)]
    return _document("mfx core", {**paths, **namespaced}, definitions)


# --- what the API serves ----------------------------------------------------------------------------


class OpenApiDocuments:
    """The encoded documents and their hashes, computed once per process."""

    def __init__(self, schemas: Schemas | None = None) -> None:
        schemas = schemas if schemas is not None else load_schemas()
        self.v3: dict[str, bytes] = {
            f"apis/{GROUP}/{VERSION}": orjson.dumps(group_document(schemas)),
            "api/v1": orjson.dumps(core_document()),
        }
        self.hashes = {path: hashlib.sha512(body).hexdigest().upper() for path, body in self.v3.items()}
        self._schemas = schemas

    def index(self) -> Schema:
        """``/openapi/v3``: where the document of each group-version is."""
        return {"paths": {path: {"serverRelativeURL": f"/openapi/v3/{path}?hash={self.hashes[path]}"}
                          for path in sorted(self.v3)}}

    @functools.cached_property
    def v2(self) -> bytes:
        return orjson.dumps(swagger_v2([group_document(self._schemas), core_document()]))

    @functools.cached_property
    def v2_etag(self) -> str:
        return '"' + hashlib.sha512(self.v2).hexdigest().upper() + '"'
