"""Package metadata: one version source, project URLs, a dated changelog entry."""

from __future__ import annotations

import re
import tomllib
from datetime import date
from importlib.metadata import metadata, version
from pathlib import Path

import cometrunway

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
RELEASE_HEADING = re.compile(r"^## (?P<version>\S+) \((?P<date>[^)]*)\)$", re.MULTILINE)


def test_the_version_is_written_once() -> None:
    project = PYPROJECT["project"]
    assert "version" not in project
    assert "version" in project["dynamic"]
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "cometrunway/__init__.py"
    assert version("cometrunway") == cometrunway.__version__


def test_project_urls_are_published() -> None:
    urls = dict(
        entry.split(", ", 1) for entry in metadata("cometrunway").get_all("Project-URL") or []
    )
    assert urls, "no Project-URL in the installed metadata"
    assert all(url.startswith("https://") for url in urls.values()), urls


def test_the_changelog_dates_the_current_version() -> None:
    changelog = (ROOT / "docs" / "changelog.md").read_text(encoding="utf-8")
    latest = RELEASE_HEADING.search(changelog)
    assert latest is not None, "no '## VERSION (DATE)' heading in docs/changelog.md"
    assert latest["version"] == cometrunway.__version__
    date.fromisoformat(latest["date"])  # e.g. 2026-11-30, not "unreleased"
