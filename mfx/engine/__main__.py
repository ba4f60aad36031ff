"""``python -m mfx.engine --home H``: the audio engine process of one home.

It takes ``H/engine/engine.lock`` for its whole life (a second engine on the home exits at
once, naming the pid that holds it), writes ``engine.pid``, logs to stderr (the supervisor
points that at ``engine.log``) and serves ``engine.sock`` until a ``shutdown`` request,
SIGTERM/SIGINT, or idleness (``--idle-exit``).
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import sys
from pathlib import Path

import anyio

from mfx.engine.core import Engine
from mfx.engine.lock import EngineLock, EngineRunningError
from mfx.engine.paths import EnginePaths
from mfx.engine.server import EngineServer

log = logging.getLogger("mfx.engine")

EXIT_ALREADY_RUNNING = 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mfx.engine", description="The mfx audio engine process.")
    parser.add_argument("--home", type=Path, required=True, help="the MFX_HOME this engine serves")
    parser.add_argument("--idle-exit", type=float, default=60.0, metavar="SECONDS",
                        help="exit once nothing played and no controller was connected this long "
                             "(default 60; 'inf' never)")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    return parser.parse_args(argv)


async def serve(home: Path, idle_exit: float) -> None:
    async with Engine(home) as engine:
        server = EngineServer(engine, idle_exit=idle_exit)
        async with anyio.create_task_group() as group:
            group.start_soon(_stop_on_signals, server)
            await server.run()
            group.cancel_scope.cancel()


async def _stop_on_signals(server: EngineServer) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("%s: closing the sinks and exiting", signal.Signals(signum).name)
            server.shutdown()
            return


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s")
    # `kill -USR1 <pid>` writes every thread's stack to the log: how a hung engine is read.
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    home = args.home.expanduser().resolve()
    paths = EnginePaths(home)
    lock = EngineLock(paths.lock)
    try:
        lock.acquire()
    except EngineRunningError as exc:
        print(f"mfx engine: {exc}", file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    try:
        paths.pid.write_text(f"{os.getpid()}\n")
        log.info("engine %d starting for %s", os.getpid(), home)
        anyio.run(serve, home, args.idle_exit)
        log.info("engine %d exiting", os.getpid())
        return 0
    finally:
        paths.pid.unlink(missing_ok=True)
        lock.release()


if __name__ == "__main__":
    sys.exit(main())
