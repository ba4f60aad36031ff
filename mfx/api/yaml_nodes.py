"""YAML nodes to JSON values under the rules of a manifest, with every field's position.

The full reading of ``mfx.api.yaml_loader``: composed by PyYAML (libyaml when present) and
built here node by node, so that each key and list item keeps its line and column and each
problem is named where it is: duplicate keys, aliases that expand too often or contain
themselves, merge keys that do not merge mappings, keys that are not strings, non-JSON tags,
non-finite numbers, integers outside 64 bits, lone surrogates, nesting beyond ``MAX_DEPTH``.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

from mfx.api.field_paths import join_index, join_key
from mfx.api.json_values import MAX_DEPTH, depth_problem, number_problem, text_problem
from mfx.errors import FieldError, ValidationError

MAX_ALIAS_EXPANSIONS = 100

_SAFE_LOADER: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_STR = "tag:yaml.org,2002:str"
_PLAIN_TAGS = {
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"



class NodeProblem(Exception):
    def __init__(self, node: yaml.Node, message: str, path: str = "") -> None:
        super().__init__(message)
        self.node = node
        self.message = message
        self.path = path


class ValueBuilder:
    """Turns one document's node graph into JSON values plus a path -> position table."""

    def __init__(self, constructor: Any) -> None:
        self._constructor = constructor
        self._seen: set[int] = set()
        self._stack: set[int] = set()
        self.expansions = 0

    def build(self, node: yaml.Node, path: str, positions: dict[str, tuple[int, int]], depth: int = 0) -> Any:
        positions.setdefault(path, position(node))
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if depth >= MAX_DEPTH:  # counted while building, so nesting through aliases counts too
            raise NodeProblem(node, depth_problem(), path)
        ident = id(node)
        if ident in self._stack:
            raise NodeProblem(node, "recursive YAML alias: a collection contains itself", path)
        if ident in self._seen:
            self.expansions += 1
            if self.expansions > MAX_ALIAS_EXPANSIONS:
                raise NodeProblem(
                    node,
                    f"the document expands YAML aliases more than {MAX_ALIAS_EXPANSIONS} times "
                    "(an alias bomb?): write the repeated values out instead of using *aliases",
                    path,
                )
        self._seen.add(ident)
        self._stack.add(ident)
        try:
            if isinstance(node, yaml.SequenceNode):
                return [
                    self.build(child, join_index(path, i), positions, depth + 1)
                    for i, child in enumerate(node.value)
                ]
            assert isinstance(node, yaml.MappingNode)
            return self._mapping(node, path, positions, depth)
        finally:
            self._stack.discard(ident)

    def _mapping(self, node: yaml.MappingNode, path: str, positions: dict[str, tuple[int, int]],
                 depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merged: list[yaml.MappingNode] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for source in sources:
                    if not isinstance(source, yaml.MappingNode):
                        raise NodeProblem(source, "a merge key (<<) needs a mapping or a list of mappings", path)
                    merged.append(source)
                continue
            key = self._scalar(key_node, path) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                raise NodeProblem(key_node, "keys must be strings (quote the key)", path)
            child = join_key(path, key)
            if key in result:
                raise NodeProblem(key_node, f'duplicate key "{key}" (the first is on line {positions[child][0]})', child)
            positions[child] = position(key_node)
            result[key] = self.build(value_node, child, positions, depth + 1)
        for source in merged:
            extra = self.build(source, path, {}, depth)
            for key, value in extra.items():
                result.setdefault(key, value)
        return result

    def _scalar(self, node: yaml.ScalarNode, path: str) -> Any:
        if node.tag == _STR or node.tag == _TIMESTAMP:
            problem = text_problem(node.value)
            if problem is not None:
                raise NodeProblem(node, problem, path)
            return node.value  # timestamps stay text, as in JSON and Kubernetes
        if node.tag in _PLAIN_TAGS:
            value = self._constructor.construct_object(node, deep=True)
            if isinstance(value, float) and not math.isfinite(value):
                raise NodeProblem(node, f'"{node.value}" is not a JSON number: use a finite number or quote it', path)
            if isinstance(value, int) and not isinstance(value, bool):
                problem = number_problem(value)
                if problem is not None:
                    raise NodeProblem(node, problem, path)
            return value
        raise NodeProblem(node, f"unsupported YAML tag {node.tag}: manifests hold only JSON values", path)


def position(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def compose(text: str) -> list[yaml.Node | None]:
    loader = _SAFE_LOADER(text)
    try:
        nodes: list[yaml.Node | None] = []
        while loader.check_node():
            nodes.append(loader.get_node())
        return nodes
    finally:
        loader.dispose()


def syntax_error(exc: yaml.MarkedYAMLError, filename: str) -> ValidationError:
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
