"""An interpreter that imports mfx as an installed package does: without an editable-install
import hook, however the development venv was made.

A ``pip install -e`` of a project whose layout setuptools does not call simple puts
setuptools' finder into every interpreter the venv starts: a ``.pth`` line imports it (and
pathlib, re, urllib.parse with it) before the first line of any program runs. That costs
``python -c pass`` and every ``mfx`` command alike, 10 to 20 ms on these machines, and a
command start measured against ``python -c pass`` in such a venv looks twice as good as it
is. ``make venv`` avoids it (pyproject's ``package-dir`` makes the install a plain path
entry), and the new-process figures do not depend on it: they run here, in a venv of its own
whose only ``.pth`` is a plain path file naming the checkout and the development venv's
site-packages (a path in a ``.pth`` adds the folder to ``sys.path`` without reading the
``.pth`` files in it), as a wheel's site-packages would be found.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def installed_python(base: Path) -> str:
    """The path of such an interpreter, made under ``base`` (kept until ``base`` goes)."""
    venv = base / "installed-venv"
    if not venv.exists():
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        made = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              check=True, capture_output=True, text=True).stdout.strip()
        Path(made, "mfx-checkout.pth").write_text(f"{REPO}\n{sysconfig.get_paths()['purelib']}\n")
    return str(venv / "bin" / "python")
