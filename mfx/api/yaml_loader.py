"""Reading manifests: YAML (or JSON) text to objects that remember the line of every field.

The loader composes PyYAML nodes itself instead of calling ``safe_load`` so that every key
and list item keeps its position, and so that the YAML features a manifest never needs are
refused with a clear message instead of doing harm (``mfx.api.yaml_nodes``). A text first
gets the line-by-line reading of ``mfx.api.yaml_plain``, then the quick reading of
``mfx.api.yaml_quick`` (values only); only one neither can take, and the positions a later
error asks for, cost the full reading:

- files over ``MAX_FILE_BYTES`` (1 MiB) are refused before parsing;
- aliases (``*name``) are allowed, but a document may expand collections through aliases at
  most ``MAX_ALIAS_EXPANSIONS`` times, which stops "billion laughs" alias bombs at once while
  leaving the ordinary use (a shared block used a few times) working; recursive aliases are
  refused;
- duplicate keys are an error (PyYAML silently keeps the last one; Kubernetes refuses them);
- timestamps stay strings, as in JSON; other non-JSON types (binary, sets, ``.inf``) are
  refused, and so are integers outside 64 bits and strings with lone UTF-16 surrogates, which
  no JSON encoder (nor a Kubernetes client) can write back;
- collections nest at most ``MAX_DEPTH`` levels deep, aliases included.

Request bodies of the API go through the same rules: ``load_body`` reads one JSON (or YAML)
value and refuses duplicate keys, non-finite numbers and deep nesting in JSON too.

A document of ``kind: List`` (or ``<Kind>List``) with ``items`` expands into its items, as
kubectl does. JSON is read as YAML; tabs, which YAML does not allow as indentation but JSON
does, are accepted in JSON input.
"""

from __future__ import annotations

import json

from mfx.api.field_paths import join_index, join_key, parent_path
from mfx.api.json_values import (
    MAX_DEPTH,
    depth_problem,
    json_type,
    json_value_problems,
    number_problem,
    text_problem,
)
from mfx.api.kinds import USER_KINDS
from mfx.api.objects import Obj
from mfx.api.yaml_plain import PlainReader
from mfx.errors import BadRequestError, FieldError, RequestEntityTooLargeError, ValidationError

# PyYAML (and the readings built on it) is imported by the readings that need it: a directory
# of plain manifests never does, and a new ``mfx apply`` process would pay for it first.
TYPE_CHECKING = False  # not typing's: see mfx.errors
if TYPE_CHECKING:
    from typing import Any

    import yaml

MAX_FILE_BYTES = 1024 * 1024


class Manifest:
    """One object read from a file, with the position of each of its fields.

    A plain class, not a dataclass: ``mfx apply`` loads it at every start (see
    ``mfx.errors.FieldError``)."""

    __slots__ = ("obj", "file", "document", "item", "_positions", "_text")
    __hash__ = None  # type: ignore[assignment]  # equal by value, and changes (its positions are cached)

    def __init__(self, obj: Obj, file: str, document: int, item: int | None = None,
                 positions: dict[str, tuple[int, int]] | None = None, text: str | None = None) -> None:
        self.obj = obj
        self.file = file
        self.document = document  # 0-based index of the YAML document in the file
        self.item = item  # index in the items of a List document
        self._positions = positions
        # The file's text, to find the positions in when first asked (only an error needs them).
        self._text = text

    def __repr__(self) -> str:
        return f"Manifest(obj={self.obj!r}, file={self.file!r}, document={self.document!r}, item={self.item!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Manifest):
            return NotImplemented
        return (self.obj, self.file, self.document, self.item) == (other.obj, other.file, other.document, other.item)

    @property
    def positions(self) -> dict[str, tuple[int, int]]:
        """1-based (line, column) of every field present in the file, by field path."""
        if self._positions is None:
            self._positions = _positions_in(self._text, self.document, self.item) if self._text else {}
        return self._positions

    def position_of(self, path: str) -> tuple[int, int] | None:
        """1-based (line, column) of the field, or of its nearest ancestor present in the file."""
        positions = self.positions
        current: str | None = path
        while current is not None:
            if current in positions:
                return positions[current]
            current = parent_path(current)
        return None

    def line_of(self, path: str) -> int | None:
        pos = self.position_of(path)
        return pos[0] if pos else None

    def field_error(self, path: str, message: str) -> FieldError:
        return FieldError(
            path=path, message=message, file=self.file, line=self.line_of(path), document=self.document
        )


def _is_list(value: dict[str, Any]) -> bool:
    kind = value.get("kind")
    if kind == "List":
        return True
    return "items" in value and any(kind == info.list_kind for info in USER_KINDS)


def decode_manifest(name: str, data: bytes) -> str:
    """The text of a manifest file, which must be UTF-8 (as YAML 1.2 and JSON require).

    Replacing what does not decode would apply something other than what the file says, so a
    file that is not UTF-8 is refused, naming the file, the line and the byte.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ValidationError([FieldError(
            path="", file=name, line=line,
            message=f"not UTF-8 text: byte {error.start} (0x{data[error.start]:02x}) does not decode; "
            "save the file as UTF-8",
        )]) from None


def load_manifests(text: str, filename: str, *, reader: PlainReader | None = None) -> list[Manifest]:
    """Every object in a YAML or JSON text, in order; raises ``ValidationError`` on bad input.

    ``filename`` is only used in messages and in ``Manifest.file``. ``reader``: the line reader
    of a caller that reads many texts (it remembers the lines they share).
    """
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_FILE_BYTES:
        raise ValidationError([FieldError(
            path="", file=filename,
            message=f"file is {size} bytes ({size / MAX_FILE_BYTES:.1f} MiB); the limit is "
            f"{MAX_FILE_BYTES} bytes (1 MiB): split it into several files",
        )])
    documents = (reader or PlainReader()).documents(text)
    if documents is None:
        from mfx.api.yaml_quick import quick_documents

        documents = quick_documents(text)
    quick = _quick_manifests(documents, text, filename) if documents is not None else None
    return quick if quick is not None else _read_fully(text, filename)


def _quick_manifests(documents: list[Any], text: str, filename: str) -> list[Manifest] | None:
    """The manifests of documents read quickly, or None when one must be reported as an error."""
    manifests: list[Manifest] = []
    for index, value in enumerate(documents):
        if value is None:
            continue
        if not isinstance(value, dict):
            return None
        if not _is_list(value):
            manifests.append(Manifest(value, filename, index, None, None, text))
            continue
        items = value["items"]
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            return None
        manifests.extend(Manifest(item, filename, index, i, None, text) for i, item in enumerate(items))
    return manifests


def _compose_text(text: str, filename: str) -> list[yaml.Node | None]:
    import yaml

    from mfx.api.yaml_nodes import compose, syntax_error

    try:
        return compose(text)
    except yaml.MarkedYAMLError as exc:
        if text.lstrip().startswith(("{", "[")) and "\t" in text:
            # JSON allows tabs as whitespace where YAML does not; in valid JSON a literal tab
            # can only be whitespace, so replacing it keeps both meaning and positions.
            try:
                return compose(text.replace("\t", " "))
            except yaml.MarkedYAMLError:
                raise syntax_error(exc, filename) from None
        raise syntax_error(exc, filename) from None
    except yaml.YAMLError as exc:
        raise ValidationError([FieldError(path="", message=f"not valid YAML: {exc}", file=filename)]) from None


def _positions_in(text: str, document: int, item: int | None) -> dict[str, tuple[int, int]]:
    """The positions of the fields of one document (or one item of a List document) of ``text``."""
    import yaml

    from mfx.api.yaml_nodes import NodeProblem, ValueBuilder

    positions: dict[str, tuple[int, int]] = {}
    node = _compose_text(text, "")[document]
    if node is not None:
        constructor = yaml.SafeLoader("")
        try:
            ValueBuilder(constructor).build(node, "", positions)
        except NodeProblem:
            pass  # not for a text read without error; what was found so far still helps
        finally:
            constructor.dispose()
    return positions if item is None else _reroot(positions, join_index("items", item))


def _read_fully(text: str, filename: str) -> list[Manifest]:
    """``load_manifests`` with every position recorded, and every problem named with its line."""
    import yaml

    from mfx.api.yaml_nodes import NodeProblem, ValueBuilder, position

    nodes = _compose_text(text, filename)
    constructor = yaml.SafeLoader("")
    manifests: list[Manifest] = []
    errors: list[FieldError] = []
    try:
        for index, node in enumerate(nodes):
            if node is None:
                continue
            positions: dict[str, tuple[int, int]] = {}
            try:
                value = ValueBuilder(constructor).build(node, "", positions)
            except NodeProblem as problem:
                line, column = position(problem.node)
                errors.append(FieldError(path=problem.path, message=problem.message, file=filename,
                                         line=line, column=column, document=index))
                continue
            if value is None:
                continue  # an empty document (comments only, or a lone "---")
            if not isinstance(value, dict):
                errors.append(FieldError(
                    path="", file=filename, line=positions[""][0], document=index,
                    message=f"document {index} is a {json_type(value)}; expected a mapping with "
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
                        errors.append(FieldError(path=prefix, message=f"list item is a {json_type(item)}; expected an object",
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


# --- request bodies -----------------------------------------------------------------------------


class _DuplicateKeys(dict):  # type: ignore[type-arg]  # dict[str, Any], without typing at run time
    """A JSON object that named a key twice; the checks after parsing report it with its path."""

    def __init__(self, pairs: list[tuple[str, Any]], duplicate: str) -> None:
        super().__init__(pairs)
        self.duplicate = duplicate


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) == len(pairs):
        return result
    # Python's parser, like orjson, keeps the last of duplicate keys; Kubernetes refuses them.
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return _DuplicateKeys(pairs, key)
        seen.add(key)
    raise AssertionError("unreachable: fewer keys than pairs means a key repeats")


def _render_path(segments: tuple[str | int, ...]) -> str:
    path = ""
    for segment in segments:
        path = join_index(path, segment) if isinstance(segment, int) else join_key(path, segment)
    return path


def _json_problems(value: Any, limit: int = 20) -> list[FieldError]:
    """What a parsed JSON value holds that a manifest may not: the same rules as YAML input.

    Iterative, so a value nested too deeply is reported instead of overflowing the stack.
    """
    problems: list[FieldError] = []
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack and len(problems) < limit:
        current, segments = stack.pop()
        message: str | None = None
        if isinstance(current, dict | list) and len(segments) >= MAX_DEPTH:
            message = depth_problem()
        elif isinstance(current, _DuplicateKeys):
            segments = (*segments, current.duplicate)
            message = f'duplicate key "{current.duplicate}"'
        elif isinstance(current, dict):
            for key, child in current.items():
                key_problem = text_problem(key)
                if key_problem is not None:
                    problems.append(FieldError(path=_render_path(segments), message=f"a key {key_problem}"))
                    continue
                stack.append((child, (*segments, key)))
        elif isinstance(current, list):
            stack.extend((child, (*segments, i)) for i, child in enumerate(current))
        elif isinstance(current, str):
            message = text_problem(current)
        elif isinstance(current, int | float) and not isinstance(current, bool):
            message = number_problem(current)
        if message is not None:
            problems.append(FieldError(path=_render_path(segments), message=message))
    return problems


def _parse_json(text: str) -> Any:
    """Strict JSON: duplicate keys, NaN, infinities, deep nesting and bad text are refused.

    Raises ``json.JSONDecodeError`` for text that is not JSON at all, ``ValidationError``
    for JSON that holds what a manifest may not.
    """
    try:
        value = json.loads(text, object_pairs_hook=_json_object)
    except RecursionError:
        # The parser recurses per level: anything this deep is far beyond MAX_DEPTH anyway.
        raise ValidationError([FieldError(path="", message=depth_problem())]) from None
    problems = _json_problems(value)
    if problems:
        raise ValidationError(problems)
    return value


def _parse_yaml(text: str) -> Any:
    """One YAML document, built under the rules of ``load_manifests`` (``None`` when empty)."""
    import yaml

    from mfx.api.yaml_nodes import NodeProblem, ValueBuilder, compose, position, syntax_error

    try:
        nodes = [node for node in compose(text) if node is not None]
    except yaml.MarkedYAMLError as exc:
        error = syntax_error(exc, "").errors[0]
        raise BadRequestError(f"the body is not valid YAML: line {error.line}, column {error.column}: "
                              + error.message.removeprefix("invalid YAML: ")) from None
    except yaml.YAMLError as exc:
        raise BadRequestError(f"the body is not valid YAML: {exc}") from None
    if not nodes:
        return None
    if len(nodes) > 1:
        line, _ = position(nodes[1])
        raise BadRequestError(f"the body holds {len(nodes)} YAML documents (the second on line {line}); "
                              "send one object per request")
    constructor = yaml.SafeLoader("")
    try:
        return ValueBuilder(constructor).build(nodes[0], "", {})
    except NodeProblem as problem:
        line, column = position(problem.node)
        raise ValidationError([FieldError(path=problem.path, message=f"{problem.message} (line {line}, column {column})")]) from None
    finally:
        constructor.dispose()


_NOT_CANONICAL = object()


def _canonical_json(data: bytes) -> Any:
    """The value of a body in compact form (as ``mfx`` sends it), read by orjson in C; or
    ``_NOT_CANONICAL`` for any other body, which the strict reading then parses.

    That the value encodes back to the very same bytes proves no key was repeated (the
    parser keeps the last of two) and nothing was read loosely; what JSON can hold but a
    manifest may not (deep nesting, integers beyond 64 bits) is checked after."""
    import orjson  # the daemon's: the CLI, which reads no bodies, does not load it

    try:
        value = orjson.loads(data)
        same = orjson.dumps(value) == data
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return _NOT_CANONICAL
    if not same or next(json_value_problems(value, limit=1), None) is not None:
        return _NOT_CANONICAL
    return value


def load_body(data: bytes, *, yaml_allowed: bool = False) -> Any:
    """The JSON value of a request body (or, with ``yaml_allowed``, a YAML document).

    Raises ``BadRequestError`` when the bytes are not UTF-8 JSON (or YAML) at all and
    ``ValidationError``, naming the field path, when they hold what a stored object may not:
    duplicate keys, non-finite numbers, integers beyond 64 bits, lone surrogates, nesting
    deeper than ``MAX_DEPTH``, alias bombs and non-JSON YAML types.
    """
    quick = _canonical_json(data)
    if quick is not _NOT_CANONICAL:
        return quick
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRequestError(f"the body is not UTF-8 text (byte {error.start}): send JSON in UTF-8") from None
    try:
        return _parse_json(text)
    except json.JSONDecodeError as error:
        if not yaml_allowed:
            raise BadRequestError(f"the body is not valid JSON: {error}") from None
    except ValueError as error:  # e.g. an integer of more digits than Python converts
        raise BadRequestError(f"the body is not valid JSON: {error}") from None
    if len(data) > MAX_FILE_BYTES:
        # Building YAML takes about ten times as long as JSON: the limit of a manifest file.
        raise RequestEntityTooLargeError(
            f"a YAML body is limited to {MAX_FILE_BYTES} bytes (1 MiB), as a manifest file is; this one has "
            f"{len(data)}: send larger objects as JSON")
    return _parse_yaml(text)  # JSON is YAML too: a body that is neither is reported as YAML
