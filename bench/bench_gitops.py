"""A GitSource sync of a repository of 500 manifests, against ``mfx apply -f`` of the same folder.

Both run against one real daemon in this process (the GitSource controller as its service):
the baseline applies the folder through the CLI (its bulk request, one transaction);
the GitSource fetches the commit from a bare repository on disk, reads its manifests from
git's object store, validates, and writes through the store. Measured twice: the first sync
(every object created) and a sync with nothing to change (``mfx reconcile`` vs re-apply).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import Figure
from mfx.cli.client import Client, Endpoint
from tests.daemon_harness import ThreadDaemon, run_cli
from tests.gitops_fixtures import (
    GS,
    Repo,
    applied,
    gitops_service,
    gitsource_yaml,
    plugin_yaml,
    wait_for,
)

COUNT = 500


def _folder(root: Path, prefix: str) -> dict[str, str]:
    files = {f"plugins/{prefix}-{i:03d}.yaml": plugin_yaml(f"{prefix}-{i:03d}") for i in range(COUNT)}
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return files


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="mfx-bench-gitops-") as tmp:
        root = Path(tmp)
        applied_dir = root / "apply"
        _folder(applied_dir, "apply")
        repo = Repo.create(root / "git")
        sha = repo.commit("500 plugins", {name: text for name, text in _folder(root / "unused", "git").items()})
        with ThreadDaemon(root / "home", services=[gitops_service]).running() as daemon:
            home = daemon.config.home
            with Client(Endpoint(socket=home / "mfx.sock")) as client:
                started = time.perf_counter()
                result = run_cli(home, "apply", "-f", str(applied_dir / "plugins"))
                apply_first = time.perf_counter() - started
                assert result.exit_code == 0, result.output

                started = time.perf_counter()
                result = run_cli(home, "apply", "-f", "-", input=gitsource_yaml("bench", repo.url, interval="1h"))
                assert result.exit_code == 0, result.output
                wait_for(client, GS, "bench", applied(sha), timeout=600)
                sync_first = time.perf_counter() - started

                started = time.perf_counter()
                result = run_cli(home, "apply", "-f", str(applied_dir / "plugins"))
                apply_again = time.perf_counter() - started
                assert result.exit_code == 0 and "configured" not in result.output, result.output

                started = time.perf_counter()
                result = run_cli(home, "reconcile", "gitsource/bench", "--timeout", "10m")
                sync_again = time.perf_counter() - started
                assert result.exit_code == 0, result.output
    return [
        Figure(f"gitsource first sync of {COUNT} manifests", sync_first, "s",
               f"mfx apply -f of the same {COUNT} files", apply_first, target="ratio <= 1"),
        Figure(f"gitsource sync of {COUNT} unchanged manifests (mfx reconcile)", sync_again, "s",
               f"mfx apply -f of the same {COUNT} unchanged files", apply_again, target="ratio <= 1"),
    ]


if __name__ == "__main__":
    for figure in run():
        print(figure.line())
