"""What the user sees while tasks run: a live rich view, plain log lines, or JSON lines.

* ``LiveDisplay`` (stdout is a terminal and rich is installed): a progress bar over the
  whole batch, counts per state from ``BatchTally``, the ETA, downloads, and the running
  tasks with the most progress, each with its own bar. Polls are sparse on purpose (the
  poller aims just after a task's estimated finish), so a task's bar moves between polls
  at the rate its progress was last seen rising: the picture stays smooth at no API cost.
* ``PlainDisplay`` (stdout is a file or a pipe, or ``--plain``): one line per submitted or
  finished task and per download, and a summary line every few seconds.
* ``QuietDisplay`` (``--quiet``): nothing while tasks run, a line on stderr if some failed.
* ``JsonDisplay`` (``--json``): one JSON object per event on stdout, then one per result
  and a summary; human notes go to stderr.

rich is imported only by ``LiveDisplay``: without it the CLI falls back to plain lines.
"""

from __future__ import annotations

import sys

from ._common import note
from ._live import LiveDisplay
from ._plain import Display, JsonDisplay, PlainDisplay, QuietDisplay
from ._plain import _Running as _Running

__all__ = [
    "Display",
    "JsonDisplay",
    "LiveDisplay",
    "PlainDisplay",
    "QuietDisplay",
    "make_display",
    "set_quiet",
]


_QUIET = {"on": False}  # set once per command line by main(), from --quiet


def set_quiet(quiet: bool) -> None:
    """``--quiet`` for the displays made from now on (``--json`` still wins)."""
    _QUIET["on"] = quiet


def make_display(*, json_mode: bool, plain: bool, total: int, title: str) -> Display:
    """JSON lines, nothing much (``--quiet``), a live view on a terminal (with rich), or
    plain lines."""
    if json_mode:
        return JsonDisplay(total, title)
    if _QUIET["on"]:
        return QuietDisplay(total, title)
    if not plain and sys.stdout.isatty():
        try:
            return LiveDisplay(total, title)
        except ImportError:
            note("note: install the cli extra (pip install 'cometrunway[cli]') for a live view")
    return PlainDisplay(total, title)
