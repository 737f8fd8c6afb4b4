"""Sphinx configuration for the cometrunway documentation (MyST Markdown, furo theme)."""

from __future__ import annotations

import os
import sys
from datetime import date

# Import the package from this checkout, installed or not.
sys.path.insert(0, os.path.abspath(".."))

import cometrunway  # noqa: E402

project = "cometrunway"
author = "cometrunway contributors"
copyright = f"{date.today().year}, {author}"  # noqa: A001
release = cometrunway.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# Markdown: fenced ```{directive} blocks, definition lists, heading anchors for links.
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# The build runs offline: no intersphinx, and unresolved cross-references stay plain text.
nitpicky = False

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_class_signature = "mixed"
autodoc_preserve_defaults = True
autodoc_default_options = {"members": True}

html_theme = "furo"
html_title = f"cometrunway {release}"
html_static_path: list[str] = []
pygments_style = "sphinx"
pygments_dark_style = "monokai"
