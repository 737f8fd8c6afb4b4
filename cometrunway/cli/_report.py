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
import glob
import html
import json
import os
import secrets
import shlex
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from attrs import frozen

from ._common import CliError, ExitCode, emit_json, say

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

VIDEO_SUFFIXES = frozenset({".mp4", ".webm", ".mov", ".m4v"})
AUDIO_SUFFIXES = frozenset({".mp3", ".wav", ".m4a", ".aac", ".ogg", ".oga", ".flac", ".opus"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif"})
PROMPT_FIELDS = ("prompt", "promptText")

# Status groups, in the order their filter buttons appear.
GROUPS = {
    "succeeded": "Succeeded",
    "failed": "Failed",
    "running": "Running",
    "ambiguous": "Ambiguous",
    "unsent": "Not sent",
}
_STATE_GROUPS = {"queued": "unsent", "rejected": "failed", "sending": "ambiguous"}
_TERMINAL_GROUPS = {"SUCCEEDED": "succeeded", "FAILED": "failed", "CANCELLED": "failed"}


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


@frozen
class Card:
    """What the page shows of one journal row; every text is still unescaped."""

    key: str
    group: str
    status: str
    title: str
    request_type: str
    task_id: str | None
    error: str | None
    requested_seconds: float | None
    took_seconds: float | None
    output: str | None  # relative URL of the saved main output
    output_kind: str | None  # "video" | "audio" | "image"
    poster: str | None  # relative URL of the saved poster (or last frame)
    settle: tuple[str, ...]


def _body(entry: JournalEntry) -> Mapping[str, Any]:
    with contextlib.suppress(ValueError, TypeError):
        body = json.loads(entry.body)
        if isinstance(body, dict):
            return body
    return {}


def _title(entry: JournalEntry, body: Mapping[str, Any]) -> str:
    for field in PROMPT_FIELDS:
        if isinstance(body.get(field), str) and body[field]:
            return str(body[field])
    return entry.label or entry.request_type or entry.key


def _requested_seconds(body: Mapping[str, Any]) -> float | None:
    # /runway/pro/* bodies carry options.seconds; /runwayml/v1/* ones a top-level duration.
    options = body.get("options")
    for value in (
        options.get("seconds") if isinstance(options, dict) else None,
        body.get("duration"),
        body.get("seconds"),
    ):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def _group_and_status(entry: JournalEntry) -> tuple[str, str]:
    state = entry.state.value
    if state in _STATE_GROUPS:
        return _STATE_GROUPS[state], state.upper()
    if state == "ambiguous":
        return "ambiguous", "AMBIGUOUS"
    status = (entry.status or ("SUCCEEDED" if state == "done" else "PENDING")).upper()
    if state == "done":
        return _TERMINAL_GROUPS.get(status, "failed"), status
    return "running", status


def _media_kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in AUDIO_SUFFIXES:
        return "audio"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    return None


def saved_files(
    task_id: str, outputs: Sequence[str], downloads: Path
) -> tuple[Path | None, Path | None]:
    """(main output, poster) saved for a task in ``downloads``, by the download module's
    names: ``{id}{ext}`` for the main output, ``{id}.poster{ext}`` / ``{id}.last_frame{ext}``."""
    from ..download import output_filename

    stem = Path(output_filename(task_id, "", "video")).stem
    main: Path | None = None
    if outputs:
        candidate = downloads / output_filename(task_id, outputs[0], "video")
        main = candidate if candidate.is_file() else None
    if main is None:  # outputs not journaled: any {id}.{ext} with a media suffix
        for path in sorted(downloads.glob(f"{glob.escape(stem)}.*")):
            if path.stem == stem and path.is_file() and _media_kind(path):
                main = path
                break
    poster = None
    for role in ("poster", "last_frame"):
        found = sorted(downloads.glob(f"{glob.escape(stem)}.{role}.*"))
        if found and _media_kind(found[0]) == "image":
            poster = found[0]
            break
    return main, poster


def _relative_url(path: Path, page_dir: Path) -> str:
    relative = os.path.relpath(path.resolve(), page_dir.resolve())
    return quote(relative.replace(os.sep, "/"))


def card_for(entry: JournalEntry, *, journal: str, downloads: Path | None, page_dir: Path) -> Card:
    body = _body(entry)
    group, status = _group_and_status(entry)
    error = None
    if entry.error or entry.error_code:
        error = entry.error or "no reason given"
        error += f" [{entry.error_code}]" if entry.error_code else ""
    took = None
    if entry.state.value == "done" and entry.submitted_at is not None:
        took = max(0.0, entry.updated_at - entry.submitted_at)
    output = poster = kind = None
    if downloads is not None and entry.task_id:
        main, poster_path = saved_files(entry.task_id, entry.outputs, downloads)
        if main is not None:
            output, kind = _relative_url(main, page_dir), _media_kind(main)
        if poster_path is not None:
            poster = _relative_url(poster_path, page_dir)
    settle: tuple[str, ...] = ()
    if group == "ambiguous":
        command = shlex.join(["cometrunway", "settle", "--journal", journal, entry.key])
        settle = (f"{command} --task-id TASK_ID", f"{command} --resubmit")
    return Card(
        key=entry.key,
        group=group,
        status=status,
        title=_title(entry, body),
        request_type=entry.request_type or "tracked task",
        task_id=entry.task_id,
        error=error,
        requested_seconds=_requested_seconds(body),
        took_seconds=took,
        output=output,
        output_kind=kind,
        poster=poster,
        settle=settle,
    )


# ---------------------------------------------------------------- the page


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _seconds_text(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def _media_html(card: Card) -> str:
    poster = f' poster="{_e(card.poster)}"' if card.poster else ""
    if card.output and card.output_kind == "video":
        return f'<video controls preload="metadata"{poster} src="{_e(card.output)}"></video>'
    if card.output and card.output_kind == "audio":
        image = f'<img alt="poster" src="{_e(card.poster)}">' if card.poster else ""
        return f'{image}<audio controls preload="metadata" src="{_e(card.output)}"></audio>'
    if card.output and card.output_kind == "image":
        return f'<img alt="output" src="{_e(card.output)}">'
    if card.poster:
        return f'<img alt="poster" src="{_e(card.poster)}">'
    return '<div class="none">no saved output</div>'


def _card_html(card: Card) -> str:
    facts = [("type", _e(card.request_type))]
    if card.task_id:
        facts.append(("task", f"<code>{_e(card.task_id)}</code>"))
    length = f"{card.requested_seconds:g} s asked" if card.requested_seconds else "—"
    facts.append(("length", f'{_e(length)}<span class="played"></span>'))
    if card.took_seconds is not None:
        facts.append(("took", _e(_seconds_text(card.took_seconds))))
    facts.append(("key", f"<code>{_e(card.key[:16])}</code>"))
    rows = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts)
    parts = [
        f'<article class="card" data-group="{_e(card.group)}">',
        f'<div class="media">{_media_html(card)}</div>',
        '<div class="text">',
        f'<p class="status {_e(card.group)}">{_e(card.status)}</p>',
        f'<h2 class="prompt">{_e(card.title)}</h2>',
        f"<dl>{rows}</dl>",
    ]
    if card.error:
        parts.append(f'<p class="error">{_e(card.error)}</p>')
    if card.settle:
        parts.append(
            '<p class="hint">The create may have reached the server. Found the task in your '
            "CometAPI task list? Attach it. Sure it was not created? Resubmit (pays again).</p>"
        )
        parts += [f'<pre class="settle">{_e(command)}</pre>' for command in card.settle]
    parts.append("</div></article>")
    return "".join(parts)


def _asset(name: str) -> str:
    # Shipped beside this module, inlined into every page: the page stays one file.
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


# Nothing but this file and the files beside it: no server, no CDN, no fonts from elsewhere.
_POLICY = (
    "default-src 'none'; img-src 'self' file: data:; media-src 'self' file:; "
    "style-src 'unsafe-inline'; script-src 'unsafe-inline'"
)


def render_report(cards: Sequence[Card], *, journal: str, generated: datetime) -> str:
    """The whole page for ``cards``."""
    counts = Counter(card.group for card in cards)
    buttons = [f'<button type="button" data-filter="all" aria-pressed="true">All ({len(cards)})']
    buttons += [
        f'<button type="button" data-filter="{group}" aria-pressed="false">'
        f"{label} ({counts[group]})"
        for group, label in GROUPS.items()
        if counts[group]
    ]
    summary = ", ".join(f"{counts[g]} {label.lower()}" for g, label in GROUPS.items() if counts[g])
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>cometrunway batch · {_e(Path(journal).name)}</title>",
            f"<style>{_asset('report.css')}</style></head><body>",
            f"<h1>Batch report: {len(cards)} request{'s' if len(cards) != 1 else ''}</h1>",
            f'<p class="meta">journal <code>{_e(journal)}</code> · {_e(summary or "empty")}'
            f" · written {_e(generated.strftime('%Y-%m-%d %H:%M UTC'))}</p>",
            f'<nav class="filters">{"</button>".join(buttons)}</button></nav>',
            '<main class="cards">',
            *(_card_html(card) for card in cards),
            "</main>",
            f"<script>{_asset('report.js')}</script>",
            "</body></html>",
            "",
        ]
    )


# ---------------------------------------------------------------- reading and writing


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
