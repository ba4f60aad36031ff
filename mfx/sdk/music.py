"""The music interfaces plugin authors implement: MusicSource, Codec, AudioProcessor,
UIExtension.

Each is a ``mfx.sdk.plugin.Plugin`` subclass with abstract methods; subclass it, set
``info`` and implement the abstract methods.

JSON in, JSON out (MusicSource and UIExtension): these methods are called by name through
``PluginInstance.call(method, params)``, over JSON-RPC for ``rpc`` plugins, so they take
JSON values (strings, numbers, enum values as strings, plain dicts) and return JSON values:
the wire form of the models in ``mfx.api.music`` (``model.wire()``: camelCase keys, ``None``
left out). The player re-validates every answer with ``Model.from_wire`` and never trusts a
plugin's shape. ``wire()`` below turns a model, or a list of models, into that form.

Arrays, not JSON (Codec and AudioProcessor): audio moves as float32 numpy arrays shaped
(frames, channels) with samples in [-1.0, 1.0]. Those interfaces are for in-process
plugins (``dynamic_library`` or ``hot_reload``); the sink converts float32 to its own
format (S16_LE, S24_LE, S32_LE, FLOAT_LE) at the very end, so processors never see integers.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from mfx.api.music import MusicModel
from mfx.errors import PluginError
from mfx.sdk.plugin import Plugin

JSON = Any  # a value orjson can encode


class UnsupportedOperationError(PluginError):
    """The plugin does not offer this optional operation (e.g. login on a local library)."""

    reason = "Unsupported"
    retryable = False


def wire(value: MusicModel | Sequence[MusicModel] | None) -> JSON:
    """The JSON form of a model, or of a list of models, for returning from a method."""
    if value is None:
        return None
    if isinstance(value, MusicModel):
        return value.wire()
    return [item.wire() for item in value]


class MusicSource(Plugin, abc.ABC):
    """A catalogue of songs: search, details, stream locations, lyrics; optionally accounts.

    Returns (wire form): ``search`` -> SearchResult, ``playlist_detail`` -> Playlist with
    ``songs`` resolved, ``song_detail`` -> Song, ``song_url`` -> str (a URL or an absolute
    local path), ``lyrics`` -> Lyrics or None. Unknown ids raise ``mfx.errors.NotFoundError``.
    """

    @abc.abstractmethod
    def search(self, query: str, type: str = "song", limit: int = 30, offset: int = 0) -> JSON:
        """``type`` is a ``SearchType`` value: song | album | artist | playlist."""

    @abc.abstractmethod
    def playlist_detail(self, id: str) -> JSON: ...

    @abc.abstractmethod
    def song_detail(self, id: str) -> JSON: ...

    @abc.abstractmethod
    def song_url(self, id: str, quality: str = "standard") -> str:
        """``quality`` is a ``Quality`` value; answer the best the source has up to it."""

    @abc.abstractmethod
    def lyrics(self, id: str) -> JSON: ...

    def browse(self, type: str = "song", limit: int = 100, offset: int = 0) -> JSON:
        """Every item of ``type`` the source holds, paged (-> SearchResult): what ``mfx library``
        and ``mfx playlists`` list. Optional: a source too large to list says so."""
        raise UnsupportedOperationError(f"{self.__class__.__name__} cannot list its catalogue: browse is not supported")

    # Account features: optional; the defaults say the source has none.

    def login(self, credentials: Mapping[str, str]) -> JSON:
        raise UnsupportedOperationError(f"{type(self).__name__} has no accounts: login is not supported")

    def user_playlists(self) -> JSON:
        raise UnsupportedOperationError(f"{type(self).__name__} has no accounts: user_playlists is not supported")

    def liked_songs(self) -> JSON:
        raise UnsupportedOperationError(f"{type(self).__name__} has no accounts: liked_songs is not supported")


class AudioStream(abc.ABC):
    """An open, seekable decoder for one file. Properties are fixed once open."""

    samplerate: int  # frames per second
    channels: int
    frames: int  # total frames (0 when unknown, e.g. a live stream)

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.samplerate if self.samplerate else 0.0

    @abc.abstractmethod
    def read(self, frames: int) -> Any:
        """Up to ``frames`` frames as float32 ndarray (n, channels); n == 0 at the end."""

    @abc.abstractmethod
    def seek(self, frame: int) -> int:
        """Move to ``frame`` (clamped to the stream); returns the new position."""

    def close(self) -> None:  # noqa: B027 - optional: streams without resources need nothing
        """Release the file; further reads are errors."""

    def __enter__(self) -> AudioStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Codec(Plugin, abc.ABC):
    """Decodes files into float32 blocks. Failures raise ``mfx.errors.DecodeError``
    (unreadable data) or ``mfx.errors.UnsupportedFormatError`` (not this codec's format)."""

    @abc.abstractmethod
    def formats(self) -> list[str]:
        """Lower-case file extensions without the dot: ["flac", "ogg", "mp3", ...]."""

    @abc.abstractmethod
    def open(self, path: str) -> AudioStream: ...


class AudioProcessor(Plugin, abc.ABC):
    """A stage between the codec and the sink (equaliser, volume, resampler...).

    ``process`` receives float32 (frames, channels) blocks and returns a block of the same
    shape unless the processor changes the rate or channel count on purpose (and says so in
    ``output_format``). It runs on the audio path: no I/O, no locks held long, no allocation
    you can avoid.
    """

    def __init__(self) -> None:
        super().__init__()
        self.volume = 1.0  # linear gain, 0.0..1.0
        self.enabled_effects: dict[str, dict[str, Any]] = {}

    @abc.abstractmethod
    def process(self, block: Any, sample_rate: int) -> Any: ...

    def effects(self) -> list[str]:
        """Names of the effects this processor offers."""
        return []

    def set_effect(self, name: str, params: Mapping[str, Any] | None = None) -> None:
        """Enable ``name`` with ``params``; ``None`` params disables it."""
        if name not in self.effects():
            raise UnsupportedOperationError(
                f"{type(self).__name__} has no effect {name!r}; it offers {self.effects()}"
            )
        if params is None:
            self.enabled_effects.pop(name, None)
        else:
            self.enabled_effects[name] = dict(params)

    def set_volume(self, volume: float) -> None:
        """Linear gain 0.0..1.0 (the player maps its 0-100 volume and mute onto it)."""
        if not 0.0 <= volume <= 1.0:
            raise ValueError(f"volume must be within 0.0..1.0, got {volume}")
        self.volume = float(volume)

    def output_format(self, sample_rate: int, channels: int) -> tuple[int, int]:
        """(rate, channels) of the blocks ``process`` returns for this input."""
        return sample_rate, channels


class UIExtension(Plugin, abc.ABC):
    """A panel in the player's user interfaces (``mfx tui`` and the web UI), hot-reloadable.

    The hosts call these methods by name (``PluginInstance.call``), so they take and return
    JSON values:

    - ``render(state)``: the panel's text for a ``PlayerState`` (wire form, as
      ``GET /apis/player.mfx.musicfox.io/v1/state`` answers it). Plain text; lines end with
      ``\\n``. Called at every change of the player's state, after every reload, and once a
      second while a song plays (``positionSeconds`` is then the host's running clock).
    - ``layout()``: where the panel goes: ``{"regions": [{"name": REGION, "rows": N,
      "title": TEXT}]}``; the first region counts. ``name`` is one of ``REGIONS``; ``rows``
      is the height of a top/bottom panel (or the width in columns of a left/right one).
    - ``keys()`` and ``handle_input(key)``: the keys the panel binds (Textual key names:
      ``"n"``, ``"ctrl+l"``, ``"f5"``; a host's own keys come first) and the action for one of
      them: ``"name"`` or ``"name:argument"`` with a name from ``ACTIONS``
      (``"next"``, ``"volume:+5"``, ``"seek:+10"``, ``"mode:shuffle"``), or None to ignore it.
    - ``themes()`` and ``theme(name)``: theme names the user can pick (``t`` in the TUI, the
      theme menu on the web) and each one's palette: colours as ``"#rrggbb"`` under
      ``PALETTE_KEYS`` (``primary`` required) and ``"dark": bool``.

    A hot_reload UIExtension's edits show while the hosts run: they ask ``layout``, ``keys`` and
    ``themes`` again after each reload, and keep the old panel when a reload is refused. The
    example is ``plugins/hello-hot``.
    """

    ACTIONS: ClassVar[frozenset[str]] = frozenset(
        {"play", "pause", "toggle", "stop", "next", "previous", "seek", "volume", "mute", "mode", "quit"}
    )
    REGIONS: ClassVar[tuple[str, ...]] = ("top", "bottom", "left", "right")
    PALETTE_KEYS: ClassVar[tuple[str, ...]] = (
        "primary", "secondary", "accent", "foreground", "background", "surface", "panel",
        "success", "warning", "error")

    @abc.abstractmethod
    def render(self, state: Mapping[str, Any]) -> str: ...

    @abc.abstractmethod
    def handle_input(self, key: str) -> str | None:
        """The action for ``key`` (``"name"`` or ``"name:argument"``), or None to ignore it."""

    def layout(self) -> JSON:
        """Where the panel goes, e.g. {"regions": [{"name": "bottom", "rows": 1, "title": "Status"}]}."""
        return {"regions": [{"name": "bottom", "rows": 1}]}

    def keys(self) -> list[str]:
        """The keys ``handle_input`` answers; the hosts send it no others."""
        return []

    def themes(self) -> list[str]:
        return []

    def theme(self, name: str) -> JSON:
        """The palette of theme ``name`` (one of ``themes()``)."""
        raise UnsupportedOperationError(f"unknown theme {name!r}; choose one of {self.themes()}")

