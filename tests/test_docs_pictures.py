"""The docs' pictures: the performance charts match the figures in docs/performance.md, and
every picture a page shows exists and is well-formed SVG."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
STATIC = DOCS / "_static"


def test_performance_charts_are_drawn_from_the_current_figures(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "plot_figures.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    drawn = sorted(p.name for p in tmp_path.glob("*.svg"))
    assert drawn == ["perf-overhead.svg", "perf-poll-efficiency.svg"]
    for name in drawn:
        assert (tmp_path / name).read_text(encoding="utf-8") == (STATIC / name).read_text(
            encoding="utf-8"
        ), f"docs/_static/{name} is stale: run `python bench/plot_figures.py`"


def test_the_charts_show_the_figures_the_page_states() -> None:
    chart = (STATIC / "perf-poll-efficiency.svg").read_text(encoding="utf-8")
    page = (DOCS / "performance.md").read_text(encoding="utf-8")
    median = re.search(r"after\s+cometrunway\s+requests/task=([\d.]+)", page)
    assert median is not None
    assert f">{float(median[1]):g}<" in chart


def test_a_plot_of_a_page_without_its_figures_fails_clearly(tmp_path: Path) -> None:
    page = tmp_path / "performance.md"
    page.write_text("# Performance\n\nno result blocks\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "plot_figures.py"), "--doc", str(page)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "must hold the before/after result blocks" in result.stderr


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_every_picture_a_page_shows_exists_and_parses(page: Path) -> None:
    for picture in re.findall(r"_static/([\w.-]+\.svg)", page.read_text(encoding="utf-8")):
        path = STATIC / picture
        assert path.is_file(), f"{page.name} shows {picture}, which is missing"
        root = ET.parse(path).getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert "cdnjs" not in path.read_text(encoding="utf-8")  # self-contained
