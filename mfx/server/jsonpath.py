"""kubectl's JSONPath: printer-column paths (``additionalPrinterColumns``) and ``-o jsonpath=``.

A template is text with actions in braces, as ``kubectl get -o jsonpath=`` takes it::

    {.metadata.name}
    {.items[*].metadata.name}
    {range .items[*]}{.metadata.name}{"\\t"}{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}

Inside an action: ``.field`` (``\\.`` escapes a dot in a key), ``['key']``, ``.*`` and ``[*]``,
``..field`` (recursive descent), ``[i]``, ``[start:end:step]``, unions ``[0,2]``, filters
``[?(@.a.b=="x")]`` with ``== != < > <= >=`` or bare existence ``[?(@.a)]``, string and number
literals, and ``range``/``end`` blocks. A missing field yields no values (kubectl prints nothing,
or ``<none>`` in a column), never an error; an index past the end of a list is an error, as in
kubectl.

Here the values are printed as kubectl prints them; ``mfx.server.jsonpath_syntax`` parses a
template and ``mfx.server.jsonpath_eval`` walks it over the data.
"""
from __future__ import annotations

import functools
import json
import math
from decimal import Decimal
from typing import Any

from mfx.server.jsonpath_eval import find_results
from mfx.server.jsonpath_syntax import JSONPathError, Node, parse_template

__all__ = ["JSONPathError", "column_template", "evaluate", "find_results", "parse_template", "render", "value_text"]

# --- printing ---------------------------------------------------------------------------------


def _go_float(value: float) -> str:
    """A float64 as Go's ``fmt.Print`` writes it: shortest digits, %e below 1e-4 and from 1e6."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    number = Decimal(repr(value)).normalize()  # repr is the shortest text that round-trips
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    leading = len(digits) + exponent - 1  # the power of ten of the first digit
    if -4 <= leading < 6:
        return format(number, "f")
    text = "".join(map(str, digits))
    mantissa = text[0] + (f".{text[1:]}" if len(text) > 1 else "")
    return f"{'-' if sign else ''}{mantissa}e{'-' if leading < 0 else '+'}{abs(leading):02d}"


def _go_json(value: Any) -> str:
    """What Go's ``json.Marshal`` writes: keys sorted, compact, ``<>&`` escaped."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return text


def value_text(value: Any) -> str:
    """One value as kubectl prints it: maps and lists as JSON, scalars as Go prints them."""
    if isinstance(value, (dict, list)):
        return _go_json(value)
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    return str(value)


def render(template: str, data: Any) -> str:
    """``template`` applied to ``data``, exactly as ``kubectl get -o jsonpath=TEMPLATE`` prints it."""
    return "".join(" ".join(value_text(v) for v in values) for values in find_results(data, parse_template(template)))


def evaluate(obj: Any, path: str) -> list[Any]:
    """All values a printer-column ``path`` (``.a.b``, with or without braces) selects in ``obj``.

    As in Kubernetes' table convertor, a path that cannot be applied yields no values."""
    try:
        nodes = column_template(path)
        return [v for values in find_results(obj, nodes) for v in values]
    except JSONPathError:
        return []


@functools.lru_cache(maxsize=256)  # immutable results, as parse_template's
def column_template(path: str) -> tuple[Node, ...]:
    """A printer-column ``path`` (``.a.b``, with or without braces) parsed; raises
    ``JSONPathError`` when it does not parse (``kubectl get --sort-by`` and
    ``-o custom-columns`` take their paths the same way)."""
    text = path.strip()
    if not (text.startswith("{") and text.endswith("}")):
        text = "{" + text + "}"  # as Kubernetes wraps a column's path
    return parse_template(text)
