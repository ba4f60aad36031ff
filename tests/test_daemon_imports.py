"""What ``mfx serve`` imports to start: not the HTTP client an ``mfx agent`` talks to its
API server with (httpx, which imports rich and pygments for its own command line)."""

from __future__ import annotations

import subprocess
import sys

from tests.daemon_harness import REPO

SCRIPT = """
import sys
from mfx.server.services import control_plane_services, default_services
default_services(), control_plane_services()
print(sorted(m for m in ("httpx", "rich", "pygments") if m in sys.modules))
"""


def test_mfx_serve_starts_without_the_agents_http_client() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout
