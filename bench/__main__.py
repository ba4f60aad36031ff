"""Run every benchmark module (``bench/bench_*.py``, each with ``run() -> list[Figure]``)."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
import traceback

import bench


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("only", nargs="*", help="run only benchmarks whose module name contains one of these")
    args = parser.parse_args()
    failed = 0
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    for name in names:
        if args.only and not any(word in name for word in args.only):
            continue
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
            for figure in module.run():
                print("  " + figure.line(), flush=True)
        except Exception:  # a broken benchmark must not hide the others' figures
            failed += 1
            traceback.print_exc()
        print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
