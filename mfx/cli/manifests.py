"""Reading ``-f`` arguments: files, directories (``-R``), ``-`` for stdin, validated locally."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from mfx.api import validation
from mfx.api.schema import Schemas
from mfx.errors import BadRequestError, FieldError

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Source:
    name: str  # as the user wrote it, so messages point at their file
    text: str


def collect_sources(paths: tuple[str, ...], *, recursive: bool) -> list[Source]:
    if not paths:
        raise BadRequestError("must specify one of -f or -l (example: mfx apply -f manifests/)")
    sources: list[Source] = []
    for given in paths:
        if given == "-":
            sources.append(Source("<stdin>", validation.decode_manifest("<stdin>", sys.stdin.buffer.read())))
            continue
        path = Path(given)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            files = sorted(p for p in path.glob(pattern) if p.is_file() and p.suffix in MANIFEST_SUFFIXES)
            for file in files:
                sources.append(_read(file))
        elif path.exists():
            sources.append(_read(path))
        else:
            raise BadRequestError(f'the path "{given}" does not exist')
    return sources


def _read(path: Path) -> Source:
    size = path.stat().st_size
    if size > validation.MAX_FILE_BYTES:
        raise BadRequestError(
            f"{path}: file is {size} bytes, larger than the {validation.MAX_FILE_BYTES} byte limit for a manifest")
    return Source(str(path), validation.decode_manifest(str(path), path.read_bytes()))


def load_and_validate(sources: list[Source], schemas: Schemas) -> list[validation.Manifest]:
    """Every document of every source, validated and defaulted; all errors raised at once."""
    manifests: list[validation.Manifest] = []
    errors: list[FieldError] = []
    for source in sources:
        try:
            manifests.extend(validation.load_manifests(source.text, source.name))
        except validation.ValidationError as error:
            errors.extend(error.errors)
    try:
        validation.validate_all(manifests, schemas)
    except validation.ValidationError as error:
        errors.extend(error.errors)
    if errors:
        raise validation.ValidationError(errors)
    return manifests
