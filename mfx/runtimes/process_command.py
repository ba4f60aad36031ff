"""The command line and environment a plugin process starts with.

The environment is scrubbed: only ``PATH``, ``LANG``, ``LC_*``, ``TZ`` and ``MFX_HOME`` pass
through from the daemon; ``HOME`` is the plugin's state directory; ``PYTHONPATH`` is the
plugin directory only; then ``LoadRequest.env`` and the protocol variables.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from mfx.errors import EntryPointNotFoundError
from mfx.runtimes.base import LoadRequest
from mfx.sdk import rpc_protocol as proto

# MFX_HOME: the daemon's home, which a plugin's configuration may name ($MFX_HOME/music).
PASSTHROUGH_ENV = ("PATH", "LANG", "TZ", "MFX_HOME")
PASSTHROUGH_ENV_PREFIXES = ("LC_",)
PYTHON_ALIASES = ("python", "python3")


def resolve_command(entry_point: str, plugin_dir: Path) -> list[str]:
    """``entryPoint`` as argv: ``python`` means this interpreter; relative paths (of the
    program, and of arguments naming files there) resolve in the plugin directory."""
    try:
        argv = shlex.split(entry_point)
    except ValueError as exc:
        raise EntryPointNotFoundError(
            f"spec.entryPoint {entry_point!r} is not a valid command line: {exc}"
        ) from None
    if not argv:
        raise EntryPointNotFoundError(
            "spec.entryPoint is empty: give the command that starts the plugin, e.g. 'python -m hello'"
        )
    # Arguments naming files of the plugin ("python main.py") resolve there too: the
    # plugin runs in its state directory, not in the plugin directory.
    for index, arg in enumerate(argv[1:], start=1):
        if not arg.startswith("-") and not os.path.isabs(arg) and (plugin_dir / arg).is_file():
            argv[index] = str(plugin_dir / arg)
    program = argv[0]
    if program in PYTHON_ALIASES:
        argv[0] = sys.executable
        return argv
    candidate = Path(program)
    if not candidate.is_absolute() and ("/" in program or (plugin_dir / program).exists()):
        candidate = plugin_dir / program
    if candidate.is_absolute():
        if not candidate.is_file():
            raise EntryPointNotFoundError(
                f"spec.entryPoint: {candidate} does not exist (relative paths resolve in {plugin_dir})"
            )
        if not os.access(candidate, os.X_OK):
            raise EntryPointNotFoundError(
                f"spec.entryPoint: {candidate} is not executable (chmod +x it, or start it with an interpreter)"
            )
        argv[0] = str(candidate)
        return argv
    found = shutil.which(program, path=os.environ.get("PATH", os.defpath))
    if found is None:
        raise EntryPointNotFoundError(
            f"spec.entryPoint: {program!r} is neither a file in {plugin_dir} nor a command on PATH"
        )
    argv[0] = found
    return argv


def build_environment(
    request: LoadRequest,
    socket_dir: Path,
    *,
    parent: Mapping[str, str] | None = None,
) -> dict[str, str]:
    source = os.environ if parent is None else parent
    env = {
        key: value
        for key, value in source.items()
        if key in PASSTHROUGH_ENV or key.startswith(PASSTHROUGH_ENV_PREFIXES)
    }
    env.setdefault("PATH", os.defpath)
    env["HOME"] = str(request.state_dir)
    env["PYTHONPATH"] = str(request.plugin_dir)
    if request.limits.memory_bytes is not None:
        env["MALLOC_ARENA_MAX"] = "2"
    env.update(request.env)
    env[proto.COOKIE_ENV] = proto.COOKIE_VALUE
    env[proto.SOCKET_DIR_ENV] = str(socket_dir)
    env[proto.MAX_MESSAGE_ENV] = str(request.limits.max_message_bytes)
    env[proto.PLUGIN_NAME_ENV] = request.name
    return env
