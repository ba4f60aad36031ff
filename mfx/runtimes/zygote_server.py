"""The fork server of the ``rpc`` runtime: run as ``python -m mfx.runtimes.zygote_server FD``.

It imports what every Python plugin imports first (``mfx.sdk``, orjson, logging, threading,
asyncio), says ``ready`` on its control socket (the inherited descriptor ``FD``), then
serves one request at a time: a JSON document with the plugin's command, environment,
working directory and limits, plus three descriptors (the plugin's stdin, stdout and
stderr). For each it clones itself with ``CLONE_PARENT``, so the new process is a child of
the daemon, not of this server: the daemon reaps it, sees its exit status, and the child's
``PR_SET_PDEATHSIG`` follows the daemon exactly as for a plugin started with exec. The
answer is ``{"pid": N}`` or ``{"error": "..."}``.

The clone then becomes the plugin without an exec: new session, parent-death signal,
descriptors, cgroup, rlimits, working directory, environment, ``sys.path``/``sys.argv``
as ``python -m MODULE`` or ``python SCRIPT`` would set them, and runs the module or script
as ``__main__``; interpreter shutdown (atexit, non-daemon threads) works as in any Python
process. What a fork cannot change is fixed at interpreter start: the daemon sends here only
plugins whose start-up environment (``PYTHON*``, locale, ``LD_*``, malloc settings) equals
this server's, and starts the others with exec.

This server stays single-threaded (a fork copies only the calling thread) and exits when
the control socket reaches end-of-file or when the daemon dies (parent-death signal).
"""

from __future__ import annotations

import asyncio  # noqa: F401  (preloaded for plugins with async methods)
import ctypes
import logging  # noqa: F401  (preloaded: the SDK configures it)
import os
import platform
import runpy
import signal
import socket
import sys
import threading  # noqa: F401  (preloaded: the SDK serves from threads)
import time
import types
from typing import Any, NoReturn

import orjson

import mfx.sdk  # noqa: F401  (preloaded: what every plugin imports first)
from mfx.runtimes.child_setup import PR_SET_PDEATHSIG, apply_rlimits, join_cgroup

MAX_REQUEST_BYTES = 1 << 20
READY = b"ready"

# The number of the raw clone(2) system call per machine. The daemon forks plugins from
# the zygote only on these machines (``zygote.launch_for``); elsewhere every plugin starts
# with exec, and this server, if started anyway, exits before it says ready.
CLONE_SYSCALL_NUMBERS = {"x86_64": 56, "aarch64": 220}
_CLONE_PARENT = 0x00008000
_SIGCHLD = 17
_PR_SET_NAME = 15


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    base_path = sys.path[1:]  # without our own sys.path[0] (the working directory of -m)
    request, fds = _serve(control)
    # From here on this is the plugin process.
    _become_plugin(request, fds, control, base_path)
    _run(request)


def _serve(control: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """Answer fork requests until the daemon goes away; returns only in a new plugin."""
    syscall_number = CLONE_SYSCALL_NUMBERS.get(platform.machine())
    if syscall_number is None:
        _die(f"no clone() system call number known for {platform.machine()}")
    # Why a raw clone(CLONE_PARENT) and not os.fork(): CLONE_PARENT makes the new process a
    # child of the daemon (this server's parent), not of this server. Only then can the daemon
    # waitpid() it and read its exit status, and only then does the PR_SET_PDEATHSIG the child
    # sets follow the daemon rather than this server. Nothing else gives that:
    # - os.fork(), os.posix_spawn() and subprocess make a child of the caller: the daemon gets
    #   ECHILD from waitpid(), and a pidfd (Linux 5.3+) would tell it that the plugin ended
    #   but not how (waitid(P_PIDFD) also works on one's own children only);
    # - a double fork with the daemon as PR_SET_CHILD_SUBREAPER reparents the plugin only once
    #   the middle process has exited: the death signal would fire at that exit (it follows
    #   the parent of the moment), and every orphan of every plugin would become the daemon's
    #   to reap, since being a subreaper is a property of the whole daemon process;
    # - exec'ing a fresh interpreter is what the zygote exists to avoid (~100 ms a plugin).
    # Python has no os.clone() and libc's clone() wrapper wants a new stack and a function to
    # run, so the system call is made directly: with no new stack the child goes on from here
    # on a copy of this stack, as after fork(). It skips libc's fork handlers (atfork, malloc
    # locks), which is safe because this server has one thread; PyOS_BeforeFork and
    # PyOS_AfterFork_* do the interpreter's own part of fork. The argument order after the
    # flags differs between x86_64 and aarch64, but all of them are zero here.
    # PyDLL keeps the GIL across the call, as os.fork() does.
    raw_syscall = ctypes.PyDLL(None, use_errno=True).syscall
    raw_syscall.restype = ctypes.c_long
    python = ctypes.pythonapi
    daemon_pid = os.getppid()
    control.sendall(READY)
    while True:
        data, fds, _, _ = socket.recv_fds(control, MAX_REQUEST_BYTES, 3)
        if not data:
            os._exit(0)  # the daemon closed its end
        try:
            request = orjson.loads(data)
            if not isinstance(request, dict) or len(fds) != 3:
                raise ValueError("a request is a JSON object and three descriptors")
            request["daemon_pid"] = daemon_pid
        except ValueError as exc:
            _close(fds)
            control.sendall(orjson.dumps({"error": f"bad request: {exc}"}))
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        python.PyOS_BeforeFork()
        pid = raw_syscall(ctypes.c_long(syscall_number), ctypes.c_ulong(_CLONE_PARENT | _SIGCHLD), 0, 0, 0, 0)
        if pid == 0:
            python.PyOS_AfterFork_Child()
            return request, fds
        errno = ctypes.get_errno()
        python.PyOS_AfterFork_Parent()
        _close(fds)
        if pid < 0:
            control.sendall(orjson.dumps({"error": f"clone failed: {os.strerror(errno)}"}))
        else:
            control.sendall(orjson.dumps({"pid": pid}))


def _become_plugin(request: dict[str, Any], fds: list[int], control: socket.socket, base_path: list[str]) -> None:
    """Everything exec and ``make_preexec`` would have done, in the same order."""
    try:
        control.close()
        libc = ctypes.CDLL(None, use_errno=True)
        os.setsid()
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != request["daemon_pid"]:
            os._exit(1)  # the daemon died before prctl took effect
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        os.closerange(3, 1 << 20)
        procs = request.get("procs")
        if procs:
            join_cgroup(procs)
        apply_rlimits(request.get("rlimits", ()))
        os.chdir(request["cwd"])
        env: dict[str, str] = request["env"]
        os.environ.clear()
        os.environ.update(env)
        time.tzset()
        name = ("mfx:" + str(request.get("name", "")))[:15].encode()
        libc.prctl(_PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0)
        pythonpath = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]
        if request["mode"] == "module":
            first = os.getcwd()
        else:
            first = os.path.dirname(os.path.realpath(request["target"]))
        sys.path[:] = [first, *pythonpath, *base_path]
        sys.path_importer_cache.clear()
    except BaseException as exc:  # noqa: BLE001 - nothing may return into the server loop
        _die(f"cannot start the plugin: {type(exc).__name__}: {exc}", code=127)


def _run(request: dict[str, Any]) -> None:
    """Run the plugin as ``__main__``; its exceptions and exit reach the interpreter as usual."""
    main_module = types.ModuleType("__main__")
    sys.modules["__main__"] = main_module
    target: str = request["target"]
    args: list[str] = list(request.get("args", ()))
    if request["mode"] == "module":
        sys.argv = ["-m", *args]
        runpy._run_module_as_main(target)  # type: ignore[attr-defined]  # what `python -m` runs
        return
    sys.argv = [target, *args]
    import importlib.machinery

    main_module.__file__ = target
    main_module.__cached__ = None  # type: ignore[attr-defined]
    main_module.__loader__ = importlib.machinery.SourceFileLoader("__main__", target)
    with open(target, "rb") as source:
        code = compile(source.read(), target, "exec")
    exec(code, main_module.__dict__)


def _close(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _die(message: str, code: int = 2) -> NoReturn:
    try:
        os.write(2, f"ERROR {message}\n".encode())
    except OSError:
        pass
    os._exit(code)


if __name__ == "__main__":
    main()
