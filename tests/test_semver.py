"""Semantic versions and dependency constraints: precedence, each operator, and their algebra."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mfx.api.semver import Constraint, ConstraintError, Version, VersionError

# --- versions ---------------------------------------------------------------------------

PRECEDENCE = [  # SemVer 2.0 section 11, in ascending order
    "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
    "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0", "10.0.0",
]


def test_precedence_follows_semver_2() -> None:
    versions = [Version.parse(v) for v in PRECEDENCE]
    assert sorted(reversed(versions)) == versions
    for lower, higher in zip(versions, versions[1:], strict=False):
        assert lower < higher and higher > lower and lower != higher


def test_build_metadata_is_ignored_in_comparisons_but_kept_in_text() -> None:
    a, b = Version.parse("1.2.3+build.1"), Version.parse("1.2.3+build.2")
    assert a == b and hash(a) == hash(b)
    assert str(a) == "1.2.3+build.1"


@pytest.mark.parametrize("text", ["1.2", "1", "v1.2.3", "01.2.3", "1.2.3-", "1.2.3-01", "1.2.3.4", "", "a.b.c"])
def test_invalid_versions_are_refused_with_the_expected_form(text: str) -> None:
    with pytest.raises(VersionError) as info:
        Version.parse(text)
    assert f'"{text}"' in str(info.value)
    assert isinstance(info.value, ValueError)


# --- constraints: one table per operator --------------------------------------------------

TABLE: list[tuple[str, list[str], list[str]]] = [
    # (constraint, satisfied by, not satisfied by)
    ("=1.2.3", ["1.2.3", "1.2.3+b"], ["1.2.4", "1.2.2", "1.2.3-rc.1"]),
    ("1.2.3", ["1.2.3"], ["1.2.4", "1.3.0"]),
    (">=1.2", ["1.2.0", "1.9.0", "5.0.0"], ["1.1.9", "1.2.0-rc.1"]),
    ("<=1.2", ["1.2.0", "1.2.9", "0.1.0"], ["1.3.0"]),
    ("<=1.2.3", ["1.2.3", "1.0.0"], ["1.2.4"]),
    (">1.2", ["1.3.0", "2.0.0"], ["1.2.0", "1.2.9"]),
    (">1.2.3", ["1.2.4"], ["1.2.3"]),
    ("<1.2", ["1.1.9", "0.0.1"], ["1.2.0", "1.2.0-rc.1"]),
    ("~> 1.2", ["1.2.0", "1.9.9"], ["2.0.0", "1.1.0"]),
    ("~>1.2.3", ["1.2.3", "1.2.9"], ["1.3.0", "1.2.2"]),
    ("~> 1", ["1.0.0", "1.9.0"], ["2.0.0"]),
    ("~1.2.3", ["1.2.3", "1.2.8"], ["1.3.0"]),
    ("~1.2", ["1.2.0", "1.2.9"], ["1.3.0"]),
    ("^1.2.3", ["1.2.3", "1.9.0"], ["2.0.0", "1.2.2", "2.0.0-rc.1"]),
    ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0", "0.2.2"]),
    ("^0.0.3", ["0.0.3"], ["0.0.4", "0.0.2"]),
    ("^1.2", ["1.2.0", "1.99.0"], ["2.0.0", "1.1.0"]),
    ("^0", ["0.0.0", "0.9.9"], ["1.0.0"]),
    ("1.x", ["1.0.0", "1.9.9"], ["2.0.0", "0.9.0"]),
    ("1.2.*", ["1.2.0", "1.2.7"], ["1.3.0"]),
    ("1.2", ["1.2.0", "1.2.7"], ["1.3.0"]),
    ("*", ["0.0.0", "9.9.9"], ["1.0.0-alpha"]),
    (">=1.0 <2.0", ["1.0.0", "1.9.9"], ["2.0.0", "0.9.9"]),
    (">=1.0, <2.0", ["1.5.0"], ["2.0.0"]),
    (">= 1.0 < 2.0", ["1.5.0"], ["2.0.0"]),
    ("^1.0 || ^3.0", ["1.2.0", "3.1.0"], ["2.0.0", "4.0.0"]),
    ("1.2 - 1.4", ["1.2.0", "1.4.9"], ["1.5.0", "1.1.9"]),
    ("1.2.3 - 1.4.5", ["1.2.3", "1.4.5"], ["1.4.6"]),
    # Pre-releases match only comparators that name a pre-release of the same release.
    (">=2.0.0-rc.0", ["2.0.0-rc.1", "2.0.0", "3.0.0"], ["2.0.1-rc.1", "2.0.0-alpha"]),
    ("^1.2.3-beta.2", ["1.2.3-beta.3", "1.2.3", "1.5.0"], ["1.2.3-beta.1", "1.2.4-beta.9"]),
    ("~> 1.2.3-rc.1", ["1.2.3-rc.2", "1.2.5"], ["1.3.0-rc.1"]),
]


@pytest.mark.parametrize(("text", "yes", "no"), TABLE)
def test_each_operator_selects_the_documented_versions(text: str, yes: list[str], no: list[str]) -> None:
    constraint = Constraint.parse(text)
    for v in yes:
        assert constraint.satisfied_by(Version.parse(v)), f"{text} should accept {v}"
    for v in no:
        assert not constraint.satisfied_by(Version.parse(v)), f"{text} should refuse {v}"


@pytest.mark.parametrize("text", ["^^1", "", "   ", ">=", "1.2.3.4", "1,,2", ",1", "1 -", "foo", "~>", "1 || ", "1.x.3", "=>1"])
def test_malformed_constraints_name_the_text_and_show_examples(text: str) -> None:
    with pytest.raises(ConstraintError) as info:
        Constraint.parse(text)
    assert str(info.value) == f'"{text}" is not a version constraint (examples: ^1.2, >=1.0 <2.0, ~> 1.4)'
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("text", [t for t, _, _ in TABLE])
def test_str_round_trips_every_table_constraint(text: str) -> None:
    parsed = Constraint.parse(text)
    assert Constraint.parse(str(parsed)) == parsed
    assert str(Constraint.parse(str(parsed))) == str(parsed)


# --- properties ----------------------------------------------------------------------------

numbers = st.integers(min_value=0, max_value=30)
releases = st.builds(Version, numbers, numbers, numbers)
identifiers = st.one_of(
    st.integers(min_value=0, max_value=20).map(str),
    st.text(alphabet="abcrz-", min_size=1, max_size=4).filter(lambda s: not s.isdigit()),
)
versions = st.builds(
    Version, numbers, numbers, numbers,
    st.lists(identifiers, max_size=3).map(tuple),
    st.lists(st.sampled_from(["b1", "x", "7"]), max_size=2).map(tuple),
)
OPERATORS = ["", "=", ">=", "<=", ">", "<", "~>", "~", "^"]


def _partial_text(v: Version, parts: int) -> str:
    return ".".join(str(p) for p in (v.major, v.minor, v.patch)[:parts])


comparators = st.builds(
    lambda op, v, parts: f"{op}{_partial_text(v, parts)}",
    st.sampled_from(OPERATORS), releases, st.integers(min_value=1, max_value=3),
)
and_sets = st.lists(comparators, min_size=1, max_size=3).map(" ".join)
constraints = st.lists(and_sets, min_size=1, max_size=3).map(" || ".join)


@given(releases, releases)
def test_release_ordering_is_tuple_ordering(a: Version, b: Version) -> None:
    assert (a < b) == (a.release < b.release)
    assert (a == b) == (a.release == b.release)


@given(versions, versions, versions)
def test_ordering_is_total_and_transitive(a: Version, b: Version, c: Version) -> None:
    assert sum([a < b, a == b, a > b]) == 1
    if a <= b and b <= c:
        assert a <= c


@given(versions)
def test_version_text_round_trips(v: Version) -> None:
    parsed = Version.parse(str(v))
    assert parsed == v and str(parsed) == str(v)


@given(versions)
def test_caret_and_pessimistic_accept_their_own_version(v: Version) -> None:
    text = str(Version(v.major, v.minor, v.patch, v.prerelease))
    assert Constraint.parse(f"^{text}").satisfied_by(v)
    assert Constraint.parse(f"~> {text}").satisfied_by(v)
    assert Constraint.parse(f"={text}").satisfied_by(v)


@settings(max_examples=200)
@given(constraints)
def test_constraint_text_round_trips(text: str) -> None:
    parsed = Constraint.parse(text)
    again = Constraint.parse(str(parsed))
    assert again == parsed
    assert str(again) == str(parsed)


@settings(max_examples=200)
@given(and_sets, and_sets, versions)
def test_or_is_the_union_and_and_the_intersection(a: str, b: str, v: Version) -> None:
    left, right = Constraint.parse(a), Constraint.parse(b)
    assert Constraint.parse(f"{a} || {b}").satisfied_by(v) == (left.satisfied_by(v) or right.satisfied_by(v))
    if not v.prerelease:
        # For releases AND is exactly the intersection; a pre-release may additionally be let
        # in by a comparator of the other side that names its release (the npm rule).
        assert Constraint.parse(f"{a}, {b}").satisfied_by(v) == (left.satisfied_by(v) and right.satisfied_by(v))
    elif left.satisfied_by(v) and right.satisfied_by(v):
        assert Constraint.parse(f"{a}, {b}").satisfied_by(v)
