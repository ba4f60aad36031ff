"""``mfx apply`` as one streamed request: the manifests go to the daemon as they are read.

The daemon (``POST .../apply/stream``) checks and admits each object as its line arrives, so
reading the files here and the daemon's work overlap (two processes, two cores); nothing is
stored before the whole body has arrived, all or nothing as the request of a whole List.

What the stream cannot carry as that one request aborts it before its end, which applies
nothing, and ``apply_manifests`` then applies the usual way: a file that does not read, an
argument without objects, two documents naming one object, more objects than one request
may carry, stdin (which cannot be read twice), no -f at all, or a daemon without the path.
"""

from __future__ import annotations

from collections.abc import Iterator

from mfx.api import yaml_loader
from mfx.api.yaml_loader import Manifest
from mfx.api.yaml_plain import PlainReader
from mfx.cli.apply_requests import located_all, named_as
from mfx.cli.bulk_client import (
    MAX_BODY_BYTES,
    BulkUnsupportedError,
    ItemError,
    Outcome,
    apply_stream,
)
from mfx.cli.client import Client, encode_json
from mfx.cli.manifests import check_manifests, sources_of
from mfx.errors import DaemonUnavailableError, MfxError

# What goes out at once: small enough that the daemon works on the first objects while the
# next are read, large enough that each piece's overhead (a chunk, a read, a store look-up)
# stays small.
PIECE_BYTES = 16 * 1024


class _Unfit(Exception):
    """The stream cannot carry this apply (see the module's docstring): it is aborted."""


def apply_streamed(client: Client, filenames: tuple[str, ...], *, recursive: bool, dry_run: bool,
                   force_conflicts: bool) -> list[Outcome] | None:
    """Every object of ``filenames`` applied in one streamed request, their outcomes in input
    order; or None, having applied nothing, when the stream cannot carry them."""
    if not filenames or "-" in filenames:
        return None  # no -f is an error the usual way words
    manifests: list[Manifest] = []
    try:
        return apply_stream(client, _lines(filenames, recursive, manifests), lambda: len(manifests),
                            dry_run=dry_run, force_conflicts=force_conflicts)
    except (_Unfit, BulkUnsupportedError):
        return None
    except ItemError as refused:
        check_manifests(manifests)  # every problem, each with its file and line, as a local validation
        raise located_all([(manifests[i], error) for i, error in refused.errors]) from None
    except MfxError as error:
        if isinstance(error, DaemonUnavailableError) and not manifests:
            # Nothing was sent: the usual way names an invalid file before the daemon's trouble.
            # Once any of the body was, it may not apply it again.
            return None
        check_manifests(manifests)  # an invalid file is named before the daemon's trouble
        raise


def _lines(filenames: tuple[str, ...], recursive: bool, manifests: list[Manifest]) -> Iterator[bytes]:
    """The objects' JSON lines, in pieces of about ``PIECE_BYTES``; each object read is added
    to ``manifests``."""
    try:
        yield from _pieces(filenames, recursive, manifests)
    except (MfxError, OSError, ValueError) as error:
        raise _Unfit() from error


def _pieces(filenames: tuple[str, ...], recursive: bool, manifests: list[Manifest]) -> Iterator[bytes]:
    reader = PlainReader()  # the files of a directory share most of their lines: each is read once
    names: set[tuple[object, object]] = set()
    piece: list[bytes] = []
    piece_size = total = 0
    for given in filenames:
        before = len(manifests)
        for source in sources_of(given, recursive=recursive):
            for manifest in yaml_loader.load_manifests(source.text, source.name, reader=reader):
                name = named_as(manifest.obj)
                if name in names:
                    raise _Unfit()
                names.add(name)
                line = encode_json(manifest.obj) + b"\n"
                total += len(line)
                if total > MAX_BODY_BYTES:
                    raise _Unfit()
                manifests.append(manifest)
                piece.append(line)
                piece_size += len(line)
                if piece_size >= PIECE_BYTES:
                    yield b"".join(piece)
                    piece, piece_size = [], 0
        if len(manifests) == before:
            raise _Unfit()
    if piece:
        yield b"".join(piece)
