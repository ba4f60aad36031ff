"""Reading ``-f`` arguments: files, directories (``-R``), ``-`` for stdin, validated locally;
and pointing the field errors of a manifest back at the file and line they came from."""

from __future__ import annotations

import os
import sys
from collections import namedtuple

from mfx.api import yaml_loader
from mfx.api.yaml_loader import Manifest
from mfx.api.yaml_plain import PlainReader
from mfx.errors import BadRequestError, FieldError, MfxError, ValidationError

# Neither typing nor pathlib at run time for a file or a directory (``mfx apply -f``): each
# costs every such start milliseconds (see mfx.errors). ``-R`` walks with pathlib.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path
    from typing import NamedTuple

    from mfx.api.schema import Schemas

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


if TYPE_CHECKING:
    class Source(NamedTuple):  # a record apply loads at every start: see mfx.errors.FieldError
        name: str  # as the user wrote it (as pathlib prints it), so messages point at their file
        text: str
else:  # the same record, without importing typing
    Source = namedtuple("Source", "name text")


def collect_sources(paths: tuple[str, ...], *, recursive: bool) -> list[Source]:
    if not paths:
        raise BadRequestError("must specify one of -f or -l (example: mfx apply -f manifests/)")
    return [source for given in paths for source in sources_of(given, recursive=recursive)]


def sources_of(given: str, *, recursive: bool) -> Iterator[Source]:
    """The files of one -f argument, each read when it is reached (``-``: stdin)."""
    if given == "-":
        yield Source("<stdin>", yaml_loader.decode_manifest("<stdin>", sys.stdin.buffer.read()))
        return
    path = _as_pathlib_shows(given)
    if os.path.isdir(path):
        for file in _manifest_files(path, recursive=recursive):
            yield _read(file)
    elif os.path.exists(path):
        yield _read(path)
    else:
        raise BadRequestError(f'the path "{given}" does not exist')


def _as_pathlib_shows(given: str) -> str:
    """``str(Path(given))``: without ``.`` parts and doubled or trailing slashes, as files have
    always been named in messages (POSIX keeps exactly two leading slashes)."""
    lead = len(given) - len(given.lstrip("/"))
    head = "//" if lead == 2 else "/" if lead else ""
    parts = [part for part in given.split("/") if part and part != "."]
    return head + "/".join(parts) if head or parts else "."


def _manifest_files(directory: str, *, recursive: bool) -> list[str]:
    """The manifest files of a directory (and, ``recursive``, below it), in path order."""
    if recursive:
        from pathlib import Path

        found = (p for p in Path(directory).glob("**/*") if p.is_file() and p.suffix in MANIFEST_SUFFIXES)
        return [str(p) for p in sorted(found)]
    # One directory: the entries know whether they are files without a stat each, and names
    # sort as their paths would (``str(directory / name)`` is the same text, made faster).
    with os.scandir(directory) as entries:
        names = sorted(e.name for e in entries if e.name.endswith(MANIFEST_SUFFIXES) and e.is_file())
    base = os.path.join(directory, "")
    # A name ending in a suffix has it as its extension, unless it starts with a dot (".yaml"
    # is a hidden file without one, as ``os.path.splitext`` reads it).
    return [base + name for name in names if name[0] != "." or os.path.splitext(name)[1] in MANIFEST_SUFFIXES]


def _read(path: str) -> Source:
    """The file's text; a file over the limit is refused before more of it than the limit is read.

    Plain ``os`` calls: a thousand small files cost their opening, which ``open()``'s buffered
    file object and ``Path``'s parsing would double."""
    limit = yaml_loader.MAX_FILE_BYTES
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = [os.read(fd, limit + 1)]
        size = len(chunks[0])
        while chunks[-1] and size <= limit:  # a short read before the end: read on
            chunks.append(os.read(fd, limit + 1 - size))
            size += len(chunks[-1])
        if size > limit:
            size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    if size > limit:
        raise BadRequestError(f"{path}: file is {size} bytes, larger than the {limit} byte limit for a manifest")
    return Source(path, yaml_loader.decode_manifest(path, chunks[0] if len(chunks) == 1 else b"".join(chunks)))


def load_and_validate(sources: list[Source], schemas: Schemas | None, *,
                      validate: bool = True) -> list[Manifest]:
    """Every document of every source, validated; all errors raised at once.

    Without ``validate`` (the daemon validates what it is sent) only a file that cannot be
    read makes the documents be validated here, so that every error is listed together."""
    manifests: list[Manifest] = []
    errors: list[FieldError] = []
    reader = PlainReader()  # the files of a directory share most of their lines: each is read once
    for source in sources:
        try:
            manifests.extend(yaml_loader.load_manifests(source.text, source.name, reader=reader))
        except ValidationError as error:
            errors.extend(error.errors)
    if validate or errors:
        try:
            _check_all(manifests, schemas)
        except ValidationError as error:
            errors.extend(error.errors)
    if errors:
        raise ValidationError(errors)
    return manifests


def check_manifests(manifests: list[Manifest]) -> None:
    """Raise the ``ValidationError`` of ``manifests`` read without validation, if any is invalid."""
    _check_all(manifests, None)


def _check_all(manifests: list[Manifest], schemas: Schemas | None) -> None:
    # Validation pulls in the formats, semver and jsonschema: imported when it runs, which
    # an apply the daemon accepts never needs.
    from mfx.api.schema import load_schemas
    from mfx.api.validation import check_all

    check_all(manifests, schemas if schemas is not None else load_schemas())


def load_objects(filenames: tuple[str, ...], *, recursive: bool,
                 validate: bool = True) -> list[Manifest]:
    """The objects of every -f argument, validated unless ``validate`` is false; an argument
    that holds none is an error.

    An empty file, one of only comments or ``---``, or a directory without manifests is
    almost always a wrong path: saying nothing and exiting 0 would hide it."""
    if not filenames:
        collect_sources(filenames, recursive=recursive)  # raises: name what is missing
    per_argument = [collect_sources((given,), recursive=recursive) for given in filenames]
    manifests = load_and_validate([source for sources in per_argument for source in sources], None,
                                  validate=validate)
    files_with_objects = {manifest.file for manifest in manifests}
    for given, sources in zip(filenames, per_argument, strict=True):
        if not any(source.name in files_with_objects for source in sources):
            shown = sources[0].name if given == "-" and sources else given
            hint = "" if recursive or not _has_subdirectories(given) else " (use -R to read its subdirectories)"
            if not validate:
                check_manifests(manifests)  # an invalid file is named first, as when validating
            raise BadRequestError(f"{shown}: no objects found{hint}")
    if not manifests:  # every argument holds objects, so there are some: kept for an empty -f
        raise BadRequestError("no objects passed: use -f FILE|DIR|- (example: mfx apply -f manifests/)")
    return manifests


def _has_subdirectories(given: str) -> bool:
    if not os.path.isdir(given):
        return False
    with os.scandir(given) as entries:
        return any(entry.is_dir() for entry in entries)


def located(error: MfxError, manifest: Manifest) -> MfxError:
    """Server-side field errors, pointed back at the file and line they came from."""
    if isinstance(error, ValidationError):
        return ValidationError([
            FieldError(path=e.path, message=e.message, file=manifest.file, line=manifest.line_of(e.path),
                       document=manifest.document)
            for e in error.errors
        ])
    return error


def in_package(error: ValidationError, package: Path, manifest_name: str) -> ValidationError:
    """The same field errors, located in the manifest inside a plugin package."""
    return ValidationError([FieldError(path=e.path, message=e.message, file=f"{package}:{manifest_name}")
                            for e in error.errors])
