"""Create answers → the created task: its id wherever the envelope puts it (wire §1.A, §8.7),
and Runway's cost fields (§8.2)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..errors import DecodeError
from ..models import Task, TaskStatus
from ._text import is_text as _is_text
from .answers import SubmitDisposition, _classify, submit_disposition
from .seam import HTTPResponse

__all__ = ["credits_of", "parse_created", "parse_submit"]


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
        value = layer.get(key)
        if value is not None:  # most answers carry no cost at all
            credits = credits_of(value)
            if credits is not None:
                return credits
    return None
