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
import difflib
import io
import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, TypeAlias

import attrs

from ..client import Client
from ..models import (
    REQUEST_TYPES,
    ContentModeration,
    ImageToVideo,
    MediaInput,
    MotionVector,
    PromptFrame,
    ReferenceImage,
    Request,
    RunwaySoundEffect,
    RunwayTextToSpeech,
    TextToVideo,
    VideoReference,
)
from ..protocol import build_submit
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

__all__ = ["InputError", "Item", "build_request", "describe", "detect_format", "read_batch"]

Format: TypeAlias = Literal["text", "jsonl", "csv"]
FORMATS: tuple[str, ...] = ("auto", "text", "jsonl", "csv")


class InputError(ValueError):
    """What is wrong with one request, and how to fix it."""


@attrs.frozen
class Item:
    """One request read from the input: ``line`` is 1-based (None off the command line);
    ``fields`` the input as written, for the results file; ``journal_key`` the key the
    journal files it under (``key`` when given, else the hash of its wire body)."""

    line: int | None
    request: Request
    key: str | None
    label: str
    fields: dict[str, Any]
    journal_key: str


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


_MODELS: dict[str, type] = {_norm(cls.__name__): cls for cls in REQUEST_TYPES}
# The audio routes' own names work as "type" too (wire §8.1): "text_to_speech", "sound_effect".
_MODELS.update(texttospeech=RunwayTextToSpeech, soundeffect=RunwaySoundEffect)
_MODEL_NAMES = ", ".join(cls.__name__ for cls in REQUEST_TYPES) + ", text_to_speech, sound_effect"
_META_FIELDS = ("type", "key", "label")
_EXAMPLES: dict[type, str] = {
    TextToVideo: '{"prompt": "a red fox running through fresh snow"}',
    ImageToVideo: '{"prompt": "the fox turns its head", "image": "https://example.com/fox.jpg"}',
}


def _field_names(cls: type) -> list[str]:
    return [f.name for f in attrs.fields(cls)]


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


# ---------------------------------------------------------------- nested values


def _nested(kind: type, what: str, value: Any, *, uri_shortcut: bool) -> Any:
    """An attrs value (``MotionVector``, ``PromptFrame``…) from a JSON object, or from a
    plain string when the type's first field is a URI (``"https://…"`` → ``uri``)."""
    if isinstance(value, kind):
        return value
    names = _field_names(kind)
    if isinstance(value, str) and uri_shortcut:
        return kind(value)
    if isinstance(value, Mapping):
        for name in value:
            if name not in names:
                raise InputError(
                    f'unknown field "{name}" in {what}{_suggest(str(name), names)}; '
                    f"allowed: {', '.join(names)}"
                )
        return kind(**value)
    shape = "a URL or an object" if uri_shortcut else "an object"
    example = ", ".join(f'"{n}": …' for n in names[:3])
    raise InputError(f"{what} must be {shape} like {{{example}}}, got {_shown(value)}")


def _many(kind: type, what: str, value: Any) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    return [_nested(kind, f"{what}[{i}]", item, uri_shortcut=True) for i, item in enumerate(items)]


def _prompt_image(value: Any) -> Any:
    if isinstance(value, str):
        return value
    return _many(PromptFrame, "prompt_image", value)


def _moderation(value: Any) -> Any:
    if isinstance(value, str):
        return ContentModeration(value)
    return _nested(ContentModeration, "content_moderation", value, uri_shortcut=False)


def _extra(value: Any) -> Any:
    if not isinstance(value, Mapping):
        raise InputError(f"extra must be an object of wire fields, got {_shown(value)}")
    return value


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "motion_vector": lambda v: _nested(MotionVector, "motion_vector", v, uri_shortcut=False),
    "prompt_image": _prompt_image,
    "references": lambda v: _many(VideoReference, "references", v),
    "character": lambda v: _nested(MediaInput, "character", v, uri_shortcut=True),
    "reference": lambda v: _nested(MediaInput, "reference", v, uri_shortcut=True),
    "reference_images": lambda v: _many(ReferenceImage, "reference_images", v),
    "content_moderation": _moderation,
    "extra": _extra,
}


# ---------------------------------------------------------------- one request


def _model_for(fields: Mapping[str, Any]) -> type:
    type_name = fields.get("type")
    if type_name is None:
        return ImageToVideo if fields.get("image") is not None else TextToVideo
    if not isinstance(type_name, str) or _norm(type_name) not in _MODELS:
        names = [cls.__name__ for cls in REQUEST_TYPES]
        hint = _suggest(str(type_name), names)
        raise InputError(f'unknown "type" {_shown(type_name)}{hint}: use one of {_MODEL_NAMES}')
    return _MODELS[_norm(type_name)]


def _unknown_field(name: str, cls: type, names: list[str]) -> InputError:
    owners = [c.__name__ for c in REQUEST_TYPES if _snake(name) in _field_names(c)]
    if owners:
        hint = (
            f': it belongs to {", ".join(owners)}; add "type": "{owners[0]}" '
            "to make this line that request"
        )
    else:
        hint = _suggest(name, names + list(_META_FIELDS))
        hint += f"; {cls.__name__} takes: {', '.join(names)} (and type, key, label)"
    return InputError(f'unknown field "{name}" for {cls.__name__}{hint}')


def _text_or_none(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InputError(f'"{name}" must be a non-empty string, got {_shown(value)}')
    return value.strip()


def build_request(
    fields: Mapping[str, Any], *, defaults: Mapping[str, Any] | None = None
) -> tuple[Request, str | None, str | None]:
    """``(request, key, label)`` from one input record; raises ``InputError``.

    ``defaults`` fill fields the record leaves out, where the chosen model has them.
    """
    cls = _model_for(fields)
    key, label = _text_or_none(fields, "key"), _text_or_none(fields, "label")
    names = _field_names(cls)
    kwargs: dict[str, Any] = {}
    for name, value in fields.items():
        if name in _META_FIELDS:
            continue
        target = name if name in names else _snake(name)
        if target not in names:
            raise _unknown_field(name, cls, names)
        if target in kwargs:
            raise InputError(f'"{name}" is given twice (as {target} and {name}): keep one')
        convert = _CONVERT.get(target)
        try:
            kwargs[target] = convert(value) if convert is not None and value is not None else value
        except InputError:
            raise
        except (ValueError, TypeError) as exc:  # a nested model refused a value
            raise InputError(str(exc)) from None
    for name, value in (defaults or {}).items():
        if name in names and name not in kwargs and value is not None:
            kwargs[name] = value
    missing = [
        f.name for f in attrs.fields(cls) if f.default is attrs.NOTHING and f.name not in kwargs
    ]
    if missing:
        example = _EXAMPLES.get(cls)
        needs = ", ".join(f'"{m}"' for m in missing)
        raise InputError(f"{cls.__name__} needs {needs}" + (f", e.g. {example}" if example else ""))
    try:
        request: Request = cls(**kwargs)
        # The wire body is built now too, so nothing can fail later, mid-batch.
        build_submit(request, api_key="-")
    except (ValueError, TypeError) as exc:
        raise InputError(str(exc)) from None
    return request, key, label


def describe(request: Request, *, limit: int = 60) -> str:
    """A one-line name for displays: the prompt, else the request type."""
    text = getattr(request, "prompt", None) or getattr(request, "prompt_text", None)
    if not isinstance(text, str) or not text.strip():
        return type(request).__name__
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def journal_key(request: Request, key: str | None) -> str:
    """The key the client's journal files this request under (``Client.submit``'s rule)."""
    return Client.journal_key(request, key)


def make_item(
    line: int | None,
    fields: Mapping[str, Any],
    *,
    defaults: Mapping[str, Any] | None = None,
) -> Item:
    request, key, label = build_request(fields, defaults=defaults)
    return Item(
        line=line,
        request=request,
        key=key,
        label=label or describe(request),
        fields=dict(fields),
        journal_key=journal_key(request, key),
    )


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
