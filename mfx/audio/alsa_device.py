"""The one module that talks to ALSA (through pyalsaaudio).

``AlsaDevice.open`` opens a playback PCM with the requested parameters and reads back what
the device actually accepted (pyalsaaudio sets hardware parameters with "near" semantics and
never complains when they differ). Every ``ALSAAudioError`` and every negative return is
translated into the mfx error hierarchy by its errno meaning; the errno name is kept on the
error as ``errno_name`` so callers can count failures by kind.

libasound prints its own diagnostics to stderr; each device installs a handler that sends
them to the ``mfx.audio.alsa`` logger instead, and removes it again when it closes (the
handler is process-wide in libasound, so the installed callback must never outlive its
owner).

Configuration: libasound re-reads ``ALSA_CONFIG_PATH`` on every open (it compares the list
of configuration files and their modification times with the cached one), so one process
can switch between configurations; ``ALSA_TAP_FILE`` of a file-tap config is read on open too.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno as errno_module
import logging
import os
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from mfx.audio.formats import SampleFormat
from mfx.errors import (
    AudioError,
    DeviceBusyError,
    DeviceLostError,
    DeviceNotFoundError,
    UnderrunError,
    UnsupportedFormatError,
)

log = logging.getLogger("mfx.audio.alsa")

MAX_CHANNELS = 32


@dataclass(frozen=True)
class DeviceParams:
    """What is asked of a device, or what it accepted (same shape for both)."""

    device: str = "default"
    rate: int = 48000
    channels: int = 2
    format: SampleFormat = SampleFormat.S16_LE
    period_frames: int = 1024
    periods: int = 4

    def __post_init__(self) -> None:
        if not isinstance(self.format, SampleFormat):
            object.__setattr__(self, "format", SampleFormat.parse(str(self.format)))
        problems = []
        if not self.device:
            problems.append("device must be a non-empty ALSA PCM name such as 'default' or 'hw:0'")
        if not 1 <= int(self.rate) <= 1_536_000:
            problems.append(f"rate {self.rate} is out of range: use a sample rate in Hz, e.g. 48000")
        if not 1 <= int(self.channels) <= MAX_CHANNELS:
            problems.append(f"channels {self.channels} is out of range 1..{MAX_CHANNELS}")
        if int(self.period_frames) < 16:
            problems.append(f"periodFrames {self.period_frames} is too small: use at least 16")
        if int(self.periods) < 2:
            problems.append(f"bufferPeriods {self.periods} is too small: use at least 2")
        if problems:
            raise UnsupportedFormatError(f"device {self.device!r}: " + "; ".join(problems))

    @property
    def buffer_frames(self) -> int:
        return self.period_frames * self.periods

    @property
    def frame_bytes(self) -> int:
        return self.format.sample_bytes * self.channels

    @property
    def period_seconds(self) -> float:
        return self.period_frames / self.rate

    @property
    def buffer_seconds(self) -> float:
        return self.buffer_frames / self.rate

    def describe(self) -> str:
        return (f"rate={self.rate} format={self.format.value} channels={self.channels} "
                f"periodFrames={self.period_frames} bufferPeriods={self.periods}")


class PcmDevice(Protocol):
    """What the sink engine needs from a playback device (AlsaDevice, or a fault injector)."""

    requested: DeviceParams
    actual: DeviceParams

    def write(self, frames: np.ndarray) -> int:
        """Write interleaved frames (rows of the device dtype); returns frames accepted.

        Raises UnderrunError when the device ran dry (the frames were NOT played and the
        device is already prepared again), DeviceLostError when it went away.
        """
        ...

    def avail(self) -> int: ...

    def drain(self) -> None: ...

    def drop(self) -> None: ...

    def close(self) -> None: ...


# --- Error translation -------------------------------------------------------------------

_ERRNO_BY_MESSAGE = {os.strerror(code): code for code in errno_module.errorcode}


def errno_name_of(message: str) -> str:
    """The errno name (``EPIPE``, ``EIO``...) behind an ALSA message ``"<strerror> [<pcm>]"``."""
    text = message.rsplit(" [", 1)[0].strip()
    code = _ERRNO_BY_MESSAGE.get(text)
    return errno_module.errorcode[code] if code is not None else "UNKNOWN"


def translate_error(message: str, device: str, *, opening: bool,
                    params: DeviceParams | None = None) -> AudioError:
    """Turn an ALSA failure message into the mfx error for what happened.

    ``opening`` says whether the PCM was being opened (a missing device is then "not found")
    or already playing (a device that disappears under a stream is "lost").
    """
    name = errno_name_of(message)
    asked = f" (asked {params.describe()})" if params is not None else ""
    error: AudioError
    if name == "EPIPE":
        error = UnderrunError(f"device {device!r} ran dry (underrun); the stream was prepared again")
    elif name == "EBUSY":
        error = DeviceBusyError(
            f"device {device!r} is busy: another program holds it; close that program or "
            "use a shared device such as 'default' or a dmix/pulse PCM")
    elif name in ("ENOENT", "ENODEV", "ENXIO") and opening:
        error = DeviceNotFoundError(
            f"device {device!r} not found ({message}): list the PCM names with "
            "'aplay -L' or alsaaudio.pcms() and set spec.device to one of them")
    elif name in ("ENOENT", "ENODEV", "ENXIO", "EIO", "ECONNREFUSED", "EBADFD", "ESTRPIPE",
                  "ENOTCONN", "ECONNRESET", "ESHUTDOWN"):
        error = DeviceLostError(
            f"device {device!r} is gone ({message}); it is reopened when it comes back")
    elif name == "EINVAL" and opening:
        error = UnsupportedFormatError(
            f"device {device!r} refused the parameters{asked}: {message}; try another rate, "
            "format or channel count, or a 'plug' PCM that converts")
    else:
        error = AudioError(f"device {device!r}: {message}")
    error.errno_name = name  # type: ignore[attr-defined]
    return error


def errno_name(error: BaseException) -> str:
    """The errno name recorded on a translated error, ``UNKNOWN`` for anything else."""
    return str(getattr(error, "errno_name", "UNKNOWN"))


# --- libasound diagnostics -----------------------------------------------------------------

# void (*)(const char *file, int line, const char *function, int err, const char *fmt, ...)
_ERROR_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                                  ctypes.c_int, ctypes.c_char_p)


class _LibAsoundLog:
    """Routes libasound's stderr diagnostics to a logger while installed."""

    def __init__(self) -> None:
        path = ctypes.util.find_library("asound") or "libasound.so.2"
        self._lib = ctypes.CDLL(path)
        self._callback = _ERROR_HANDLER(self._on_error)  # referenced here so it stays alive

    @staticmethod
    def _on_error(file: bytes | None, line: int, function: bytes | None, err: int,
                  fmt: bytes | None) -> None:
        log.debug("libasound %s:%d %s: %s (err %d)", (file or b"").decode(errors="replace"), line,
                  (function or b"").decode(errors="replace"), (fmt or b"").decode(errors="replace"), err)

    def install(self) -> None:
        self._lib.snd_lib_error_set_handler(self._callback)

    def uninstall(self) -> None:
        self._lib.snd_lib_error_set_handler(None)


# --- The device ------------------------------------------------------------------------------


@dataclass
class AlsaDevice:
    """An open ALSA playback PCM. Not thread-safe: one thread writes (the sink's writer)."""

    requested: DeviceParams
    actual: DeviceParams
    _pcm: object = field(repr=False)
    _log: _LibAsoundLog = field(repr=False)
    _closed: bool = False

    @classmethod
    def open(cls, params: DeviceParams, *, strict: bool = True) -> AlsaDevice:
        """Open ``params.device`` for playback.

        With ``strict`` (the default) a device that accepts a different rate, format or
        channel count than asked is closed again and UnsupportedFormatError says what was
        asked and what the device offered. Period size and count may always differ: the
        device's choice is in ``actual``.
        """
        import alsaaudio  # the only import of the extension in mfx

        diagnostics = _LibAsoundLog()
        diagnostics.install()
        try:
            pcm = alsaaudio.PCM(
                type=alsaaudio.PCM_PLAYBACK, mode=alsaaudio.PCM_NORMAL, device=params.device,
                rate=params.rate, channels=params.channels, format=params.format.alsa_code,
                periodsize=params.period_frames, periods=params.periods)
        except alsaaudio.ALSAAudioError as exc:
            diagnostics.uninstall()
            raise translate_error(str(exc), params.device, opening=True, params=params) from None
        info = pcm.info()
        fmt = SampleFormat.from_alsa_code(int(info["format"]))
        offered = (f"rate={info['rate']} format={info.get('format_name', info['format'])} "
                   f"channels={info['channels']}")
        mismatch = (fmt is None or fmt != params.format or int(info["rate"]) != params.rate
                    or int(info["channels"]) != params.channels)
        if mismatch and (strict or fmt is None):
            pcm.close()
            diagnostics.uninstall()
            raise UnsupportedFormatError(
                f"device {params.device!r} does not accept the requested parameters: asked "
                f"rate={params.rate} format={params.format.value} channels={params.channels}, "
                f"device offered {offered}; change spec.rate/format/channels to what the device "
                "offers, or use a 'plug' PCM that converts")
        actual = replace(
            params, rate=int(info["rate"]), channels=int(info["channels"]),
            format=fmt or params.format, period_frames=int(info["period_size"]),
            periods=max(2, int(info["periods"])))
        return cls(requested=params, actual=actual, _pcm=pcm, _log=diagnostics)

    def write(self, frames: np.ndarray) -> int:
        import alsaaudio

        try:
            written = int(self._pcm.write(np.ascontiguousarray(frames)))  # type: ignore[attr-defined]
        except alsaaudio.ALSAAudioError as exc:
            raise translate_error(str(exc), self.actual.device, opening=False) from None
        if written < 0:
            raise translate_error(os.strerror(-written), self.actual.device, opening=False)
        return written

    def avail(self) -> int:
        """Free space in the device buffer in frames (negative errno when in a bad state)."""
        return int(self._pcm.avail())  # type: ignore[attr-defined]

    def drain(self) -> None:
        """Block until everything written has been played."""
        self._call("drain")

    def drop(self) -> None:
        """Stop at once, discarding what is queued; the next write prepares the stream again."""
        self._call("drop")

    def recover(self) -> None:
        """Reset a stream left in a bad state (after an xrun or a suspend)."""
        self.drop()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._pcm.close()  # type: ignore[attr-defined]
        except Exception as exc:  # closing a lost device may fail; it is released either way
            log.debug("closing %s: %s", self.actual.device, exc)
        finally:
            self._log.uninstall()

    def _call(self, method: str) -> None:
        import alsaaudio

        try:
            getattr(self._pcm, method)()
        except alsaaudio.ALSAAudioError as exc:
            raise translate_error(str(exc), self.actual.device, opening=False) from None

    def __del__(self) -> None:
        if not self._closed:
            self.close()


def list_devices() -> list[str]:
    """PCM names the current ALSA configuration shows (those with a ``hint { show on }``)."""
    import alsaaudio

    return list(alsaaudio.pcms(alsaaudio.PCM_PLAYBACK))
