"""Reading what the user hands the command line, within limits: files and JSON.

Whatever the CLI reads from disk (a batch file, an API key file) or parses as JSON is read
with a cap and checked before use, so a wrong file — a binary, ``/dev/zero``, a 1 GB log, a
JSON line nested 100,000 deep or a number with 5,000 digits — ends in one clear
``error: ...`` line naming the file and line, never in memory exhaustion, a traceback or a
silently odd request.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, BinaryIO

from ._common import CliError, ExitCode

__all__ = [
    "MAX_BATCH_FILE_BYTES",
    "MAX_KEY_FILE_BYTES",
    "STDIN",
    "JsonValueError",
    "check_text",
    "is_stdin",
    "loads_strict",
    "read_capped",
    "shown_name",
]

#: A batch of 100,000 prompts of ~500 characters is ~50 MB: twice that leaves room for
#: long prompts and JSON fields, and still refuses a log file or a disk image given by mistake.
MAX_BATCH_FILE_BYTES = 128 * 1024 * 1024
#: A CometAPI key is a few dozen characters; a key file of more than this is the wrong file.
MAX_KEY_FILE_BYTES = 4096
#: Request models nest three levels at most (a request, a list, an object); anything deeper
#: than this is not a request.
MAX_JSON_DEPTH = 32
#: No request field needs a number this long; Python refuses ints past 4,300 digits with an
#: error that names neither the line nor the field.
MAX_NUMBER_CHARS = 40
#: The path that names standard input.
STDIN = "-"
_PIPE_READ = 1024 * 1024


class JsonValueError(ValueError):
    """A JSON text that parses but holds something no request may carry."""


def is_stdin(path: Path) -> bool:
    """``-`` names standard input, as in most command-line tools."""
    return str(path) == STDIN


def shown_name(path: Path) -> str:
    return "(standard input)" if is_stdin(path) else str(path)


def read_capped(path: Path, *, limit: int, what: str, code: ExitCode) -> bytes:
    """Up to ``limit`` bytes of ``path`` (``-``: standard input); ``CliError(code)`` if it
    is larger or unreadable.

    Reads at most ``limit + 1`` bytes whatever the file claims its size is, so a device
    (``/dev/zero``), a growing file or an endless pipe cannot exhaust memory.
    """
    try:
        if is_stdin(path):
            data = _read_up_to(sys.stdin.buffer, limit + 1)
        else:
            with path.open("rb") as file:
                data = file.read(limit + 1)
    except FileNotFoundError:
        raise CliError(f"{what} {path}: no such file", code) from None
    except IsADirectoryError:
        raise CliError(f"{what} {path} is a folder: give a file", code) from None
    except OSError as exc:
        raise CliError(f"cannot read {what} {path}: {exc.strerror}", code) from None
    if len(data) > limit:
        raise CliError(
            f"{what} {shown_name(path)} is larger than {_size(limit)}: is it the right file? "
            "(split a bigger batch into several files)",
            code,
        )
    return data


def _read_up_to(stream: BinaryIO, count: int) -> bytes:
    # A pipe's read(n) may return less than n before its end: read until n or the end.
    pieces: list[bytes] = []
    left = count
    while left > 0:
        piece = stream.read(min(left, _PIPE_READ))
        if not piece:
            break
        pieces.append(piece)
        left -= len(piece)
    return b"".join(pieces)


def _size(count: int) -> str:
    return f"{count // (1024 * 1024)} MiB" if count >= 1024 * 1024 else f"{count} bytes"


def decode_text(data: bytes, *, path: Path, what: str, code: ExitCode) -> str:
    """``data`` as UTF-8 text (a BOM allowed); a binary file is refused with the line of its
    first NUL byte or undecodable byte."""
    nul = data.find(b"\0")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise CliError(
            f"{what} {shown_name(path)} line {line} holds a NUL byte: "
            "this is a binary file, not text",
            code,
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CliError(
            f"{what} {shown_name(path)} line {line} is not UTF-8 text "
            f"(byte {exc.start}): save it as UTF-8",
            code,
        ) from None


def _refuse_constant(name: str) -> Any:
    raise JsonValueError(f"{name} is not a number a request can carry: use a finite number")


def _parse_float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise JsonValueError(
            f"the number {text[:12]}… is too long: use at most {MAX_NUMBER_CHARS} characters"
        )
    value = float(text)
    if not math.isfinite(value):
        raise JsonValueError(f"{text} is out of range: use a finite number")
    return value


def _parse_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise JsonValueError(
            f"the number {text[:12]}… is too long: use at most {MAX_NUMBER_CHARS} digits"
        )
    return int(text)


def check_text(value: Any, where: str = "value", depth: int = 0) -> None:
    """Refuse lone surrogates (``"\\ud800"`` escapes: not text, and not encodable for the
    wire) and nesting deeper than ``MAX_JSON_DEPTH``, naming the field."""
    if depth > MAX_JSON_DEPTH:
        raise JsonValueError(f"{where} is nested more than {MAX_JSON_DEPTH} levels deep")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise JsonValueError(
                f"{where} holds a lone surrogate escape (such as \\ud800), which is not text: "
                "fix the escape or write the character itself"
            ) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key, f"a field name in {where}", depth + 1)
            check_text(item, f'"{key}"' if where == "value" else f"{where}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_text(item, f"{where}[{index}]", depth + 1)


def loads_strict(text: str) -> Any:
    """``json.loads`` for user input: no NaN/Infinity, no overlong numbers, bounded depth,
    no lone surrogates. Raises ``json.JSONDecodeError`` or ``JsonValueError``."""
    try:
        value = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_parse_float,
            parse_int=_parse_int,
        )
    except RecursionError:
        raise JsonValueError(
            f"the JSON is nested too deeply: a request nests at most {MAX_JSON_DEPTH} levels"
        ) from None
    check_text(value)
    return value
