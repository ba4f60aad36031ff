"""What string fields mean beyond their schema: versions, constraints, durations, quantities, names, networks.

Each format knows how to check a value and what to suggest instead, and ``check_formats``
runs the formats of one kind's fields over an object.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mfx.api.field_paths import join_index, join_key
from mfx.api.field_problems import FieldProblems
from mfx.api.names import dns1123_subdomain_problem, label_value_problem
from mfx.api.objects import Obj
from mfx.api.semver import Constraint, version_problem
from mfx.api.units import DURATION_EXAMPLES, parse_cpu_millis, parse_duration, parse_memory_bytes

# Durations per kind, by path under spec.
DURATION_FIELDS: dict[str, tuple[str, ...]] = {
    "PluginManifest": (
        "resources.limits.timeout", "healthCheck.interval", "healthCheck.timeout",
        "restartPolicy.backoff.initial", "restartPolicy.backoff.max",
        "restartPolicy.startLimit.interval", "circuitBreaker.openDuration",
    ),
    "GitSource": ("interval", "timeout"),
}
MEMORY_FIELDS = ("resources.limits.memory", "resources.limits.maxMessageSize")
CPU_FIELDS = ("resources.limits.cpu",)


@dataclass(frozen=True)
class Format:
    """What a string field means beyond its schema: how to check it, and what to suggest.

    Every suggestion in a message is checked against the same ``check`` before it is made,
    so following a hint never leads to the next error.
    """

    check: Callable[[Any], str | None]  # why a value is wrong, or None
    example: str  # a value that passes, offered when nothing closer to the input does
    readings: Callable[[str], tuple[str, ...]] = lambda text: (text,)  # what a bare value meant
    integers: bool = False  # an int-or-string field: integers are checked too


def _parse_problem(parse: Callable[[str], object]) -> Callable[[Any], str | None]:
    """A check that tells why ``parse`` refuses a value (its ValueError's message), or None."""
    def problem(value: Any) -> str | None:
        try:
            parse(value)
        except ValueError as exc:
            return str(exc)
        return None
    return problem


def _version_readings(text: str) -> tuple[str, ...]:
    # version: 1 or 1.2 is a number in YAML; as a version it means 1.0.0 or 1.2.0.
    parts = text.split(".")
    return (text, ".".join(parts + ["0"] * (3 - len(parts)))) if len(parts) < 3 else (text,)


def duration_problem(value: Any) -> str | None:
    """Why ``value`` is not a positive duration, or None."""
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        return str(exc)
    if seconds <= 0:
        return f'"{value}" must be a positive duration (examples: {DURATION_EXAMPLES})'
    return None


def _quantity_problem(parse: Callable[[Any], int], example: str) -> Callable[[Any], str | None]:
    def problem(value: Any) -> str | None:
        try:
            amount = parse(value)
        except ValueError as exc:
            return str(exc)
        return f'"{value}" must be more than zero (e.g. "{example}")' if amount <= 0 else None
    return problem


def _name_problem(value: Any) -> str | None:
    return dns1123_subdomain_problem(value) if isinstance(value, str) else "must be a string"


_HOST_PORT = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(?P<port>[0-9]{1,5})")
_NETWORK_EXAMPLES = "a CIDR, an address or host:port (examples: 10.0.0.0/8, fd00::/8, 192.168.1.7, example.com:443)"


def network_problem(text: str) -> str | None:
    """Why ``text`` is not an allowed network (a CIDR, an address or host:port), or None."""
    if "/" in text:
        try:
            ipaddress.ip_network(text, strict=True)
        except ValueError:
            try:
                network = ipaddress.ip_network(text, strict=False)
            except ValueError:
                return f'"{text}" is not a CIDR: use {_NETWORK_EXAMPLES}'
            return f'"{text}" has bits set after the prefix: the network is "{network}"'
        return None
    m = _HOST_PORT.fullmatch(text)
    if m is None:
        try:
            ipaddress.ip_address(text)
        except ValueError:
            return f'"{text}" is not a network: use {_NETWORK_EXAMPLES}'
        return None
    host, port = m["host"], int(m["port"])
    if not 1 <= port <= 65535:
        return f'"{text}": port {port} is out of range (1 to 65535)'
    try:
        ipaddress.ip_address(host[1:-1] if host.startswith("[") else host)
    except ValueError:
        if host.startswith("[") or dns1123_subdomain_problem(host.lower()) is not None:
            return f'"{text}": "{host}" is neither an address nor a host name: use {_NETWORK_EXAMPLES}'
    return None


def _network_format_problem(value: Any) -> str | None:
    return network_problem(value) if isinstance(value, str) else "must be a string"


VERSION_FORMAT = Format(version_problem, "1.0.0", _version_readings)
CONSTRAINT_FORMAT = Format(_parse_problem(Constraint.parse), "^1.0")
DURATION_FORMAT = Format(duration_problem, "10s", lambda text: (text, text + "s"))
MEMORY_FORMAT = Format(_quantity_problem(parse_memory_bytes, "256Mi"), "256Mi", integers=True)
CPU_FORMAT = Format(_quantity_problem(parse_cpu_millis, "500m"), "500m", integers=True)
NAME_FORMAT = Format(_name_problem, "codec-flac")
NETWORK_FORMAT = Format(_network_format_problem, "10.0.0.0/8")
LABEL_VALUE_FORMAT = Format(label_value_problem, "v1")

# Formats by field path, "[]" standing for every item of a list.
_FORMATS: dict[str, dict[str, Format]] = {
    "PluginManifest": {
        "spec.version": VERSION_FORMAT,
        "spec.dependencies[].name": NAME_FORMAT,
        "spec.dependencies[].version": CONSTRAINT_FORMAT,
        **{"spec." + dotted: DURATION_FORMAT for dotted in DURATION_FIELDS["PluginManifest"]},
        **{"spec." + dotted: MEMORY_FORMAT for dotted in MEMORY_FIELDS},
        **{"spec." + dotted: CPU_FORMAT for dotted in CPU_FIELDS},
        "spec.security.allowedNetworks[]": NETWORK_FORMAT,
    },
    "AudioSink": {},
    "Node": {},
    "Lease": {},
    "GitSource": {
        **{"spec." + dotted: DURATION_FORMAT for dotted in DURATION_FIELDS["GitSource"]},
        "spec.dependsOn[].name": NAME_FORMAT,
    },
}
_INDEX = re.compile(r"\[[0-9]+\]")


def format_of(kind: str | None, path: str) -> Format | None:
    """The format of the field at ``path`` of an object of ``kind``, or None."""
    if path == "metadata.name":
        return NAME_FORMAT
    return _FORMATS.get(kind or "", {}).get(_INDEX.sub("[]", path))


@dataclass(frozen=True)
class _Node:
    """A trie of the patterns of one kind: patterns sharing a prefix walk it once."""

    formats: tuple[tuple[int, Format], ...]  # (pattern order, format) of the value reached here
    children: dict[tuple[str, bool], _Node]  # (key, whether every item of a list goes on)
    # ``children`` by key: a map with fewer fields than the node has children is walked by its
    # own fields (a spec sets few of the many fields that have formats).
    by_key: dict[str, tuple[tuple[bool, _Node], ...]]


def _trie(patterns: list[tuple[tuple[tuple[str, bool], ...], int, Format]]) -> _Node:
    here = tuple((order, fmt) for steps, order, fmt in patterns if not steps)
    below: dict[tuple[str, bool], list[tuple[tuple[tuple[str, bool], ...], int, Format]]] = {}
    for steps, order, fmt in patterns:
        if steps:
            below.setdefault(steps[0], []).append((steps[1:], order, fmt))
    children = {step: _trie(rest) for step, rest in below.items()}
    by_key: dict[str, tuple[tuple[bool, _Node], ...]] = {}
    for (key, listed), child in children.items():
        by_key[key] = (*by_key.get(key, ()), (listed, child))
    return _Node(here, children, by_key)


def _steps(pattern: str) -> tuple[tuple[str, bool], ...]:
    return tuple((head.removesuffix("[]"), head.endswith("[]")) for head in pattern.split("."))


# Built once: every write checks every pattern of its kind, and most stop at a missing key.
_TRIES: dict[str, _Node] = {
    kind: _trie([(_steps(pattern), order, fmt) for order, (pattern, fmt) in enumerate(formats.items())])
    for kind, formats in _FORMATS.items()
}


def _values_at(value: Any, node: _Node, at: tuple[str | int, ...],
               found: list[tuple[int, tuple[str | int, ...], Any, Format]]) -> None:
    """Every value a pattern of the trie names, with its pattern's order, its steps and format."""
    for order, fmt in node.formats:
        found.append((order, at, value, fmt))
    if not isinstance(value, dict) or not node.children:
        return
    if len(value) < len(node.children):
        by_key = node.by_key
        for key, child in value.items():
            steps = by_key.get(key)
            if steps is not None and child is not None:
                for listed, child_node in steps:
                    _visit(child, key, listed, child_node, at, found)
        return
    for (key, listed), child_node in node.children.items():
        child = value.get(key)
        if child is not None:
            _visit(child, key, listed, child_node, at, found)


def _visit(child: Any, key: str, listed: bool, node: _Node, at: tuple[str | int, ...],
           found: list[tuple[int, tuple[str | int, ...], Any, Format]]) -> None:
    if not listed:
        _values_at(child, node, (*at, key), found)
    elif isinstance(child, list):
        for i, item in enumerate(child):
            _values_at(item, node, (*at, key, i), found)


def _spelled(at: tuple[str | int, ...]) -> str:
    path = ""
    for step in at:
        path = join_index(path, step) if isinstance(step, int) else join_key(path, step)
    return path


def check_formats(kind: str, obj: Obj, errors: FieldProblems) -> None:
    """Each formatted field that has the right type (type errors are reported already)."""
    found: list[tuple[int, tuple[str | int, ...], Any, Format]] = []
    _values_at(obj, _TRIES[kind], (), found)
    found.sort(key=lambda hit: hit[0])  # reported in the order the patterns are listed
    for _, at, value, fmt in found:
        if type(value) is str:
            problem = _text_problem(fmt.check, value)
        elif isinstance(value, str) or (fmt.integers and type(value) is int):
            problem = fmt.check(value)
        else:
            continue
        if problem is not None:
            errors.add(_spelled(at), problem)


@functools.lru_cache(maxsize=4096)
def _text_problem(check: Callable[[Any], str | None], value: str) -> str | None:
    """``check(value)``, once per text: the same versions and durations come with object after object."""
    return check(value)
