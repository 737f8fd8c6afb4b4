"""Requests from batch files and command-line flags, checked before anything is sent.

A batch file is read whole and every line is turned into a request model first; the first
bad line stops the run with ``<file> line N: <what is wrong and how to fix it>``, so a typo
on line 900 never leaves 899 paid generations behind a failed run. Three shapes, chosen by
extension (``--format`` overrides):

* ``.jsonl`` / ``.ndjson`` / ``.json`` — one JSON object per line with any request field
  (``prompt``, ``image``, ``ratio``, ``seconds``, nested ``motion_vector``…, snake_case or
  the wire's camelCase). ``"type"`` picks the request model (``TextToVideo``,
  ``image_to_video``, ``RunwayVideoUpscale``…); without it a line with ``image`` is an
  ``ImageToVideo`` and any other a ``TextToVideo``. ``key`` (the journal's idempotency key:
  give two identical requests different keys to pay for both on purpose) and ``label`` (a
  name for displays and results) are optional.
* ``.csv`` — a header row of the same field names; empty cells are left out; nested fields
  as dotted columns (``motion_vector.x``) or JSON in a cell.
* anything else — plain text, one prompt per line (``TextToVideo``).

Blank lines and lines starting with ``#`` are skipped in every shape.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, TypeAlias

from ._common import CliError, ExitCode
from ._reading import (
    MAX_BATCH_FILE_BYTES,
    JsonValueError,
    decode_text,
    is_stdin,
    loads_strict,
    read_capped,
    shown_name,
)
from ._request import (
    InputError,
    Item,
    _snake,
    build_request,
    describe,
)
from ._request import journal_key as journal_key
from ._request import make_item as make_item

__all__ = ["InputError", "Item", "build_request", "describe", "detect_format", "read_batch"]

Format: TypeAlias = Literal["text", "jsonl", "csv"]
FORMATS: tuple[str, ...] = ("auto", "text", "jsonl", "csv")

# ---------------------------------------------------------------- files

Record: TypeAlias = tuple[int, dict[str, Any] | InputError]


_BY_NAME: dict[str, Format] = {"text": "text", "jsonl": "jsonl", "csv": "csv"}
_BY_SUFFIX: dict[str, Format] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
}


def detect_format(path: Path, wanted: str = "auto", text: str = "") -> Format:
    """``wanted`` unless it is "auto"; else by extension, plain text by default. Standard
    input (``-``) has no extension: JSON lines if its first request line is an object."""
    chosen = _BY_NAME.get(wanted)
    if chosen is not None:
        return chosen
    if is_stdin(path):
        first = next((line for line in text.splitlines() if not _skipped(line)), "")
        return "jsonl" if first.lstrip().startswith("{") else "text"
    return _BY_SUFFIX.get(path.suffix.lower(), "text")


def _skipped(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _text_records(text: str) -> Iterator[Record]:
    for number, line in enumerate(text.splitlines(), 1):
        if not _skipped(line):
            yield number, {"prompt": line.strip()}


def _jsonl_records(text: str) -> Iterator[Record]:
    example = '{"prompt": "a red fox running through fresh snow"}'
    for number, line in enumerate(text.splitlines(), 1):
        if _skipped(line):
            continue
        try:
            value = loads_strict(line)
        except JsonValueError as exc:
            yield number, InputError(str(exc))
            continue
        except json.JSONDecodeError as exc:
            yield (
                number,
                InputError(
                    f"not valid JSON ({exc.msg} at column {exc.colno}): each line must be "
                    f"one JSON object such as {example}"
                ),
            )
            continue
        if not isinstance(value, dict):
            kind = type(value).__name__.replace("dict", "object").replace("list", "array")
            yield number, InputError(f"expected a JSON object such as {example}, got {kind}")
            continue
        yield number, value


_CSV_INT = frozenset({"seconds", "seed", "duration", "expression_intensity"})
_CSV_FLOAT = frozenset({"structure_transformation"})
_CSV_BOOL = frozenset({"flip", "watermark", "body_control", "image_as_end_frame"})
_TRUE, _FALSE = frozenset({"true", "yes", "1", "on"}), frozenset({"false", "no", "0", "off"})


def _csv_value(column: str, value: str) -> Any:
    """A CSV cell is text: turn it into what the field takes (by the field's name)."""
    name = _snake(column.rpartition(".")[2] if "." in column else column)
    parent = _snake(column.partition(".")[0]) if "." in column else None
    try:
        if parent == "motion_vector" or name in _CSV_FLOAT:
            return float(value)
        if name in _CSV_INT and parent is None:
            return int(value)
    except ValueError:
        raise InputError(f"column {column!r} must be a number, got {value!r}") from None
    if name in _CSV_BOOL and parent is None:
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise InputError(f"column {column!r} must be true or false, got {value!r}")
    if value[:1] in "[{":
        try:
            return loads_strict(value)
        except JsonValueError as exc:
            raise InputError(f"column {column!r}: {exc}") from None
        except json.JSONDecodeError as exc:
            raise InputError(f"column {column!r} is not valid JSON ({exc.msg})") from None
    return value


def _nest(cells: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for column, value in cells.items():
        head, dot, tail = column.partition(".")
        if not dot:
            nested[column] = value
            continue
        inner = nested.setdefault(head, {})
        if not isinstance(inner, dict):
            raise InputError(f"column {column!r} conflicts with column {head!r}: keep one")
        inner[tail] = value
    return nested


def _csv_records(text: str) -> Iterator[Record]:
    # strict: an unclosed quote is an error, not a cell that swallows the rest of the file.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    last = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            # The row that failed starts after the last one read; the reader stops here.
            yield last + 1, InputError(_csv_problem(str(exc)))
            return
        number, last = last + 1, reader.line_num
        if not row or all(not cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
            continue
        if header is None:
            header = [cell.strip() for cell in row]
            if any(not name for name in header):
                yield number, InputError("the header row has an empty column name")
                return
            continue
        if len(row) > len(header):
            yield (
                number,
                InputError(
                    f"{len(row)} cells but the header names {len(header)} columns "
                    "(quote cells that contain commas)"
                ),
            )
            continue
        try:
            cells = {
                name: _csv_value(name, cell.strip())
                for name, cell in zip(header, row, strict=False)
                if cell.strip()
            }
            yield number, _nest(cells)
        except InputError as exc:
            yield number, exc
    if header is None:
        yield 1, InputError("no header row: the first line must name the columns, e.g. prompt")


def _csv_problem(message: str) -> str:
    if "field limit" in message:
        return (
            f"a cell is longer than {csv.field_size_limit() // 1024} KiB ({message}): "
            "no request field is that long; check the quoting"
        )
    if "end of data" in message or "EOF" in message:
        return f"a quoted cell is never closed ({message}): add the closing double quote"
    return f"not valid CSV ({message}): check the quoting"


_READERS: dict[str, Callable[[str], Iterator[Record]]] = {
    "text": _text_records,
    "jsonl": _jsonl_records,
    "csv": _csv_records,
}


def read_batch(
    path: Path, *, wanted: str = "auto", defaults: Mapping[str, Any] | None = None
) -> list[Item]:
    """Every request of the file (``-``: standard input, with the same limits), or
    ``CliError`` (exit 2) naming the first bad line."""
    data = read_capped(path, limit=MAX_BATCH_FILE_BYTES, what="batch file", code=ExitCode.USAGE)
    text = decode_text(data, path=path, what="batch file", code=ExitCode.USAGE)
    form = detect_format(path, wanted, text)
    name = shown_name(path)
    items: list[Item] = []
    errors: list[tuple[int, InputError]] = []
    for number, record in _READERS[form](text):
        if isinstance(record, InputError):
            errors.append((number, record))
            continue
        try:
            items.append(make_item(number, record, defaults=defaults))
        except InputError as exc:
            errors.append((number, exc))
    if errors:
        number, error = errors[0]
        more = len(errors) - 1
        tail = f" ({more} more bad line{'s' if more > 1 else ''} after it)" if more else ""
        raise CliError(f"{name} line {number}: {error}{tail}", ExitCode.USAGE)
    if not items:
        raise CliError(
            f"{name} has no requests (blank lines and # comments are skipped)", ExitCode.USAGE
        )
    return items
