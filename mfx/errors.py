"""The one error hierarchy of mfx.

Every failure a user can see is an ``MfxError``. Library exceptions (sqlite3, httpx,
wasmtime, alsaaudio, ...) are translated at the boundary of the module that calls the
library, so nothing untranslated reaches the CLI, the API or a condition message.

Each error carries a ``reason`` (a short CamelCase word, as in Kubernetes conditions and
Status objects) and, where it maps onto HTTP, the status ``code`` the API answers with.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class MfxError(Exception):
    """Base of every mfx error."""

    reason: str = "InternalError"
    code: int = 500

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason

    def __str__(self) -> str:
        return self.message


# --- API and store -------------------------------------------------------------------


class NotFoundError(MfxError):
    reason = "NotFound"
    code = 404


class AlreadyExistsError(MfxError):
    reason = "AlreadyExists"
    code = 409


class ConflictError(MfxError):
    """An update carried a stale resourceVersion (optimistic concurrency)."""

    reason = "Conflict"
    code = 409


class GoneError(MfxError):
    """A watch asked for a resourceVersion that has been compacted away (HTTP 410)."""

    reason = "Expired"
    code = 410


class UnauthorizedError(MfxError):
    reason = "Unauthorized"
    code = 401


class BadRequestError(MfxError):
    reason = "BadRequest"
    code = 400


@dataclass(frozen=True)
class FieldError:
    """One problem in one document: where it is and what was expected."""

    path: str  # field path, e.g. "spec.dependencies[0].version"
    message: str  # what is wrong and what was expected
    file: str | None = None  # file name as the user gave it
    line: int | None = None  # 1-based line of the field in that file
    column: int | None = None  # 1-based column (YAML syntax errors)
    document: int | None = None  # 0-based index of the document in a multi-document file

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


class ValidationError(MfxError):
    """One or more documents are invalid; ``errors`` lists every problem found (HTTP 422)."""

    reason = "Invalid"
    code = 422

    def __init__(self, errors: list[FieldError], *, kind: str = "", name: str = "") -> None:
        self.errors = list(errors)
        self.kind = kind
        self.name = name
        super().__init__("\n".join(str(e) for e in self.errors) or "invalid")


@dataclass
class ErrorList:
    """Collects field errors so every problem is reported at once."""

    items: list[FieldError] = field(default_factory=list)

    def add(self, path: str, message: str, **where: object) -> None:
        self.items.append(FieldError(path=path, message=message, **where))  # type: ignore[arg-type]

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self, *, kind: str = "", name: str = "") -> None:
        if self.items:
            raise ValidationError(self.items, kind=kind, name=name)


class InvalidSelectorError(BadRequestError, ValueError):
    """A label selector that does not parse; also a ValueError for callers outside the API."""

    reason = "InvalidSelector"


class StoreError(MfxError):
    """The store file cannot be opened, read or written (disk full, corrupt, newer schema)."""

    reason = "StoreUnavailable"
    code = 503


# --- Daemon and client ---------------------------------------------------------------


class DaemonUnavailableError(MfxError):
    reason = "DaemonUnavailable"
    code = 503


class DaemonAlreadyRunningError(MfxError):
    reason = "AlreadyRunning"
    code = 409


# --- Plugins ---------------------------------------------------------------------------
# The seed's taxonomy (load, init, runtime, timeout, resource, security) as classes; the
# reason names what happened precisely and ends up in the plugin's conditions.


class PluginError(MfxError):
    reason = "PluginError"
    retryable: bool = True  # transient: restart/backoff may help; False: Stalled until the spec changes


class PluginLoadError(PluginError):
    reason = "LoadFailed"


class EntryPointNotFoundError(PluginLoadError):
    reason = "EntryPointNotFound"
    retryable = False


class HandshakeError(PluginLoadError):
    reason = "HandshakeFailed"


class PluginInitError(PluginError):
    reason = "InitializeFailed"


class InvalidConfigError(PluginError):
    reason = "InvalidConfig"
    retryable = False


class PluginRuntimeError(PluginError):
    """A call into a running plugin failed (its own error, a crash, a trap)."""

    reason = "RuntimeError"


class PluginCrashedError(PluginRuntimeError):
    reason = "Crashed"


class PluginTimeoutError(PluginRuntimeError):
    reason = "DeadlineExceeded"


class ResourceLimitError(PluginRuntimeError):
    reason = "ResourceLimitExceeded"


class OutOfFuelError(ResourceLimitError):
    reason = "OutOfFuel"


class MemoryLimitExceededError(ResourceLimitError):
    reason = "MemoryLimitExceeded"


class TrapError(PluginRuntimeError):
    reason = "Trap"


class CircuitOpenError(PluginRuntimeError):
    reason = "CircuitOpen"


class ProtocolError(PluginRuntimeError):
    """Malformed, oversized or unexpected messages from a plugin."""

    reason = "ProtocolError"


class SecurityError(PluginError):
    reason = "SecurityViolation"
    retryable = False


class ChecksumMismatchError(SecurityError):
    reason = "ChecksumMismatch"


class SignatureError(SecurityError):
    reason = "SignatureInvalid"


class UntrustedSourceError(SecurityError):
    reason = "Untrusted"


class PackageError(SecurityError):
    reason = "InvalidPackage"


class AbiMismatchError(PluginLoadError):
    """A plugin does not follow the ABI of this mfx (a C library built against another
    ``mfx_plugin.h``, a WebAssembly module without the ABI's exports): permanent in every
    runtime."""

    reason = "AbiMismatch"
    retryable = False


# --- Audio -----------------------------------------------------------------------------


class AudioError(MfxError):
    reason = "AudioError"


class DeviceBusyError(AudioError):
    reason = "DeviceBusy"


class DeviceLostError(AudioError):
    reason = "DeviceLost"


class DeviceNotFoundError(AudioError):
    reason = "DeviceNotFound"


class UnsupportedFormatError(AudioError):
    reason = "UnsupportedFormat"


class UnderrunError(AudioError):
    reason = "Underrun"


class DecodeError(MfxError):
    reason = "DecodeFailed"


# --- Sources -----------------------------------------------------------------------------


class GitError(MfxError):
    reason = "GitOperationFailed"


class RequestEntityTooLargeError(BadRequestError):
    """A request body over the API's size limit (HTTP 413); refused before it is parsed."""

    reason = "RequestEntityTooLarge"
    code = 413


# --- Player ----------------------------------------------------------------------------------


class NoSourceAnsweredError(MfxError):
    """No MusicSource answered a catalogue request: none is Ready, or every one failed or
    timed out (HTTP 503: nothing was searched, which is not the same as nothing found)."""

    reason = "NoSourceAnswered"
    code = 503


class NoSinkError(MfxError):
    """The player has no AudioSink to play to; the message says why (HTTP 503)."""

    reason = "NoSink"
    code = 503


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
