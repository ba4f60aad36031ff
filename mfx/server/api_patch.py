"""Patch bodies applied to the stored object, the patch type chosen by the exact Content-Type.

``application/merge-patch+json`` (and plain ``application/json``) is RFC 7386,
``application/json-patch+json`` is RFC 6902. ``application/strategic-merge-patch+json`` is
refused for custom resources, as the API server refuses it (they have no strategic-merge
schema); for Events, which have no list merged by key, it means what a merge patch means.
``application/apply-patch+yaml`` (server-side apply) is routed before a patch gets here.
"""

from __future__ import annotations

import copy
import enum
from typing import Any

import jsonpatch

from mfx.api.json_values import json_type_phrase
from mfx.api.objects import Obj
from mfx.errors import BadRequestError, MfxError


class PatchType(enum.StrEnum):
    JSON = "application/json"  # a merge patch, as kubectl's older clients send it
    MERGE = "application/merge-patch+json"
    JSON_PATCH = "application/json-patch+json"
    STRATEGIC = "application/strategic-merge-patch+json"
    APPLY = "application/apply-patch+yaml"


def media_type(content_type: str) -> str:
    """The media type of a Content-Type header, without its parameters."""
    return content_type.split(";")[0].strip()


def patch_type(content_type: str) -> PatchType | None:
    """The patch type a Content-Type names exactly; None for any other media type."""
    try:
        return PatchType(media_type(content_type))
    except ValueError:
        return None


class UnsupportedMediaTypeError(MfxError):
    reason = "UnsupportedMediaType"
    code = 415


# Strategic merge patch directives: keys a plain merge patch would store as data.
_DIRECTIVES = frozenset(("$patch", "$retainKeys"))


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


def apply_patch(current: Obj, patch: Any, content_type: str, *, strategic: bool = False) -> Any:
    """``patch`` applied to ``current``. ``strategic``: the kind has no list merged by key and no
    patch directives (Event), so a strategic merge patch means what a merge patch means.

    The result may be any JSON value: the caller refuses what is not an object."""
    kind = patch_type(content_type)
    if kind is PatchType.STRATEGIC and strategic:
        _check_merge_patch(patch, "a strategic merge patch")
        if _has_directive(patch):
            raise BadRequestError("strategic merge patch directives ($patch, $retainKeys) are not supported")
        return merge_patch(current, patch)
    if kind is PatchType.STRATEGIC:
        # Custom resources have no strategic-merge schema: like the API server, refuse it.
        raise UnsupportedMediaTypeError("strategic merge patch is not supported for custom resources; "
                                        "use --type=merge or --type=json")
    if kind in (PatchType.MERGE, PatchType.JSON):
        _check_merge_patch(patch, "a merge patch")
        return merge_patch(current, patch)
    if kind is PatchType.JSON_PATCH:
        return _apply_json_patch(current, patch)
    if kind is PatchType.APPLY:
        raise UnsupportedMediaTypeError("server-side apply is not supported for the status subresource; "
                                        f"use {PatchType.MERGE} or {PatchType.JSON_PATCH}")
    raise UnsupportedMediaTypeError(
        f"unsupported patch type {media_type(content_type)!r}; use {PatchType.MERGE} or {PatchType.JSON_PATCH}"
    )


def _has_directive(patch: Any) -> bool:
    if isinstance(patch, dict):
        return any(key in _DIRECTIVES or _has_directive(value) for key, value in patch.items())
    if isinstance(patch, list):
        return any(_has_directive(item) for item in patch)
    return False


def _check_merge_patch(patch: Any, what: str) -> None:
    # RFC 7386 lets a non-object patch replace the whole document; for an object that can
    # only ever produce something that is not an object.
    if not isinstance(patch, dict):
        raise BadRequestError(f"{what} must be a JSON object, not {json_type_phrase(patch)}")


_JSON_PATCH_OPS = ("add", "remove", "replace", "move", "copy", "test")


def _apply_json_patch(current: Obj, patch: Any) -> Any:
    """RFC 6902. The operations' shape is checked here: the library takes a string for a patch
    to parse (unhardened) and does not check every member's type itself."""
    if not isinstance(patch, list):
        raise BadRequestError(f"a JSON patch must be a list of operations, not {json_type_phrase(patch)}")
    problems: list[str] = []
    for index, operation in enumerate(patch):
        where = f"operation {index}"
        if not isinstance(operation, dict):
            problems.append(f'{where}: expected an object {{"op", "path", ...}}, got {json_type_phrase(operation)}')
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
