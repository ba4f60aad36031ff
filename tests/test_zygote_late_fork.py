"""A fork request the daemon gave up on (its answer came after the deadline, as on a loaded
machine) still makes a plugin process, a child of the daemon's: closing the zygote kills and
reaps it, so it never lingers as a zombie nobody waits for."""

from __future__ import annotations

import os
import sys

import psutil
import pytest

from mfx.runtimes import zygote

pytestmark = pytest.mark.anyio


async def test_the_plugin_of_a_fork_given_up_on_is_reaped_when_the_zygote_closes(
        monkeypatch: pytest.MonkeyPatch, tmp_path: os.PathLike[str]) -> None:
    if zygote.platform.machine() not in zygote.SUPPORTED_MACHINES:
        pytest.skip("no zygote on this machine")
    before = {p.pid for p in psutil.Process().children()}
    started = await zygote.Zygote.start(preexec_fn=lambda: None)
    try:
        argv = [sys.executable, "-m", "json.tool"]  # reads its stdin until the end, then exits
        launch = zygote.launch_for(argv, started.env, started.env)
        assert launch is not None
        monkeypatch.setattr(zygote, "FORK_TIMEOUT_SECONDS", 1e-9)  # the answer always comes too late
        with pytest.raises(zygote.ZygoteError, match="TimeoutError"):
            await started.fork(zygote.ForkRequest(name="late", launch=launch, env=started.env, cwd=str(tmp_path),
                                                  rlimits=[], cgroup_procs=None))
    finally:
        await started.aclose()
    left = [p for p in psutil.Process().children() if p.pid not in before]
    assert left == [], "the late plugin (and the zygote) are gone, none left a zombie"
