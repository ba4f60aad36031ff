"""``mfx apply`` reads files under the same limits as the API reads bodies: nesting depth and
64-bit integers, each refused with the file, the line and a reason."""

from __future__ import annotations

import pytest

from mfx.api.yaml_loader import MAX_DEPTH, load_manifests
from mfx.errors import ValidationError

FILE = "deep.yaml"


def only_error(text: str) -> str:
    with pytest.raises(ValidationError) as caught:
        load_manifests(text, FILE)
    [error] = caught.value.errors
    return str(error)


def test_nesting_up_to_the_limit_is_read() -> None:
    text = "a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"
    [manifest] = load_manifests(text, FILE)
    assert isinstance(manifest.obj["a"], list)


@pytest.mark.parametrize("depth", [MAX_DEPTH, 600])
def test_deeper_nesting_is_refused_with_its_line(depth: int) -> None:
    text = "kind: AudioSink\nspec:\n  x: " + "[" * depth + "]" * depth + "\n"
    message = only_error(text)
    assert message.startswith(f"{FILE}:3:") and f"nested more than {MAX_DEPTH} levels deep" in message


def test_nesting_through_aliases_counts_too() -> None:
    levels = ["a0: &a0 [" + "[" * 60 + "]" * 60 + "]"]
    levels += [f"a{i}: &a{i} [" + "[" * 60 + f"*a{i - 1}" + "]" * 60 + "]" for i in range(1, 4)]
    assert f"nested more than {MAX_DEPTH} levels deep" in only_error("\n".join(levels) + "\n")


def test_integers_beyond_64_bits_are_refused() -> None:
    assert "integer outside the 64-bit range" in only_error("kind: AudioSink\nspec: {rate: 99999999999999999999}\n")
    [manifest] = load_manifests("kind: AudioSink\nspec: {rate: 9223372036854775807}\n", FILE)
    assert manifest.obj["spec"]["rate"] == 2**63 - 1

