"""The ALSA file tap: what a machine without a sound card plays into.

libasound reads ``ALSA_CONFIG_PATH`` when a PCM is opened, in the process that opens it, and
a configuration named there replaces the system's. The tap's configuration makes ALSA's
``default`` device a ``file`` PCM over ``null``: every sample played lands, unpaced, in one
raw file (truncated on each open), which ``aplay`` plays back on a machine with sound.

The daemon sets the tap up under ``$MFX_HOME/audio`` when the machine has no sound card and
``ALSA_CONFIG_PATH`` is not set (``plan``); the sink names it when it opens the device
(``opened_note``), and a device that cannot be found is explained by what is missing
(``explain_missing_device``).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mfx.audio.alsa_device import DeviceParams

CARDS = Path("/proc/asound/cards")
# The first line of a configuration written here; it names the output file, so whoever opens
# a device can tell that it plays into this tap and where.
MARKER = "# mfx file tap: "
TAP_DEVICES = ("default", "tap")

_CONFIG = """\
{marker}{output}
# Written by the mfx daemon because this machine has no sound card: ALSA's default device
# writes raw samples into the file above. Listen elsewhere with aplay (see 'mfx describe sink').
pcm.null {{ type null  hint {{ show on description "Discard all samples" }} }}
pcm.tap {{
    type file
    slave.pcm "null"
    file "{quoted}"
    format "raw"
    hint {{ show on description "Raw samples to {quoted}" }}
}}
pcm.!default "tap"
"""


@dataclass(frozen=True)
class FileTap:
    config: Path  # what ALSA_CONFIG_PATH points at
    output: Path  # where the samples land

    @classmethod
    def under(cls, home: Path) -> FileTap:
        audio = home / "audio"
        config = audio / "alsa-file-tap.conf"
        if not _fits_config_path(config):
            # libasound splits ALSA_CONFIG_PATH at whitespace and ':': a home such as
            # "/home/Jo Doe/..." keeps its output there but its configuration in a private
            # folder of the temporary directory, one per home.
            digest = hashlib.sha256(str(home).encode()).hexdigest()[:16]
            config = Path(tempfile.gettempdir()) / f"mfx-{os.getuid()}-{digest}" / "alsa-file-tap.conf"
        return cls(config=config, output=audio / "output.raw")

    def write(self) -> None:
        self.config.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.output.parent.mkdir(parents=True, exist_ok=True)
        # Inside an ALSA string a quote or backslash of the path must be escaped.
        quoted = str(self.output).replace("\\", "\\\\").replace('"', '\\"')
        self.config.write_text(_CONFIG.format(marker=MARKER, output=self.output, quoted=quoted))

    def listen_command(self, params: DeviceParams | None = None) -> str:
        """The aplay command that plays the output back (the sink's format, else the default one)."""
        p = params or DeviceParams()
        return f"aplay -f {p.format.value} -r {p.rate} -c {p.channels} {self.output}"


def _fits_config_path(path: Path) -> bool:
    return not any(c.isspace() or c == ":" for c in str(path))


def has_sound_card(cards: Path = CARDS) -> bool:
    try:
        text = cards.read_text()
    except OSError:
        return False
    return bool(text.strip()) and "no soundcards" not in text


def plan(home: Path, environ: Mapping[str, str], *, cards: Path = CARDS) -> FileTap | None:
    """The tap a daemon of ``home`` plays into, or None when ALSA has devices of its own:
    a sound card, or a configuration the user chose with ``ALSA_CONFIG_PATH`` (which wins)."""
    if environ.get("ALSA_CONFIG_PATH") or has_sound_card(cards):
        return None
    return FileTap.under(home)


def tap_in_force(environ: Mapping[str, str]) -> FileTap | None:
    """The tap ``ALSA_CONFIG_PATH`` points at, if it is one written by ``FileTap.write``."""
    config = environ.get("ALSA_CONFIG_PATH")
    if not config:
        return None
    try:
        with open(config, encoding="utf-8") as file:
            first = file.readline().rstrip("\n")
    except (OSError, UnicodeDecodeError):
        return None
    if not first.startswith(MARKER):
        return None
    return FileTap(config=Path(config), output=Path(first.removeprefix(MARKER)))


def opened_note(params: DeviceParams, environ: Mapping[str, str]) -> str:
    """What to add to "device opened" when the device is the file tap: where the sound goes."""
    tap = tap_in_force(environ)
    if tap is None or params.device not in TAP_DEVICES:
        return ""
    return (f"; no sound card: plays into the ALSA file tap {tap.output} "
            f"(listen with: {tap.listen_command(params)})")


def explain_missing_device(device: str, environ: Mapping[str, str], *, cards: Path = CARDS) -> str:
    """Why ALSA has no device called ``device``, and what to do about it."""
    tap = tap_in_force(environ)
    config = environ.get("ALSA_CONFIG_PATH")
    if tap is not None:
        return (f"device {device!r} not found: this machine has no sound card, and the daemon's "
                f"file tap ({tap.config}) has only the devices {', '.join(map(repr, TAP_DEVICES))}; "
                "set spec.device to 'default'")
    if config:
        return (f"device {device!r} not found: the ALSA configuration in ALSA_CONFIG_PATH "
                f"({config}) does not define it; define it there, or set spec.device to a PCM it "
                f"defines (list them with: ALSA_CONFIG_PATH={config} aplay -L)")
    if not has_sound_card(cards):
        return (f"device {device!r} not found: this machine has no sound card ({cards} lists "
                "none) and ALSA_CONFIG_PATH is not set, so ALSA has no device to open; restart "
                "'mfx serve' without --no-file-tap to play into a file tap under $MFX_HOME/audio, "
                "or set ALSA_CONFIG_PATH to an ALSA configuration (e.g. a PulseAudio PCM) before "
                "starting it")
    return (f"device {device!r} not found: list the PCM names with 'aplay -L' and set "
            "spec.device to one of them")
