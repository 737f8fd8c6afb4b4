"""The fields of a task record: status words of every vocabulary (wire §2), queued-ness,
progress, timestamps and output URLs."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from ..models import Task, TaskStatus

__all__ = ["is_queued", "map_status", "normalize_progress", "video_url_of"]


# ---------------------------------------------------------------- statuses


# Every vocabulary of the wire reference §2, upper-cased. Digits follow C4: 3 = success,
# 2 = failure. UNKNOWN and unlisted words stay non-terminal.
_STATUS_WORDS: dict[str, TaskStatus] = {
    "NOT_START": TaskStatus.PENDING,
    "SUBMITTED": TaskStatus.PENDING,
    "QUEUED": TaskStatus.PENDING,
    "PENDING": TaskStatus.PENDING,
    "THROTTLED": TaskStatus.PENDING,
    "UNKNOWN": TaskStatus.PENDING,
    "0": TaskStatus.PENDING,
    "IN_PROGRESS": TaskStatus.RUNNING,
    "RUNNING": TaskStatus.RUNNING,
    "PROCESSING": TaskStatus.RUNNING,
    "1": TaskStatus.RUNNING,
    "SUCCESS": TaskStatus.SUCCEEDED,
    "SUCCEEDED": TaskStatus.SUCCEEDED,
    "3": TaskStatus.SUCCEEDED,
    "FAILURE": TaskStatus.FAILED,
    "FAILED": TaskStatus.FAILED,
    "2": TaskStatus.FAILED,
    "CANCELLED": TaskStatus.CANCELLED,
    "CANCELED": TaskStatus.CANCELLED,
}


# The words of §2 that mean "waiting for a worker", not merely "pending": such a task has
# not started, so its finish is at least a whole running time away.
_QUEUED_WORDS = frozenset({"QUEUED", "THROTTLED", "NOT_START", "SUBMITTED", "PENDING", "0"})


def is_queued(task: Task) -> bool:
    """Whether ``task`` waits in a queue (it has not started running)."""
    return task.status is TaskStatus.PENDING and (task.raw_status or "").upper() in _QUEUED_WORDS


def map_status(word: object) -> TaskStatus | None:
    """One status word of any vocabulary in §2; None when absent or unknown."""
    if isinstance(word, bool):
        return None
    if isinstance(word, int):
        word = str(word)
    if not isinstance(word, str):
        return None  # an object or list where a word belongs: not a status
    return _STATUS_WORDS.get(word.strip().upper())


def normalize_progress(value: object) -> float | None:
    """``"37%"``, ``0.37`` or ``37`` → 0.37 (Appendix 4); None when absent or unreadable."""
    if value is None or isinstance(value, bool):
        return None
    percent = False
    if isinstance(value, str):
        text = value.strip()
        percent = text.endswith("%")
        try:
            number = float(text.rstrip("%").strip())
        except ValueError:
            return None
    elif isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            return None
    else:
        return None
    if math.isnan(number) or math.isinf(number):
        return None
    if percent or number > 1:
        number /= 100
    return min(1.0, max(0.0, number))


def _timestamp(value: object) -> datetime | None:
    """Unix seconds as int or string (``0`` = not yet), or ISO-8601 (Appendix 6)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value) if len(value.strip()) <= 15 else 0
    if isinstance(value, int | float):  # ints past 1e11 never reach float(): no overflow
        seconds = float(value) if 0 < value <= 1e11 else 0.0
        if not 0 < seconds <= 1e11:  # also rejects NaN
            return None
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)  # the server's times are UTC (Appendix 6)
        # Like ``0`` in Unix seconds, a time before the epoch (e.g. 0001-01-01) means
        # "not yet"; an aware datetime's ``timestamp()`` never overflows.
        return parsed if 0 < parsed.timestamp() <= _LATEST_TIMESTAMP else None
    return None


# Unix seconds past this (year 5138) are not a time a task could have.
_LATEST_TIMESTAMP = 1e11


# ---------------------------------------------------------------- outputs


def _url(value: object) -> str | None:
    if isinstance(value, dict):
        value = value.get("url") or value.get("uri")
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("https://", "http://")):
            return text
    return None


def _urls(value: object) -> Iterator[str]:
    """A URL, ``[url, ...]`` or ``[{"url"|"uri": url}, ...]``; one level deep, no further."""
    for item in value if isinstance(value, list) else (value,):
        url = _url(item)
        if url is not None:
            yield url


_OUTPUT_KEYS = ("output", "result_url", "video_url", "raw_video_url")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif")
# Audio outputs of text_to_speech / sound_effect (wire §8.1): kept in ``outputs``, never a
# ``video_url``.
_AUDIO_SUFFIXES = (".mp3", ".wav", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".flac")


def _collect(layers: list[Mapping[str, Any]], keys: tuple[str, ...]) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for key in keys:
        for layer in layers:
            value = layer.get(key)
            if value is not None:  # most layers carry few of the keys
                for url in _urls(value):
                    found.setdefault(url)
    return tuple(found)


def _first(layers: list[Mapping[str, Any]], key: str) -> str | None:
    for layer in layers:
        value = layer.get(key)
        if value is not None:
            for url in _urls(value):
                return url
    return None


def video_url_of(urls: tuple[str, ...]) -> str | None:
    """The video among ``urls`` (the first that is not an image or audio file), or None."""
    return _video_of(urls)


def _video_of(outputs: tuple[str, ...], action: object = None) -> str | None:
    if isinstance(action, str) and action.strip().upper() in _AUDIO_ACTIONS:
        return None  # the wrapper names the route: its outputs are audio, whatever the URL
    for url in outputs:
        if not url.lower().split("?", 1)[0].endswith(_IMAGE_SUFFIXES + _AUDIO_SUFFIXES):
            return url
    return None


# The wrapper's ``action`` of the audio routes (wire §8.1).
_AUDIO_ACTIONS = frozenset({"TEXT_TO_SPEECH", "SOUND_EFFECT"})
