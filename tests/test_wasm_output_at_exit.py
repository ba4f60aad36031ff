"""A WebAssembly guest still writing to stdout when its host process exits must not abort it.

wasmtime performs WASI output on its own threads. Were the output handed to a Python
callback there, a write landing while the interpreter finalizes would end that thread with
pthread_exit, which cannot unwind through Rust frames: the process aborts (a daemon stopped by
SIGTERM would die with SIGABRT). The runtime writes guest output to files instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.test_wasm_runtime import REPO, abi_module, write_module

# A call that never ends and writes "spam" lines as fast as it can.
SPAMMER = abi_module(
    """(i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 5))
    (loop $forever (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (br $forever))
    (unreachable)""",
    imports='(import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))',
    extra='(data (i32.const 16) "spam\\n")')

HOST = textwrap.dedent("""
    import sys
    import tempfile
    import threading
    from pathlib import Path

    import anyio

    from mfx.errors import PluginTimeoutError
    from mfx.runtimes.base import Limits, LoadRequest, PluginType
    from mfx.runtimes.wasm import WasmRuntime

    plugin_dir, timeout, wait_for_it = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3] == "wait"
    lines = []
    writing = threading.Event()

    async def main() -> None:
        runtime = WasmRuntime()
        await runtime.__aenter__()  # left open on purpose: the process may end mid-call
        instance = await runtime.load(LoadRequest(
            name="spammer", version="1.0.0", type=PluginType.WEBASSEMBLY,
            entry_point="spammer.wasm", plugin_dir=plugin_dir, state_dir=plugin_dir / "state",
            limits=Limits(fuel=10**15, memory_bytes=1 << 20, timeout_seconds=timeout),
            log=lines.append))
        await instance.initialize({})
        await instance.start()
        writing.set()
        try:
            await instance.call("spam", {})
        except PluginTimeoutError:
            pass
        print("stdout lines forwarded:", sum(1 for r in lines if r.stream == "stdout"), flush=True)

    if wait_for_it:
        anyio.run(main)
    else:  # the interpreter ends while the guest is still writing
        threading.Thread(target=anyio.run, args=(main,), daemon=True).start()
        writing.wait()
        # Exit once the guest's output file (in this process's own TMPDIR) is growing.
        output = Path(tempfile.gettempdir())
        while not any(p.stat().st_size > 0 for p in output.glob("mfx-wasi-output-*/stdout-*")):
            writing.wait(0.01)
        print("exiting mid-call", flush=True)
""")


def run_host(plugin_dir: Path, timeout: float, mode: str) -> subprocess.CompletedProcess[str]:
    private_tmp = plugin_dir / "tmp"
    private_tmp.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-c", HOST, str(plugin_dir), str(timeout), mode],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TMPDIR": str(private_tmp)})


def test_what_a_timed_out_guest_wrote_reaches_its_log(tmp_path: Path) -> None:
    write_module(tmp_path / "spammer", "spammer", SPAMMER)
    result = run_host(tmp_path / "spammer", 0.3, "wait")
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split(":")[-1]) > 0


def test_a_process_exiting_while_a_guest_writes_to_stdout_exits_cleanly(tmp_path: Path) -> None:
    write_module(tmp_path / "spammer", "spammer", SPAMMER)
    for _ in range(5):  # the race is in the exit: give it a few chances to show
        result = run_host(tmp_path / "spammer", 60.0, "exit")
        assert "exiting mid-call" in result.stdout, result.stderr
        assert "panicked" not in result.stderr, result.stderr
        assert result.returncode == 0, result.stderr
