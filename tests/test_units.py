"""Durations (Go grammar) and quantities (Kubernetes suffixes): parsing, formatting, errors."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mfx.api.units import (
    format_duration,
    parse_cpu_millis,
    parse_duration,
    parse_memory_bytes,
    parse_quantity,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5), ("10s", 10.0), ("5m", 300.0), ("1h30m", 5400.0), ("1.5s", 1.5),
        ("0", 0.0), ("0s", 0.0), ("1h0m0.5s", 3600.5), ("2us", 2e-6), ("2µs", 2e-6),
        ("2μs", 2e-6), ("100ns", 1e-7), (".5s", 0.5), ("1.s", 1.0), ("-1.5h", -5400.0),
        ("+3s", 3.0), ("1m1m", 120.0),
    ],
)
def test_durations_parse_like_go(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "why"),
    [("10", "has no unit"), ("5x", "unknown unit"), ("", "empty"), ("1.2.3s", "malformed"),
     ("s", "unexpected"), ("1 s", "unexpected"), ("-", "empty")],
)
def test_bad_durations_say_why_and_show_examples(text: str, why: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    message = str(info.value)
    assert message.startswith(f'"{text}" is not a duration')
    assert why in message and "examples: 500ms, 10s" in message


def test_a_number_where_a_duration_belongs_asks_for_quotes() -> None:
    with pytest.raises(ValueError, match="quote it"):
        parse_duration(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5400, "1h30m"), (0.5, "500ms"), (90.5, "1m30.5s"), (3600, "1h"), (0, "0s"),
     (1e-7, "100ns"), (0.000123, "123us"), (-2, "-2s"), (1.5, "1.5s")],
)
def test_durations_format_shortest(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_format_then_parse_returns_the_same_duration(nanos: int) -> None:
    seconds = nanos / 1e9
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("256Mi", 256 * 2**20), ("1Ki", 1024), ("2Gi", 2 * 2**30), ("1Ti", 2**40), ("1Pi", 2**50),
        ("1Ei", 2**60), ("1G", 10**9), ("1k", 1000), ("3M", 3 * 10**6), ("1T", 10**12),
        ("1P", 10**15), ("1E", 10**18), ("500m", Decimal("0.5")), ("2", 2), ("1.5", Decimal("1.5")),
        ("1e3", 1000), ("1E3", 1000), ("5e-3", Decimal("0.005")), ("100u", Decimal("0.0001")),
        ("7n", Decimal("7e-9")), (2, 2), (0.25, Decimal("0.25")),
    ],
)
def test_quantities_parse_like_kubernetes(text: str | int | float, value: Decimal | int) -> None:
    assert parse_quantity(text) == Decimal(value)


@pytest.mark.parametrize("text", ["1Q", "", "abc", "Mi", "1 Mi", "1.2.3", "1mi", "--1"])
def test_bad_quantities_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_quantity(text)
    assert str(info.value).startswith(f'"{text}" is not a quantity')
    assert "examples: 256Mi" in str(info.value)


def test_booleans_are_not_quantities() -> None:
    with pytest.raises(ValueError, match="boolean"):
        parse_quantity(True)


def test_memory_in_bytes_rounds_up() -> None:
    assert parse_memory_bytes("256Mi") == 268435456
    assert parse_memory_bytes("1.5") == 2
    assert parse_memory_bytes(4096) == 4096
    with pytest.raises(ValueError, match="negative"):
        parse_memory_bytes("-1Mi")


def test_cpu_in_millicores_rounds_up() -> None:
    assert parse_cpu_millis("500m") == 500
    assert parse_cpu_millis("2") == 2000
    assert parse_cpu_millis(1) == 1000
    assert parse_cpu_millis("0.1") == 100
    assert parse_cpu_millis("1500u") == 2
    with pytest.raises(ValueError, match="negative"):
        parse_cpu_millis("-1")
