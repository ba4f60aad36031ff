"""A plugin's process group: starting it as a group leader, signalling the whole group,
the ``GroupReaper`` that kills it when the daemon dies, and how an exit is described."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mfx import cpu_affinity
from mfx.errors import EntryPointNotFoundError, PluginLoadError
from mfx.runtimes.cgroups import Cgroup

# $1: the process group; $2: the cgroup directory, or empty. ``read`` returns at end-of-file.
REAPER_SCRIPT = 'read _; kill -s KILL -- "-$1" 2>/dev/null; [ -z "$2" ] || echo 1 > "$2/cgroup.kill" 2>/dev/null'

# Logs under the name of the process API this belongs to, so one logger covers it.
log = logging.getLogger("mfx.runtimes.process")


async def spawn(
    argv: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    preexec_fn: Callable[[], None],
) -> asyncio.subprocess.Process:
    try:
        with cpu_affinity.spawning():  # the plugin gets every CPU the daemon has
            return await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=str(cwd),
                env=dict(env),
                preexec_fn=preexec_fn,
                start_new_session=True,
            )
    except FileNotFoundError as exc:
        raise EntryPointNotFoundError(f"cannot start {argv[0]!r}: {exc.strerror}") from None
    except PermissionError as exc:
        raise EntryPointNotFoundError(
            f"cannot start {argv[0]!r}: {exc.strerror} (is it executable?)"
        ) from None
    except (OSError, subprocess.SubprocessError) as exc:
        raise PluginLoadError(f"cannot start {shlex.join(argv)}: {exc}") from None


def signal_group(process: Any, sig: int) -> None:
    """Signal the plugin's process group (it leads its own session): the plugin and whatever
    it started. The group outlives its leader, so this reaches the children of a plugin that
    has exited too; its number is not handed to a new process while any member lives."""
    try:
        os.killpg(process.pid, sig)
        return
    except ProcessLookupError:
        pass  # no group (any more, or not yet: a forked plugin calls setsid itself)
    except PermissionError:
        pass
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)


class GroupReaper:
    """Kills one plugin's process group (and cgroup) when the daemon lets go of it, or dies.

    A shell outside the group, in a session of its own, reading a pipe whose only writer is
    the daemon: end-of-file comes from ``release()`` or from the kernel when the daemon dies
    (SIGKILL included), and then the shell kills the group and exits. The plugin's own
    death signal cannot do this: it reaches the plugin, never its children."""

    def __init__(self, process: asyncio.subprocess.Process, writer: int) -> None:
        self._process = process
        self._writer: int | None = writer

    @property
    def pid(self) -> int:
        return int(self._process.pid)

    @classmethod
    async def start(cls, pgid: int, cgroup: Cgroup | None) -> GroupReaper | None:
        """The reaper of group ``pgid``; None (logged) if no shell can be started."""
        reader, writer = os.pipe()  # not inheritable: no other child holds the writer
        try:
            with cpu_affinity.spawning():  # not on the interpreter's CPU
                process = await asyncio.create_subprocess_exec(
                    "/bin/sh", "-c", REAPER_SCRIPT, "mfx-reaper", str(pgid),
                    str(cgroup.path) if cgroup is not None else "",
                    stdin=reader, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    cwd="/", env={"PATH": os.defpath}, start_new_session=True,
                )
        except (OSError, subprocess.SubprocessError) as exc:
            os.close(writer)
            log.warning("cannot start the reaper of process group %d: %s; its processes "
                        "will outlive a killed daemon", pgid, exc)
            return None
        except BaseException:
            os.close(writer)  # cancelled: a reaper that did start sees end-of-file and exits
            raise
        finally:
            os.close(reader)
        return cls(process, writer)

    async def release(self) -> None:
        """Let the reaper kill what is left of the group, and reap it."""
        writer, self._writer = self._writer, None
        if writer is not None:
            os.close(writer)
        await self._process.wait()


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name} ({-returncode})"
    return f"exited with code {returncode}"
