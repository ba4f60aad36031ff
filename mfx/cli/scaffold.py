"""``mfx plugin init``: a new plugin folder of each type that applies and becomes Ready unchanged.

Each scaffold is a ``plugin.yaml`` (a PluginManifest: version 0.1.0, interfaces, a config
with its JSON Schema, limits, health check and restart policy), the smallest source that
implements the type's contract, and a README with the commands that come next:

- ``rpc``: a Python package run as ``python -m PKG``: a ``mfx.sdk.Plugin`` subclass served
  with ``mfx.sdk.serve`` (a greeter);
- ``dynamic_library``: an in-process Python module, ``python:PKG.plugin:Class``
  (an ``AudioProcessor`` applying a gain);
- ``hot_reload``: the same shape, a ``UIExtension`` whose ``render`` can be edited while the
  daemon runs;
- ``webassembly``: a WAT module implementing the mfx WebAssembly ABI
  (``plugins/include/mfx_wasm_abi.md``), with a Makefile that compiles it with
  ``wasmtime.wat2wasm`` under this interpreter; ``init`` compiles it once so it is ready.
"""

from __future__ import annotations

import keyword
import re
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mfx.api.validation import DNS1123_LABEL
from mfx.errors import BadRequestError, PluginLoadError

TYPES = ("rpc", "webassembly", "dynamic_library", "hot_reload")
VERSION = "0.1.0"


@dataclass(frozen=True)
class Names:
    plugin: str  # my-gain
    package: str  # my_gain: the Python package, or the .wat/.wasm file stem
    cls: str  # MyGainProcessor
    parent: str  # the folder holding the plugin's folder, as the user named it

    @classmethod
    def of(cls, name: str, suffix: str, parent: str = "DIR") -> Names:
        if len(name) > 63 or not DNS1123_LABEL.match(name):
            raise BadRequestError(
                f'"{name}" is not a valid plugin name: use lowercase letters, digits and "-", starting '
                "and ending with a letter or digit, at most 63 characters (e.g. my-gain)")
        package = name.replace("-", "_")
        if package[0].isdigit():
            package = "plugin_" + package
        # A package named like a standard module (or mfx) would shadow it in the plugin's process.
        if package in sys.stdlib_module_names or keyword.iskeyword(package) or package == "mfx":
            package += "_plugin"
        words = re.split(r"[-_]", name)
        camel = "".join(w[:1].upper() + w[1:] for w in words if w)
        if camel[0].isdigit():
            camel = "Plugin" + camel
        return cls(plugin=name, package=package, cls=camel + suffix, parent=parent)


def _manifest(names: Names, *, type_: str, entry_point: str, description: str, interfaces: str,
              config: str, config_schema: str, limits: str, security: str = "",
              health: str = "{interval: 10s, timeout: 2s, failureThreshold: 3}") -> str:
    security_block = f"  security:\n{textwrap.indent(security, '    ')}" if security else ""
    config_block = f"  config:\n{textwrap.indent(config, '    ')}" if config else "  config: {}\n"
    return f"""\
apiVersion: mfx.musicfox.io/v1alpha1
kind: PluginManifest
metadata:
  name: {names.plugin}
spec:
  version: {VERSION}
  type: {type_}
  entryPoint: {entry_point}
  description: {description}
  interfaces: [{interfaces}]
{config_block}  configSchema:
{textwrap.indent(config_schema, '    ')}  resources:
    limits: {limits}
{security_block}  healthCheck: {health}
  restartPolicy:
    policy: Always
    backoff: {{initial: 1s, max: 5m}}
"""


def _readme(names: Names, type_: str, what: str, build: str = "", edit: str = "") -> str:
    parent = names.parent
    return f"""\
# {names.plugin}

{what}

Made by `mfx plugin init {names.plugin} --type {type_}`. The manifest is `plugin.yaml`
(`mfx explain pm.spec` describes every field).
{build}
## Run it

With the daemon looking for plugins in the folder that holds this one ({parent}):

```sh
mfx serve --plugin-path {parent} &
mfx apply -f {parent}/{names.plugin}/plugin.yaml
mfx wait --for=condition=Ready pm/{names.plugin} --timeout=60s
mfx describe pm {names.plugin}
```
{edit}
## Package, sign and install it

Keep the private key outside the plugin folder (everything in the folder is packed):

```sh
mfx plugin keygen ~/.config/mfx/signing.key ~/.config/mfx/signing.pub
mfx trust add me ~/.config/mfx/signing.pub         # once per daemon
mfx plugin pack {parent}/{names.plugin} --key ~/.config/mfx/signing.key
mfx plugin verify {names.plugin}-{VERSION}.tgz
mfx plugin install {names.plugin}-{VERSION}.tgz
```

Release a new build under a new `spec.version`; `mfx rollback pm/{names.plugin}` goes back to
the version before.
"""


# --- rpc -----------------------------------------------------------------------------------


def _rpc(names: Names) -> dict[str, str]:
    package = names.package
    return {
        "plugin.yaml": _manifest(
            names, type_="rpc", entry_point=f"python -m {package}",
            description="Greets by name; an out-of-process RPC plugin.",
            interfaces="Greeter",
            config="greeting: Hello\n",
            config_schema="type: object\nproperties:\n  greeting: {type: string, minLength: 1}\n"
                          "additionalProperties: false\n",
            limits="{memory: 256Mi, timeout: 5s, openFiles: 256, maxMessageSize: 1Mi}"),
        f"{package}/__init__.py": f'"""{names.plugin}: an mfx RPC plugin."""\n',
        f"{package}/plugin.py": f'''\
"""The plugin class: lifecycle methods for the daemon, public methods for callers.

Public methods (no leading underscore) are callable over JSON-RPC, e.g.
``greet("Ada")`` -> ``"Hello, Ada!"``. Logging goes to stderr, which the daemon forwards
into the plugin's log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from mfx.sdk import Plugin, PluginInfo

log = logging.getLogger(__name__)


class {names.cls}(Plugin):
    info = PluginInfo(name="{names.plugin}", version="{VERSION}",
                      description="Greets by name.", interfaces=("Greeter",))

    def __init__(self) -> None:
        super().__init__()
        self._greeting = "Hello"
        self._started = False
        self._greeted = 0

    def initialize(self, config: Mapping[str, Any]) -> None:
        self.update_config(config)

    def update_config(self, config: Mapping[str, Any]) -> None:
        greeting = config.get("greeting", "Hello")
        if not isinstance(greeting, str) or not greeting:
            raise ValueError(f"config.greeting must be a non-empty string, got {{greeting!r}}")
        super().update_config(config)
        self._greeting = greeting

    def start(self) -> None:
        self._started = True
        log.info("{names.plugin} started")

    def health(self) -> dict[str, Any]:
        if not self._started:
            raise RuntimeError("not started yet")
        return {{"greeted": self._greeted}}

    def greet(self, name: str = "world") -> str:
        self._greeted += 1
        return f"{{self._greeting}}, {{name}}!"
''',
        f"{package}/__main__.py": f'''\
"""Entry point: ``python -m {package}`` (started by the mfx daemon, not by hand)."""

from mfx.sdk import serve
from {package}.plugin import {names.cls}

serve({names.cls}())
''',
        "README.md": _readme(
            names, "rpc",
            f"An RPC plugin: the daemon starts `python -m {package}` as its own process (scrubbed "
            f"environment, resource limits) and talks JSON-RPC to it over a unix socket. The plugin "
            f"class is `{package}/plugin.py`."),
    }


# --- dynamic_library (a Python module) ----------------------------------------------------------


def _dynamic_library(names: Names) -> dict[str, str]:
    package = names.package
    return {
        "plugin.yaml": _manifest(
            names, type_="dynamic_library", entry_point=f"python:{package}.plugin:{names.cls}",
            description="Applies a gain to the audio; an in-process Python plugin.",
            interfaces="AudioProcessor",
            config="gain: 1.0\n",
            config_schema="type: object\nproperties:\n  gain: {type: number, minimum: 0, maximum: 4}\n"
                          "additionalProperties: false\n",
            limits="{timeout: 1s, maxConcurrency: 8}"),
        f"{package}/__init__.py": f'"""{names.plugin}: an in-process mfx plugin."""\n',
        f"{package}/plugin.py": f'''\
"""An AudioProcessor that scales every sample by ``config.gain`` times the player's volume.

It runs inside the daemon (``type: dynamic_library``): keep ``process`` fast. Modules of
this package import each other relatively (``from .helpers import ...``): the daemon
imports the package under a private name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mfx.sdk.music import AudioProcessor
from mfx.sdk.plugin import PluginInfo


class {names.cls}(AudioProcessor):
    info = PluginInfo(name="{names.plugin}", version="{VERSION}",
                      description="Applies a gain.", interfaces=("AudioProcessor",))

    def __init__(self) -> None:
        super().__init__()
        self._gain = 1.0
        self._blocks = 0

    def initialize(self, config: Mapping[str, Any]) -> None:
        super().initialize(config)
        self._gain = float(config.get("gain", 1.0))

    def update_config(self, config: Mapping[str, Any]) -> None:
        self.initialize(config)

    def health(self) -> dict[str, Any]:
        return {{"ok": True, "blocks": self._blocks}}

    def process(self, block: Any, sample_rate: int) -> Any:
        """float32 (frames, channels) in, the same shape out."""
        self._blocks += 1
        return block * (self._gain * self.volume)

    def gain(self) -> float:
        return self._gain
''',
        "README.md": _readme(
            names, "dynamic_library",
            f"An in-process plugin (`type: dynamic_library`, entry point "
            f"`python:{package}.plugin:{names.cls}`): the daemon imports `{package}/plugin.py` "
            "and calls it directly, with no isolation. Use it for trusted, fast code such as "
            "audio processing; use `rpc` or `webassembly` otherwise."),
    }


# --- hot_reload --------------------------------------------------------------------------------


def _hot_reload(names: Names) -> dict[str, str]:
    package = names.package
    return {
        "plugin.yaml": _manifest(
            names, type_="hot_reload", entry_point=f"python:{package}.plugin:{names.cls}",
            description="A one-line status view (UIExtension), reloaded when its source changes.",
            interfaces="UIExtension",
            config="width: 60\n",
            config_schema="type: object\nproperties:\n  width: {type: integer, minimum: 20, maximum: 400}\n"
                          "additionalProperties: false\n",
            limits="{timeout: 1s}",
            health="{interval: 10s, timeout: 1s, failureThreshold: 3}"),
        f"{package}/__init__.py": f'"""{names.plugin}: a hot-reloaded mfx UIExtension."""\n',
        f"{package}/plugin.py": f'''\
"""Renders the player state as one line. Edit ``render`` while the daemon runs: the new
version is loaded, checked and swapped in, keeping ``export_state()``; a broken edit leaves
the old version running.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mfx.sdk.music import UIExtension
from mfx.sdk.plugin import PluginInfo

_KEYS = {{" ": "toggle", "n": "next", "p": "previous", "q": "quit"}}


class {names.cls}(UIExtension):
    info = PluginInfo(name="{names.plugin}", version="{VERSION}",
                      description="One-line status view.", interfaces=("UIExtension",))

    def __init__(self) -> None:
        super().__init__()
        self._width = 60
        self._rendered = 0

    def initialize(self, config: Mapping[str, Any]) -> None:
        super().initialize(config)
        self._width = int(config.get("width", 60))

    def update_config(self, config: Mapping[str, Any]) -> None:
        self.initialize(config)

    def health(self) -> dict[str, Any]:
        return {{"ok": True, "rendered": self._rendered}}

    def render(self, state: Mapping[str, Any]) -> str:
        self._rendered += 1
        song = state.get("current") or {{}}
        line = f"{{state.get('status', 'stopped')}}: {{song.get('title', 'nothing playing')}}"
        return line[: self._width]

    def handle_input(self, key: str) -> str | None:
        return _KEYS.get(key)

    def export_state(self) -> Any:
        return {{"rendered": self._rendered}}

    def import_state(self, state: Any) -> None:
        if isinstance(state, dict):
            self._rendered = int(state.get("rendered", 0))
''',
        "README.md": _readme(
            names, "hot_reload",
            f"A hot-reloaded plugin (`type: hot_reload`, entry point "
            f"`python:{package}.plugin:{names.cls}`): a `UIExtension` that renders the "
            "player's state as one line.",
            edit=f"\nWhile it runs, edit `render` in `{package}/plugin.py` and save: the daemon "
                 "loads the new version, checks it and swaps it in (`mfx events --for "
                 f"pm/{names.plugin}` shows the reload); a broken edit keeps the old one.\n"),
    }


# --- webassembly ---------------------------------------------------------------------------


def _wat_bytes(data: bytes) -> str:
    """A WAT string literal holding ``data``."""
    out = []
    for byte in data:
        char = chr(byte)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\{byte:02x}")
    return '"' + "".join(out) + '"'


WAT = """\
;; {plugin}: an mfx WebAssembly plugin, written in WAT (the text form of WebAssembly).
;;
;;   call("echo", VALUE)    -> VALUE
;;   call("version", null)  -> {{"version": "{version}"}}
;;
;; It implements the mfx WebAssembly ABI (plugins/include/mfx_wasm_abi.md in the mfx
;; sources): exports memory, alloc, dealloc, call, health and init; imports mfx.log.
;; Build: `make` (wasmtime.wat2wasm; no other toolchain needed). Rust, C, Zig or TinyGo
;; modules that export the same functions work the same way.
(module
  (import "mfx" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2)

  ;; Static data lives below 64 KiB; the heap (a mark/release arena) above it.
  (global $top (mut i32) (i32.const 65536))
{data}
  (func $align8 (param $n i32) (result i32)
    (i32.and (i32.add (local.get $n) (i32.const 7)) (i32.const -8)))

  ;; The host frees in reverse order of allocation (response, then request), so freeing a
  ;; block releases it and everything above it.
  (func (export "alloc") (param $n i32) (result i32)
    (local $p i32) (local $new i32) (local $pages i32)
    (local.set $p (global.get $top))
    (local.set $new (call $align8 (i32.add (local.get $p) (local.get $n))))
    (if (i32.lt_u (local.get $new) (local.get $p)) (then (return (i32.const 0))))
    (local.set $pages
      (i32.sub (i32.wrap_i64 (i64.shr_u (i64.add (i64.extend_i32_u (local.get $new)) (i64.const 65535))
                                        (i64.const 16)))
               (memory.size)))
    (if (i32.gt_s (local.get $pages) (i32.const 0))
      (then (if (i32.eq (memory.grow (local.get $pages)) (i32.const -1))
        (then (return (i32.const 0))))))
    (global.set $top (local.get $new))
    (local.get $p))

  (func (export "dealloc") (param $p i32) (param $n i32)
    (if (i32.and (i32.ge_u (local.get $p) (i32.const 65536))
                 (i32.lt_u (local.get $p) (global.get $top)))
      (then (global.set $top (local.get $p)))))

  ;; Are the $al bytes at $a the $bl bytes at $b?
  (func $eq (param $a i32) (param $al i32) (param $b i32) (param $bl i32) (result i32)
    (local $i i32)
    (if (i32.ne (local.get $al) (local.get $bl)) (then (return (i32.const 0))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $al)))
      (if (i32.ne (i32.load8_u (i32.add (local.get $a) (local.get $i)))
                  (i32.load8_u (i32.add (local.get $b) (local.get $i))))
        (then (return (i32.const 0))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i32.const 1))

  ;; A response: (pointer << 32) | length.
  (func $response (param $p i32) (param $n i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $p)) (i64.const 32))
            (i64.extend_i32_u (local.get $n))))

  (func (export "call") (param $m i32) (param $ml i32) (param $in i32) (param $il i32) (result i64)
    ;; echo: the parameters are JSON already; answer with them as they are.
    (if (call $eq (local.get $m) (local.get $ml) (i32.const {echo}) (i32.const {echo_len}))
      (then (return (call $response (local.get $in) (local.get $il)))))
    (if (call $eq (local.get $m) (local.get $ml) (i32.const {version_method}) (i32.const {version_method_len}))
      (then (return (call $response (i32.const {version_json}) (i32.const {version_json_len})))))
    (call $response (i32.const {unknown}) (i32.const {unknown_len})))

  ;; 0: healthy.
  (func (export "health") (result i32)
    (i32.const 0))

  ;; spec.config arrives as JSON: accept an object (first non-blank byte "{{"), refuse the rest.
  (func (export "init") (param $p i32) (param $n i32) (result i32)
    (local $end i32) (local $c i32)
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $c (i32.load8_u (local.get $p)))
      (br_if $done (i32.eqz (i32.or (i32.or (i32.eq (local.get $c) (i32.const 32)) (i32.eq (local.get $c) (i32.const 9)))
                                    (i32.or (i32.eq (local.get $c) (i32.const 10)) (i32.eq (local.get $c) (i32.const 13))))))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $next)))
    (if (i32.or (i32.ge_u (local.get $p) (local.get $end)) (i32.ne (i32.load8_u (local.get $p)) (i32.const 123)))
      (then
        (call $log (i32.const 3) (i32.const {bad_config}) (i32.const {bad_config_len}))
        (return (i32.const 1))))
    (call $log (i32.const 1) (i32.const {ready}) (i32.const {ready_len}))
    (i32.const 0))
)
"""


def wat_source(names: Names) -> str:
    strings = {
        "echo": b"echo",
        "version_method": b"version",
        "version_json": b'{"version":"' + VERSION.encode() + b'"}',
        "unknown": (b'{"error":{"type":"UnknownMethod","message":"' + names.plugin.encode()
                    + b' supports the methods echo and version"}}'),
        "bad_config": b"config must be a JSON object",
        "ready": names.plugin.encode() + b" ready",
    }
    offset = 1024
    lines = []
    fields: dict[str, object] = {"plugin": names.plugin, "version": VERSION}
    for key, data in strings.items():
        lines.append(f"  (data (i32.const {offset}) {_wat_bytes(data)})")
        fields[key], fields[f"{key}_len"] = offset, len(data)
        offset = (offset + len(data) + 7) & ~7
    fields["data"] = "\n".join(lines) + "\n"
    return WAT.format(**fields)


MAKEFILE = """\
# Builds {stem}.wasm from {stem}.wat with nothing but the wasmtime Python package.
# PYTHON is the interpreter mfx runs under (it has wasmtime); override with make PYTHON=...
PYTHON ?= {python}

all: {stem}.wasm

{stem}.wasm: {stem}.wat
\t$(PYTHON) -c 'import sys, wasmtime; open(sys.argv[2], "wb").write(wasmtime.wat2wasm(open(sys.argv[1]).read()))' $< $@

clean:
\trm -f {stem}.wasm

.PHONY: all clean
"""


def _webassembly(names: Names) -> dict[str, str]:
    stem = names.package
    return {
        "plugin.yaml": _manifest(
            names, type_="webassembly", entry_point=f"{stem}.wasm",
            description="Echoes its input; a sandboxed WebAssembly plugin.",
            interfaces="Echo",
            config="",
            config_schema="type: object\nadditionalProperties: false\n",
            limits="{memory: 2Mi, timeout: 100ms, fuel: 1000000, maxMessageSize: 64Ki}",
            security="allowedPaths: []\nallowedNetworks: []\n",
            health="{interval: 10s, timeout: 1s, failureThreshold: 3}"),
        f"{stem}.wat": wat_source(names),
        "Makefile": MAKEFILE.format(stem=stem, python=sys.executable),
        "README.md": _readme(
            names, "webassembly",
            f"A WebAssembly plugin (`type: webassembly`): `{stem}.wasm`, run by wasmtime inside "
            "the daemon with fuel, a deadline and a memory cap per call, and no file or network "
            "access beyond `spec.security.allowedPaths`. It follows the mfx WebAssembly ABI "
            "(`plugins/include/mfx_wasm_abi.md` in the mfx sources).",
            build=f"\n## Build\n\n`make` compiles `{stem}.wat` into `{stem}.wasm` (`mfx plugin init` "
                  "did it once already). Rebuild after every change of the source.\n"),
    }


def compile_wat(directory: Path, stem: str) -> Path:
    """What the Makefile does, in this process: ``STEM.wat`` -> ``STEM.wasm``."""
    import wasmtime

    source, target = directory / f"{stem}.wat", directory / f"{stem}.wasm"
    try:
        target.write_bytes(wasmtime.wat2wasm(source.read_text()))
    except wasmtime.WasmtimeError as exc:
        raise PluginLoadError(f"{source} does not compile: {exc}") from None
    return target


# --- the scaffold ----------------------------------------------------------------------------

_SUFFIX = {"rpc": "Plugin", "dynamic_library": "Processor", "hot_reload": "View", "webassembly": ""}
_TEMPLATES: dict[str, Callable[[Names], dict[str, str]]] = {
    "rpc": _rpc, "dynamic_library": _dynamic_library, "hot_reload": _hot_reload, "webassembly": _webassembly,
}


def scaffold(name: str, type_: str, parent: Path) -> tuple[Path, list[Path]]:
    """Write the plugin folder ``parent/name``; return it and the files written (in order)."""
    if type_ not in _TEMPLATES:
        raise BadRequestError(f"unknown plugin type {type_!r}; choose one of {', '.join(TYPES)}")
    names = Names.of(name, _SUFFIX[type_], str(parent))
    target = Path(parent) / name
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BadRequestError(f"{target} exists and is not empty; choose another --dir or name")
    files = _TEMPLATES[type_](names)
    written = []
    for rel, text in files.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    if type_ == "webassembly":
        written.append(compile_wat(target, names.package))
    return target, written
