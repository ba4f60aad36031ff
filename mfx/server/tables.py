"""metav1.Table responses: the columns of ``kubectl get`` and ``mfx get``, from the CRDs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mfx.api.objects import Obj, condition, human_age, is_deleting
from mfx.server.jsonpath import evaluate, value_text

TABLE_API_VERSION = "meta.k8s.io/v1"


def node_status(obj: Obj) -> str:
    """kubectl's STATUS of a node: Ready, NotReady or Unknown, then ``,SchedulingDisabled``
    when it is cordoned. A server-side printer, as Kubernetes has for its built-in nodes:
    a JSONPath column cannot join a condition with the spec."""
    conditions = (obj.get("status") or {}).get("conditions") or []
    ready = next((c.get("status") for c in conditions if isinstance(c, dict) and c.get("type") == "Ready"), None)
    text = {"True": "Ready", "False": "NotReady"}.get(str(ready), "Unknown")
    if (obj.get("spec") or {}).get("unschedulable") is True:
        text += ",SchedulingDisabled"
    return text


def labels_text(obj: Obj) -> str:
    """``k=v,k=v`` as kubectl's ``--show-labels`` prints them (``<none>`` for none)."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items())) or "<none>"


def plugin_reason(obj: Obj) -> Any:
    """The REASON of a PluginManifest: ``Terminating`` once it is deleted while finalizers still
    hold it (every node that runs it stopping its copy), as kubectl shows a deleted pod; else
    its Ready condition's reason."""
    if is_deleting(obj):
        return "Terminating"
    ready = condition(obj, "Ready")
    return None if ready is None else ready.get("reason")


# Columns whose cell the server computes, by (kind, column name); the CRD's JSONPath is what
# a server without this printer (Kubernetes with mfx's CRDs) shows instead.
_PRINTED: dict[tuple[str, str], Callable[[Obj], Any]] = {("Node", "Status"): node_status,
                                                         ("Node", "Labels"): labels_text,
                                                         ("PluginManifest", "Reason"): plugin_reason}


def _cell(obj: Obj, column: dict[str, Any]) -> Any:
    printer = _PRINTED.get((str(obj.get("kind", "")), column["name"]))
    if printer is not None:
        return printer(obj)
    values = evaluate(obj, column["jsonPath"])
    if column.get("type") == "date":
        return human_age(values[0]) if values else "<unknown>"
    if not values:
        return None
    if len(values) == 1:
        value = values[0]
        if isinstance(value, (dict, list)):
            return value_text(value)  # JSON, as kubectl prints a map or list
        return value
    return ",".join(str(v) for v in values)


def column_definitions(printer_columns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    columns = [{"name": "Name", "type": "string", "format": "name", "priority": 0,
                "description": "Name must be unique. Cannot be updated."}]
    for col in printer_columns:
        columns.append({
            "name": col["name"],
            # "date" stays, as Kubernetes keeps it: clients tell an age (which changes by
            # itself as time passes) from the object's own fields by it.
            "type": col.get("type", "string"),
            "format": col.get("format", ""),
            "description": col.get("description", ""),
            "priority": col.get("priority", 0),
        })
    return columns


def partial_metadata(obj: Obj) -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": TABLE_API_VERSION, "metadata": obj.get("metadata", {})}


def table(
    objects: list[Obj],
    printer_columns: list[dict[str, Any]],
    *,
    resource_version: str = "",
    continue_token: str | None = None,
    include_object: str = "Metadata",
    include_columns: bool = True,
) -> dict[str, Any]:
    rows = []
    for obj in objects:
        row: dict[str, Any] = {
            "cells": [obj.get("metadata", {}).get("name", "")] + [_cell(obj, c) for c in printer_columns],
        }
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_metadata(obj)
        rows.append(row)
    metadata: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        metadata["continue"] = continue_token
    result: dict[str, Any] = {"kind": "Table", "apiVersion": TABLE_API_VERSION, "metadata": metadata}
    if include_columns:
        result["columnDefinitions"] = column_definitions(printer_columns)
    result["rows"] = rows
    return result


def wants_table(accept: str | None) -> bool:
    """True when the client asked for a Table first (kubectl's Accept header)."""
    if not accept:
        return False
    first = accept.split(",")[0]
    return "as=Table" in first
