"""The ``webassembly`` plugin template: a WAT module implementing the mfx WebAssembly ABI
(``plugins/include/mfx_wasm_abi.md``), with a Makefile that compiles it with
``wasmtime.wat2wasm`` under this interpreter."""

from __future__ import annotations

import sys
from pathlib import Path

from mfx.cli.scaffold_common import manifest_yaml, readme
from mfx.cli.scaffold_names import VERSION, Names
from mfx.errors import PluginLoadError


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


def webassembly(names: Names) -> dict[str, str]:
    stem = names.package
    return {
        "plugin.yaml": manifest_yaml(
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
        "README.md": readme(
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
