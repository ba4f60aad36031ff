"""Options ``mfx serve`` and ``mfx agent`` share: both run the daemon in this process."""

from __future__ import annotations

import click

no_pin_threads = click.option(
    "--no-pin-threads", "no_pin_threads", is_flag=True,
    help="Let the daemon's Python threads run on any CPU. By default they share one: Python runs one "
         "of them at a time anyway, and handing it between CPUs costs more than it gives. Plugin "
         "processes, the audio engine and git use every CPU either way.")
