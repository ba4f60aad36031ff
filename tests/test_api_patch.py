"""Patch bodies: the patch type is the exact media type of Content-Type; directives are keys."""

from __future__ import annotations

from typing import Any

import pytest

from mfx.errors import BadRequestError
from mfx.server.api_patch import PatchType, UnsupportedMediaTypeError, apply_patch, patch_type

EVENT: dict[str, Any] = {"kind": "Event", "metadata": {"name": "e"}, "count": 1, "message": "m"}


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/merge-patch+json", PatchType.MERGE),
        ("application/merge-patch+json; charset=utf-8", PatchType.MERGE),
        ("application/json-patch+json", PatchType.JSON_PATCH),
        ("application/strategic-merge-patch+json", PatchType.STRATEGIC),
        ("application/apply-patch+yaml", PatchType.APPLY),
        ("application/json", PatchType.JSON),
        ("application/x-merge-patch+json", None),
        ("text/application/merge-patch+json", None),
        ("", None),
    ],
)
def test_the_patch_type_is_the_exact_media_type(content_type: str, expected: PatchType | None) -> None:
    assert patch_type(content_type) is expected


def test_a_strategic_merge_patch_of_an_event_is_a_merge_patch() -> None:
    patched = apply_patch(EVENT, {"count": 2, "message": "mentions $patch"}, PatchType.STRATEGIC, strategic=True)
    assert patched["count"] == 2 and patched["message"] == "mentions $patch"


@pytest.mark.parametrize(
    "patch",
    [{"$patch": "replace"}, {"metadata": {"$retainKeys": ["name"]}}, {"items": [{"$patch": "delete"}]}],
)
def test_strategic_merge_directives_are_refused_wherever_they_are(patch: dict[str, Any]) -> None:
    with pytest.raises(BadRequestError, match="directives"):
        apply_patch(EVENT, patch, PatchType.STRATEGIC, strategic=True)


def test_unsupported_patch_types_are_415() -> None:
    with pytest.raises(UnsupportedMediaTypeError) as caught:
        apply_patch(EVENT, {}, "application/x-yaml")
    assert caught.value.code == 415 and caught.value.reason == "UnsupportedMediaType"
    with pytest.raises(UnsupportedMediaTypeError, match="custom resources"):
        apply_patch(EVENT, {}, PatchType.STRATEGIC)
