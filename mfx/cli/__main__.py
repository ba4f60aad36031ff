"""``python -m mfx.cli``: the same as the ``mfx`` command."""

from mfx.cli.main import main

main()
