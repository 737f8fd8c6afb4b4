"""Envelopes → task ids and ``Task`` snapshots: every create and poll answer of the wire
reference (§1.A, §1.5, §1.10), the status vocabularies of §2, progress, outputs, timestamps,
queued-ness and the route a task's answer came from."""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from .._converter import OfficialTaskWire, RecordWire, structure
from ..errors import APIError, DecodeError, TaskNotFound
from ..models import PollRoute, Task, TaskStatus
from ._text import clean as _clean
from ._text import is_text as _is_text
from .answers import SubmitDisposition, _classify, _text, submit_disposition
from .seam import HTTPResponse

__all__ = [
    "LostTask",
    "credits_of",
    "is_queued",
    "map_status",
    "normalize_progress",
    "parse_created",
    "parse_poll",
    "parse_submit",
    "poll_route_of",
]


def parse_submit(response: HTTPResponse, *, now: datetime | None = None) -> str:
    """The task id a create answered with, or the error it stands for.

    ``data.task_id`` on ``/runway/pro/*`` (A1/A2/A3), ``id`` on ``/runwayml/v1/*``. An answer
    that carries a task id is a created task whatever else it says (wire §8.7: an HTTP 200
    with ``"code": 429`` beside ``data.task_id``, an ``"error"`` object beside an ``id``).
    A 2xx without an id is a ``DecodeError`` (the task may exist: the client treats it as an
    ambiguous submit), and so is a 2xx whose body carries an error that would otherwise be
    retried: the gateway took the request, so sending it again may pay twice.
    """
    return parse_created(response, now=now).task_id


def parse_created(response: HTTPResponse, *, now: datetime | None = None) -> Task:
    """The created task a create answered with: a PENDING snapshot carrying the task id and
    Runway's ``estimatedCost`` when the answer has one (wire §8.2, bare or inside ``data``),
    or the error the answer stands for (see ``parse_submit``)."""
    error, payload = _classify(response, now)
    # A redirect is a wrong URL answered by something else: its body is no create answer.
    if not 300 <= response.status < 400:
        created = _created_task(payload if error is None else _json_body(response))
        if created is not None:
            return created
    accepted = 200 <= response.status < 300
    if error is not None:
        if accepted and submit_disposition(error) is SubmitDisposition.RETRY:
            raise DecodeError(
                f"HTTP {response.status} create answer says {error} but carries no task id: "
                "the request was taken, so the task may exist",
                body=response.body,
            )
        raise error
    raise DecodeError(
        f"HTTP {response.status} create answer has no task id (data.task_id or id)",
        body=response.body,
    )


def _json_body(response: HTTPResponse) -> Any:
    """The body as JSON, or None when it is not (an error answer's body, read again)."""
    try:
        return json.loads(response.body.decode("utf-8-sig"))
    except (ValueError, RecursionError):
        return None


def _created_task(payload: Any) -> Task | None:
    """The created task of a create answer, wherever the envelope puts its id, with Runway's
    ``estimatedCost`` when the answer has one; None without an id."""
    if not isinstance(payload, dict):
        return None
    data = payload.get("data")
    nested = data if isinstance(data, dict) else {}
    candidates = [
        nested.get("task_id"),
        nested.get("id"),
        payload.get("id"),
        payload.get("task_id"),
    ]
    for candidate in candidates:
        task_id = _identifier(candidate)
        if task_id is not None:
            estimate = _cost_in([payload, nested], "estimatedCost")
            return Task(task_id=task_id, status=TaskStatus.PENDING, estimated_cost=estimate)
    return None


def _identifier(candidate: object) -> str | None:
    if isinstance(candidate, str) and candidate.strip():
        if not _is_text(candidate):
            # A lone surrogate cannot be journaled or sent back: an id we cannot follow, so
            # the create is ambiguous (never resent).
            raise DecodeError(
                f"create answer's task id {candidate!r} is not valid text "
                "(it holds a lone surrogate)"
            )
        return candidate.strip()
    if isinstance(candidate, int) and not isinstance(candidate, bool):
        return str(candidate)
    return None


# ---------------------------------------------------------------- cost


def credits_of(value: object) -> float | None:
    """Runway's ``{"credits": <number>}`` (wire §8.2) as a float; None when absent, not a
    number, negative or not finite (a cost is never required, so junk reads as unknown)."""
    if isinstance(value, dict):
        value = value.get("credits")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        credits = float(value)
    except OverflowError:
        return None
    return credits if math.isfinite(credits) and credits >= 0 else None


def _cost_in(layers: list[Mapping[str, Any]], key: str) -> float | None:
    """The first readable ``key`` (``estimatedCost`` or ``cost``) of the layers, outer first."""
    for layer in layers:
        credits = credits_of(layer.get(key))
        if credits is not None:
            return credits
    return None


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
            for url in _urls(value):
                found.setdefault(url)
    return tuple(found)


def _first(layers: list[Mapping[str, Any]], key: str) -> str | None:
    for layer in layers:
        for url in _urls(layer.get(key)):
            return url
    return None


def _video_of(outputs: tuple[str, ...], action: object = None) -> str | None:
    if isinstance(action, str) and action.strip().upper() in _AUDIO_ACTIONS:
        return None  # the wrapper names the route: its outputs are audio, whatever the URL
    for url in outputs:
        if not url.lower().split("?", 1)[0].endswith(_IMAGE_SUFFIXES + _AUDIO_SUFFIXES):
            return url
    return None


# The wrapper's ``action`` of the audio routes (wire §8.1).
_AUDIO_ACTIONS = frozenset({"TEXT_TO_SPEECH", "SOUND_EFFECT"})


# ---------------------------------------------------------------- polls


def _task(
    *,
    task_id: str,
    status: TaskStatus,
    raw_status: str | None,
    progress: float | None,
    layers: list[Mapping[str, Any]],
    error: str | None,
    error_code: str | None,
    body: bytes | None,
    failed: bool = False,
    created: Any = None,
    started: Any = None,
    finished: Any = None,
    action: object = None,
) -> Task:
    outputs = _collect(layers, _OUTPUT_KEYS)
    if status is TaskStatus.SUCCEEDED and not outputs:
        # Success without a usable URL yet: keep polling until the provider metadata has
        # one (wire reference §1.5 F1, §2 decision rule) -- unless the record also names a
        # failure, which the same rule makes terminal.
        status = TaskStatus.FAILED if failed else TaskStatus.RUNNING
    if status is TaskStatus.SUCCEEDED:
        progress = 1.0
    ended_badly = status in (TaskStatus.FAILED, TaskStatus.CANCELLED)
    return Task(
        task_id=task_id,
        status=status,
        progress=progress,
        outputs=outputs,
        video_url=_video_of(outputs, action),
        error=_clean(error) if ended_badly else None,
        error_code=_clean(error_code) if ended_badly else None,
        body=body,
        raw_status=_clean(raw_status),
        poster_url=_first(layers, "poster"),
        last_frame_url=_first(layers, "last_frame"),
        created_at=_timestamp(created),
        started_at=_timestamp(started),
        finished_at=_timestamp(finished),
        # Runway's cost fields (wire §8.2), outer layer first: never required.
        estimated_cost=_cost_in(layers, "estimatedCost"),
        cost=_cost_in(layers, "cost"),
    )


def _error_text(value: object) -> str | None:
    """Failure text under ``error`` (wire §8.5): a string, or an object's ``message``."""
    if isinstance(value, dict):
        value = value.get("message")
    return _text(value) if isinstance(value, str) else None


def _official_task(payload: dict[str, Any], body: bytes | None) -> Task:
    wire = structure(payload, OfficialTaskWire, what="task", body=body)
    status = map_status(wire.status) or TaskStatus.PENDING  # unknown words: non-terminal (§2)
    failure = _text(wire.failure)
    failure_code = _text(wire.failure_code)
    failed = bool(failure or failure_code)
    if not status.is_terminal and failed:
        status = TaskStatus.FAILED
    # A tutorial of CometAPI reads the failure text from ``error`` (wire §8.5); only the
    # status word and ``failure`` decide that a task failed.
    failure = failure or _error_text(payload.get("error"))
    return _task(
        task_id=wire.id,
        status=status,
        raw_status=wire.status,
        progress=normalize_progress(wire.progress),
        layers=[payload],
        error=failure,
        error_code=failure_code,
        body=body,
        failed=failed,
        created=wire.created_at,
    )


def _record_task(record: dict[str, Any], body: bytes | None) -> Task:
    # Only the identity is typed; every other member is read loosely, as found (§1.5).
    get = record.get
    wire = structure(record, RecordWire, what="task record", body=body)
    task_id, word = wire.task_id, wire.status
    data = get("data")
    nested = data if isinstance(data, dict) else {}
    nested_status = nested.get("status")
    state = _text(get("state"))

    # Trust the wrapper's word for terminality; fall back to the nested provider task (§2).
    status = map_status(word)
    raw_status = word or None
    if status is None and state:
        status = map_status(state)  # upstream `state`: "succeeded" (§2)
    if status is None:
        nested_mapped = map_status(nested_status)
        if raw_status is None and not state:
            status = nested_mapped
            raw_status = nested_status if isinstance(nested_status, str) else None
        elif nested_mapped is not None and not nested_mapped.is_terminal:
            # An unknown wrapper word stays non-terminal whatever the provider says (§2).
            status = nested_mapped
    status = status or TaskStatus.PENDING

    fail_reason = _text(get("fail_reason"))
    nested_failure = _text(nested.get("failure"))
    error_code = _text(nested.get("failureCode"))
    refund = get("refund")
    refunded = refund is not None and isinstance(refund, str | int) and str(refund).strip() == "1"
    failed = bool(fail_reason or nested_failure or error_code or refunded)
    if not status.is_terminal and failed:
        status = TaskStatus.FAILED
    error = None
    if failed or status is TaskStatus.FAILED or status is TaskStatus.CANCELLED:
        # Only a task that may end failed or cancelled carries its error (see ``_task``).
        error = (
            fail_reason
            or nested_failure
            or _text(nested.get("fail_reason"))
            or _error_text(get("error"))
            or _error_text(nested.get("error"))
            or _text(get("msg"))
            or _text(nested.get("msg"))
        )

    progress = normalize_progress(get("progress"))
    if progress is None:
        progress = normalize_progress(nested.get("progress"))
    return _task(
        task_id=task_id,
        status=status,
        raw_status=raw_status,
        progress=progress,
        layers=[record, nested] if nested else [record],
        error=error,
        error_code=error_code,
        body=body,
        failed=failed,
        created=get("submit_time") or get("create_time") or nested.get("createdAt"),
        started=get("start_time"),
        finished=get("finish_time"),
        action=get("action"),
    )


def parse_poll(
    response: HTTPResponse, *, task_id: str | None = None, now: datetime | None = None
) -> Task:
    """The task snapshot a poll answered with, or the error it stands for.

    Reads F1 (``{"code":"success","data":{record}}``), F2 (a flat record), F3
    (``{"code":200,"data":{record}}``), T1 (a bare Runway task) and T2 (= F1). ``task_id``,
    when given, names the task in a ``TaskNotFound``.
    """
    task = _poll_answer(response, task_id, now)
    if task_id is not None and task.task_id != task_id:
        # Another task's record must never resolve this one: a transient decode error, so
        # the poll is retried (issue 13).
        raise DecodeError(
            f"poll of task {task_id!r} answered with task {_clean(task.task_id)!r}'s record",
            body=response.body,
        )
    return task


def _poll_answer(response: HTTPResponse, task_id: str | None, now: datetime | None) -> Task:
    error, payload = _classify(response, now)
    if isinstance(error, TaskNotFound):
        error.task_id = task_id
        raise error
    if type(error) is APIError and error.status == 404:
        # A JSON 404 on a poll route is the id, not the path (a wrong path answers with HTML
        # or a redirect, §3.2); Runway's own tasks route says 404 for unknown ids (§5).
        raise TaskNotFound(
            error.message, task_id=task_id, status=404, code=error.code, body=error.body
        ) from None
    if error is not None:
        raise error
    if not isinstance(payload, dict):
        raise DecodeError(
            f"poll answer is a JSON {type(payload).__name__}, not an object", body=response.body
        )
    body = response.body
    # The wrapper's ``code`` is typed ``string | null`` (§1.5 F1), so a null code with a
    # ``data`` member is still the wrapper; a flat F2 record carries its own ``task_id``.
    wrapped = "data" in payload and (
        "code" in payload or ("task_id" not in payload and "id" not in payload)
    )
    if wrapped:
        record = payload.get("data")
        if record is None:
            # "Current task state or not-yet-visible error" with no state (§1.5, §1.10).
            raise TaskNotFound(
                "task not visible yet (empty data)", task_id=task_id, status=response.status
            )
        if not isinstance(record, dict):
            raise DecodeError("poll answer's data is not an object", body=body)
        if "task_id" not in record and "id" in record and "status" in record:
            return _official_task(record, body)
        if "task_id" not in record and task_id:
            record = {**record, "task_id": task_id}
        return _record_task(record, body)
    if "task_id" in payload:
        return _record_task(payload, body)
    if "id" in payload:
        return _official_task(payload, body)
    raise DecodeError(
        "poll answer is none of the documented shapes (wrapper, task record, Runway task)",
        body=body,
    )


class LostTask(enum.StrEnum):
    """How a followed task ended without a status of its own: the journal's and the CLI's
    terminal words beside the statuses of §2."""

    NOT_FOUND = "NOT_FOUND"  # task_not_exist past the grace window (§1.5, §6 C14)
    LOST = "LOST"  # polling stopped for another reason (401/403, a bug, the client closed)


# The error code a journal row of a ``NOT_FOUND`` task carries.
NOT_FOUND_CODE = "task_not_exist"


def poll_route_of(task: Task) -> PollRoute:
    """The route a task's last answer came from: a bare Runway task (§1.10 T1) comes from
    the official tasks route, every wrapper or record from the feed."""
    raw = task.raw
    if isinstance(raw, dict) and "id" in raw and "task_id" not in raw and "code" not in raw:
        return "tasks"
    return "feed"
