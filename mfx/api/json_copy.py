"""Copies of JSON values that share nothing with the original, at JSON-codec speed.

``copy.deepcopy`` walks an object in Python, keeping a memo of everything it copied: for the
small documents of the API it costs more than validating them. A JSON round trip through
orjson copies the same tree in C. Values JSON cannot hold (tuples, integers beyond 64 bits,
objects a caller put in by hand) are copied by ``deepcopy`` as before.
"""

from __future__ import annotations

import copy
from typing import TypeVar

import orjson

T = TypeVar("T")


def json_copy(value: T) -> T:
    try:
        copied: T = orjson.loads(orjson.dumps(value))
    except TypeError:
        return copy.deepcopy(value)
    # A round trip turns tuples into lists and non-string keys into errors: only a value that
    # came back as the same type is the same value.
    return copied if type(copied) is type(value) else copy.deepcopy(value)
