"""RPC plugin runtime: call round trip and spawn-to-ready, against baselines in the same run.

Figures:
- ``RpcPluginInstance.call`` round trip (p50, p99) vs a raw unix-socket echo driven from
  the same asyncio loop (the baseline the target is written against: <= 2x), and vs the
  blocking-both-sides echo floor (for orientation). The call and the raw echo are measured
  in alternating blocks on one loop, so both see the same load on a shared machine;
- the same pair on a uvloop loop (when uvloop is installed), for the daemon's choice of loop;
- the same call vs a grpcio unary call on localhost (target: faster);
- spawn -> Ready (load + initialize + start + health) median of 20 spawns (target < 100 ms),
  against a cold baseline, a bare interpreter start (``python -c`` printing one line), and a
  warm one, a fork of an interpreter that is already running (what a pre-started zygote can
  at best do); and the very first spawn (the zygote not started yet) against the cold one.

Every echo carries the same ~115-byte JSON payload.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import anyio

from bench.common import Figure, median, percentile
from mfx.runtimes.base import LoadRequest, PluginType
from mfx.runtimes.rpc import RpcRuntime

ROOT = Path(__file__).resolve().parents[1]
HELLO = ROOT / "plugins" / "hello-rpc"
CALLS = 3000
WARMUP = 300
BLOCKS = 10  # alternating raw-echo / rpc blocks of CALLS // BLOCKS calls each
SPAWNS = 20
PAYLOAD = "x" * 64  # the request frame is ~115 bytes

ECHO_SERVER = textwrap.dedent(
    """
    import socket, sys
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sys.argv[1]); listener.listen(1)
    print("ready", flush=True)
    conn, _ = listener.accept()
    while True:
        data = conn.recv(65536)
        if not data:
            break
        conn.sendall(data)
    """
)

GRPC_SERVER = textwrap.dedent(
    """
    import sys, time, grpc
    from concurrent import futures
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo",
        {"Echo": grpc.unary_unary_rpc_method_handler(
            lambda request, context: request,
            request_deserializer=None, response_serializer=None)},
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    sys.stdin.read()
    server.stop(0)
    """
)


def _frame() -> bytes:
    import orjson

    return orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "echo", "params": [PAYLOAD]}) + b"\n"


def _start_echo(path: str) -> subprocess.Popen[bytes]:
    child = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, path], stdout=subprocess.PIPE)
    assert child.stdout is not None
    child.stdout.readline()
    return child


def raw_echo_blocking(path: str) -> list[float]:
    frame = _frame()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    samples = []
    for i in range(CALLS + WARMUP):
        start = time.perf_counter()
        sock.sendall(frame)
        received = 0
        while received < len(frame):
            received += len(sock.recv(65536))
        if i >= WARMUP:
            samples.append(time.perf_counter() - start)
    sock.close()
    return samples




def grpc_unary() -> list[float]:
    import grpc

    child = subprocess.Popen(
        [sys.executable, "-c", GRPC_SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert child.stdout is not None and child.stdin is not None
    try:
        port = int(child.stdout.readline())
        frame = _frame()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            echo = channel.unary_unary("/bench.Echo/Echo")
            samples = []
            for i in range(CALLS + WARMUP):
                start = time.perf_counter()
                echo(frame)
                if i >= WARMUP:
                    samples.append(time.perf_counter() - start)
        return samples
    finally:
        child.stdin.close()
        child.wait(timeout=10)


def _request(state: Path, index: int) -> LoadRequest:
    return LoadRequest(
        name=f"hello-{index}",
        version="0.1.0",
        type=PluginType.RPC,
        entry_point="python -m hello_rpc",
        plugin_dir=HELLO,
        state_dir=state / f"s{index}",
    )


async def interleaved_calls(state: Path, echo_path: str) -> tuple[list[float], list[float]]:
    """(raw echo samples, rpc call samples), measured in alternating blocks."""
    frame = _frame()
    reader, writer = await asyncio.open_unix_connection(echo_path)
    raw: list[float] = []
    rpc: list[float] = []
    async with RpcRuntime() as runtime:
        instance = await runtime.load(_request(state, 0))
        await instance.initialize({})
        await instance.start()
        for _ in range(WARMUP):
            writer.write(frame)
            await reader.readline()
            await instance.call("echo", [PAYLOAD])
        for _ in range(BLOCKS):
            for _ in range(CALLS // BLOCKS):
                start = time.perf_counter()
                writer.write(frame)
                await reader.readline()
                raw.append(time.perf_counter() - start)
            for _ in range(CALLS // BLOCKS):
                start = time.perf_counter()
                await instance.call("echo", [PAYLOAD])
                rpc.append(time.perf_counter() - start)
        await instance.stop()
    writer.close()
    await writer.wait_closed()
    return raw, rpc


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


async def spawn_to_ready(state: Path) -> tuple[float, list[float]]:
    """The first spawn (cold: the zygote starts, nothing cached) and the next ones."""
    first = 0.0
    samples = []
    async with RpcRuntime() as runtime:
        for index in range(SPAWNS + 1):
            start = time.perf_counter()
            instance = await runtime.load(_request(state, index))
            await instance.initialize({"greeting": "Hi"})
            await instance.start()
            await instance.health()
            elapsed = time.perf_counter() - start
            await instance.cleanup()
            if index:
                samples.append(elapsed)
            else:
                first = elapsed
    return first, samples


_FORKER = textwrap.dedent("""
    import os, sys
    for _line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            os.write(1, b"ready\\n")
            os._exit(0)
        os.waitpid(pid, 0)
""")


def warm_fork() -> list[float]:
    """Fork -> a line from the child, in an interpreter that is already running."""
    forker = subprocess.Popen([sys.executable, "-c", _FORKER], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, bufsize=0)
    assert forker.stdin is not None and forker.stdout is not None
    samples = []
    try:
        for index in range(SPAWNS + 1):
            start = time.perf_counter()
            forker.stdin.write(b"go\n")
            forker.stdout.readline()
            if index:
                samples.append(time.perf_counter() - start)
    finally:
        forker.stdin.close()
        forker.wait()
    return samples


async def bare_interpreter() -> list[float]:
    samples = []
    for _ in range(SPAWNS):
        start = time.perf_counter()
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "print('ready', flush=True)", stdout=subprocess.PIPE
        )
        assert child.stdout is not None
        await child.stdout.readline()
        samples.append(time.perf_counter() - start)
        await child.wait()
    return samples


def _us(samples: list[float], q: float) -> float:
    return percentile(samples, q) * 1e6


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="mfx-bench-") as tmp:
        state = Path(tmp)
        path = os.path.join(tmp, "echo.sock")
        echo = _start_echo(path)
        try:
            floor = raw_echo_blocking(path)
        finally:
            echo.kill()
            echo.wait()
            os.unlink(path)
        echo = _start_echo(path)
        try:
            raw, rpc = anyio.run(interleaved_calls, state, path)
        finally:
            echo.kill()
            echo.wait()
            os.unlink(path)
        uv: tuple[list[float], list[float]] | None = None
        if _has_uvloop():
            echo = _start_echo(path)
            try:
                uv = anyio.run(interleaved_calls, state, path, backend_options={"use_uvloop": True})
            finally:
                echo.kill()
                echo.wait()
        grpc_samples = grpc_unary()
        first, ready = anyio.run(spawn_to_ready, state)
        bare = anyio.run(bare_interpreter)
        warm = warm_fork()

    figures = []
    for q in (50, 99):
        figures.append(
            Figure(
                f"rpc call round trip p{q}", _us(rpc, q), "us",
                baseline_name="raw unix-socket echo, asyncio client", baseline=_us(raw, q),
                target="ratio <= 2",
            )
        )
    if uv is not None:
        for q in (50, 99):
            figures.append(
                Figure(
                    f"rpc call round trip p{q}, uvloop", _us(uv[1], q), "us",
                    baseline_name="raw unix-socket echo, asyncio client on uvloop", baseline=_us(uv[0], q),
                    target="ratio <= 2",
                )
            )
    for q in (50, 99):
        figures.append(
            Figure(
                f"rpc call round trip p{q} (vs floor)", _us(rpc, q), "us",
                baseline_name="raw unix-socket echo, blocking both sides", baseline=_us(floor, q),
            )
        )
    for q in (50, 99):
        figures.append(
            Figure(
                f"rpc call round trip p{q} (vs grpc)", _us(rpc, q), "us",
                baseline_name="grpcio unary call, localhost TCP", baseline=_us(grpc_samples, q),
                target="ratio < 1",
            )
        )
    figures.append(
        Figure(
            f"spawn -> Ready median of {SPAWNS}", median(ready) * 1e3, "ms",
            baseline_name="cold: bare interpreter start, python -c print", baseline=median(bare) * 1e3,
            target="value < 100 ms",
        )
    )
    figures.append(
        Figure(
            f"spawn -> Ready median of {SPAWNS}", median(ready) * 1e3, "ms",
            baseline_name="warm: fork of a running interpreter -> its first line", baseline=median(warm) * 1e3,
        )
    )
    figures.append(
        Figure(
            "first spawn -> Ready (zygote starting, caches cold)", first * 1e3, "ms",
            baseline_name="cold: bare interpreter start, python -c print", baseline=median(bare) * 1e3,
        )
    )
    return figures
