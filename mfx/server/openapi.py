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
from typing import Any

import orjson

import mfx
from mfx.api.kinds import EVENT, GROUP, USER_KINDS, VERSION, KindInfo
from mfx.api.schema import Schemas, load_schemas

Schema = dict[str, Any]

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
CORE = "io.k8s.api.core.v1"
GVK = "x-kubernetes-group-version-kind"

# The patch types the server accepts; no strategic merge patch, as for any custom resource.
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml")


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _wrapped(name: str, description: str) -> Schema:
    """A reference with its own description, the way the API server writes one."""
    return {"description": description, "allOf": [_ref(name)], "default": {}}


def schema_name(info: KindInfo, kind: str | None = None) -> str:
    group = ".".join(reversed(info.group.split("."))) if info.group else "io.k8s.api.core"
    return f"{group}.{info.version}.{kind or info.kind}"


# --- metav1 and core definitions ---------------------------------------------------------------

_STR_MAP = {"type": "object", "additionalProperties": {"type": "string", "default": ""}}
_TIME = {"description": "Time is a timestamp in RFC 3339 form (2026-01-02T15:04:05Z), in UTC.",
         "type": "string", "format": "date-time"}


def _meta_definitions() -> dict[str, Schema]:
    def s(description: str, **extra: Any) -> Schema:
        return {"description": description, "type": "string", **extra}

    def i(description: str) -> Schema:
        return {"description": description, "type": "integer", "format": "int64"}

    return {
        f"{META}.Time": _TIME,
        f"{META}.FieldsV1": {"description": "FieldsV1 is the set of fields a manager owns, as a trie of "
                                            "\"f:<name>\" keys.", "type": "object"},
        f"{META}.ManagedFieldsEntry": {
            "description": "ManagedFieldsEntry records the fields a workflow (field manager) set.",
            "type": "object",
            "properties": {
                "apiVersion": s("The version of the object's schema the fields are in."),
                "fieldsType": s("Format of fieldsV1: always \"FieldsV1\"."),
                "fieldsV1": _wrapped(f"{META}.FieldsV1", "The fields this manager owns."),
                "manager": s("Name of the workflow that set the fields (kubectl, mfx, ...)."),
                "operation": s("Apply or Update: how the fields were set."),
                "subresource": s("The subresource the fields were set through, if any."),
                "time": _wrapped(f"{META}.Time", "When the fields were last set."),
            },
        },
        f"{META}.OwnerReference": {
            "description": "OwnerReference names an object that owns this one.",
            "type": "object",
            "required": ["apiVersion", "kind", "name", "uid"],
            "properties": {
                "apiVersion": s("API version of the owner."),
                "blockOwnerDeletion": {"description": "Owner cannot be deleted before this object.",
                                       "type": "boolean"},
                "controller": {"description": "The owner is the managing controller.", "type": "boolean"},
                "kind": s("Kind of the owner.", default=""),
                "name": s("Name of the owner.", default=""),
                "uid": s("UID of the owner.", default=""),
            },
            "x-kubernetes-map-type": "atomic",
        },
        f"{META}.ObjectMeta": {
            "description": "ObjectMeta is metadata that all persisted resources must have: name, labels, "
                           "annotations, and the fields the server maintains.",
            "type": "object",
            "properties": {
                "annotations": {**_STR_MAP, "description": "Annotations: unstructured key/value data "
                                                           "set by tools, not used to select objects."},
                "creationTimestamp": _wrapped(f"{META}.Time", "When the object was created. Set by the "
                                                               "server; read-only."),
                "deletionGracePeriodSeconds": i("Seconds allowed for a graceful deletion. Read-only."),
                "deletionTimestamp": _wrapped(f"{META}.Time", "When the object will be deleted, once its "
                                                               "finalizers are gone. Set by the server."),
                "finalizers": {"description": "Must be empty before the object is deleted from the store: "
                                              "each entry is a controller's pending clean-up.",
                               "type": "array", "items": {"type": "string", "default": ""},
                               "x-kubernetes-list-type": "set"},
                "generateName": s("Prefix the server uses to generate a unique name when name is empty."),
                "generation": i("Sequence number of the desired state (spec): bumped on every spec "
                                "change. Read-only."),
                "labels": {**_STR_MAP, "description": "Labels: key/value pairs used to organize and "
                                                      "select objects (-l selectors)."},
                "managedFields": {"description": "Which workflow owns which fields; maintained by the "
                                                 "server for server-side apply.",
                                  "type": "array", "items": _wrapped(f"{META}.ManagedFieldsEntry", "")},
                "name": s("Name, unique among objects of the kind. Cannot be updated."),
                "namespace": s("Namespace of the object; empty for cluster-scoped kinds (all mfx kinds)."),
                "ownerReferences": {"description": "Objects this one depends on.", "type": "array",
                                    "items": _wrapped(f"{META}.OwnerReference", ""),
                                    "x-kubernetes-list-map-keys": ["uid"], "x-kubernetes-list-type": "map",
                                    "x-kubernetes-patch-merge-key": "uid",
                                    "x-kubernetes-patch-strategy": "merge"},
                "resourceVersion": s("Opaque version of this state of the object, for optimistic "
                                     "concurrency and watches. Read-only."),
                "selfLink": s("Deprecated; never set."),
                "uid": s("Unique id of the object for its whole life. Set by the server; read-only."),
            },
        },
        f"{META}.ListMeta": {
            "description": "ListMeta is the metadata of a list: its resourceVersion and the token to "
                           "continue a paged list.",
            "type": "object",
            "properties": {
                "continue": s("Set when the list was cut by limit: pass it as continue to get the rest."),
                "remainingItemCount": i("Number of items left after this page, when known."),
                "resourceVersion": s("The store's version when the list was taken; watch from it."),
                "selfLink": s("Deprecated; never set."),
            },
        },
        f"{META}.StatusCause": {
            "description": "StatusCause is one reason of a failed request, e.g. one invalid field.",
            "type": "object",
            "properties": {
                "field": s("Path of the field that caused the error, e.g. spec.version."),
                "message": s("What is wrong, for a human."),
                "reason": s("Machine-readable cause, e.g. FieldValueInvalid."),
            },
        },
        f"{META}.StatusDetails": {
            "description": "StatusDetails names the object a Status is about.",
            "type": "object",
            "properties": {
                "causes": {"type": "array", "items": _wrapped(f"{META}.StatusCause", ""),
                           "x-kubernetes-list-type": "atomic",
                           "description": "Every cause of the error (e.g. each invalid field)."},
                "group": s("Group of the resource."),
                "kind": s("Kind (resource) of the object."),
                "name": s("Name of the object."),
                "retryAfterSeconds": {"type": "integer", "format": "int32",
                                      "description": "Seconds to wait before retrying."},
                "uid": s("UID of the object."),
            },
        },
        f"{META}.Status": {
            "description": "Status is the result of a request that returns no object, and of every error.",
            "type": "object",
            "properties": {
                "apiVersion": s("v1"),
                "code": {"type": "integer", "format": "int32", "description": "HTTP status code."},
                "details": _wrapped(f"{META}.StatusDetails", "What the Status is about."),
                "kind": s("Status"),
                "message": s("Human-readable description of the result."),
                "metadata": _wrapped(f"{META}.ListMeta", "Standard list metadata."),
                "reason": s("Machine-readable reason: NotFound, AlreadyExists, Conflict, Invalid, ..."),
                "status": s("Success or Failure."),
            },
            GVK: [{"group": "", "kind": "Status", "version": "v1"}],
        },
        f"{META}.Preconditions": {
            "description": "Preconditions that must hold before a delete goes ahead.",
            "type": "object",
            "properties": {"resourceVersion": s("The object's expected resourceVersion."),
                           "uid": s("The object's expected UID.")},
        },
        f"{META}.DeleteOptions": {
            "description": "DeleteOptions may be sent with a DELETE request.",
            "type": "object",
            "properties": {
                "apiVersion": s("v1"),
                "dryRun": {"type": "array", "items": {"type": "string", "default": ""},
                           "description": "All: validate, but do not delete."},
                "gracePeriodSeconds": i("Ignored by mfx."),
                "kind": s("DeleteOptions"),
                "preconditions": _wrapped(f"{META}.Preconditions", "Must hold for the delete to go ahead."),
                "propagationPolicy": s("Ignored by mfx: objects have no dependents to collect."),
            },
            GVK: [{"group": "", "kind": "DeleteOptions", "version": "v1"}],
        },
        f"{META}.Patch": {"description": "A patch: JSON patch, JSON merge patch or an apply configuration.",
                          "type": "object"},
        f"{META}.WatchEvent": {
            "description": "One event of a watch stream.",
            "type": "object",
            "required": ["type", "object"],
            "properties": {"object": {"type": "object", "description": "The object (or a Status for ERROR)."},
                           "type": s("ADDED, MODIFIED, DELETED, BOOKMARK or ERROR.", default="")},
        },
    }


def _event_definitions() -> dict[str, Schema]:
    def s(description: str) -> Schema:
        return {"description": description, "type": "string"}

    return {
        f"{CORE}.ObjectReference": {
            "description": "ObjectReference names the object an event is about.",
            "type": "object",
            "properties": {"apiVersion": s("API version of the object."), "kind": s("Kind of the object."),
                           "name": s("Name of the object."), "namespace": s("Namespace; empty for mfx kinds."),
                           "resourceVersion": s("resourceVersion of the object."), "uid": s("UID of the object."),
                           "fieldPath": s("Part of the object the event is about.")},
            "x-kubernetes-map-type": "atomic",
        },
        f"{CORE}.EventSource": {
            "description": "The component that reported an event.", "type": "object",
            "properties": {"component": s("Component (e.g. pluginmanifest-controller)."), "host": s("Node name.")},
        },
        f"{CORE}.Event": {
            "description": "Event is a report of something that happened to an object (a plugin started, "
                           "a reload failed), kept for a while and de-duplicated by count.",
            "type": "object",
            "required": ["metadata", "involvedObject"],
            "properties": {
                "apiVersion": s("v1"),
                "count": {"type": "integer", "format": "int32", "description": "How many times it happened."},
                "firstTimestamp": _wrapped(f"{META}.Time", "When it first happened."),
                "involvedObject": _wrapped(f"{CORE}.ObjectReference", "The object the event is about."),
                "kind": s("Event"),
                "lastTimestamp": _wrapped(f"{META}.Time", "When it last happened."),
                "message": s("What happened, for a human."),
                "metadata": _wrapped(f"{META}.ObjectMeta", "Standard object metadata."),
                "reason": s("Short CamelCase reason, e.g. Started, ReloadFailed."),
                "source": _wrapped(f"{CORE}.EventSource", "Who reported it."),
                "type": s("Normal or Warning."),
            },
            GVK: [{"group": "", "kind": "Event", "version": "v1"}],
        },
        f"{CORE}.EventList": {
            "description": "EventList is a list of events.",
            "type": "object",
            "required": ["items"],
            "properties": {"apiVersion": s("v1"), "kind": s("EventList"),
                           "items": {"type": "array", "items": _wrapped(f"{CORE}.Event", "")},
                           "metadata": _wrapped(f"{META}.ListMeta", "Standard list metadata.")},
            GVK: [{"group": "", "kind": "EventList", "version": "v1"}],
        },
    }


# --- kinds, from the CRDs ----------------------------------------------------------------------


def _gvk(info: KindInfo, kind: str | None = None) -> dict[str, str]:
    return {"group": info.group, "kind": kind or info.kind, "version": info.version}


def kind_definitions(schemas: Schemas, info: KindInfo) -> dict[str, Schema]:
    """The kind's schema (from its CRD) and its list's, named as the API server names them."""
    schema = copy.deepcopy(schemas.openapi(info.kind))
    props = schema.setdefault("properties", {})
    props["metadata"] = _wrapped(f"{META}.ObjectMeta", "Standard object's metadata: name, labels, annotations, "
                                                       "and the fields the server maintains.")
    schema[GVK] = [_gvk(info)]
    list_schema = {
        "description": f"{info.list_kind} is a list of {info.kind}.",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": props.get("apiVersion", {"type": "string"}),
            "items": {"description": f"List of {info.plural}.", "type": "array",
                      "items": _ref(schema_name(info))},
            "kind": props.get("kind", {"type": "string"}),
            "metadata": _wrapped(f"{META}.ListMeta", "Standard list metadata."),
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
MEDIA = ("application/json", "application/yaml")


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
    obj = _ref(schema_name(info))
    listing = _ref(schema_name(info, info.list_kind))
    status = _ref(f"{META}.Status")
    patch = _ref(f"{META}.Patch")
    delete_options = _ref(f"{META}.DeleteOptions")
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
    definitions = _meta_definitions()
    paths: dict[str, Schema] = {}
    for info in USER_KINDS:
        definitions.update(kind_definitions(schemas, info))
        paths.update(kind_paths(info))
    return _document("mfx", paths, definitions)


def core_document() -> Schema:
    """The OpenAPI v3 document of the core group as mfx serves it: Events (list, watch, get, and
    create in a namespace; events of the cluster-scoped mfx kinds are in "default")."""
    definitions = {**_meta_definitions(), **_event_definitions()}
    paths = kind_paths(EVENT, writable=False)
    namespaced = {p.replace("/api/v1/", "/api/v1/namespaces/{namespace}/"): dict(v) for p, v in paths.items()}
    event = _ref(schema_name(EVENT))
    namespaced["/api/v1/namespaces/{namespace}/events"]["post"] = _operation(
        EVENT, "post", "create", event, params=[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION], body=event, codes=("200", "201", "202"))
    namespaced["/api/v1/namespaces/{namespace}/events/{name}"]["patch"] = _operation(
        EVENT, "patch", "patch", event, params=[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION], body=_ref(f"{META}.Patch"),
        body_types=(*PATCH_TYPES[:2], "application/strategic-merge-patch+json"), codes=("200", "201"))
    for item in namespaced.values():
        item["parameters"] = [*item.get("parameters", []),
                              _param("namespace", "object name and auth scope", where="path", required=True)]
    return _document("mfx core", {**paths, **namespaced}, definitions)


# --- OpenAPI v2 ----------------------------------------------------------------------------------


def _to_v2(value: Any) -> Any:
    """A v3 schema fragment as Swagger 2.0 has it: refs to #/definitions, no nullable."""
    if isinstance(value, dict):
        result: Schema = {}
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                result[key] = item.replace("#/components/schemas/", "#/definitions/")
            elif key == "nullable":
                continue
            elif key == "allOf" and isinstance(item, list) and len(item) == 1 and "$ref" in item[0]:
                # Swagger 2.0 tools expect a plain $ref (its siblings are ignored there anyway).
                result["$ref"] = _to_v2(item[0])["$ref"]
            elif key == "default" and value.get("allOf"):
                continue
            else:
                result[key] = _to_v2(item)
        if result.get("x-kubernetes-int-or-string"):
            result.pop("anyOf", None)  # as the API server publishes int-or-string in v2
        return result
    if isinstance(value, list):
        return [_to_v2(item) for item in value]
    return value


def _operation_v2(operation: Schema) -> Schema:
    op = {k: v for k, v in operation.items() if k not in ("requestBody", "responses", "parameters")}
    params = [{k: v for k, v in p.items() if k != "schema"} | {"type": p["schema"]["type"]}
              for p in operation.get("parameters", [])]
    body = operation.get("requestBody")
    if body is not None:
        media, content = next(iter(body["content"].items()))
        op["consumes"] = list(body["content"])
        params.append({"name": "body", "in": "body", "required": True, "schema": _to_v2(content["schema"])})
    op["parameters"] = params
    op["produces"] = list(MEDIA)
    op["schemes"] = ["https"]
    op["responses"] = {
        code: ({"description": r["description"], "schema": _to_v2(next(iter(r["content"].values()))["schema"])}
               if "content" in r else r)
        for code, r in operation["responses"].items()
    }
    return op


def swagger_v2(schemas: Schemas) -> Schema:
    """The whole API as one Swagger 2.0 document (``/openapi/v2``)."""
    documents = [group_document(schemas), core_document()]
    definitions: Schema = {}
    paths: Schema = {}
    for document in documents:
        definitions.update(_to_v2(document["components"]["schemas"]))
        for path, item in document["paths"].items():
            converted: Schema = {}
            for key, value in item.items():
                if key == "parameters":
                    converted[key] = [{k: v for k, v in p.items() if k != "schema"} | {"type": p["schema"]["type"]}
                                      for p in value]
                else:
                    converted[key] = _operation_v2(value)
            paths[path] = converted
    return {
        "swagger": "2.0",
        "info": {"title": "mfx", "version": mfx.__version__},
        "paths": dict(sorted(paths.items())),
        "definitions": dict(sorted(definitions.items())),
        "securityDefinitions": {"BearerToken": {"type": "apiKey", "name": "authorization", "in": "header"}},
        "security": [{"BearerToken": []}],
    }


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
        return orjson.dumps(swagger_v2(self._schemas))

    @functools.cached_property
    def v2_etag(self) -> str:
        return '"' + hashlib.sha512(self.v2).hexdigest().upper() + '"'
