"""The ``mfx`` command's start, as a user runs it: a new process for every call.

Figures (median of REPEATS runs each; the commands take turns within each round, so load on
the machine falls on all of them alike):
- ``mfx --help``, ``mfx version``, ``mfx now`` (a daemon with the player, nothing playing),
  each against ``python -c pass``: target ratio <= 2;
- ``mfx get pm`` of OBJECTS PluginManifests over the unix socket, against ``kubectl get pm``
  on the same daemon (its --listen: TLS and the bearer token, discovery cache warm): target
  ratio <= 1.

``mfx`` runs the way its console script does (``from mfx.cli.main import main``), from this
checkout, and every command here (``python -c pass`` too) runs on an interpreter without an
editable-install import hook, as an installed package runs (``bench.installed``).
The runs may write bytecode, as an installed package has its modules compiled: a first,
unmeasured run of each command compiles what it imports.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.common import Figure, median
from bench.installed import installed_python
from mfx.cli.client import Client, Endpoint

OBJECTS = 1000
REPEATS = 21
REPO = Path(__file__).resolve().parents[1]
BASE = "/apis/mfx.musicfox.io/v1alpha1/pluginmanifests"
# What the installed ``mfx`` script does.
MFX_SCRIPT = "import sys; from mfx.cli.main import main; sys.argv[0] = 'mfx'; sys.exit(main())"


def plugin(i: int) -> dict[str, object]:
    return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest",
            "metadata": {"name": f"bench-{i:04d}", "labels": {"bench": "cli"}},
            "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m bench_plugin", "suspend": True}}


def _wait(predicate: Callable[[], bool], what: str, daemon: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while not predicate():
        if daemon.poll() is not None:
            raise RuntimeError(f"mfx serve exited with {daemon.returncode}:\n{log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _ready(client: Client) -> bool:
    try:
        client.request("GET", "/readyz", accept="text/plain")
    except Exception:  # not listening yet, or not ready: both mean wait
        return False
    return True


def _settled(client: Client) -> bool:
    items = client.request("GET", BASE)["items"]
    return len(items) == OBJECTS and all((o.get("status") or {}).get("observedGeneration") == 1 for o in items)


def _rounds(commands: dict[str, Callable[[], None]]) -> dict[str, float]:
    """Median wall time in ms of each command, the commands taking turns REPEATS times."""
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(REPEATS):
        for name, command in commands.items():
            start = time.perf_counter()
            command()
            samples[name].append(time.perf_counter() - start)
    return {name: median(times) * 1000 for name, times in samples.items()}


def _runner(argv: Sequence[str], env: dict[str, str], lines: int | None = None) -> Callable[[], None]:
    def run() -> None:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
        if lines is not None:
            assert done.stdout.count("\n") == lines, done.stdout[-300:] + done.stderr[-300:]
    return run


def run() -> list[Figure]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise RuntimeError("no kubectl binary on PATH (make system installs one)")
    with tempfile.TemporaryDirectory(prefix="mfx-bench-cli-") as tmp:
        root = Path(tmp)
        python = installed_python(root)
        mfx = [python, "-c", MFX_SCRIPT]
        home = root / "home"
        env = {**os.environ, "MFX_HOME": str(home), "PYTHONPATH": str(REPO)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        log = root / "daemon.log"
        with log.open("wb") as output:
            daemon = subprocess.Popen([*mfx, "serve", "--listen", "127.0.0.1:0"], env=env, stdout=output,
                                      stderr=subprocess.STDOUT)
        try:
            _wait(lambda: (home / "listen-address").exists() and (home / "mfx.sock").exists(), "the daemon",
                  daemon, log)
            with Client(Endpoint(socket=home / "mfx.sock")) as client:
                _wait(lambda: _ready(client), "the daemon to be ready", daemon, log)
                for i in range(OBJECTS):
                    client.request("POST", BASE, body=plugin(i))
                _wait(lambda: _settled(client), "the controller to reconcile every object once", daemon, log)
            kubeconfig = root / "kubeconfig"
            subprocess.run([*mfx, "config", "kubeconfig", "--output", str(kubeconfig)], env=env, check=True,
                           capture_output=True)
            commands = {
                "pass": _runner([python, "-c", "pass"], env),
                "help": _runner([*mfx, "--help"], env),
                "version": _runner([*mfx, "version"], env, lines=2),
                "now": _runner([*mfx, "now"], env, lines=1),
                "get": _runner([*mfx, "get", "pm"], env, lines=OBJECTS + 1),
                "kubectl": _runner([kubectl, "--kubeconfig", str(kubeconfig), "--cache-dir", str(root / "kube-cache"),
                                    "get", "pm"], env, lines=OBJECTS + 1),
            }
            for command in commands.values():  # bytecode written, kubectl's discovery cached
                command()
            ms = _rounds(commands)
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)
    bare = "python -c pass, new process"
    return [
        Figure("mfx --help, new process", ms["help"], "ms", baseline_name=bare, baseline=ms["pass"],
               target="ratio <= 2"),
        Figure("mfx version, new process (asks the daemon)", ms["version"], "ms", baseline_name=bare,
               baseline=ms["pass"], target="ratio <= 2"),
        Figure("mfx now, new process (nothing playing)", ms["now"], "ms", baseline_name=bare,
               baseline=ms["pass"], target="ratio <= 2"),
        Figure(f"mfx get pm, new process, unix socket ({OBJECTS} objects)", ms["get"], "ms",
               baseline_name="kubectl get pm, same daemon, TLS + token", baseline=ms["kubectl"],
               target="ratio <= 1"),
    ]
