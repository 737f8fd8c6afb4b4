"""Fail when the built HTML docs show source text where a value belongs.

    python docs/check_html.py docs/_build/html

autodoc can print a default as the expression that computes it instead of its value:
``attr_dict['model'].default`` (the source attrs generates for ``__init__``) or
``NOTHING`` (attrs' marker for a ``factory=`` default). ``sphinx-build -W`` does not warn
about either, so this check runs after every build (nox ``docs``, .ci/run, the docs test).
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

# Text that never belongs in a rendered page, and why.
UNRENDERED = {
    "attr_dict[": "an attrs default shown as its generated source",
    "= NOTHING": "an attrs factory default shown as attrs' marker",
}
TAG = re.compile(r"<[^>]+>")


def problems(html_dir: Path) -> list[str]:
    """One line per page and marker found, e.g. ``api.html: 'attr_dict[' x3 (...)``."""
    found = []
    for page in sorted(html_dir.rglob("*.html")):
        if "_modules" in page.parts:  # highlighted source code, not rendered API docs
            continue
        # The text a reader sees: a signature's "=" and its default are separate elements.
        text = html.unescape(TAG.sub("", page.read_text(encoding="utf-8")))
        text = text.replace("=", " = ").replace("  ", " ")
        for marker, meaning in UNRENDERED.items():
            count = text.count(marker)
            if count:
                found.append(f"{page.relative_to(html_dir)}: {marker!r} x{count} ({meaning})")
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python docs/check_html.py HTML_DIR", file=sys.stderr)
        return 2
    html_dir = Path(argv[0])
    if not (html_dir / "index.html").is_file():
        print(f"{html_dir}: no index.html; build the docs first", file=sys.stderr)
        return 2
    found = problems(html_dir)
    for line in found:
        print(line, file=sys.stderr)
    if found:
        return 1
    print(f"{html_dir}: every default is rendered as a value")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
