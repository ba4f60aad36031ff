"""Reading manifests: YAML (or JSON) text to objects that remember the line of every field.

The loader composes PyYAML nodes itself instead of calling ``safe_load`` so that every key
and list item keeps its position, and so that the YAML features a manifest never needs are
refused with a clear message instead of doing harm:

- files over ``MAX_FILE_BYTES`` (1 MiB) are refused before parsing;
- aliases (``*name``) are allowed, but a document may expand collections through aliases at
  most ``MAX_ALIAS_EXPANSIONS`` times, which stops "billion laughs" alias bombs at once while
  leaving the ordinary use (a shared block used a few times) working; recursive aliases are
  refused;
- duplicate keys are an error (PyYAML silently keeps the last one; Kubernetes refuses them);
- timestamps stay strings, as in JSON; other non-JSON types (binary, sets, ``.inf``) are
  refused.

A document of ``kind: List`` (or ``<Kind>List``) with ``items`` expands into its items, as
kubectl does. JSON is read as YAML; tabs, which YAML does not allow as indentation but JSON
does, are accepted in JSON input.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from mfx.api.kinds import USER_KINDS
from mfx.api.objects import Obj
from mfx.errors import FieldError, ValidationError

MAX_FILE_BYTES = 1024 * 1024
MAX_ALIAS_EXPANSIONS = 100

_SafeLoader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")
_LAST_SEGMENT = re.compile(r'(\[(?:\d+|"(?:[^"\\]|\\.)*")\]|\.[^.\[\]]*)$')

_STR = "tag:yaml.org,2002:str"
_PLAIN_TAGS = {
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"


def join_key(parent: str, key: str) -> str:
    """The field path of ``key`` under ``parent``: ``spec.version``, ``labels["a.b/c"]``."""
    if _IDENTIFIER.match(key):
        return f"{parent}.{key}" if parent else key
    quoted = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'{parent}["{quoted}"]'


def join_index(parent: str, index: int) -> str:
    return f"{parent}[{index}]"


def parent_path(path: str) -> str | None:
    """``spec.dependencies[0].name`` -> ``spec.dependencies[0]``; None above the root."""
    if not path:
        return None
    m = _LAST_SEGMENT.search(path)
    return "" if m is None else path[: m.start()]


@dataclass
class Manifest:
    """One object read from a file, with the position of each of its fields."""

    obj: Obj
    file: str
    document: int  # 0-based index of the YAML document in the file
    item: int | None = None  # index in the items of a List document
    positions: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)

    def position_of(self, path: str) -> tuple[int, int] | None:
        """1-based (line, column) of the field, or of its nearest ancestor present in the file."""
        current: str | None = path
        while current is not None:
            if current in self.positions:
                return self.positions[current]
            current = parent_path(current)
        return None

    def line_of(self, path: str) -> int | None:
        pos = self.position_of(path)
        return pos[0] if pos else None

    def field_error(self, path: str, message: str) -> FieldError:
        return FieldError(
            path=path, message=message, file=self.file, line=self.line_of(path), document=self.document
        )


class _Problem(Exception):
    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


class _Builder:
    """Turns one document's node graph into JSON values plus a path -> position table."""

    def __init__(self, constructor: Any) -> None:
        self._constructor = constructor
        self._seen: set[int] = set()
        self._stack: set[int] = set()
        self.expansions = 0

    def build(self, node: yaml.Node, path: str, positions: dict[str, tuple[int, int]]) -> Any:
        positions.setdefault(path, _position(node))
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node)
        ident = id(node)
        if ident in self._stack:
            raise _Problem(node, "recursive YAML alias: a collection contains itself")
        if ident in self._seen:
            self.expansions += 1
            if self.expansions > MAX_ALIAS_EXPANSIONS:
                raise _Problem(
                    node,
                    f"the document expands YAML aliases more than {MAX_ALIAS_EXPANSIONS} times "
                    "(an alias bomb?): write the repeated values out instead of using *aliases",
                )
        self._seen.add(ident)
        self._stack.add(ident)
        try:
            if isinstance(node, yaml.SequenceNode):
                return [
                    self.build(child, join_index(path, i), positions)
                    for i, child in enumerate(node.value)
                ]
            assert isinstance(node, yaml.MappingNode)
            return self._mapping(node, path, positions)
        finally:
            self._stack.discard(ident)

    def _mapping(self, node: yaml.MappingNode, path: str, positions: dict[str, tuple[int, int]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merged: list[yaml.MappingNode] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for source in sources:
                    if not isinstance(source, yaml.MappingNode):
                        raise _Problem(source, "a merge key (<<) needs a mapping or a list of mappings")
                    merged.append(source)
                continue
            key = self._scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                raise _Problem(key_node, "keys must be strings (quote the key)")
            if key in result:
                raise _Problem(key_node, f'duplicate key "{key}" (the first is on line {positions[join_key(path, key)][0]})')
            child = join_key(path, key)
            positions[child] = _position(key_node)
            result[key] = self.build(value_node, child, positions)
        for source in merged:
            extra = self.build(source, path, {})
            for key, value in extra.items():
                result.setdefault(key, value)
        return result

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag == _STR or node.tag == _TIMESTAMP:
            return node.value  # timestamps stay text, as in JSON and Kubernetes
        if node.tag in _PLAIN_TAGS:
            value = self._constructor.construct_object(node, deep=True)
            if isinstance(value, float) and not math.isfinite(value):
                raise _Problem(node, f'"{node.value}" is not a JSON number: use a finite number or quote it')
            return value
        raise _Problem(node, f"unsupported YAML tag {node.tag}: manifests hold only JSON values")


def _position(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _is_list(value: dict[str, Any]) -> bool:
    kind = value.get("kind")
    if kind == "List":
        return True
    return any(kind == info.list_kind for info in USER_KINDS) and "items" in value


def _compose(text: str) -> list[yaml.Node | None]:
    loader = _SafeLoader(text)
    try:
        nodes: list[yaml.Node | None] = []
        while loader.check_node():
            nodes.append(loader.get_node())
        return nodes
    finally:
        loader.dispose()


def load_manifests(text: str, filename: str) -> list[Manifest]:
    """Every object in a YAML or JSON text, in order; raises ``ValidationError`` on bad input.

    ``filename`` is only used in messages and in ``Manifest.file``.
    """
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_FILE_BYTES:
        raise ValidationError([FieldError(
            path="", file=filename,
            message=f"file is {size} bytes ({size / MAX_FILE_BYTES:.1f} MiB); the limit is "
            f"{MAX_FILE_BYTES} bytes (1 MiB): split it into several files",
        )])
    try:
        nodes = _compose(text)
    except yaml.MarkedYAMLError as exc:
        if text.lstrip().startswith(("{", "[")) and "\t" in text:
            # JSON allows tabs as whitespace where YAML does not; in valid JSON a literal tab
            # can only be whitespace, so replacing it keeps both meaning and positions.
            try:
                nodes = _compose(text.replace("\t", " "))
            except yaml.MarkedYAMLError:
                raise _syntax_error(exc, filename) from None
        else:
            raise _syntax_error(exc, filename) from None
    except yaml.YAMLError as exc:
        raise ValidationError([FieldError(path="", message=f"not valid YAML: {exc}", file=filename)]) from None

    constructor = yaml.SafeLoader("")
    manifests: list[Manifest] = []
    errors: list[FieldError] = []
    try:
        for index, node in enumerate(nodes):
            if node is None:
                continue
            positions: dict[str, tuple[int, int]] = {}
            try:
                value = _Builder(constructor).build(node, "", positions)
            except _Problem as problem:
                line, column = _position(problem.node)
                errors.append(FieldError(path="", message=problem.message, file=filename,
                                         line=line, column=column, document=index))
                continue
            if value is None:
                continue  # an empty document (comments only, or a lone "---")
            if not isinstance(value, dict):
                errors.append(FieldError(
                    path="", file=filename, line=positions[""][0], document=index,
                    message=f"document {index} is a {_json_type(value)}; expected a mapping with "
                    "apiVersion, kind, metadata and spec",
                ))
                continue
            if _is_list(value):
                items = value["items"]
                if not isinstance(items, list):
                    errors.append(FieldError(path="items", message="items must be a list of objects",
                                             file=filename, line=positions["items"][0], document=index))
                    continue
                for i, item in enumerate(items):
                    prefix = join_index("items", i)
                    sub = _reroot(positions, prefix)
                    if not isinstance(item, dict):
                        errors.append(FieldError(path=prefix, message=f"list item is a {_json_type(item)}; expected an object",
                                                 file=filename, line=sub[""][0], document=index))
                        continue
                    manifests.append(Manifest(item, filename, index, i, sub))
                continue
            manifests.append(Manifest(value, filename, index, None, positions))
    finally:
        constructor.dispose()
    if errors:
        raise ValidationError(errors)
    return manifests


def _reroot(positions: dict[str, tuple[int, int]], prefix: str) -> dict[str, tuple[int, int]]:
    result: dict[str, tuple[int, int]] = {}
    for path, pos in positions.items():
        if path == prefix:
            result[""] = pos
        elif path.startswith(prefix + "."):
            result[path[len(prefix) + 1:]] = pos
        elif path.startswith(prefix + "["):
            result[path[len(prefix):]] = pos
    return result


def _syntax_error(exc: yaml.MarkedYAMLError, filename: str) -> ValidationError:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "invalid YAML"
    if exc.context:
        problem = f"{problem} ({exc.context}"
        if exc.context_mark is not None and exc.context_mark is not mark:
            problem += f" at line {exc.context_mark.line + 1}"
        problem += ")"
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    return ValidationError([FieldError(path="", message=f"invalid YAML: {problem}", file=filename,
                                       line=line, column=column)])


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if value is None:
        return "null"
    return "mapping"
