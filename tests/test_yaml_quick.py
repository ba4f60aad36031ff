"""The quick reading of manifests agrees with the full one: same values, same positions, and
whatever it does not handle left to the full reading (which names the problem)."""

from __future__ import annotations

import json

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mfx.api import yaml_quick
from mfx.api.yaml_loader import _compose_text, _read_fully, load_body, load_manifests
from mfx.api.yaml_quick import quick_documents
from mfx.errors import MfxError, ValidationError

# Plain scalars of every implicit type YAML 1.1 resolves, and near misses of each.
SCALARS = [
    "", "~", "null", "Null", "NULL", "nULL", "yes", "Yes", "YES", "yEs", "no", "No", "on", "On", "OFF",
    "off", "y", "n", "true", "True", "TRUE", "tRUE", "false", "False", "0", "-0", "+0", "7", "-7", "+7",
    "007", "0o7", "0x1F", "0b101", "1_000", "1:20", "-1:20:30", "9223372036854775807",
    "9223372036854775808", "-9223372036854775809", "123456789012345678", "1234567890123456789",
    "1.5", "-1.5", "+1.5", "1.", ".5", "1.5e+3", "1.5e3", "1e3", "1.0e+999", "1_0.5", "1:20.5", ".inf",
    "-.inf", ".NaN", ".nan", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5",
    "<<", "=", "a b", "python -m x", "1.0.0", ">=1.2", "é", "日本", "'quoted'", '"double"', "'yes'", '"1"',
    "!!str 1", "!!int 1", "!!float 1", "!!binary aGk=", "!!timestamp 2001-12-14", "!custom x", '!!int "5"',
    '!!int "0x1F"', "!!null x", "!!timestamp soon", "!!bool Yes", '!!float "1.5"', "!!str yes",
]


def same_reading(text: str) -> None:
    try:
        full = _read_fully(text, "f.yaml")
    except ValidationError as refused:  # the quick reading must leave it to the full one
        with pytest.raises(ValidationError) as quick_refused:
            load_manifests(text, "f.yaml")
        assert quick_refused.value.errors == refused.errors
        return
    documents = quick_documents(text)
    if documents is not None and not any(m.item is not None for m in full):
        assert [d for d in documents if d is not None] == [m.obj for m in full], text
    quick = load_manifests(text, "f.yaml")
    assert [m.obj for m in quick] == [m.obj for m in full]
    assert [repr(m.obj) for m in quick] == [repr(m.obj) for m in full]  # 1 and 1.0 and True differ
    assert [m.positions for m in quick] == [m.positions for m in full], text


@pytest.mark.parametrize("scalar", SCALARS)
def test_each_scalar_reads_as_the_full_reading_reads_it(scalar: str) -> None:
    same_reading(f"kind: PluginManifest\nmetadata:\n  name: x\nspec:\n  value: {scalar}\n  list: [{scalar}]\n")


@pytest.mark.parametrize("scalar", SCALARS)
def test_each_scalar_as_a_key(scalar: str) -> None:
    same_reading(f"kind: PluginManifest\nspec:\n  {scalar}: 1\n")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789+-._:eEoxbytrunlfaTFNY~<= "), min_size=1, max_size=12))
def test_generated_scalars_read_as_the_full_reading_reads_them(scalar: str) -> None:
    text = f"spec:\n  value: {scalar}\n"
    try:
        _compose_text(text, "f.yaml")
    except Exception:
        return  # not YAML at all: both refuse it
    same_reading(text)


@pytest.mark.parametrize("text", [
    "a: 1\na: 2\n",  # duplicate key
    "a: &x {b: 1}\nc: *x\n",  # alias
    "a: {b: 1}\nc:\n  <<: {d: 2}\n",  # merge key
    "- 1\n- 2\n",  # a document that is not a mapping
    "kind: List\nitems: [1]\n",  # a List item that is not a mapping
    "kind: List\nitems: {}\n",
    "a: \"\\ud800\"\n",  # a lone surrogate
    "{\"a\":\t1}\n",  # JSON with a tab
    "a: [" * 101 + "]" * 101 + "\n",  # deeper than allowed
    "a: 1\n---\n---\nb: [1, 2]\n",
])
def test_what_the_quick_reading_leaves_to_the_full_one(text: str) -> None:
    same_reading(text)


def test_a_list_documents_items_know_their_own_positions() -> None:
    text = "kind: List\nitems:\n- kind: PluginManifest\n  metadata:\n    name: a\n- kind: PluginManifest\n" \
           "  metadata:\n    name: b\n"
    first, second = load_manifests(text, "f.yaml")
    assert second.line_of("metadata.name") == 8
    assert first.line_of("metadata.name") == 5
    assert second.line_of("spec.version") == 6  # not in the file: its nearest ancestor, the item


def _tags(node: yaml.Node) -> list[tuple[str, str]]:
    if isinstance(node, yaml.ScalarNode):
        return [(node.value, node.tag)]
    children = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else node.value
    return [("", node.tag), *(tag for child in children for tag in _tags(child))]


@pytest.mark.skipif(yaml_quick._COMPOSER is None, reason="PyYAML without libyaml")
@pytest.mark.parametrize("scalar", [s for s in SCALARS if not s.startswith(">")])  # ">": a folded block
def test_tags_are_those_of_the_safe_loader(scalar: str) -> None:
    text = f"- {scalar}\n- {scalar}: [{scalar}]\n- k:\n    {scalar}: {scalar}\n"
    try:
        safe = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        text = f"- {scalar}\n- [{scalar}]\n"
        safe = yaml.compose(text, Loader=yaml.SafeLoader)
    composer = yaml_quick._COMPOSER(text)
    try:
        assert _tags(composer.get_single_node()) == _tags(safe)
    finally:
        composer.dispose()


@pytest.mark.parametrize("body", [
    b'{"a":1,"a":2}',  # compact, as mfx sends, yet one key twice
    b'{"a":' + b"[" * 101 + b"]" * 101 + b"}",
    b'{"a":9223372036854775808}',
    b'{"a":"\\ud800"}',
    b'{"a":1.0e999}',
])
def test_a_compact_json_body_is_held_to_the_same_rules(body: bytes) -> None:
    with pytest.raises(MfxError) as compact:
        load_body(body)
    with pytest.raises(MfxError) as spaced:
        load_body(body.replace(b":", b": "))
    assert str(compact.value) == str(spaced.value)


def test_a_compact_json_body_reads_as_the_strict_reading_reads_it() -> None:
    body = b'{"apiVersion":"v1","kind":"List","items":[{"a":[1,2.5,true,null,"\xc3\xa9"]}]}'
    assert load_body(body) == load_body(body.replace(b",", b", ")) == json.loads(body)


def test_the_implicit_types_written_out_are_pyyamls() -> None:
    # The plain reading resolves scalars without importing PyYAML; what it resolves them with
    # must be the safe loader's own table, first characters, order and flags included.
    from yaml.resolver import Resolver

    from mfx.api.yaml_scalars import RESOLVERS

    theirs = {first: [(tag, regexp.pattern, regexp.flags) for tag, regexp in resolvers]
              for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    ours = {first: [(tag, regexp.pattern, regexp.flags) for tag, regexp in resolvers]
            for first, resolvers in RESOLVERS.items()}
    assert None not in theirs  # no resolver for every first character: the rest is text
    assert ours == theirs
    assert Resolver.yaml_implicit_resolvers.keys() == theirs.keys()
