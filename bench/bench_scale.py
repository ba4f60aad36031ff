"""An idle daemon with many Ready plugins: resident memory and CPU per plugin.

Each scenario runs in its own process (``python -m bench.bench_scale SCENARIO N``), which
hosts a real daemon (store, API, controllers, runtimes; see ``bench.daemon``), so its
resident memory is the daemon's alone:

- ``empty``: no plugins, the baseline for memory;
- ``dynamic_library``: 1000 copies of the first-party C plugin (``plugins/effects``, built
  with its Makefile), each loaded from its own private copy;
- ``python``: 1000 in-process Python plugins (``plugins/hello-python``, also of type
  ``dynamic_library``), each its own module;
- ``rpc``: 200 copies of ``plugins/hello-rpc``, each its own process.

Once every plugin is Ready the daemon is left alone with health probes at their default
interval; after a settling pause, the process's CPU times are sampled (psutil) at both ends of
an idle window long enough to hold every periodic write a Ready plugin makes. Reported: RSS
above the empty daemon per plugin (for rpc also the plugin processes' RSS and USS), and the
daemon's CPU per idle plugin and in total, as % of one core.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from bench.common import Figure
from bench.daemon import BenchDaemon, store_offline, wait_ready
from mfx.api.objects import Obj

REPO = Path(__file__).resolve().parents[1]
EFFECTS = REPO / "plugins" / "effects"
HELLO_RPC = REPO / "plugins" / "hello-rpc" / "hello_rpc"
HELLO_PYTHON = REPO / "plugins" / "hello-python" / "hello_python"
KIND = "PluginManifest"
DYNAMIC_LIBRARIES = 1000
PYTHONS = 1000
RPCS = 200
SETTLE_SECONDS = 12.0  # past the first periodic probe of the last plugin started (default 10 s)
IDLE_WINDOW_SECONDS = 60.0  # the measurement: one status heartbeat per plugin falls inside it


def _manifest(name: str, plugin_type: str) -> Obj:
    """The example plugin's spec under another name; health checks at their default interval."""
    if plugin_type == "dynamic_library":
        spec: dict[str, Any] = {
            "version": "1.0.0", "type": "dynamic_library", "entryPoint": "libeffects.so",
            "config": {"gainDb": 0.0}, "security": {"trustedSource": "first-party"},
        }
    elif plugin_type == "python":
        spec = {"version": "0.1.0", "type": "dynamic_library", "entryPoint": "python:hello_python.plugin:HelloPlugin",
                "config": {"greeting": "Hello"}}
    else:
        spec = {"version": "0.1.0", "type": "rpc", "entryPoint": "python -m hello_rpc",
                "config": {"greeting": "Hello"}}
    return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": KIND, "metadata": {"name": name}, "spec": spec}


def _plugin_dirs(root: Path, plugin_type: str, names: list[str]) -> None:
    if plugin_type == "dynamic_library":
        build = root.parent / "effects-build"
        subprocess.run(["make", "-s", "-C", str(EFFECTS), f"OUTDIR={build}"], check=True)
        for name in names:
            (root / name).mkdir(parents=True)
            os.symlink(build / "libeffects.so", root / name / "libeffects.so")
    else:
        package = HELLO_PYTHON if plugin_type == "python" else HELLO_RPC
        for name in names:
            (root / name).mkdir(parents=True)
            os.symlink(package, root / name / package.name)


def _children_memory(process: psutil.Process) -> tuple[int, int]:
    """RSS and USS of every process below ``process`` (the plugin processes)."""
    rss = uss = 0
    for child in process.children(recursive=True):
        try:
            info = child.memory_full_info()
        except psutil.Error:
            continue
        rss += info.rss
        uss += info.uss
    return rss, uss


def measure(scenario: str, count: int) -> dict[str, float]:
    """Run one scenario in this process; returns what was measured."""
    me = psutil.Process()
    names = [f"s{i:04d}" for i in range(count)]
    with tempfile.TemporaryDirectory(prefix="mfx-bench-scale-") as tmp:
        base = Path(tmp)
        root = base / "plugins"
        root.mkdir()
        if names:
            _plugin_dirs(root, scenario, names)
        home = base / "home"
        home.mkdir()
        store_offline(home / "state.db", [_manifest(n, scenario) for n in names])
        with BenchDaemon(home, root) as daemon:
            assert daemon.context is not None
            done = daemon.portal.call(wait_ready, daemon.context.store, KIND, set(names))
            converged = done - daemon.started
            time.sleep(SETTLE_SECONDS)
            before, wall_before = me.cpu_times(), time.perf_counter()
            time.sleep(IDLE_WINDOW_SECONDS)
            after, wall_after = me.cpu_times(), time.perf_counter()
            rss = me.memory_info().rss
            children_rss, children_uss = _children_memory(me)
    cpu = (after.user - before.user) + (after.system - before.system)
    return {"converged": converged, "rss": rss, "cpu_fraction": cpu / (wall_after - wall_before),
            "children_rss": children_rss, "children_uss": children_uss}


def _run_scenario(scenario: str, count: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-m", "bench.bench_scale", scenario, str(count)], cwd=REPO, env=env,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run() -> list[Figure]:
    empty = _run_scenario("empty", 0)
    figures = [
        Figure("empty daemon, resident memory", empty["rss"] / 2**20, "MiB"),
        Figure("empty daemon, idle CPU", empty["cpu_fraction"] * 100, "% of one core"),
    ]
    scenarios = (("dynamic_library", DYNAMIC_LIBRARIES, "dynamic_library (C)"),
                 ("python", PYTHONS, "dynamic_library (Python)"), ("rpc", RPCS, "rpc"))
    for scenario, count, kind in scenarios:
        got = _run_scenario(scenario, count)
        per_plugin = (got["rss"] - empty["rss"]) / count
        figures.append(Figure(f"{count} {kind} plugins: daemon start -> all Ready", got["converged"], "s"))
        figures.append(Figure(f"{count} {kind} plugins Ready: daemon RSS per plugin (above an empty daemon)",
                              per_plugin / 2**10, "KiB"))
        if scenario == "rpc":
            figures.append(Figure(f"{count} rpc plugins Ready: plugin process RSS per plugin",
                                  got["children_rss"] / count / 2**20, "MiB"))
            figures.append(Figure(f"{count} rpc plugins Ready: plugin process USS per plugin (pages of its own)",
                                  got["children_uss"] / count / 2**20, "MiB"))
        idle = got["cpu_fraction"] * 100
        figures.append(Figure(f"{count} {kind} plugins Ready: idle daemon CPU, probes at the default interval",
                              idle, "% of one core", target="< 2 % of one core"))
        figures.append(Figure(f"{count} {kind} plugins Ready: idle daemon CPU per plugin",
                              idle / count * 1000, "milli-% of one core"))
    return figures


if __name__ == "__main__":
    if len(sys.argv) == 3:
        print(json.dumps(measure(sys.argv[1], int(sys.argv[2]))))
    else:
        for figure in run():
            print(figure.line())
