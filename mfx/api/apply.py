"""Apply's merge semantics, shared by ``mfx apply`` (the CLI) and GitOps (the GitSource controller).

kubectl's client-side apply: the applied document minus server-owned fields, recorded in the
``last-applied-configuration`` annotation; labels and annotations merge three ways (keep what
others set, drop what the previous apply set and this one does not); ``spec`` is replaced.
"""

from __future__ import annotations

from typing import Any

import orjson

from mfx.api.json_copy import json_copy
from mfx.api.objects import LAST_APPLIED_ANNOTATION, Obj

# Metadata the server owns; an applied document's values for them are ignored.
SERVER_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
                   "managedFields", "selfLink", "finalizers")


def desired_state(obj: Obj, *, owned: bool = False) -> Obj:
    """What apply sends: the document without status and server-owned metadata,
    annotated with itself as the last applied configuration (kubectl's convention).

    ``owned``: ``obj`` is the caller's to give up (a document just read, used for nothing
    else): it becomes the result, changed in place, instead of being copied first."""
    desired = obj if owned else json_copy(obj)
    desired.pop("status", None)
    metadata = desired.setdefault("metadata", {})
    for key in SERVER_METADATA:
        metadata.pop(key, None)
    annotations = dict(metadata.get("annotations") or {})
    annotations.pop(LAST_APPLIED_ANNOTATION, None)
    # The record is the document as it is at this point: encoded from it, not from a copy.
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    annotations[LAST_APPLIED_ANNOTATION] = orjson.dumps(desired, option=orjson.OPT_SORT_KEYS).decode()
    metadata["annotations"] = annotations
    return desired


def merge_map(live: dict[str, str], desired: dict[str, str], previous: dict[str, str]) -> dict[str, str]:
    """Three-way merge of labels/annotations: keep what others set, drop what we set before."""
    merged = {k: v for k, v in live.items() if k not in previous or k in desired}
    merged.update(desired)
    return merged


def merged_for_apply(live: Obj, desired: Obj) -> Obj:
    previous_text = (live.get("metadata", {}).get("annotations") or {}).get(LAST_APPLIED_ANNOTATION)
    previous = orjson.loads(previous_text) if previous_text else {}
    previous_meta = previous.get("metadata", {})
    merged = json_copy(live)
    merged.pop("status", None)
    meta = merged["metadata"]
    for key in ("labels", "annotations"):
        value = merge_map(meta.get(key) or {}, desired["metadata"].get(key) or {}, previous_meta.get(key) or {})
        if value:
            meta[key] = value
        else:
            meta.pop(key, None)
    if "spec" in desired:
        merged["spec"] = desired["spec"]
    else:
        merged.pop("spec", None)
    return merged


def merge_patch_between(before: Any, after: Any) -> Any:
    """The RFC 7386 merge patch that turns ``before`` into ``after`` (lists are replaced whole)."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return after
    patch: dict[str, Any] = {key: None for key in before.keys() - after.keys()}
    for key, value in after.items():
        if key not in before:
            patch[key] = value
        elif before[key] != value:
            patch[key] = merge_patch_between(before[key], value)
    return patch


def apply_patch(live: Obj, merged: Obj) -> dict[str, Any]:
    """What apply changes on the live object: labels, annotations and spec, as a merge patch.

    Applied without a resourceVersion, like kubectl's apply: the server patches the object
    as it is then, so a controller's status write in between is never a conflict.
    """
    def part(obj: Obj) -> dict[str, Any]:
        meta = obj.get("metadata", {})
        return {"metadata": {"labels": meta.get("labels") or {}, "annotations": meta.get("annotations") or {}},
                "spec": obj.get("spec") or {}}

    patch: dict[str, Any] = merge_patch_between(part(live), part(merged))
    if not patch.get("metadata", {}) or patch["metadata"] == {}:
        patch.pop("metadata", None)
    return patch


def comparable(obj: Obj, *, annotation: bool = True) -> Obj:
    """``obj`` without what a write changes anyway (status, resourceVersion), optionally
    without the last-applied record: equal comparables mean an apply changes nothing."""
    data = json_copy(obj)
    data.pop("status", None)
    meta = data.get("metadata", {})
    for key in ("resourceVersion", "managedFields"):
        meta.pop(key, None)
    if not annotation:
        (meta.get("annotations") or {}).pop(LAST_APPLIED_ANNOTATION, None)
        if not meta.get("annotations"):
            meta.pop("annotations", None)
    return data


def field_changes(before: Obj, after: Obj, *, limit: int = 5) -> list[str]:
    """What differs between two objects' spec and labels, as short phrases for messages:
    ``spec.version changed from 1.0.0 to 2.0.0``, ``metadata.labels.tier removed``."""
    changes: list[str] = []
    pairs = (("spec", before.get("spec"), after.get("spec")),
             ("metadata.labels", (before.get("metadata") or {}).get("labels") or {},
              (after.get("metadata") or {}).get("labels") or {}))
    for path, old, new in pairs:
        _diff_values(path, old, new, changes)
    if len(changes) > limit:
        changes = [*changes[:limit], f"and {len(changes) - limit} more"]
    return changes


def _diff_values(path: str, old: object, new: object, out: list[str]) -> None:
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            _diff_values(f"{path}.{key}", old.get(key, _MISSING), new.get(key, _MISSING), out)
        return
    if old is _MISSING:
        out.append(f"{path} added ({_short(new)})")
    elif new is _MISSING:
        out.append(f"{path} removed (was {_short(old)})")
    else:
        out.append(f"{path} changed from {_short(old)} to {_short(new)}")


_MISSING = object()


def _short(value: object, limit: int = 60) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return text if len(text) <= limit else text[: limit - 3] + "..."
