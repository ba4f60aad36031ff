"""The one error hierarchy of mfx.

Every failure a user can see is an ``MfxError``. Library exceptions (sqlite3, httpx,
wasmtime, alsaaudio, ...) are translated at the boundary of the module that calls the
library, so nothing untranslated reaches the CLI, the API or a condition message.

Each error carries a ``reason`` (a short CamelCase word, as in Kubernetes conditions and
Status objects) and, where it maps onto HTTP, the status ``code`` the API answers with.
"""

from __future__ import annotations

from collections import namedtuple

# Not typing's: mypy reads the name alone, and importing typing (or copy) costs every ``mfx``
# start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NamedTuple, Self


class MfxError(Exception):
    """Base of every mfx error.

    A subclass names its reason, HTTP code and retryability in its class line
    (``class NotFoundError(MfxError, reason="NotFound", code=404)``); what it leaves out it
    inherits.
    """

    reason: str = "InternalError"
    code: int = 500
    # Transient: a retry (restart, backoff) may help. False: the engine marks the object
    # Stalled until its spec changes.
    retryable: bool = True

    def __init_subclass__(
        cls, *, reason: str | None = None, code: int | None = None, retryable: bool | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if reason is not None:
            cls.reason = reason
        if code is not None:
            cls.code = code
        if retryable is not None:
            cls.retryable = retryable

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason

    def __str__(self) -> str:
        return self.message

    def reworded(self, message: str) -> Self:
        """The same error (type, reason, fields) saying ``message``, as a new instance: the
        one already raised stays as it was."""
        other = type(self).__new__(type(self), *self.args)  # what copy.copy makes of an exception
        other.__dict__.update(self.__dict__)
        other.message = message
        other.args = (message,)
        return other


# --- API and store -------------------------------------------------------------------


class NotFoundError(MfxError, reason="NotFound", code=404):
    """What the request names does not exist (HTTP 404)."""


class AlreadyExistsError(MfxError, reason="AlreadyExists", code=409):
    """A create named an object that exists already (HTTP 409)."""


class ConflictError(MfxError, reason="Conflict", code=409):
    """An update carried a stale resourceVersion (optimistic concurrency)."""


class GoneError(MfxError, reason="Expired", code=410):
    """A watch asked for a resourceVersion that has been compacted away (HTTP 410)."""


class UnauthorizedError(MfxError, reason="Unauthorized", code=401):
    """The request carried no valid credentials (HTTP 401)."""


class BadRequestError(MfxError, reason="BadRequest", code=400):
    """The request itself is malformed: a body, a query, a selector (HTTP 400)."""


if TYPE_CHECKING:
    class _FieldErrorFields(NamedTuple):
        path: str  # field path, e.g. "spec.dependencies[0].version"
        message: str  # what is wrong and what was expected
        file: str | None = None  # file name as the user gave it
        line: int | None = None  # 1-based line of the field in that file
        column: int | None = None  # 1-based column (YAML syntax errors)
        document: int | None = None  # 0-based index of the document in a multi-document file
else:  # the same record, without importing typing: what mypy reads above is what this makes
    _FieldErrorFields = namedtuple("FieldError", "path message file line column document", defaults=(None,) * 4)


class FieldError(_FieldErrorFields):
    """One problem in one document: where it is and what was expected.

    A named tuple, as the other records every CLI command loads: building a dataclass, and
    importing ``dataclasses``, would cost each ``mfx`` start milliseconds."""

    __slots__ = ()

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        path = f"{self.path}: " if self.path else ""
        return f"{where}{path}{self.message}"


class ValidationError(MfxError, reason="Invalid", code=422):
    """One or more documents are invalid; ``errors`` lists every problem found (HTTP 422)."""

    def __init__(self, errors: list[FieldError], *, kind: str = "", name: str = "") -> None:
        self.errors = list(errors)
        self.kind = kind
        self.name = name
        super().__init__("\n".join(str(e) for e in self.errors) or "invalid")


class ErrorList:
    """Collects field errors so every problem is reported at once."""

    def __init__(self, items: list[FieldError] | None = None) -> None:
        self.items: list[FieldError] = [] if items is None else items

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.items!r})"

    def add(self, path: str, message: str, **where: object) -> None:
        self.items.append(FieldError(path=path, message=message, **where))  # type: ignore[arg-type]

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self, *, kind: str = "", name: str = "") -> None:
        if self.items:
            raise ValidationError(self.items, kind=kind, name=name)


class InvalidSelectorError(BadRequestError, ValueError, reason="InvalidSelector"):
    """A label selector that does not parse; also a ValueError for callers outside the API."""


class StoreError(MfxError, reason="StoreUnavailable", code=503):
    """The store file cannot be opened, read or written (disk full, corrupt, newer schema)."""


class StoreUnavailableError(StoreError):
    """No member of the etcd cluster answered in time (all down, or quorum lost): HTTP 503.

    ``detail`` says what each member answered, for a message of the caller's own."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


# --- Daemon and client ---------------------------------------------------------------


class DaemonUnavailableError(MfxError, reason="DaemonUnavailable", code=503):
    """The daemon cannot be reached (HTTP 503)."""


class DaemonAlreadyRunningError(MfxError, reason="AlreadyRunning", code=409):
    """Another daemon already serves the home directory (HTTP 409)."""


# --- Plugins ---------------------------------------------------------------------------
# The seed's taxonomy (load, init, runtime, timeout, resource, security) as classes; the
# reason names what happened precisely and ends up in the plugin's conditions.


class PluginError(MfxError, reason="PluginError"):
    """A plugin failed; its reason ends up in the plugin's conditions."""


class PluginLoadError(PluginError, reason="LoadFailed"):
    """A plugin could not be loaded by its runtime."""


class EntryPointNotFoundError(PluginLoadError, reason="EntryPointNotFound", retryable=False):
    """The plugin's entry point does not exist: permanent until the spec changes."""


class HandshakeError(PluginLoadError, reason="HandshakeFailed"):
    """A loaded plugin did not complete the opening handshake."""


class PluginInitError(PluginError, reason="InitializeFailed"):
    """A plugin's initialize call failed."""


class InvalidConfigError(PluginError, reason="InvalidConfig", retryable=False):
    """A plugin refused its configuration: permanent until the spec changes."""


class PluginRuntimeError(PluginError, reason="RuntimeError"):
    """A call into a running plugin failed (its own error, a crash, a trap)."""


class PluginCrashedError(PluginRuntimeError, reason="Crashed"):
    """A plugin process or instance died."""


class PluginTimeoutError(PluginRuntimeError, reason="DeadlineExceeded"):
    """A plugin did not answer within its timeout."""


class ResourceLimitError(PluginRuntimeError, reason="ResourceLimitExceeded"):
    """A plugin went over one of its resource limits."""


class OutOfFuelError(ResourceLimitError, reason="OutOfFuel"):
    """A WebAssembly plugin used up its fuel."""


class MemoryLimitExceededError(ResourceLimitError, reason="MemoryLimitExceeded"):
    """A plugin went over its memory limit."""


class TrapError(PluginRuntimeError, reason="Trap"):
    """A WebAssembly plugin trapped."""


class CircuitOpenError(PluginRuntimeError, reason="CircuitOpen"):
    """Calls are refused while the plugin's circuit breaker is open."""


class ProtocolError(PluginRuntimeError, reason="ProtocolError"):
    """Malformed, oversized or unexpected messages from a plugin."""


class SecurityError(PluginError, reason="SecurityViolation", retryable=False):
    """A plugin failed a security check: permanent until the spec or the artifact changes."""


class ChecksumMismatchError(SecurityError, reason="ChecksumMismatch"):
    """The artifact's checksum differs from the one the spec pins."""


class SignatureError(SecurityError, reason="SignatureInvalid"):
    """The artifact's signature is missing or does not verify."""


class UntrustedSourceError(SecurityError, reason="Untrusted"):
    """The artifact comes from a source that is not trusted."""


class PackageError(SecurityError, reason="InvalidPackage"):
    """A plugin package is malformed."""


class AbiMismatchError(PluginLoadError, reason="AbiMismatch", retryable=False):
    """A plugin does not follow the ABI of this mfx (a C library built against another
    ``mfx_plugin.h``, a WebAssembly module without the ABI's exports): permanent in every
    runtime."""


def error_from_status(code: int, status: Any, message: str) -> MfxError:
    """The error a Kubernetes ``Status`` answer (or any failed answer) with HTTP ``code``
    stands for, with ``message`` as its text: what every client of the API raises, so a
    caller cannot tell a remote failure from the same failure in process."""
    status = status if isinstance(status, dict) else {}
    reason = status.get("reason") if isinstance(status.get("reason"), str) else ""
    if code == 404:
        return NotFoundError(message)
    if code == 409:
        return AlreadyExistsError(message) if reason == "AlreadyExists" else ConflictError(message)
    if code == 410:
        return GoneError(message)
    if code == 401:
        return UnauthorizedError(message)
    if code == 422:
        causes = (status.get("details") or {}).get("causes") or []
        errors = [FieldError(path=str(c.get("field", "")), message=str(c.get("message", "")))
                  for c in causes if isinstance(c, dict)]
        return ValidationError(errors or [FieldError(path="", message=message)])
    if code == 400:
        return BadRequestError(message)
    error = MfxError(message, reason=reason or "InternalError")
    error.code = code
    return error


# --- Audio -----------------------------------------------------------------------------


class AudioError(MfxError, reason="AudioError"):
    """An audio device failed."""


class DeviceBusyError(AudioError, reason="DeviceBusy"):
    """The audio device is in use by another program."""


class DeviceLostError(AudioError, reason="DeviceLost"):
    """The audio device went away while in use."""


class DeviceNotFoundError(AudioError, reason="DeviceNotFound"):
    """No audio device has the configured name."""


class UnsupportedFormatError(AudioError, reason="UnsupportedFormat"):
    """The audio device does not take the requested rate, channels or format."""


class UnderrunError(AudioError, reason="Underrun"):
    """The audio device ran out of samples to play."""


class DecodeError(MfxError, reason="DecodeFailed"):
    """Audio data could not be decoded."""


# --- Sources -----------------------------------------------------------------------------


class GitError(MfxError, reason="GitOperationFailed"):
    """git failed: an unreachable repository, an unknown ref, a missing path (retryable)."""


class SourcePathError(MfxError, reason="InvalidPath", retryable=False):
    """``spec.path`` can never name a directory of the repository (absolute, or leaves it)."""


class RequestEntityTooLargeError(BadRequestError, reason="RequestEntityTooLarge", code=413):
    """A request body over the API's size limit (HTTP 413); refused before it is parsed."""


# --- Player ----------------------------------------------------------------------------------


class NoSourceAnsweredError(MfxError, reason="NoSourceAnswered", code=503):
    """No MusicSource answered a catalogue request: none is Ready, or every one failed or
    timed out (HTTP 503: nothing was searched, which is not the same as nothing found)."""


class NoSinkError(MfxError, reason="NoSink", code=503):
    """The player has no AudioSink to play to; the message says why (HTTP 503)."""


# --- Plugin process exits ----------------------------------------------------------------------


class PluginExitedError(PluginCrashedError):
    """A plugin process ended by itself. ``returncode`` as ``subprocess`` gives it: the exit
    code, or minus the signal that killed it; a clean exit (0) is told apart by it, never by
    the message."""

    def __init__(self, message: str, *, returncode: int) -> None:
        super().__init__(message)
        self.returncode = returncode

    @property
    def clean(self) -> bool:
        return self.returncode == 0


# --- Errors that crossed a process boundary ------------------------------------------------------


def error_class_for(reason: str) -> type[MfxError]:
    """The most general mfx error class with ``reason`` (MfxError when none has it), for
    raising an error again on the other side of a socket as the class it was."""
    pending: list[type[MfxError]] = [MfxError]
    while pending:
        cls = pending.pop(0)
        if cls.reason == reason:
            return cls
        pending.extend(cls.__subclasses__())
    return MfxError


def error_from_reason(reason: str, message: str) -> MfxError:
    """An instance of ``error_class_for(reason)`` saying ``message`` (an MfxError carrying the
    reason when that class takes other arguments)."""
    cls = error_class_for(reason)
    if cls.__init__ is not MfxError.__init__:  # ValidationError, PluginExitedError: other fields
        return MfxError(message, reason=reason)
    return cls(message, reason=reason)
