"""``bench.launcher.run_timed``: a command timed from a process of its own."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from bench.launcher import run_timed


def test_the_command_is_timed_on_this_process_clock_and_its_output_kept() -> None:
    before = time.perf_counter()
    done = run_timed([sys.executable, "-c", "import sys; print('applied'); print('noise', file=sys.stderr)"])
    after = time.perf_counter()
    assert done.stdout == "applied\n"
    # CLOCK_MONOTONIC is one clock for every process: the launcher's readings fall in between.
    assert before <= done.started <= done.ended <= after
    assert done.seconds == done.ended - done.started


def test_a_failing_command_raises_with_its_own_error_output() -> None:
    with pytest.raises(subprocess.CalledProcessError) as caught:
        run_timed([sys.executable, "-c", "import sys; sys.exit('no daemon')"])
    assert caught.value.returncode == 1
    assert caught.value.stderr.strip() == "no daemon"
