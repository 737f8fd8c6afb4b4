"""What the commands share: command lines to paste, journal paths, and the report of
requests whose create may or may not have happened."""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
from collections.abc import Sequence
from pathlib import Path

from ..journal import POSTGRES_SCHEMES, JournalEntry
from ._common import CliError, ExitCode, emit_json, note
from ._jobs import (
    plural,
)


def _command(args: argparse.Namespace, *words: str) -> str:
    """A command line to paste, carrying the options it needs from this one."""
    parts = ["cometrunway", *words]
    for flag, value in (("--base-url", args.base_url), ("--api-key-file", args.api_key_file)):
        if value:
            parts += [flag, value]
    if getattr(args, "poll_interval", None):
        parts += ["--poll-interval", f"{args.poll_interval:g}"]
    return shlex.join(parts)


def _entry_text(entry: JournalEntry) -> str:
    if entry.label:
        return entry.label
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        body = json.loads(entry.body)
        prompt = body.get("prompt") or body.get("promptText")
        if isinstance(prompt, str):
            return prompt[:60]
    return entry.request_type or entry.key


def report_ambiguous(
    entries: Sequence[JournalEntry], journal: str, args: argparse.Namespace
) -> None:
    """Each ambiguous row, and the two ways to settle it."""
    if not entries:
        return
    note(
        f"{plural(len(entries), 'request')} may have been created without the task id being "
        "recorded (ambiguous); settle each one:"
    )
    for entry in entries:
        settle = _command(args, "settle", "--journal", journal, entry.key)
        error = f" ({entry.error})" if entry.error else ""
        note(f"  {entry.key}  {entry.request_type}  {_entry_text(entry)}{error}")
        note(f"    found the task in your CometAPI task list?  {settle} --task-id TASK_ID")
        note(f"    sure it was not created (pays again)?      {settle} --resubmit")
        if args.json:
            emit_json(
                {
                    "event": "ambiguous_entry",
                    "key": entry.key,
                    "type": entry.request_type,
                    "label": entry.label,
                    "error": entry.error,
                    "settle_with_task_id": f"{settle} --task-id TASK_ID",
                    "settle_resubmit": f"{settle} --resubmit",
                }
            )


# ---------------------------------------------------------------- paths


def user_path(value: str | None) -> Path | None:
    return Path(value).expanduser() if value else None


def is_journal_url(value: str) -> bool:
    """A ``postgresql://`` (or ``postgres://``) journal, not a file path."""
    return value.partition("://")[0].lower() in POSTGRES_SCHEMES


def existing_journal(value: str) -> str:
    """A journal that must exist already (a new empty one would hide a wrong path); a
    ``postgresql://`` URL is passed on as is (the server says whether it exists)."""
    if is_journal_url(value):
        return value
    path = Path(value).expanduser()
    if not path.is_file():
        raise CliError(
            f"no journal at {path}: give the file a batch wrote "
            "(by default <input>.journal.sqlite, next to the input)",
            ExitCode.USAGE,
        )
    return str(path)


# ---------------------------------------------------------------- batch


_CREATES_HINT = "interrupting: recording creates in flight (Ctrl-C again to quit at once)"
