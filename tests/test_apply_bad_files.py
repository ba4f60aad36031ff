"""``mfx apply -f`` on files that are not valid manifests prints ``file:line: field: message``
and exits non-zero, whatever is wrong: never a Python traceback, never a silently changed
value. The real ``mfx`` command runs as a subprocess; the files are refused before any daemon
would be asked, so none runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.daemon_harness import mfx_command

HEAD = """\
apiVersion: mfx.musicfox.io/v1alpha1
kind: PluginManifest
metadata:
  name: bad
spec:
  version: 1.0.0
  type: rpc
  entryPoint: python -m bad
"""

# (case, the rest of the spec, the line and field path of the first error, a word of its message)
CASES = [
    ("dependency-name-list", "  dependencies:\n  - name: [a, b]\n", 10, "spec.dependencies[0].name", "must be a string"),
    ("dependency-name-map", "  dependencies:\n  - name: {x: 1}\n  - name: {x: 1}\n", 10,
     "spec.dependencies[0].name", "must be a string"),
    ("integer-beyond-64-bits", "  priority: 123456789012345678901234567890\n", 9, "spec.priority", "64-bit"),
    ("config-integer-beyond-64-bits", "  config: {n: 18446744073709551616}\n", 9, "spec.config.n", "64-bit"),
    ("config-deep", "  config: " + "{a: " * 300 + "1" + "}" * 300 + "\n", 9, "spec.config", "nest"),
    ("config-inf", "  config: {gain: .inf}\n", 9, "spec.config.gain", "finite"),
    ("config-nan", "  config: {gain: .nan}\n", 9, "spec.config.gain", "finite"),
    ("cidr", "  security: {allowedNetworks: [10.0.0.0/33]}\n", 9, "spec.security.allowedNetworks[0]", "CIDR"),
    ("signature", "  security: {signature: not-base64}\n", 9, "spec.security.signature", "base64"),
    ("duration-digits", "  healthCheck: {interval: \u0661\u0660s}\n", 9, "spec.healthCheck.interval", "0-9"),
]


def apply(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*mfx_command(), "--home", str(home), "apply", *args],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("dry_run", [(), ("--dry-run=client",)], ids=["apply", "dry-run-client"])
def test_each_bad_file_is_one_located_error(tmp_path: Path, dry_run: tuple[str, ...]) -> None:
    for case, tail, line, path, word in CASES:
        file = tmp_path / f"{case}.yaml"
        file.write_text(HEAD + tail, encoding="utf-8")
        result = apply("-f", str(file), *dry_run, home=tmp_path / "home")
        assert result.returncode != 0, case
        assert "Traceback" not in result.stderr, result.stderr
        first = result.stderr.splitlines()[0]
        assert first.startswith(f"error: {file}:{line}:"), (case, first)
        assert f": {path}" in first and word in first, (case, first)


def test_a_file_that_is_not_utf8_is_refused_with_its_byte(tmp_path: Path) -> None:
    file = tmp_path / "latin1.yaml"
    data = HEAD.encode() + "  description: caf\u00e9\n".encode("latin-1")
    file.write_bytes(data)
    offset = data.index(b"\xe9")
    for source in (("-f", str(file)), ("-f", "-")):
        result = subprocess.run([*mfx_command(), "--home", str(tmp_path / "home"), "apply", *source,
                                 "--dry-run=client"], input=data, capture_output=True, timeout=120, check=False)
        stderr = result.stderr.decode()
        assert result.returncode != 0 and "Traceback" not in stderr
        shown = str(file) if source[1] != "-" else "<stdin>"
        assert stderr.startswith(f"error: {shown}:9: not UTF-8 text: byte {offset} (0xe9)"), stderr
        assert "configured" not in result.stdout.decode()


def test_control_characters_in_a_value_are_shown_escaped_on_one_line(tmp_path: Path) -> None:
    file = tmp_path / "newline.yaml"
    file.write_text(HEAD.replace("version: 1.0.0", 'version: "1.0.0\\n\\u202e"')
                    + '  env: {"A\\tB": x}\n', encoding="utf-8")
    result = apply("-f", str(file), "--dry-run=client", home=tmp_path / "home")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f'error: {file}:6: spec.version: "1.0.0\\n\\u202e" is not a semantic version '
        "(expected MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], e.g. 1.2.0 or 2.0.0-rc.1)",
        f'error: {file}:9: spec.env["A\\tB"]: "A\\tB" is not an environment variable name '
        "(letters, digits and _, not starting with a digit)",
    ]
