"""On a machine whose clone() system call number the zygote does not know, every Python
plugin starts with exec: nothing is forked, the zygote refuses to start, and a server
started anyway exits before it says ready."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from mfx.runtimes import zygote, zygote_server

UNKNOWN_MACHINE = "riscv64"


def test_supported_machines_are_those_with_a_clone_number() -> None:
    assert set(zygote.SUPPORTED_MACHINES) == set(zygote_server.CLONE_SYSCALL_NUMBERS)


def test_nothing_is_forked_on_an_unknown_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    argv = [sys.executable, "-m", "hello_rpc"]
    if zygote.platform.machine() in zygote.SUPPORTED_MACHINES:
        assert zygote.launch_for(argv, {}, {}) is not None  # forkable where clone() is known
    monkeypatch.setattr(zygote.platform, "machine", lambda: UNKNOWN_MACHINE)
    assert zygote.launch_for(argv, {}, {}) is None


@pytest.mark.anyio
async def test_the_zygote_does_not_start_on_an_unknown_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zygote.platform, "machine", lambda: UNKNOWN_MACHINE)
    with pytest.raises(zygote.ZygoteError):
        await zygote.Zygote.start(preexec_fn=lambda: None)


def test_a_server_started_anyway_exits_before_ready() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    code = (
        "import platform, sys\n"
        f"platform.machine = lambda: {UNKNOWN_MACHINE!r}\n"
        "from mfx.runtimes import zygote_server\n"
        "zygote_server.main()\n"
    )
    with ours:
        try:
            done = subprocess.run(
                [sys.executable, "-c", code, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), capture_output=True, timeout=60,
            )
        finally:
            theirs.close()
        assert ours.recv(64) == b""  # end-of-file, never "ready"
    assert done.returncode == 2
    assert b"no clone() system call number known for riscv64" in done.stderr
