"""Poll answers → ``Task`` snapshots: every poll envelope of the wire reference (§1.5, §1.10,
§8.4), lost-task outcomes and the route a task's answer came from. Create answers are read in
``created``, a record's fields in ``fields``."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .._converter import OfficialTaskWire, RecordWire, structure
from ..errors import APIError, DecodeError, TaskNotFound
from ..models import PollRoute, Task, TaskStatus
from ._text import clean as _clean
from .answers import _classify, _text
from .created import _cost_in, credits_of, parse_created, parse_submit
from .fields import (
    _OUTPUT_KEYS,
    _collect,
    _first,
    _timestamp,
    _video_of,
    is_queued,
    map_status,
    normalize_progress,
)
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
