"""A PluginManifest's spec as the controller uses it: parsed once per (uid, generation),
with its required dependencies' constraints, its circuit-breaker settings, what of it makes
up the instance's identity, and whether its config fits its schema."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from mfx.api.models import PluginManifestSpec, parse_spec
from mfx.api.objects import Obj, generation
from mfx.api.semver import Constraint, ConstraintError, VersionError
from mfx.api.validation import config_problems
from mfx.errors import InvalidConfigError, ValidationError
from reconciler import BreakerSettings, PermanentError

from .plugin_reasons import PluginReason


@dataclass(frozen=True)
class Requirement:
    """A required dependency, its constraint parsed once per generation (or why it cannot be)."""

    name: str
    version: str
    constraint: Constraint | None
    error: str = ""


@dataclass(frozen=True)
class ParsedSpec:
    """What a reconcile needs from the spec; parsed once per (uid, generation)."""

    uid: str
    generation: int
    spec: PluginManifestSpec
    requirements: tuple[Requirement, ...]
    identity_base: dict[str, Any]  # what of the spec goes into the identity digest
    breaker: BreakerSettings
    call_timeout: float  # spec.resources.limits.timeout, in seconds

    @cached_property
    def config_problem(self) -> str | None:
        """Why ``spec.config`` does not fit ``spec.configSchema`` (None: it fits)."""
        try:
            validate_config(self.spec)
        except InvalidConfigError as exc:
            return str(exc)
        return None


def parse_manifest(obj: Obj, previous: ParsedSpec | None) -> ParsedSpec:
    """``obj``'s spec, reusing ``previous`` when it is of the same (uid, generation)."""
    uid, gen = str(obj.get("metadata", {}).get("uid", "")), generation(obj)
    if previous is not None and previous.uid == uid and previous.generation == gen:
        return previous
    try:
        spec = parse_spec(obj)
    except ValidationError as exc:
        raise PermanentError(PluginReason.INVALID_SPEC, str(exc)) from None
    assert isinstance(spec, PluginManifestSpec)
    return ParsedSpec(uid, gen, spec, requirements(spec), identity_base(spec), breaker_settings(spec),
                      spec.limits.timeout_seconds)


def required_dependencies(obj: Obj) -> list[str]:
    """The names of ``obj``'s required (not optional) dependencies, read from the raw object."""
    deps = (obj.get("spec") or {}).get("dependencies") or []
    return [str(d["name"]) for d in deps if isinstance(d, dict) and d.get("name") and not d.get("optional")]


def requirements(spec: PluginManifestSpec) -> tuple[Requirement, ...]:
    out: list[Requirement] = []
    for dep in spec.dependencies:
        if dep.optional:
            continue  # optional dependencies never block
        try:
            out.append(Requirement(dep.name, dep.version, Constraint.parse(dep.version)))
        except (ConstraintError, VersionError, ValueError) as exc:
            out.append(Requirement(dep.name, dep.version, None, str(exc)))
    return tuple(out)


def breaker_settings(spec: PluginManifestSpec) -> BreakerSettings:
    return BreakerSettings(
        failure_ratio=spec.circuit_breaker.failure_ratio,
        minimum_requests=spec.circuit_breaker.minimum_requests,
        open_duration=spec.circuit_breaker.open_duration_seconds,
        half_open_probes=spec.circuit_breaker.half_open_probes,
    )


def identity_base(spec: PluginManifestSpec) -> dict[str, Any]:
    return {
        "version": spec.version, "type": str(spec.type), "entryPoint": spec.entry_point,
        "security": spec.security.to_dict(), "limits": spec.limits.to_dict(), "env": spec.env,
    }


# How the parts of a plugin's identity are named to users.
IDENTITY_FIELDS = {"version": "spec.version", "type": "spec.type", "entryPoint": "spec.entryPoint",
                   "security": "spec.security", "limits": "spec.resources.limits", "env": "spec.env",
                   "dir": "the plugin directory"}


def validate_config(spec: PluginManifestSpec) -> None:
    """``spec.config`` against ``spec.configSchema`` (admission checked it; this is the last line).

    The same check as admission's, so a schema that refers outside itself is refused here too
    and nothing is fetched or read on its behalf.
    """
    problems = config_problems(spec.config_schema, spec.config)
    if problems:
        raise InvalidConfigError("; ".join(str(problem) for problem in problems))
