"""The definitions every OpenAPI document of the API refers to, named as the Kubernetes API
server names them: the ``io.k8s.apimachinery.pkg.apis.meta.v1`` types (ObjectMeta, Status, ...)
and the core/v1 Event, and how a document refers to one of them."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
CORE = "io.k8s.api.core.v1"
GVK = "x-kubernetes-group-version-kind"

# The media types every operation answers in.
MEDIA = ("application/json", "application/yaml")


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def wrapped(name: str, description: str) -> Schema:
    """A reference with its own description, the way the API server writes one."""
    return {"description": description, "allOf": [ref(name)], "default": {}}


# --- metav1 and core definitions ---------------------------------------------------------------

_STR_MAP = {"type": "object", "additionalProperties": {"type": "string", "default": ""}}
_TIME = {"description": "Time is a timestamp in RFC 3339 form (2026-01-02T15:04:05Z), in UTC.",
         "type": "string", "format": "date-time"}


def meta_definitions() -> dict[str, Schema]:
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
                "fieldsV1": wrapped(f"{META}.FieldsV1", "The fields this manager owns."),
                "manager": s("Name of the workflow that set the fields (kubectl, mfx, ...)."),
                "operation": s("Apply or Update: how the fields were set."),
                "subresource": s("The subresource the fields were set through, if any."),
                "time": wrapped(f"{META}.Time", "When the fields were last set."),
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
                "creationTimestamp": wrapped(f"{META}.Time", "When the object was created. Set by the "
                                                               "server; read-only."),
                "deletionGracePeriodSeconds": i("Seconds allowed for a graceful deletion. Read-only."),
                "deletionTimestamp": wrapped(f"{META}.Time", "When the object will be deleted, once its "
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
                                  "type": "array", "items": wrapped(f"{META}.ManagedFieldsEntry", "")},
                "name": s("Name, unique among objects of the kind. Cannot be updated."),
                "namespace": s("Namespace of the object; empty for cluster-scoped kinds (all mfx kinds)."),
                "ownerReferences": {"description": "Objects this one depends on.", "type": "array",
                                    "items": wrapped(f"{META}.OwnerReference", ""),
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
                "causes": {"type": "array", "items": wrapped(f"{META}.StatusCause", ""),
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
                "details": wrapped(f"{META}.StatusDetails", "What the Status is about."),
                "kind": s("Status"),
                "message": s("Human-readable description of the result."),
                "metadata": wrapped(f"{META}.ListMeta", "Standard list metadata."),
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
                "preconditions": wrapped(f"{META}.Preconditions", "Must hold for the delete to go ahead."),
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


def event_definitions() -> dict[str, Schema]:
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
                "firstTimestamp": wrapped(f"{META}.Time", "When it first happened."),
                "involvedObject": wrapped(f"{CORE}.ObjectReference", "The object the event is about."),
                "kind": s("Event"),
                "lastTimestamp": wrapped(f"{META}.Time", "When it last happened."),
                "message": s("What happened, for a human."),
                "metadata": wrapped(f"{META}.ObjectMeta", "Standard object metadata."),
                "reason": s("Short CamelCase reason, e.g. Started, ReloadFailed."),
                "source": wrapped(f"{CORE}.EventSource", "Who reported it."),
                "type": s("Normal or Warning."),
            },
            GVK: [{"group": "", "kind": "Event", "version": "v1"}],
        },
        f"{CORE}.EventList": {
            "description": "EventList is a list of events.",
            "type": "object",
            "required": ["items"],
            "properties": {"apiVersion": s("v1"), "kind": s("EventList"),
                           "items": {"type": "array", "items": wrapped(f"{CORE}.Event", "")},
                           "metadata": wrapped(f"{META}.ListMeta", "Standard list metadata.")},
            GVK: [{"group": "", "kind": "EventList", "version": "v1"}],
        },
    }
