"""Typed views of the specs for controllers: pydantic models with the CRDs' defaults.

Objects travel as dicts (``mfx.api.objects``); a controller that wants typed access calls
``parse_spec(obj)``. Field names are snake_case in Python and camelCase in manifests
(aliases). The CRDs in ``crds/`` are the source of the schema: tests hold each model to its
CRD (fields, required ones, types and enums through ``mfx.api.model_drift``; defaults).
Properties return parsed values: seconds for durations, bytes and millicores for quantities.

Models are built from objects that already passed ``mfx.api.validation``; they ignore fields
they do not know so that a newer object never breaks an older controller.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from mfx.api.objects import Obj
from mfx.api.semver import Constraint, Version
from mfx.api.units import parse_cpu_millis, parse_duration, parse_memory_bytes
from mfx.errors import BadRequestError, FieldError, ValidationError


class _Model(BaseModel):
    # Models are frozen: what is parsed from their fields (durations, sizes, versions) is
    # parsed once per model (``cached_property``), not on each of the many reads a reconcile makes.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    def to_dict(self) -> dict[str, Any]:
        """The manifest form (camelCase, unset optional fields left out)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class PluginType(StrEnum):
    DYNAMIC_LIBRARY = "dynamic_library"
    RPC = "rpc"
    WEBASSEMBLY = "webassembly"
    HOT_RELOAD = "hot_reload"


class RestartPolicy(StrEnum):
    ALWAYS = "Always"
    ON_FAILURE = "OnFailure"
    NEVER = "Never"


class SinkPacing(StrEnum):
    AUTO = "auto"
    NONE = "none"


class SampleFormat(StrEnum):
    S16_LE = "S16_LE"
    S24_LE = "S24_LE"
    S32_LE = "S32_LE"
    FLOAT_LE = "FLOAT_LE"


# --- PluginManifest ---------------------------------------------------------------------


class Dependency(_Model):
    name: str
    version: str = "*"
    optional: bool = False

    @cached_property
    def constraint(self) -> Constraint:
        return Constraint.parse(self.version)


class ResourceLimits(_Model):
    memory: int | str | None = None
    cpu: int | str | None = None
    timeout: str = "5s"
    max_concurrency: int = 16
    open_files: int | None = None
    fuel: int | None = None
    max_message_size: int | str = "16Mi"

    @cached_property
    def memory_bytes(self) -> int | None:
        return None if self.memory is None else parse_memory_bytes(self.memory)

    @cached_property
    def cpu_millis(self) -> int | None:
        return None if self.cpu is None else parse_cpu_millis(self.cpu)

    @cached_property
    def timeout_seconds(self) -> float:
        return parse_duration(self.timeout)

    @cached_property
    def max_message_bytes(self) -> int:
        return parse_memory_bytes(self.max_message_size)


class Resources(_Model):
    limits: ResourceLimits = Field(default_factory=ResourceLimits)


class AllowedPathSpec(_Model):
    path: str
    writable: bool = False


class SecuritySpec(_Model):
    checksum: str | None = None
    signature: str | None = None
    trusted_source: str | None = None
    allowed_paths: list[AllowedPathSpec] = Field(default_factory=list)
    allowed_networks: list[str] = Field(default_factory=list)


class HealthCheckSpec(_Model):
    interval: str = "10s"
    timeout: str = "2s"
    failure_threshold: int = 3

    @cached_property
    def interval_seconds(self) -> float:
        return parse_duration(self.interval)

    @cached_property
    def timeout_seconds(self) -> float:
        return parse_duration(self.timeout)


class BackoffSpec(_Model):
    initial: str = "1s"
    max: str = "5m"

    @cached_property
    def initial_seconds(self) -> float:
        return parse_duration(self.initial)

    @cached_property
    def max_seconds(self) -> float:
        return parse_duration(self.max)


class StartLimitSpec(_Model):
    burst: int = 5
    interval: str = "1m"

    @cached_property
    def interval_seconds(self) -> float:
        return parse_duration(self.interval)


class RestartPolicySpec(_Model):
    policy: RestartPolicy = RestartPolicy.ALWAYS
    backoff: BackoffSpec = Field(default_factory=BackoffSpec)
    start_limit: StartLimitSpec = Field(default_factory=StartLimitSpec)


class CircuitBreakerSpec(_Model):
    failure_ratio: float = 0.5
    minimum_requests: int = 10
    open_duration: str = "30s"
    half_open_probes: int = 3

    @cached_property
    def open_duration_seconds(self) -> float:
        return parse_duration(self.open_duration)


class SelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class SelectorRequirement(_Model):
    key: str
    operator: SelectorOperator
    values: list[str] = Field(default_factory=list)


class NodeSelector(_Model):
    """A Kubernetes LabelSelector on Node labels (``controllers.placement`` matches it)."""

    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[SelectorRequirement] = Field(default_factory=list)


class PluginManifestSpec(_Model):
    version: str
    type: PluginType
    entry_point: str | None = None
    description: str | None = None
    interfaces: list[str] = Field(default_factory=list)
    priority: int = 0
    config: dict[str, Any] = Field(default_factory=dict)
    config_schema: dict[str, Any] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    dependencies: list[Dependency] = Field(default_factory=list)
    resources: Resources = Field(default_factory=Resources)
    security: SecuritySpec = Field(default_factory=SecuritySpec)
    health_check: HealthCheckSpec = Field(default_factory=HealthCheckSpec)
    restart_policy: RestartPolicySpec = Field(default_factory=RestartPolicySpec)
    circuit_breaker: CircuitBreakerSpec = Field(default_factory=CircuitBreakerSpec)
    suspend: bool = False
    node_selector: NodeSelector | None = None

    @cached_property
    def parsed_version(self) -> Version:
        return Version.parse(self.version)

    @property
    def limits(self) -> ResourceLimits:
        return self.resources.limits


# --- AudioSink --------------------------------------------------------------------------


class AudioSinkSpec(_Model):
    device: str = "default"
    rate: int = 48000
    channels: int = 2
    format: SampleFormat = SampleFormat.S16_LE
    period_frames: int = 1024
    buffer_periods: int = 4
    exclusive: bool = False
    default: bool = False
    pacing: SinkPacing = SinkPacing.AUTO
    node_selector: NodeSelector | None = None

    @property
    def buffer_frames(self) -> int:
        return self.period_frames * self.buffer_periods


# --- GitSource --------------------------------------------------------------------------


class GitRef(_Model):
    branch: str | None = None
    tag: str | None = None
    commit: str | None = None

    def __str__(self) -> str:
        if self.commit:
            return self.commit
        if self.tag:
            return f"tag {self.tag}"
        return f"branch {self.branch}"


class GitSourceDependency(_Model):
    name: str


class GitCredentials(_Model):
    ssh_key_file: str | None = None
    token_file: str | None = None


class GitSourceSpec(_Model):
    url: str
    ref: GitRef = Field(default_factory=lambda: GitRef(branch="main"))
    path: str = "./"
    interval: str = "1m"
    timeout: str | None = None
    prune: bool = False
    suspend: bool = False
    depends_on: list[GitSourceDependency] = Field(default_factory=list)
    credentials: GitCredentials | None = None

    @cached_property
    def interval_seconds(self) -> float:
        return parse_duration(self.interval)

    @cached_property
    def timeout_seconds(self) -> float:
        """The timeout, or the interval when no timeout is set."""
        return parse_duration(self.timeout) if self.timeout else self.interval_seconds


SpecModel = PluginManifestSpec | AudioSinkSpec | GitSourceSpec

SPEC_MODELS: dict[str, type[_Model]] = {
    "PluginManifest": PluginManifestSpec,
    "AudioSink": AudioSinkSpec,
    "GitSource": GitSourceSpec,
}


def parse_spec(obj: Obj) -> SpecModel:
    """The typed spec of an object, by its kind. The object should have passed validation."""
    kind = obj.get("kind")
    model = SPEC_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise BadRequestError(
            f'no spec model for kind "{kind}"; known kinds: {", ".join(SPEC_MODELS)}', reason="UnknownKind"
        )
    try:
        return model.model_validate(obj.get("spec") or {})  # type: ignore[return-value]
    except pydantic.ValidationError as exc:
        errors = [
            FieldError(path=".".join(["spec", *(str(p) for p in e["loc"])]), message=e["msg"])
            for e in exc.errors()
        ]
        raise ValidationError(errors, kind=str(kind), name=str(obj.get("metadata", {}).get("name", ""))) from None
