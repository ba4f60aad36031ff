"""Durations (Go's time.ParseDuration grammar) and quantities (Kubernetes resource.Quantity).

Manifests write ``timeout: 5s`` and ``memory: 256Mi`` the way Kubernetes users expect; these
functions turn them into seconds, bytes and millicores, and back.
"""

from __future__ import annotations

import functools
import math
import re
from decimal import Decimal, InvalidOperation

DURATION_EXAMPLES = "500ms, 10s, 5m, 1h30m, 1.5s"
QUANTITY_EXAMPLES = "256Mi, 1G, 500m, 2, 1.5, 1e3"

_DURATION_UNITS: dict[str, Decimal] = {
    "ns": Decimal("1e-9"),
    "us": Decimal("1e-6"),
    "\u00b5s": Decimal("1e-6"),  # micro sign
    "\u03bcs": Decimal("1e-6"),  # Greek mu
    "ms": Decimal("1e-3"),
    "s": Decimal(1),
    "m": Decimal(60),
    "h": Decimal(3600),
}
# ASCII digits only: "\d" would read any script's digits, which no other reader of a manifest does.
_DURATION_PART = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
# Go's limit: a duration is an int64 of nanoseconds (about 292 years).
MAX_DURATION_SECONDS = (2**63 - 1) / 1e9
# Kubernetes' limit for a quantity in its base unit (bytes, millicores).
MAX_QUANTITY = 2**63 - 1


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string: ``"1h30m"`` -> 5400.0, ``"500ms"`` -> 0.5.

    A sequence of decimal numbers, each with a unit (ns, us or µs, ms, s, m, h), optionally
    signed; ``"0"`` is the only number allowed without a unit.
    """
    if not isinstance(text, str):
        raise ValueError(_duration_problem(text, "it is not a string; quote it"))
    return _duration_seconds(text)


@functools.lru_cache(maxsize=1024)
def _duration_seconds(text: str) -> float:
    """``parse_duration`` of a string, cached: every plugin's spec carries the same few
    durations ("10s", "1h"), and each parse builds Decimals."""
    s = text
    if s != s.strip():
        parse_duration(s.strip())  # if the rest is wrong too, say what is wrong with it
        raise ValueError(_duration_problem(text, f'remove the spaces around it: "{s.strip()}"'))
    sign = Decimal(1)
    if s[:1] in "+-" and s:
        sign = Decimal(-1) if s[0] == "-" else Decimal(1)
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(_duration_problem(text, "it is empty"))
    total = Decimal(0)
    pos = 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None:
            rest = s[pos:]
            if re.match(r"[0-9]*\.[0-9]*\.", rest):
                why = f'"{rest}" has a malformed number'
            elif re.fullmatch(r"[0-9.]+", rest):
                why = f'"{rest}" has no unit (e.g. "{text}s")'
            elif any(c.isdigit() and c not in "0123456789" for c in rest):
                why = f'"{rest}" has digits other than 0-9'
            elif re.match(r"[0-9.]+[A-Za-z\u00b5\u03bc]+", rest):
                why = f'unknown unit in "{rest}" (units: ns, us, ms, s, m, h)'
            else:
                why = f'unexpected "{rest}"'
            raise ValueError(_duration_problem(text, why))
        total += Decimal(m[1]) * _DURATION_UNITS[m[2]]
        pos = m.end()
    if total > Decimal(MAX_DURATION_SECONDS):
        raise ValueError(_duration_problem(text, "it is longer than 2562047h, the longest duration"))
    return float(sign * total)


def _duration_problem(text: object, why: str) -> str:
    return f'"{text}" is not a duration: {why} (examples: {DURATION_EXAMPLES})'


def format_duration(seconds: float) -> str:
    """The shortest Go-style duration for ``seconds``: 5400 -> "1h30m", 0.5 -> "500ms"."""
    if seconds == 0:
        return "0s"
    if seconds < 0:
        return "-" + format_duration(-seconds)
    value = Decimal(repr(float(seconds)))
    if value < 1:
        for unit, scale in (("ms", Decimal("1e-3")), ("us", Decimal("1e-6")), ("ns", Decimal("1e-9"))):
            if value >= scale:
                return _decimal_text(value / scale) + unit
        return _decimal_text(value / Decimal("1e-9")) + "ns"
    hours, rest = divmod(value, 3600)
    minutes, secs = divmod(rest, 60)
    text = ""
    if hours:
        text += f"{int(hours)}h"
    if minutes:
        text += f"{int(minutes)}m"
    if secs:
        text += _decimal_text(secs) + "s"
    return text


def _decimal_text(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


# --- quantities -------------------------------------------------------------------------

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_QUANTITY_RE = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))"
    r"(?:(?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)|(?P<exp>[eE][+-]?[0-9]+)|(?P<decimal>[numkMGTPE]?))"
)


def parse_quantity(value: str | int | float) -> Decimal:
    """The exact value of a Kubernetes quantity: ``"256Mi"`` -> 268435456, ``"500m"`` -> 0.5.

    Suffixes: binary Ki Mi Gi Ti Pi Ei (powers of 1024), decimal n u m k M G T P E (powers of
    1000), or an exponent (``1e3``). Plain numbers (YAML ints) are accepted as they are.
    """
    if isinstance(value, bool):
        raise ValueError(_quantity_problem(value, "a boolean is not a quantity"))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(_quantity_problem(value, "it is not finite"))
        return Decimal(repr(value))
    if not isinstance(value, str):
        raise ValueError(_quantity_problem(value, "expected a string or a number"))
    if value != value.strip() and value.strip():
        parse_quantity(value.strip())  # if the rest is wrong too, say what is wrong with it
        raise ValueError(_quantity_problem(value, f'remove the spaces around it: "{value.strip()}"'))
    m = _QUANTITY_RE.fullmatch(value)
    if m is None:
        why = "it is empty" if not value.strip() else "expected a number with an optional suffix"
        raise ValueError(_quantity_problem(value, why))
    try:
        number = Decimal(m["number"])
    except InvalidOperation:  # pragma: no cover - the regex admits only valid decimals
        raise ValueError(_quantity_problem(value, "bad number")) from None
    if m["binary"]:
        return number * (Decimal(1024) ** _BINARY[m["binary"]])
    if m["exp"]:
        exponent = int(m["exp"][1:])
        if abs(exponent) > 100:
            raise ValueError(_quantity_problem(value, "the exponent is out of range"))
        return number.scaleb(exponent)
    return number.scaleb(_DECIMAL[m["decimal"] or ""])


def _quantity_problem(value: object, why: str) -> str:
    return f'"{value}" is not a quantity: {why} (examples: {QUANTITY_EXAMPLES})'


def parse_memory_bytes(value: str | int | float) -> int:
    """Bytes in a memory quantity, rounded up like Kubernetes: ``"256Mi"`` -> 268435456."""
    q = parse_quantity(value)
    if q < 0:
        raise ValueError(f'"{value}" is not a memory size: it is negative (examples: 256Mi, 1G, 512Ki)')
    return _bounded(value, int(q.to_integral_value(rounding="ROUND_CEILING")), "bytes")


def parse_cpu_millis(value: str | int | float) -> int:
    """Millicores in a CPU quantity, rounded up: ``"500m"`` -> 500, ``"2"`` -> 2000."""
    q = parse_quantity(value)
    if q < 0:
        raise ValueError(f'"{value}" is not a CPU amount: it is negative (examples: 500m, 1, 2.5)')
    return _bounded(value, int((q * 1000).to_integral_value(rounding="ROUND_CEILING")), "millicores")


def _bounded(value: object, amount: int, unit: str) -> int:
    # Limits end up in setrlimit, cgroup files and int64 fields; Kubernetes has the same bound.
    if amount > MAX_QUANTITY:
        raise ValueError(_quantity_problem(value, f"it is more than {MAX_QUANTITY} {unit}"))
    return amount
