"""The quick reading of a manifest: its JSON values in one pass over the C parser's nodes.

Nearly every manifest holds only mappings, lists, strings, booleans, plain integers and
nulls. Those are read here without recording any position (only an error needs one) and
without the constructor's per-scalar calls. Whatever else a text holds (an alias, a merge
key, a tag, a float, a duplicate key, a key that is not a string, deep nesting, a document
that is not a mapping ...) makes ``quick_documents`` give up with ``None``: the caller then
reads the text with the full rules of ``mfx.api.yaml_loader``, which builds the same values
or names the problem with its line. So this module never words an error; it only has to
agree with the full reading on the texts it accepts.

Tags are resolved from PyYAML's own table of implicit resolvers (YAML 1.1, as
``yaml.SafeLoader`` resolves them, in ``mfx.api.yaml_scalars``), looked up by the scalar's first
character: the generic resolver walks that table through several Python calls per scalar.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

from mfx.api.json_values import MAX_DEPTH, text_problem
from mfx.api.yaml_scalars import STR_TAG, GiveUp, implicit_tag, scalar_value

_STR = STR_TAG
_SEQ = BaseResolver.DEFAULT_SEQUENCE_TAG
_MAP = BaseResolver.DEFAULT_MAPPING_TAG


def _composer_class() -> type[Any] | None:
    """libyaml's composer with ``yaml.SafeLoader``'s tags, each resolved by one lookup."""
    if not getattr(yaml, "__with_libyaml__", False):  # only the full reading is there
        return None
    from yaml._yaml import CParser

    class Composer(CParser):
        def descend_resolver(self, current_node: Any, current_index: Any) -> None:
            """No path resolvers: nothing to follow."""

        def ascend_resolver(self) -> None:
            """No path resolvers: nothing to follow."""

        def resolve(self, kind: type[Node], value: str, implicit: tuple[bool, bool]) -> str:
            if kind is ScalarNode:
                return implicit_tag(value) if implicit[0] else _STR
            return _SEQ if kind is SequenceNode else _MAP

    return Composer


_COMPOSER = _composer_class()


def quick_documents(text: str) -> list[Any] | None:
    """The value of every document of ``text`` (None for an empty one), or None to read it fully."""
    if _COMPOSER is None or "*" in text:  # an alias may expand: the full reading counts them
        return None
    composer = _COMPOSER(text)
    try:
        documents: list[Any] = []
        while composer.check_node():
            documents.append(_value(composer.get_node(), 0))
        return documents
    except (yaml.YAMLError, GiveUp):
        return None
    finally:
        composer.dispose()


def _value(node: Node, depth: int) -> Any:
    if type(node) is ScalarNode:
        return scalar_value(node.tag, node.value)
    if depth >= MAX_DEPTH:
        raise GiveUp
    if type(node) is MappingNode:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if type(key_node) is not ScalarNode or key_node.tag != _STR:
                raise GiveUp  # a merge key, or a key that is not a string
            key = key_node.value
            if key in result or not (key.isascii() or text_problem(key) is None):
                raise GiveUp
            result[key] = _value(value_node, depth + 1)
        return result
    return [_value(child, depth + 1) for child in node.value]
