"""The CRDs as the rest of mfx uses them: schemas, printer columns, ``explain``, defaults.

The YAML files in ``crds/`` are the single source of schema truth. ``load_schemas()`` reads
them (the parsed text is cached as immutable JSON strings; every ``Schemas`` gets its own
fresh dicts, so no caller can change what another sees).
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import textwrap
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from mfx.api.json_copy import json_copy
from mfx.api.kinds import USER_KINDS, KindInfo, resolve_kind
from mfx.api.objects import Obj
from mfx.api.schema_check import Check, compile_check
from mfx.api.schema_defaults import DefaultsPlan, compile_defaults, fill_defaults
from mfx.errors import BadRequestError, NotFoundError

Schema = dict[str, Any]

PRESERVE = "x-kubernetes-preserve-unknown-fields"
INT_OR_STRING = "x-kubernetes-int-or-string"

# The C loader (libyaml) parses the CRDs about ten times faster; same safe constructors.
_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def _crd_documents() -> tuple[str, ...]:
    """Every CRD in the package data, as JSON text (immutable, so safe to cache)."""
    docs: list[str] = []
    folder = resources.files("crds")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        for doc in yaml.load_all(entry.read_text(encoding="utf-8"), Loader=_SAFE_LOADER):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                docs.append(json.dumps(doc))
    return tuple(docs)


def load_schemas() -> Schemas:
    """A fresh ``Schemas`` for every mfx kind; fails loudly if a kind has no CRD."""
    crds: dict[str, dict[str, Any]] = {}
    for text in _crd_documents():
        crd = json.loads(text)
        crds[crd["spec"]["names"]["kind"]] = crd
    missing = [k.kind for k in USER_KINDS if k.kind not in crds]
    if missing:
        raise RuntimeError(f"no CustomResourceDefinition for {', '.join(missing)} in crds")
    order = [k.kind for k in USER_KINDS]
    return Schemas(dict(sorted(crds.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order))))


@dataclass
class Schemas:
    """The CRDs of the mfx kinds, keyed by kind (``PluginManifest``)."""

    crds: dict[str, dict[str, Any]]
    # Compiled from ``crds`` on first use, per kind.
    _defaults: dict[str, DefaultsPlan] = field(default_factory=dict, init=False, repr=False, compare=False)
    _spec_checks: dict[str, Check] = field(default_factory=dict, init=False, repr=False, compare=False)
    # The schema and apiVersion of each kind, found once: every write asks for them.
    _openapi: dict[str, Schema] = field(default_factory=dict, init=False, repr=False, compare=False)
    _api_versions: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self.crds)

    def has(self, kind: str) -> bool:
        return kind in self.crds

    def crd(self, kind: str) -> dict[str, Any]:
        try:
            return self.crds[kind]
        except KeyError:
            raise BadRequestError(
                f'unknown kind "{kind}"; known kinds: {", ".join(self.kinds)}', reason="UnknownKind"
            ) from None

    def _version(self, kind: str) -> dict[str, Any]:
        versions = self.crd(kind)["spec"]["versions"]
        return next(v for v in versions if v.get("storage")) if len(versions) > 1 else versions[0]

    def openapi(self, kind: str) -> Schema:
        """The ``openAPIV3Schema`` of the kind (the whole object: apiVersion ... status)."""
        schema = self._openapi.get(kind)
        if schema is None:
            schema = self._openapi[kind] = self._version(kind)["schema"]["openAPIV3Schema"]
        return schema

    def printer_columns(self, kind: str) -> list[dict[str, Any]]:
        """``additionalPrinterColumns`` as in the CRD (name, type, jsonPath, priority ...)."""
        return copy.deepcopy(self._version(kind).get("additionalPrinterColumns", []))

    def api_version(self, kind: str) -> str:
        text = self._api_versions.get(kind)
        if text is None:
            text = self._api_versions[kind] = f"{self.crd(kind)['spec']['group']}/{self._version(kind)['name']}"
        return text

    def spec_check(self, kind: str) -> Check:
        """Whether a spec passes the kind's spec schema (``schema_check``): when it says no,
        ``structural_schema.check_schema`` names the problems."""
        check = self._spec_checks.get(kind)
        if check is None:
            check = self._spec_checks[kind] = compile_check(self.openapi(kind)["properties"]["spec"])
        return check

    # --- defaults -------------------------------------------------------------------------

    def apply_defaults(self, obj: Obj) -> Obj:
        """A copy of ``obj`` with the schema's defaults filled in, as the API server does.

        Defaults apply where a field is missing (a null counts as missing, and is pruned) and
        then recurse into it, so ``healthCheck: {}`` defaulted at the top fills its own fields
        too. Re-applying an object that already went through here changes nothing.
        """
        result = json_copy(obj)
        self.fill_defaults(result)
        return result

    def fill_defaults(self, obj: Obj) -> None:
        """``apply_defaults`` in place, for an object the caller owns (no copy made)."""
        kind = obj.get("kind")
        if isinstance(kind, str) and kind in self.crds:
            plan = self._defaults.get(kind)
            if plan is None:
                plan = self._defaults[kind] = compile_defaults(self.openapi(kind))
            fill_defaults(obj, plan)

    # --- explain --------------------------------------------------------------------------

    def explain(self, kind: str, field_path: str = "", *, recursive: bool = False) -> str:
        """Documentation of a kind or one of its fields, in ``kubectl explain``'s layout."""
        info = _kind_info(kind)
        schema = self.openapi(info.kind)
        segments = [s for s in field_path.replace("[]", "").split(".") if s]
        if segments and segments[0].lower() in info.names():
            segments = segments[1:]  # "pluginmanifest.spec" like kubectl
        here = schema
        walked: list[str] = []
        for segment in segments:
            here = _items(here)
            props = here.get("properties") or {}
            if segment not in props:
                where = f"{info.kind}.{'.'.join(walked)}" if walked else info.kind
                if here.get(PRESERVE) or (not props and here.get("type") == "object"):
                    raise NotFoundError(
                        f'{where} is free-form: it has no documented field "{segment}"',
                        reason="FieldNotFound",
                    )
                hint = did_you_mean(segment, list(props))
                raise NotFoundError(
                    f'field "{segment}" does not exist in {where}{hint} '
                    f'(fields: {", ".join(props) or "none"})',
                    reason="FieldNotFound",
                )
            walked.append(segment)
            here = props[segment]
        group, _, version = self.api_version(info.kind).partition("/")
        lines = [f"GROUP:      {group}", f"KIND:       {info.kind}", f"VERSION:    {version}", ""]
        if walked:
            lines += [f"FIELD: {walked[-1]} <{type_name(here)}>", ""]
        enum = here.get("enum")
        if enum:
            lines += ["ENUM:", *(f"    {v}" for v in enum), ""]
        if "default" in here:
            lines += [f"DEFAULT: {json.dumps(here['default'])}", ""]
        lines.append("DESCRIPTION:")
        lines += _wrap(here.get("description") or "<no description>", "    ")
        fields = _items(here).get("properties")
        if fields:
            lines += ["", "FIELDS:"]
            lines += _fields(_items(here), "  ", recursive)
        return "\n".join(lines).rstrip() + "\n"


def did_you_mean(word: str, choices: list[str]) -> str:
    """``'; did you mean "dependencies"?'`` when a choice is close to ``word``, else ``""``."""
    close = difflib.get_close_matches(word, choices, n=2, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(f'"{c}"' for c in close) + "?"


def _kind_info(kind: str) -> KindInfo:
    return resolve_kind(kind, kinds=USER_KINDS)


def type_name(schema: Schema) -> str:
    """kubectl's name for a schema type: string, integer, Object, []Object, map[string]string."""
    if schema.get(INT_OR_STRING):
        return "IntOrString"
    t = schema.get("type")
    if t == "array":
        return "[]" + type_name(schema.get("items") or {})
    if t == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and not schema.get("properties"):
            return f"map[string]{type_name(extra)}"
        return "Object"
    return str(t or "Object")


def _items(schema: Schema) -> Schema:
    while schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        schema = schema["items"]
    return schema


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(" ".join(text.split()), width=80, initial_indent=indent, subsequent_indent=indent)


def _fields(schema: Schema, indent: str, recursive: bool) -> list[str]:
    lines: list[str] = []
    required = set(schema.get("required") or ())
    for name, sub in (schema.get("properties") or {}).items():
        mark = " -required-" if name in required else ""
        lines.append(f"{indent}{name}\t<{type_name(sub)}>{mark}")
        if recursive:
            inner = _items(sub)
            if inner.get("properties"):
                lines += _fields(inner, indent + "  ", recursive)
            continue
        if sub.get("enum"):
            lines.append(f"{indent}enum: {', '.join(str(v) for v in sub['enum'])}")
        lines += _wrap(sub.get("description") or "<no description>", indent + "  ")
        lines.append("")
    return lines


