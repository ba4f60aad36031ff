"""The ``mfx plugin`` group; its commands live in ``plugin_authoring`` and ``plugin_store``."""

from __future__ import annotations

import click


@click.group("plugin")
def plugin_group() -> None:
    """Write, package, sign, verify and install plugins.

    \b
    A plugin's life:
      mfx plugin init my-gain --type dynamic_library --dir plugins
      mfx plugin keygen ~/.config/mfx/signing.key ~/.config/mfx/signing.pub
      mfx trust add me ~/.config/mfx/signing.pub
      mfx plugin pack plugins/my-gain --key ~/.config/mfx/signing.key
      mfx plugin verify my-gain-0.1.0.tgz
      mfx plugin install my-gain-0.1.0.tgz
      mfx rollback pm/my-gain
    """
