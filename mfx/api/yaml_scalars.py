"""What a plain YAML scalar means: its YAML 1.1 type, as ``yaml.SafeLoader`` resolves it, and the
JSON value the quick readings make of it (``mfx.api.yaml_plain``, ``mfx.api.yaml_quick``).

The table of implicit types is PyYAML's own (``yaml.resolver.Resolver``), written out here so
that reading the plainest manifests loads no part of PyYAML: importing it costs a new ``mfx
apply`` process more than reading a directory's lines. A test holds the two equal.
"""

from __future__ import annotations

import math
import re

from mfx.api.json_values import text_problem

TYPE_CHECKING = False  # not typing's: see mfx.errors
if TYPE_CHECKING:
    from typing import Any

STR_TAG = "tag:yaml.org,2002:str"
BOOL_TAG = "tag:yaml.org,2002:bool"
NULL_TAG = "tag:yaml.org,2002:null"
INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"

_BOOL = re.compile(r'''^(?:yes|Yes|YES|no|No|NO
                    |true|True|TRUE|false|False|FALSE
                    |on|On|ON|off|Off|OFF)$''', re.X)
_FLOAT = re.compile(r'''^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
                    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
                    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$''', re.X)
_INT = re.compile(r'''^(?:[-+]?0b[0-1_]+
                    |[-+]?0[0-7_]+
                    |[-+]?(?:0|[1-9][0-9_]*)
                    |[-+]?0x[0-9a-fA-F_]+
                    |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$''', re.X)
_MERGE = re.compile(r'^(?:<<)$')
_NULL = re.compile(r'''^(?: ~
                    |null|Null|NULL
                    | )$''', re.X)
_TIMESTAMP = re.compile(r'''^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
                    |[0-9][0-9][0-9][0-9] -[0-9][0-9]? -[0-9][0-9]?
                     (?:[Tt]|[ \t]+)[0-9][0-9]?
                     :[0-9][0-9] :[0-9][0-9] (?:\.[0-9]*)?
                     (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$''', re.X)
_VALUE = re.compile(r'^(?:=)$')
_YAML = re.compile(r'^(?:!|&|\*)$')

Resolvers = tuple[tuple[str, re.Pattern[str]], ...]


def _table() -> dict[str, Resolvers]:
    """The resolvers by a scalar's first character, in PyYAML's order of adding them."""
    table: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
    for tag, regexp, first in (
        (BOOL_TAG, _BOOL, "yYnNtTfFoO"), (FLOAT_TAG, _FLOAT, "-+0123456789."), (INT_TAG, _INT, "-+0123456789"),
        ("tag:yaml.org,2002:merge", _MERGE, "<"), (NULL_TAG, _NULL, ["~", "n", "N", ""]),
        (TIMESTAMP_TAG, _TIMESTAMP, "0123456789"), ("tag:yaml.org,2002:value", _VALUE, "="),
        ("tag:yaml.org,2002:yaml", _YAML, "!&*"),
    ):
        for char in first:
            table.setdefault(char, []).append((tag, regexp))
    return {char: tuple(resolvers) for char, resolvers in table.items()}


RESOLVERS: dict[str, Resolvers] = _table()
# A plain scalar starting with any other character is text: no resolver takes it.
MAY_RESOLVE = frozenset(RESOLVERS)

# What ``SafeConstructor`` makes of a bool scalar (``construct_yaml_bool`` lowers it first).
_BOOLS = {"yes": True, "no": False, "true": True, "false": False, "on": True, "off": False}
# Decimal integers that int() reads as YAML 1.1 does (no sign "+", no leading zero, which
# would be octal, no "_" or ":") and that fit in 64 bits by their length alone.
_PLAIN_INT = re.compile(r"-?[1-9][0-9]{0,17}|0")
# Floats that float() reads as ``construct_yaml_float`` does (no "_", ":", ".inf", ".nan").
_PLAIN_FLOAT = re.compile(r"[-+]?[0-9]+\.[0-9]*(?:[eE][-+][0-9]+)?")


class GiveUp(Exception):
    """The text holds something the full reading must handle."""


def implicit_tag(value: str) -> str:
    """The tag ``yaml.SafeLoader`` resolves a plain scalar of this text to."""
    for tag, regexp in RESOLVERS.get(value[:1], ()):
        if regexp.match(value):
            return tag
    return STR_TAG


def plain_scalar_value(text: str) -> Any:
    """The value of a plain (unquoted, untagged) scalar; raises ``GiveUp`` for one the full
    reading must judge."""
    return scalar_value(implicit_tag(text), text)


def scalar_value(tag: str, text: str) -> Any:
    """The JSON value of a scalar of ``tag``; raises ``GiveUp`` for one the full reading must judge."""
    if tag == STR_TAG or tag == TIMESTAMP_TAG:  # timestamps stay text, as in JSON
        if text.isascii() or text_problem(text) is None:
            return text
    elif tag == BOOL_TAG:
        value = _BOOLS.get(text.lower())
        if value is not None:  # else an explicit !!bool on other text
            return value
    elif tag == NULL_TAG:
        return None
    elif tag == INT_TAG:
        if _PLAIN_INT.fullmatch(text):
            return int(text)
    elif tag == FLOAT_TAG and _PLAIN_FLOAT.fullmatch(text):
        number = float(text)
        if math.isfinite(number):
            return number
    raise GiveUp
