"""The docs build without warnings and print attrs defaults as values, not source text.

Needs the ``docs`` extra (Sphinx); skipped without it, as in the per-Python nox sessions.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD_TIMEOUT = 300  # seconds; the build takes about 20 on a busy two-core machine

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("sphinx") is None, reason="Sphinx (the docs extra) is missing"
    ),
]


def check(html_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "docs" / "check_html.py"), str(html_dir)],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def built_docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html")
    sphinx = [sys.executable, "-m", "sphinx", "-q", "-W", "--keep-going", "-b", "html"]
    build = subprocess.run(
        [*sphinx, "-d", str(out / ".doctrees"), str(ROOT / "docs"), str(out)],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    return out


def test_api_reference_prints_attrs_defaults_as_values(built_docs: Path) -> None:
    result = check(built_docs)
    assert result.returncode == 0, result.stderr
    api = (built_docs / "api.html").read_text(encoding="utf-8")
    # TextToVideo(prompt, *, model="gen4", ...) and a factory default (extra=dict).
    assert '<span class="default_value"><span class="pre">\'gen4\'</span>' in api
    assert '<span class="default_value"><span class="pre">{}</span>' in api
    assert "attr_dict" not in api


def test_the_check_fails_on_unrendered_defaults(tmp_path: Path) -> None:
    page = "<dt>TextToVideo(<em>model: str = attr_dict['model'].default</em>)</dt>"
    (tmp_path / "index.html").write_text("<html></html>", encoding="utf-8")
    (tmp_path / "api.html").write_text(page, encoding="utf-8")
    result = check(tmp_path)
    assert result.returncode == 1
    assert "api.html: 'attr_dict[' x1" in result.stderr
