"""Tables line up by what a terminal shows: East Asian wide and fullwidth characters take two
columns, combining marks none; cells cut to a limit are cut by columns too."""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

from mfx.cli import output
from tests.daemon_harness import ThreadDaemon, run_cli

GITSOURCE = """\
apiVersion: mfx.musicfox.io/v1alpha1
kind: GitSource
metadata:
  name: {name}
spec:
  url: {url}
  ref: {{branch: main}}
"""


def columns(text: str) -> int:
    """Terminal columns, counted independently of the printer (wide 2, combining 0)."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
               for c in text)


def start_column(line: str, cell: str) -> int:
    return columns(line[:line.index(cell)])


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    with ThreadDaemon(tmp_path / "home").running() as daemon:
        yield daemon.config.home


def test_get_aligns_columns_after_wide_text(home: Path) -> None:
    sources = {"cjk": "/srv/音乐/插件.git", "fullwidth": "/srv/ＰＬＵＧＩＮＳ.git", "plain": "/srv/music/plugins.git",
               "accents": "/srv/cafe\u0301-del-mar.git"}
    manifests = "---\n".join(GITSOURCE.format(name=name, url=url) for name, url in sources.items())
    assert run_cli(home, "apply", "-f", "-", input=manifests).exit_code == 0
    header, *rows = run_cli(home, "get", "gitsources").output.splitlines()
    assert len(rows) == len(sources)
    # The column after URL starts at the same terminal column on every line.
    revision = start_column(header, "REVISION")
    assert [start_column(row, "<none>") for row in rows] == [revision] * len(rows)
    assert revision == max(columns(url) for url in sources.values()) + len("   ") + start_column(header, "URL")


def test_cells_are_cut_by_columns_and_keep_alignment() -> None:
    buffer = io.StringIO()
    output.render_table(["TITLE", "ARTIST"], [["七里香七里香七里香", "周杰伦"], ["Cafe\u0301 del Mar", "Energy 52"]],
                        out=buffer, max_widths=[8, None])
    header, first, second = buffer.getvalue().splitlines()
    assert first.startswith("七里香…") and second.startswith("Cafe\u0301 de…")
    assert columns(first.split("周")[0]) == columns(second.split("Energy")[0]) == start_column(header, "ARTIST")
    assert all(columns(line.split("   ")[0]) <= 8 for line in (first, second))


def test_a_wide_character_never_straddles_the_limit() -> None:
    assert output.truncate("音乐音乐", 4) == "音…"  # 2 + 1 columns: the next 2-column character would not fit
    assert output.display_width(output.truncate("音乐音乐", 4)) == 3
    assert output.truncate("音乐", 4) == "音乐"
    assert output.pad("音乐", 6) == "音乐  "
