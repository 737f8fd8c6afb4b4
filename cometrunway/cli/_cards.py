"""What the report page shows of each journal row (a ``Card``): its status group, title,
lengths, credits, saved files and settle commands, all still unescaped."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from attrs import frozen

from ._credits import credit_text

if TYPE_CHECKING:
    from ..journal import JournalEntry


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
    # Credits as the journal kept them (wire §8.2); only a row with a task has any to show.
    cost: float | None = None
    estimated_cost: float | None = None

    @property
    def credits(self) -> str | None:
        """``25 spent``, else ``estimated 25``, else ``unknown``; None without a task."""
        if self.task_id is None:
            return None
        return credit_text(self.cost, self.estimated_cost)


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
        cost=entry.cost,
        estimated_cost=entry.estimated_cost,
    )
