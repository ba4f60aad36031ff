"""Server-side apply (``application/apply-patch+yaml``), as ``kubectl apply --server-side`` and
GitOps tools send it.

Each field manager's applied fields are recorded in ``metadata.managedFields`` (an ``Apply``
entry with ``fieldsV1``, the API server's format). Applying again sets what the configuration
names, removes what this manager applied before and no longer names (unless another manager
applies it too), and answers 409 Conflict when the configuration changes a value another
manager applied, unless ``force=true`` takes the field over.

Limits, compared with the Kubernetes API server: ownership is tracked for apply only, not for
updates (PUT, merge or JSON patches, client-side apply), so those never conflict; lists are
atomic (a manager owns a whole list, even a list-map); the status subresource is not applied.
"""

from __future__ import annotations

import copy
from typing import Any

from mfx.api.objects import Obj, now_rfc3339
from mfx.errors import BadRequestError, ConflictError, FieldError, ValidationError


class ApplyConflictError(ConflictError):
    """An apply would change fields another manager applied; ``causes`` names them."""

    def __init__(self, message: str, causes: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.causes = causes

Path = tuple[str, ...]

# Identity and server-owned fields: part of every configuration, owned by nobody.
_UNOWNED: tuple[Path, ...] = (("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace"),
                              ("status",))
_SERVER_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
                    "managedFields", "selfLink")


def field_paths(obj: Any, prefix: Path = ()) -> set[Path]:
    """The leaf fields a configuration sets (a list or an empty map is one leaf)."""
    if isinstance(obj, dict) and obj:
        paths: set[Path] = set()
        for key, value in obj.items():
            path = (*prefix, str(key))
            if path in _UNOWNED or (len(path) == 2 and path[0] == "metadata" and key in _SERVER_METADATA):
                continue
            paths |= field_paths(value, path)
        return paths
    return {prefix} if prefix else set()


def encode_fields(paths: set[Path]) -> dict[str, Any]:
    """``fieldsV1``: a trie of ``f:<name>`` keys."""
    trie: dict[str, Any] = {}
    for path in sorted(paths):
        node = trie
        for step in path:
            node = node.setdefault(f"f:{step}", {})
    return trie


def decode_fields(trie: Any, prefix: Path = ()) -> set[Path]:
    if not isinstance(trie, dict):
        return set()
    paths: set[Path] = set()
    children = {k: v for k, v in trie.items() if k.startswith("f:")}
    if not children and prefix:
        return {prefix}
    for key, value in children.items():
        paths |= decode_fields(value, (*prefix, key[2:]))
    return paths


def _overlaps(a: Path, b: Path) -> bool:
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


_MISSING = object()


def _value(obj: Any, path: Path) -> Any:
    for step in path:
        if not isinstance(obj, dict) or step not in obj:
            return _MISSING
        obj = obj[step]
    return obj


def _remove(obj: Obj, path: Path) -> None:
    parents: list[tuple[dict[str, Any], str]] = []
    node: Any = obj
    for step in path[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(step), dict):
            return
        parents.append((node, step))
        node = node[step]
    if isinstance(node, dict):
        node.pop(path[-1], None)
    for depth in range(len(parents) - 1, 0, -1):  # drop the maps it left empty (not spec itself)
        parent, step = parents[depth]
        if parent[step] != {}:
            break
        parent.pop(step)


def _merge(live: Any, applied: Any) -> Any:
    if isinstance(live, dict) and isinstance(applied, dict):
        merged = dict(live)
        for key, value in applied.items():
            merged[key] = _merge(live.get(key), value)
        return merged
    return copy.deepcopy(applied)


def _entry(manager: str, api_version: str, paths: set[Path]) -> dict[str, Any]:
    return {"manager": manager, "operation": "Apply", "apiVersion": api_version, "time": now_rfc3339(),
            "fieldsType": "FieldsV1", "fieldsV1": encode_fields(paths)}


def managed_fields_problems(metadata: dict[str, Any]) -> list[FieldError]:
    """What is wrong with ``metadata.managedFields`` as a client sent it (an update may carry
    them back, as ``kubectl replace`` does): each entry an object naming its manager and
    operation, with ``fieldsV1`` an object."""
    managed = metadata.get("managedFields")
    if managed is None:
        return []
    if not isinstance(managed, list):
        return [FieldError(path="metadata.managedFields", message="expected a list of entries as the server "
                           "writes them (or leave the field out)")]
    problems: list[FieldError] = []
    for index, entry in enumerate(managed):
        where = f"metadata.managedFields[{index}]"
        if not isinstance(entry, dict):
            problems.append(FieldError(path=where, message="expected an object with manager, operation and fieldsV1"))
            continue
        for key in ("manager", "operation", "apiVersion", "time", "fieldsType"):
            if key in entry and not isinstance(entry[key], str):
                problems.append(FieldError(path=f"{where}.{key}", message="expected a string"))
        if "fieldsV1" in entry and not isinstance(entry["fieldsV1"], dict):
            problems.append(FieldError(path=f"{where}.fieldsV1", message='expected an object of "f:<name>" keys'))
    return problems


def _configuration(applied: Any) -> Obj:
    if not isinstance(applied, dict):
        raise BadRequestError("an apply configuration must be an object (apiVersion, kind, metadata, spec)")
    config = copy.deepcopy(applied)
    metadata = config.get("metadata")
    if not isinstance(metadata, dict):
        raise ValidationError([FieldError(
            path="metadata", message="required: an apply configuration needs metadata with at least a name",
        )])
    for key in _SERVER_METADATA:
        metadata.pop(key, None)
    config.pop("status", None)
    return config


def apply_create(applied: Any, manager: str) -> Obj:
    """The object an apply creates when nothing of that name exists yet."""
    config = _configuration(applied)
    config["metadata"]["managedFields"] = [_entry(manager, str(config.get("apiVersion", "")), field_paths(config))]
    return config


def apply_update(live: Obj, applied: Any, manager: str, *, force: bool) -> Obj:
    """``live`` with the configuration of ``manager`` applied (see the module docstring)."""
    config = _configuration(applied)
    wanted = field_paths(config)
    managed = live.get("metadata", {}).get("managedFields")
    # Objects written before managedFields were checked may hold anything there: skip it.
    entries = [e for e in managed if isinstance(e, dict)] if isinstance(managed, list) else []
    owned = {i: decode_fields(e.get("fieldsV1")) for i, e in enumerate(entries)}
    mine = [i for i, e in enumerate(entries) if e.get("manager") == manager and e.get("operation") == "Apply"]
    others = [i for i, e in enumerate(entries) if e.get("operation") == "Apply" and i not in mine]
    previous = set().union(*(owned[i] for i in mine)) if mine else set()

    merged = _merge(live, config)
    conflicts: set[tuple[Path, str]] = set()
    for path in wanted:
        for i in others:
            for theirs in owned[i]:
                if _overlaps(path, theirs) and _value(live, theirs) != _value(merged, theirs):
                    conflicts.add((theirs, str(entries[i].get("manager"))))
    if conflicts and not force:
        detail = "; ".join(f'.{".".join(p)} is owned by "{m}"' for p, m in sorted(conflicts))
        raise ApplyConflictError(
            f"Apply failed with {len(conflicts)} conflict(s): {detail} (apply with force to take them over)",
            [{"reason": "FieldManagerConflict", "message": f'conflict with "{m}"', "field": "." + ".".join(p)}
             for p, m in sorted(conflicts)])
    if conflicts:  # force: the conflicting fields change hands
        taken = {p for p, _ in conflicts}
        for i in others:
            owned[i] -= taken

    still_owned = set().union(*(owned[i] for i in others)) if others else set()
    result = copy.deepcopy(live)
    for path in sorted(previous - wanted, key=len, reverse=True):
        if not any(_overlaps(path, keep) for keep in wanted | still_owned):
            _remove(result, path)
    result = _merge(result, config)

    new_entries: list[dict[str, Any]] = []
    for i, entry in enumerate(entries):
        if i in mine:
            continue
        if i in others:
            if not owned[i]:
                continue
            entry = {**entry, "fieldsV1": encode_fields(owned[i])}
        new_entries.append(entry)
    new_entries.append(_entry(manager, str(config.get("apiVersion", live.get("apiVersion", ""))), wanted))
    result.setdefault("metadata", {})["managedFields"] = new_entries
    return result
