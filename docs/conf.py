"""Sphinx configuration for the cometrunway documentation (MyST Markdown, furo theme)."""

from __future__ import annotations

import inspect
import os
import sys
from datetime import date
from typing import Any

import attrs

# Import the package from this checkout, installed or not.
sys.path.insert(0, os.path.abspath(".."))

import cometrunway

project = "cometrunway"
author = "cometrunway contributors"
copyright = f"{date.today().year}, {author}"
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
# Defaults as written in the source (``base_url=DEFAULT_BASE_URL``) read better than their
# values, except in the ``__init__`` attrs generates, whose source says
# ``attr_dict['model'].default``: ``_attrs_defaults_as_values`` below shows those as values.
autodoc_preserve_defaults = True
autodoc_default_options = {"members": True}

html_theme = "furo"
html_title = f"cometrunway {release}"
html_static_path: list[str] = []
pygments_style = "sphinx"
pygments_dark_style = "monokai"


# attrs compiles each class's ``__init__`` from source it generates under this file name.
ATTRS_GENERATED = "<attrs generated"


class _Shown:
    """A default as the docs should print it (autodoc prints a default's ``repr``)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _attrs_class(function: Any) -> type | None:
    owner: Any = sys.modules.get(function.__module__)
    for name in function.__qualname__.split(".")[:-1]:
        owner = getattr(owner, name, None)
    return owner if isinstance(owner, type) and attrs.has(owner) else None


def _factory_text(factory: Any) -> str:
    if factory in (dict, list, tuple):
        return repr(factory())
    return f"{getattr(factory, '__qualname__', repr(factory))}()"


def _attrs_defaults_as_values(app: Any, obj: Any, bound_method: bool) -> None:
    """Show the defaults of an attrs-generated ``__init__`` as values.

    ``autodoc_preserve_defaults`` stores the generated source's text
    (``attr_dict['model'].default``) as ``__signature__``; the function's own defaults are
    the values, except for ``factory=`` fields, where attrs leaves ``NOTHING``: those are
    shown as the factory's call (``{}``, ``MotionVector()``).
    """
    function = getattr(obj, "__func__", obj)
    code = getattr(function, "__code__", None)
    if code is None or not code.co_filename.startswith(ATTRS_GENERATED):
        return
    vars(function).pop("__signature__", None)
    cls = _attrs_class(function)
    if cls is None:
        return
    fields = {field.alias or field.name: field for field in attrs.fields(cls)}
    signature = inspect.signature(function)
    parameters = []
    for parameter in signature.parameters.values():
        field = fields.get(parameter.name)
        default = field.default if field is not None else None
        if parameter.default is attrs.NOTHING and isinstance(default, attrs.Factory):
            parameter = parameter.replace(default=_Shown(_factory_text(default.factory)))
        parameters.append(parameter)
    function.__signature__ = signature.replace(parameters=parameters)


def setup(app: Any) -> None:
    # After autodoc's own handler (priority 500), which sets the source-text defaults.
    app.connect("autodoc-before-process-signature", _attrs_defaults_as_values, priority=900)
