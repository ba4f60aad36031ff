"""The line-by-line reading of plain manifests agrees with the full one on every text it takes,
and leaves every other text to the other readings."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mfx.api.yaml_loader import _read_fully, load_manifests
from mfx.api.yaml_plain import PlainReader, plain_documents
from mfx.errors import ValidationError
from tests.test_yaml_quick import SCALARS, same_reading


def agrees(text: str) -> list[object] | None:
    """What the plain reading makes of ``text``, checked against PyYAML's safe loader."""
    documents = plain_documents(text)
    if documents is not None:
        assert documents == list(yaml.safe_load_all(text)), text
        assert [repr(d) for d in documents] == [repr(d) for d in yaml.safe_load_all(text)], text
    same_reading(text)
    return documents


MANIFEST = """\
# a comment before the document
apiVersion: mfx.musicfox.io/v1alpha1
kind: PluginManifest
metadata:
  name: lyrics
  labels:
    app.kubernetes.io/name: lyrics{trailing}
    tier: "2"
  annotations:
    note: 'a note'
spec:
  version: 1.0.0
  type: rpc
  entryPoint: python -m lyrics
  suspend: true
  replicas: 3
  ratio: 0.5
  nothing:
  empty: ""
  tags:
  - one
  - two
  dependencies:
    - name: cache
      version: ">=1.0"

    - name: db
      optional: false
""".format(trailing="   ")  # spaces after a value are not part of it


def test_a_plain_manifest_is_read_line_by_line() -> None:
    documents = agrees(MANIFEST)
    assert documents is not None
    spec = documents[0]["spec"]  # type: ignore[index]
    assert spec["tags"] == ["one", "two"]
    assert spec["dependencies"] == [{"name": "cache", "version": ">=1.0"}, {"name": "db", "optional": False}]
    assert spec["nothing"] is None and spec["replicas"] == 3 and documents[0]["metadata"]["labels"]["tier"] == "2"  # type: ignore[index]


@pytest.mark.parametrize("text", [
    "",
    "# only a comment\n",
    "---\n",
    "a: 1\n---\n",
    "---\na: 1\n---\n# nothing\n---\nb: 2\n",
    "a:\n- 1\n- x\nb: c\n",
    "a:\n  - b: 1\n    c:\n      d: e\n  - f\n",
    "-  a: 1\n   b: 2\n",
    "a: b:c\nd: e#f\ng: x, y\n",
])
def test_documents_and_lists_are_split_as_yaml_splits_them(text: str) -> None:
    agrees(text)


@pytest.mark.parametrize("text", [
    "a: 1\na: 2\n",  # a duplicate key
    "a: 1 # a comment after a value\n",
    "a: {b: 1}\n", "a: [1]\n", "a: |\n  x\n", "a: >\n  x\n", "a: !!str 1\n", "a: &x 1\nb: *x\n",
    "a: \"x\\ty\"\n", "a: 'it''s'\n", "a: \"x\n  y\"\n",  # escapes, quotes in quotes, lines
    "a: b\n  c\n", "a:\n  b\n", "a: b: c\n", "a:\n  - b\n  c: d\n", "a: 1\n  b: 2\n", "a:\n    b: 1\n  c: 2\n",
    "- a\n- b\n", "a:\n- - b\n", "a:\n-\n  b: 1\n", "  a: 1\n", "on: 1\n", "1: a\n", "null: a\n",
    "2001-12-14: a\n", "a b: 1\n", "a:b\n", "--- a: 1\n", "a: 1\n...\n", "%YAML 1.1\n---\na: 1\n",
    "a:\tb\n", "a: b\r\n", "a: é\n", "a: -\n", "a: - b\n", "a: ?b\n", "a: :b\n", "a: x:\n", "a: @b\n",
    "a: 0x1F\n", "a: 1_000\n", "a: .inf\n", "a: 9223372036854775808\n", "a: =\n", "<<: {}\n",
])
def test_what_it_leaves_to_the_other_readings(text: str) -> None:
    assert plain_documents(text) is None
    try:
        same_reading(text)
    except yaml.YAMLError:
        pass  # not YAML at all (the full reading says so)


@pytest.mark.parametrize("scalar", SCALARS)
def test_each_scalar_reads_as_the_full_reading_reads_it(scalar: str) -> None:
    for text in (f"spec:\n  value: {scalar}\n", f"spec:\n  list:\n  - {scalar}\n", f"spec:\n  {scalar}: 1\n"):
        try:
            full = _read_fully(text, "f.yaml")
        except (ValidationError, yaml.YAMLError):
            assert plain_documents(text) is None or load_manifests(text, "f.yaml") is not None
            continue
        documents = plain_documents(text)
        if documents is not None:
            assert [d for d in documents if d is not None] == [m.obj for m in full], text
            assert repr(documents[0]) == repr(full[0].obj), text


_WORDS = st.sampled_from(["a", "b", "name", "x.y/z", "on", "1", "null", "~", "true", "1.5", "-1", "0o7", "",
                          "'q'", '"d"', "a b", "- a", "#", "a #b", "x: y", "'", '"', "[1]", "{}", "-"])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.sampled_from(["", "- "]), _WORDS, st.sampled_from([": ", ":", ""]),
                          _WORDS), min_size=1, max_size=8))
def test_generated_block_texts_read_as_the_safe_loader_reads_them(lines: list[tuple[int, str, str, str, str]]) -> None:
    text = "".join(" " * indent + item + key + colon + value + "\n" for indent, item, key, colon, value in lines)
    try:
        expected = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        assert plain_documents(text) is None, text
        return
    documents = plain_documents(text)
    if documents is not None:
        assert repr(documents) == repr(expected), text


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 4), st.sampled_from(["", "- "]), _WORDS,
                                   st.sampled_from([": ", ":", ""]), _WORDS), min_size=1, max_size=6),
                min_size=2, max_size=5))
def test_a_reader_that_remembers_lines_reads_every_text_as_a_fresh_one(texts: list[list[tuple[int, str, str, str, str]]]) -> None:
    """The files of one apply share a reader, which reads a line it has met from memory."""
    reader = PlainReader()
    for lines in texts:
        text = "".join(" " * indent + item + key + colon + value + "\n" for indent, item, key, colon, value in lines)
        assert repr(reader.documents(text)) == repr(plain_documents(text)), text
        assert repr(reader.documents(text)) == repr(plain_documents(text)), text  # read again, all from memory
