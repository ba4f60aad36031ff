"""The version check of manifests answers as ``Version.parse`` does, on every text."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mfx.api.semver import Version, version_problem


def _parse_problem(text: Any) -> str | None:
    try:
        Version.parse(text)
    except ValueError as error:
        return str(error)
    return None


@pytest.mark.parametrize("text", [
    "1.0.0", "0.0.0", "1.2.3+build.5", "1.0.0-rc.1", "1.0.0-01", "1.0.0-0", "1.0.0-a." + "9" * 20, "1.0",
    "01.0.0", "1.0.0\n", "v1.0.0", "", "9" * 19 + ".0.0", "9" * 20 + ".0.0", 5, None, 1.5,
])
def test_it_answers_as_parse_does(text: Any) -> None:
    assert version_problem(text) == _parse_problem(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789.-+ab"), max_size=16))
def test_generated_texts_are_answered_as_parse_answers_them(text: str) -> None:
    assert version_problem(text) == _parse_problem(text)
