"""Label selectors parse like Kubernetes' and match labels the way kubectl -l does."""

from __future__ import annotations

import pytest

from mfx.api.selectors import Operator, Requirement, Selector, parse_selector
from mfx.errors import BadRequestError, InvalidSelectorError

LABELS = {
    "app": "player",
    "tier": "core",
    "env": "",
    "replicas": "3",
    "example.com/owner": "audio-team",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("app=player", True),
        ("app==player", True),
        ("app=other", False),
        ("app!=other", True),
        ("app!=player", False),
        ("missing!=x", True),  # != also matches objects without the label
        ("tier in (core, extra)", True),
        ("tier in (extra)", False),
        ("tier notin (extra)", True),
        ("tier notin (core,extra)", False),
        ("missing notin (x)", True),
        ("missing in (x)", False),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("env=", True),  # the empty value
        ("env in (x,)", True),  # a trailing comma adds the empty value
        ("replicas>2", True),
        ("replicas<3", False),
        ("app>2", False),  # not an integer: no match
        ("example.com/owner=audio-team", True),
        ("app=player,tier=core", True),
        ("app=player,tier=extra", False),
        ("  app = player ,  !missing , tier in(core)  ", True),
        ("", True),
        ("   ", True),
    ],
)
def test_selectors_match_labels_like_kubernetes(text: str, expected: bool) -> None:
    assert parse_selector(text).matches(LABELS) is expected


def test_parsing_yields_requirements_in_order() -> None:
    selector = parse_selector("a=1, b!=2, c in (x,y,x), d notin (z), e, !f, g>5")
    assert selector.requirements == (
        Requirement("a", Operator.EQUALS, ("1",)),
        Requirement("b", Operator.NOT_EQUALS, ("2",)),
        Requirement("c", Operator.IN, ("x", "y")),
        Requirement("d", Operator.NOT_IN, ("z",)),
        Requirement("e", Operator.EXISTS),
        Requirement("f", Operator.DOES_NOT_EXIST),
        Requirement("g", Operator.GREATER_THAN, ("5",)),
    )
    assert str(selector) == "a=1,b!=2,c in (x,y),d notin (z),e,!f,g>5"
    assert parse_selector(str(selector)) == selector


def test_the_empty_selector_matches_everything_including_no_labels() -> None:
    assert parse_selector(None) == Selector()
    assert parse_selector("").is_empty
    assert parse_selector("").matches(None)
    assert parse_selector("!app").matches(None)
    assert not parse_selector("app").matches({})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("app in ()", r'at position 9: "in" needs at least one value'),
        (
            "app in (a",
            r'at position 10: expected "," or "\)" in the value list, found end of input',
        ),
        ("app in a", r'at position 8: expected "\(" after "app in", found "a"'),
        ("=player", r'at position 1: expected a label key, found "="'),
        ("app player", r'at position 5: expected an operator .* after "app", found "player"'),
        ("app=a=b", r'at position 6: expected "," or end of input, found "="'),
        ("app=,", r"at position 6: expected a label key, found end of input"),
        ("!", r"expected a label key, found end of input"),
        ("-app=x", r'invalid label key "-app"'),
        ("Bad_Prefix/app=x", r'invalid label key prefix "Bad_Prefix"'),
        ("/app=x", r'invalid label key prefix ""'),
        ("app=-x", r'invalid label value "-x"'),
        ("app=" + "v" * 64, r"at most 63 characters"),
        ("replicas>many", r'"many" is not an integer'),
        ("app=x)", r'expected "," or end of input, found "\)"'),
    ],
)
def test_bad_selectors_are_rejected_with_the_position_and_what_was_expected(
    text: str, message: str
) -> None:
    with pytest.raises(InvalidSelectorError, match=message) as caught:
        parse_selector(text)
    assert str(caught.value).startswith(f'invalid label selector "{text}"')
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, BadRequestError)
    assert caught.value.code == 400
