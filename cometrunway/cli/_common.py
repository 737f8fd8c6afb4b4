"""Shared pieces of the command line: exit codes, one-line errors, secret redaction, output
streams, JSON shapes, and atomically written results files.

Everything here is synchronous and free of rich, so every other CLI module can use it.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import os
import secrets
import sys
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from ..models import Task

__all__ = [
    "CliError",
    "ExitCode",
    "add_secret",
    "configure_logging",
    "emit_json",
    "note",
    "printable",
    "redact",
    "say",
    "task_json",
    "write_jsonl_atomic",
]

log = logging.getLogger("cometrunway.cli")


class ExitCode(enum.IntEnum):
    """The documented exit codes (the table is in the package docstring and ``--help``)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    CONFIG = 3
    AMBIGUOUS = 4
    INTERRUPTED = 130
    TERMINATED = 143


class CliError(Exception):
    """A problem the user can fix: printed as one ``error: ...`` line, then exit ``code``."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# ---------------------------------------------------------------- secrets

_SECRETS: set[str] = set()


def add_secret(value: str) -> None:
    """Never print ``value``: every line this CLI writes goes through ``redact``.

    The library already keeps the key out of its messages; this also covers a server that
    echoes it back in an error body.
    """
    if len(value) >= 4:
        _SECRETS.add(value)


def redact(text: str) -> str:
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, "***")
    return text


# ---------------------------------------------------------------- terminal safety


def _visible(code: int) -> str:
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


#: Characters a terminal acts on instead of showing: C0 controls but tab and newline, DEL,
#: the C1 range (0x9b is a one-byte CSI on some terminals) and the bidi overrides that
#: reorder what follows them. Server-chosen text (task ids, messages) may hold any of them.
_UNSAFE = {
    code: _visible(code)
    for code in (
        *(c for c in range(0x20) if chr(c) not in "\t\n"),
        0x7F,
        *range(0x80, 0xA0),
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    )
}


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on shown as an escape (``\\x1b``),
    so a hostile server cannot move the cursor, recolour or rewrite what the user reads."""
    return text.translate(_UNSAFE)


class _RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            # A traceback is rendered from the exception after filters run: render it here,
            # so it is redacted too.
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info, record.exc_text = None, None
        record.msg, record.args = printable(redact(message)), None
        return True


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time: a live display swaps it for a proxy
    that prints above the progress bars instead of through them."""

    def emit(self, record: logging.LogRecord) -> None:
        self.setStream(sys.stderr)
        super().emit(record)


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


def configure_logging(verbosity: int) -> Callable[[], None]:
    """Send the ``cometrunway`` logger to stderr; returns what puts it back as it was.

    ``COMETRUNWAY_LOG=debug|info|warning`` sets the level; ``-v`` means info and ``-vv``
    debug (the more verbose of the two wins). Warnings show by default: they are retries
    and similar trouble worth seeing.

    ``main()`` can be called in a program that has its own logging: once the command is
    done, the library's logger must propagate to that program's handlers again, at the level
    it had.
    """
    level = logging.WARNING
    wanted = os.environ.get("COMETRUNWAY_LOG", "").strip().lower()
    if wanted:
        if wanted not in _LEVELS:
            note(f"warning: COMETRUNWAY_LOG={wanted!r} is not one of debug, info, warning")
        level = _LEVELS.get(wanted, logging.WARNING)
    if verbosity >= 2:
        level = min(level, logging.DEBUG)
    elif verbosity == 1:
        level = min(level, logging.INFO)
    logger = logging.getLogger("cometrunway")
    saved_handlers, saved_level, saved_propagate = (
        list(logger.handlers),
        logger.level,
        logger.propagate,
    )
    for handler in list(logger.handlers):
        if isinstance(handler, _CurrentStderrHandler):
            logger.removeHandler(handler)
    handler = _CurrentStderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_RedactFilter())
    logger.addHandler(handler)
    logger.setLevel(level)
    # The CLI owns stderr: no second copy through the root logger's last resort.
    logger.propagate = False

    def restore() -> None:
        logger.handlers[:] = saved_handlers
        logger.setLevel(saved_level)
        logger.propagate = saved_propagate

    return restore


# ---------------------------------------------------------------- output streams


def say(text: str = "") -> None:
    """A line of human output on stdout (looked up now: a live display may proxy it)."""
    sys.stdout.write(printable(redact(text)) + "\n")
    sys.stdout.flush()


def note(text: str) -> None:
    """A diagnostic line on stderr."""
    sys.stderr.write(printable(redact(text)) + "\n")
    sys.stderr.flush()


def _default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    return str(value)


#: JSON escapes C0 controls itself; these it leaves raw with ``ensure_ascii=False``.
_JSON_UNSAFE = {code: f"\\u{code:04x}" for code in _UNSAFE if code >= 0x7F}


def dumps(value: Any) -> str:
    return redact(json.dumps(value, ensure_ascii=False, default=_default)).translate(_JSON_UNSAFE)


def emit_json(record: Mapping[str, Any]) -> None:
    """One JSON line on stdout (``--json``): the only thing ever written there in that mode."""
    sys.stdout.write(dumps(record) + "\n")
    sys.stdout.flush()


def task_json(task: Task) -> dict[str, Any]:
    """A ``Task`` as a JSON object (``raw`` left out: it is the server's body, unfiltered)."""
    return {
        "task_id": task.task_id,
        "status": task.status.value,
        "raw_status": task.raw_status,
        "progress": task.progress,
        "outputs": list(task.outputs),
        "video_url": task.video_url,
        "poster_url": task.poster_url,
        "last_frame_url": task.last_frame_url,
        "error": task.error,
        "error_code": task.error_code,
        "created_at": task.created_at,
        "started_at": task.started_at,
        "finished_at": task.finished_at,
        "estimated_cost": task.estimated_cost,  # credits, None: unknown (wire §8.2)
        "cost": task.cost,
    }


# ---------------------------------------------------------------- results files


def write_jsonl_atomic(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Write JSON lines to ``path`` all at once: a temporary file beside it, synced, then
    renamed over it. A reader (or a second Ctrl-C) sees the old file or the whole new one,
    never half of it."""
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    # A fresh name opened exclusively ("x"), not mkstemp: the file gets the usual umask
    # permissions, like any file the user writes, rather than mkstemp's 0600.
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with temp.open("x", encoding="utf-8") as file:
            for record in records:
                file.write(dumps(record) + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
