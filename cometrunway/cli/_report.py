"""``cometrunway report``: one static HTML page to look at a batch, from its journal.

The page is a single self-contained file: its CSS and JavaScript are inline, it loads
nothing from a server or CDN (a Content-Security-Policy in the page forbids it), and its
media elements point at the downloaded files by relative paths, so the page and the
download folder can be moved or zipped together. Each journal row becomes one card: the
prompt, the status, a poster and a video/audio player for the saved output, the requested
and played length, how long the task took, why it failed, and for an ambiguous create the
exact ``cometrunway settle`` commands. Buttons filter the cards by status.

The journal is only read (``Journal.entries()``). Everything the server or the user chose
(prompts, errors, ids, file names) is HTML-escaped before it enters the page.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ._cards import Card, card_for
from ._common import CliError, ExitCode, emit_json, say
from ._report_html import render_report

if TYPE_CHECKING:
    from ..journal import JournalEntry
    from ._session import Interrupt

__all__ = [
    "REPORT_NAME",
    "add_report_arguments",
    "cmd_report",
    "render_report",
    "report_beside_outputs",
    "write_report",
]

REPORT_NAME = "report.html"
SUMMARY = "write one HTML page showing a batch: each task, its video, why any failed"
DESCRIPTION = (
    "Write one self-contained HTML page (no server, nothing fetched from elsewhere) from a "
    "batch's journal: every request with its prompt, status, poster and player for its "
    "downloaded output, and the settle commands for ambiguous creates. Open it in a browser."
)


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("journal", metavar="JOURNAL", help="the batch's journal file")
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help=f"the page to write (default: DIR/{REPORT_NAME} with --downloads, else "
        f"{REPORT_NAME} here)",
    )
    parser.add_argument(
        "--downloads",
        metavar="DIR",
        help="the folder the batch saved its outputs to (batch/resume --download DIR)",
    )


def _check_journal(journal: str) -> None:
    # Opening a missing path would create an empty journal and report on nothing.
    if not Path(journal).is_file():
        raise CliError(
            f"no journal at {journal}: give the file a batch wrote "
            "(by default <input>.journal.sqlite, next to the input)",
            ExitCode.USAGE,
        )


async def read_entries(journal: str) -> list[JournalEntry]:
    """Every row of the journal at ``journal``, which must exist (it is only read)."""
    from ..journal import open_journal

    _check_journal(journal)
    store = open_journal(journal)
    await store.open()
    try:
        return await store.entries()
    finally:
        await store.close()


def _write_atomic(path: Path, text: str) -> None:
    # A temporary file beside it, then a rename: a browser never sees half a page.
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


async def write_report(
    journal: str, output: Path, *, downloads: Path | None, shown_journal: str | None = None
) -> int:
    """Write the page for ``journal`` to ``output``; returns how many cards it shows.

    ``shown_journal`` is the journal path the page's settle commands name (default:
    ``journal``).
    """
    entries = await read_entries(journal)
    cards = cards_for(
        entries, journal=shown_journal or journal, downloads=downloads, page_dir=output.parent
    )
    _write_atomic(output, render_report(cards, journal=journal, generated=datetime.now(UTC)))
    return len(cards)


def cards_for(
    entries: Iterable[JournalEntry], *, journal: str, downloads: Path | None, page_dir: Path
) -> list[Card]:
    return [
        card_for(entry, journal=journal, downloads=downloads, page_dir=page_dir)
        for entry in entries
    ]


def _paths(args: argparse.Namespace) -> tuple[str, Path, Path | None]:
    """(journal, page, downloads folder) from the command line."""
    journal = str(Path(args.journal).expanduser())
    downloads = Path(args.downloads).expanduser() if args.downloads else None
    if downloads is not None and not downloads.is_dir():
        raise CliError(f"--downloads {downloads}: no such folder", ExitCode.USAGE)
    default = (downloads or Path()) / REPORT_NAME
    output = Path(args.output).expanduser() if args.output else default
    return journal, output, downloads


def _tell(output: Path, count: int, *, json_mode: bool) -> None:
    if json_mode:
        emit_json({"event": "report", "path": str(output), "tasks": count})
    else:
        say(f"report: {output} ({count} request{'s' if count != 1 else ''}); open it in a browser")


async def report_beside_outputs(journal: str, downloads: Path, *, json_mode: bool) -> None:
    """``batch --download DIR``: the page of the batch, written as ``DIR/report.html``."""
    output = downloads / REPORT_NAME
    _tell(output, await write_report(journal, output, downloads=downloads), json_mode=json_mode)


async def cmd_report(args: argparse.Namespace, interrupt: Interrupt) -> int:
    journal, output, downloads = _paths(args)
    count = await write_report(journal, output, downloads=downloads)
    _tell(output, count, json_mode=args.json)
    return ExitCode.OK
