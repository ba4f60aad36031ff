"""``mfx graph``: the plugin dependency graph with states and the critical chain, as Graphviz
DOT, or rendered to SVG or PNG by Graphviz's ``dot``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import click

from mfx.api.kinds import PLUGIN_MANIFEST
from mfx.cli.context import CliContext, pass_cli
from mfx.errors import BadRequestError, MfxError

RENDER_SECONDS = 60.0


def render(dot_text: str, fmt: str) -> bytes:
    """``dot_text`` rendered by Graphviz as ``fmt`` (svg or png)."""
    dot = shutil.which("dot")
    if dot is None:
        raise MfxError(f"-o {fmt} needs Graphviz's 'dot' program, which is not on PATH: install it "
                       "(apt-get install graphviz), or print DOT with -o dot and render it elsewhere")
    try:
        done = subprocess.run([dot, f"-T{fmt}"], input=dot_text.encode(), capture_output=True,
                              timeout=RENDER_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise MfxError(f"Graphviz did not render the graph within {RENDER_SECONDS:.0f} s; "
                       "print DOT with -o dot to look at it") from None
    except OSError as error:
        raise MfxError(f"could not run {dot}: {error.strerror}; check the Graphviz installation") from None
    if done.returncode != 0:
        problem = done.stderr.decode(errors="replace").strip() or f"exit status {done.returncode}"
        raise MfxError(f"Graphviz could not render the graph: {problem}; print DOT with -o dot to look at it")
    return done.stdout


@click.command("graph")
@click.option("-o", "--output", "fmt", type=click.Choice(["dot", "svg", "png"]), default="dot", show_default=True,
              help="DOT text, or an image rendered by Graphviz's dot.")
@click.option("--output-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the graph to this file instead of stdout.")
@pass_cli
def graph(ctx: CliContext, fmt: str, output_file: Path | None) -> None:
    """Print or render the plugin dependency graph, with states and the critical chain.

    Each plugin is a box with its version and state: green Ready, yellow not Ready (with the
    reason), red Stalled, grey Suspended. Arrows go from a plugin to what it depends on,
    labelled with the version constraint; optional dependencies are dashed, and a dependency
    no PluginManifest declares is a dashed red box. The critical chain (the chain of start
    times that bounds convergence, as in 'mfx analyze critical-chain') is bold blue, its time
    in the graph's title. svg and png need Graphviz (apt-get install graphviz).

    \b
    Examples:
      mfx graph                                # DOT on stdout
      mfx graph | dot -Tsvg > plugins.svg
      mfx graph -o svg --output-file plugins.svg
      mfx graph -o png > plugins.png
    """
    from mfx.cli.graph_dot import build, to_dot  # networkx: only for this command

    items = ctx.client.list(PLUGIN_MANIFEST).get("items", [])
    text = to_dot(build(items))
    if fmt == "dot":
        data = text.encode()
    else:
        if fmt == "png" and output_file is None and sys.stdout.isatty():
            raise BadRequestError("refusing to write PNG to a terminal: use --output-file FILE, or a pipe "
                                  "(mfx graph -o png > plugins.png)")
        data = render(text, fmt)
    if output_file is not None:
        try:
            output_file.write_bytes(data)
        except OSError as error:
            raise MfxError(f"cannot write {output_file}: {error.strerror}") from None
        click.echo(f"wrote {output_file}", err=True)
        return
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
