"""Whether an ALSA PCM plays in real time, read from the ALSA configuration that defines it.

A ``null`` PCM discards samples as fast as they come, and every plugin that only forwards to
a slave (``file``, ``plug``, ``linear``, ``route``, ...) is as fast as its slave: the file
tap (``type file`` over ``null``) takes a second of audio in a fraction of a millisecond.
Everything else ends in something with a clock of its own (``hw``, ``pulse``, ``dmix`` over
``hw``...), which blocks a writer until there is room.

The definition is looked up with libasound's own resolver (``snd_config_search_definition``
expands aliases, arguments such as ``hw:0`` and ``@func`` values), so ``default`` resolves
to what a PCM open of ``default`` gets, without opening anything: a second open would
truncate a file tap or fail on a busy card. Reading the configuration, unlike timing a few
writes, gives the answer before the first sample is written.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("mfx.audio.alsa")

# PCM types that play nothing in real time; every other type without a slave has a clock.
UNPACED_TYPES = frozenset({"null"})
# A chain of plugins longer than this is a configuration loop, not a device.
MAX_CHAIN = 16

_STRING = 3  # SND_CONFIG_TYPE_STRING

_Config = ctypes.c_void_p


def _libasound() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("asound") or "libasound.so.2")
    lib.snd_config_update_ref.argtypes = [ctypes.POINTER(_Config)]
    lib.snd_config_unref.argtypes = [_Config]
    lib.snd_config_search_definition.argtypes = [_Config, ctypes.c_char_p, ctypes.c_char_p,
                                                 ctypes.POINTER(_Config)]
    lib.snd_config_search.argtypes = [_Config, ctypes.c_char_p, ctypes.POINTER(_Config)]
    lib.snd_config_get_string.argtypes = [_Config, ctypes.POINTER(ctypes.c_char_p)]
    lib.snd_config_get_type.argtypes = [_Config]
    lib.snd_config_delete.argtypes = [_Config]
    return lib


def pcm_chain(name: str) -> list[str] | None:
    """The plugin types from ``name`` down to the PCM that plays (e.g. ``['file', 'null']``),
    or None when the configuration does not define ``name``."""
    try:
        lib = _libasound()
    except OSError as exc:
        log.debug("libasound not loadable: %s", exc)
        return None
    top = _Config()
    if lib.snd_config_update_ref(ctypes.byref(top)) < 0:
        return None
    try:
        return _chain_of_name(lib, top, name, 0)
    finally:
        lib.snd_config_unref(top)


def pcm_paces_itself(name: str) -> bool | None:
    """Whether writes to PCM ``name`` block in real time; None when it cannot be told."""
    chain = pcm_chain(name)
    if not chain:
        return None
    return chain[-1] not in UNPACED_TYPES


def _chain_of_name(lib: ctypes.CDLL, top: _Config, name: str, depth: int) -> list[str] | None:
    if depth >= MAX_CHAIN:
        return None
    conf = _Config()
    if lib.snd_config_search_definition(top, b"pcm", name.encode(), ctypes.byref(conf)) < 0:
        return None
    try:  # the definition is an expanded copy, ours to delete
        return _chain_of_node(lib, top, conf, depth)
    finally:
        lib.snd_config_delete(conf)


def _chain_of_node(lib: ctypes.CDLL, top: _Config, conf: _Config, depth: int) -> list[str] | None:
    if depth >= MAX_CHAIN:
        return None
    if lib.snd_config_get_type(conf) == _STRING:  # a reference by name: "null", "hw:0"
        return _chain_of_name(lib, top, _string(lib, conf) or "", depth + 1)
    node = _Config()
    if lib.snd_config_search(conf, b"type", ctypes.byref(node)) < 0:
        return None
    kind = _string(lib, node)
    if kind is None:
        return None
    slave = _Config()
    if lib.snd_config_search(conf, b"slave.pcm", ctypes.byref(slave)) >= 0:
        rest = _chain_of_node(lib, top, slave, depth + 1)
    elif (lib.snd_config_search(conf, b"slave", ctypes.byref(slave)) >= 0
          and lib.snd_config_get_type(slave) == _STRING):
        rest = _chain_of_node(lib, top, slave, depth + 1)
    else:
        return [kind]
    return [kind, *rest] if rest is not None else None


def _string(lib: ctypes.CDLL, node: _Config) -> str | None:
    value = ctypes.c_char_p()
    if lib.snd_config_get_string(node, ctypes.byref(value)) < 0 or value.value is None:
        return None
    return value.value.decode(errors="replace")
