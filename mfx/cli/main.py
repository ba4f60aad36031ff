"""The ``mfx`` entry point: the hot commands without click, everything else through click.

``fast_path`` answers ``mfx --help``, ``mfx version``, ``mfx now`` and the common forms of
``mfx get`` with the same functions the click commands call, before click or any command
module is imported; whatever it does not recognise, click (``root``) parses as always.
"""

from __future__ import annotations

import gc
import sys

# Not typing's: mypy reads the name alone, and importing typing costs a hot ``mfx`` call time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def main() -> None:
    from mfx.cli import fast_path

    try:
        if fast_path.run(sys.argv[1:]):
            return
        from mfx.cli.root import build_cli

        build_cli()(prog_name="mfx")
    finally:
        # The process ends here. At exit the interpreter's collector would walk once more
        # everything the command made (after an apply of 1000 manifests, 6 ms: more than a
        # tenth of it); frozen, it is left to go with the process, freed as a whole.
        gc.freeze()


def __getattr__(name: str) -> Any:
    # ``from mfx.cli.main import build_cli`` keeps working without every start paying for click.
    if name in ("build_cli", "cli", "KUBECTL_VERBS", "OPERATIONS", "PLAYER", "TOOLS", "PLUGIN_COMMANDS"):
        from mfx.cli import root

        return getattr(root, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
