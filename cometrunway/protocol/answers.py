"""Answers → errors and dispositions: what an answer means, and what may be done about it.

``error_from_response`` reads any answer into the error it stands for (or None for a
success to parse further). Envelope errors are recognised by a small table of functions,
one per envelope of the wire reference (§3, §6 C17): the platform ``{"error": {...}}``, the
flat task error ``{"code": "<token>", ...}``, a business code inside a 2xx body (A3), the
bare ``task_not_exist`` message, and a plain HTTP error status. ``submit_disposition`` and
``poll_disposition`` say what a failure allows: a create that may have reached the server
is never resent. ``parse_retry_after`` reads ``Retry-After``, capped where a policy says.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from ..errors import (
    APIError,
    AuthenticationError,
    ClientStateError,
    CometRunwayError,
    DecodeError,
    EndpointError,
    InvalidRequestError,
    RateLimitError,
    ServerError,
    TaskNotFound,
    TransportError,
)
from .seam import HTTPResponse

__all__ = [
    "PollDisposition",
    "SubmitDisposition",
    "error_from_response",
    "parse_retry_after",
    "poll_disposition",
    "submit_disposition",
]

# RFC 9110 delta-seconds (a fraction tolerated); "1_0", "0x10", "nan" and friends are junk.
_DELTA_SECONDS = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,9})?$", re.ASCII)


def parse_retry_after(
    value: str | None, *, now: datetime | None = None, cap: float = math.inf
) -> float | None:
    """``Retry-After`` as seconds (``"5"``, ``"1.5"``) or an HTTP-date, at most ``cap``
    (a policy's ``max_retry_after``); None if absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        reference = now or datetime.now(UTC)
        if reference.tzinfo is None:
            reference = reference.replace(tzinfo=UTC)
        seconds = (when - reference).total_seconds()
    return min(cap, max(0.0, seconds))


_NOT_EXIST = "task_not_exist"  # the token of a task not visible yet (§3.1, §8.4)
_INVALID_TOKENS = frozenset(
    {"invalid_request", "callback_url_empty", "reference_images_empty", "bad_request"}
)
_AUTH_TOKENS = frozenset({"insufficient_user_quota", "invalid_token", "unauthorized"})


def _looks_html(response: HTTPResponse) -> bool:
    ctype = response.header("content-type") or ""
    head = response.body.lstrip()[:15].lower()
    return "html" in ctype or head.startswith((b"<!doctype", b"<html", b"<head", b"<body"))


def _error_for(
    status: int,
    message: str,
    code: str | None,
    response: HTTPResponse,
    now: datetime | None,
) -> APIError:
    body = response.body
    if code == "task_not_exist" or message == "task_not_exist":
        return TaskNotFound(message, status=status, code="task_not_exist", body=body)
    if status in (401, 403) or code in _AUTH_TOKENS:
        hint = "" if status == 403 else " (CometAPI also says this for a wrong base URL)"
        return AuthenticationError(message + hint, status=status, code=code, body=body)
    if status == 429:
        retry_after = parse_retry_after(response.header("retry-after"), now=now)
        return RateLimitError(message, status=429, code=code, body=body, retry_after=retry_after)
    # A malformed request may come back as 500 invalid_request: never worth a retry (§3.2).
    if status in (400, 413, 422) or code in _INVALID_TOKENS:
        return InvalidRequestError(message, status=status, code=code, body=body)
    if status >= 500:
        return ServerError(message, status=status, code=code, body=body)
    return APIError(message, status=status, code=code, body=body)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (ValueError, TypeError, RecursionError):
            return None
    return text.strip() or None


def _business_code(raw: object) -> int | None:
    """A numeric business code (``200``, ``"400"``); None for words and absurd values."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        token = raw.strip()
        if token.isascii() and token.isdigit() and len(token) <= 9:
            return int(token)
    return None


def error_from_response(
    response: HTTPResponse, *, now: datetime | None = None
) -> CometRunwayError | None:
    """The error an answer stands for, or None if it is a success to parse further.

    Knows the platform ``{"error": {...}}`` envelope, the flat task error
    ``{"code","message","data"}``, business codes inside a 200 body (A3: ``code: 400``),
    ``task_not_exist`` at any status, redirects and HTML pages (§3, §6 C17).
    """
    return _classify(response, now)[0]


# ---------------------------------------------------------------- envelope recognisers

# Each looks at a JSON object answer and returns the error it stands for, or None when the
# envelope it knows is not there (or says success).
Recogniser = Callable[[dict[str, Any], HTTPResponse, "datetime | None"], "APIError | None"]


def _platform_error(
    payload: dict[str, Any], response: HTTPResponse, now: datetime | None
) -> APIError | None:
    """``{"error": {"message", "code"|"type"}}`` at any status; ``{"error": "..."}`` on 4xx/5xx."""
    status, err = response.status, payload.get("error")
    if isinstance(err, dict) and err:
        message = _text(err.get("message")) or f"HTTP {status}"
        code = _text(err.get("code")) or _text(err.get("type"))
        return _error_for(status if status >= 400 else 400, message, code, response, now)
    if isinstance(err, str) and err.strip() and status >= 400:
        return _error_for(status, err.strip(), None, response, now)
    return None


def _message(payload: dict[str, Any]) -> str | None:
    return _text(payload.get("message")) or _text(payload.get("msg"))


def _task_error_token(
    payload: dict[str, Any], response: HTTPResponse, now: datetime | None
) -> APIError | None:
    """The flat task error ``{"code": "task_not_exist", "message": ..., "data": null}``."""
    raw_code = payload.get("code")
    if not isinstance(raw_code, str) or _business_code(raw_code) is not None:
        return None
    token = raw_code.strip()
    if not token or token.lower() == "success":
        return None
    status = response.status
    return _error_for(
        status if status >= 400 else 400, _message(payload) or token, token, response, now
    )


def _business_code_error(
    payload: dict[str, Any], response: HTTPResponse, now: datetime | None
) -> APIError | None:
    """A business code inside the body (upstream A3/F3: 400 = request error).

    Success is HTTP 2xx plus business data (§1.A), so the A1 placeholder ``"code": 123``
    beside a ``data`` object is not an error; an odd code with no data is. An HTTP error
    status outranks the body's code: it is what decides whether a retry is safe."""
    code = _business_code(payload.get("code"))
    if code is None or code in (0, 200):
        return None
    status = response.status
    message = _message(payload) or f"code {code}"
    if 400 <= code <= 599:
        return _error_for(status if status >= 400 else code, message, str(code), response, now)
    if not isinstance(payload.get("data"), dict):
        return _error_for(status if status >= 400 else 400, message, str(code), response, now)
    return None


def _not_exist_message(
    payload: dict[str, Any], response: HTTPResponse, now: datetime | None
) -> APIError | None:
    """``{"message": "task_not_exist"}`` or ``{"status": "task_not_exist"}`` at any status
    (§1.5, §8.4: CometAPI's own tutorial reads the latter inside a 200)."""
    status_word = payload.get("status")
    if _message(payload) == _NOT_EXIST or (
        isinstance(status_word, str) and status_word.strip().lower() == _NOT_EXIST
    ):
        return _error_for(response.status, _NOT_EXIST, _NOT_EXIST, response, now)
    return None


def _error_status(
    payload: dict[str, Any], response: HTTPResponse, now: datetime | None
) -> APIError | None:
    """Any other JSON answer with an HTTP error status."""
    status = response.status
    if status >= 400:
        return _error_for(status, _message(payload) or f"HTTP {status}", None, response, now)
    return None


# In this order: the first that recognises its envelope decides.
_RECOGNISERS: tuple[Recogniser, ...] = (
    _platform_error,
    _task_error_token,
    _business_code_error,
    _not_exist_message,
    _error_status,
)


def _classify(response: HTTPResponse, now: datetime | None) -> tuple[CometRunwayError | None, Any]:
    """``(error, None)`` for an answer that stands for an error, else ``(None, payload)``:
    the decoded JSON for the parsers to read further."""
    status = response.status
    if 300 <= status < 400:
        where = response.header("location") or "elsewhere"
        error = EndpointError(
            f"redirected to {where}: wrong path or base URL (the API never redirects)",
            status=status,
            body=response.body,
        )
        return error, None
    try:
        # API answers are UTF-8 (RFC 8259 §8.1; a BOM is tolerated); other bytes are "not JSON".
        text = response.body.decode("utf-8-sig")
        payload = json.loads(text) if text.strip() else None
    except (ValueError, RecursionError):
        return _not_json(response, now), None
    if not isinstance(payload, dict):
        if status >= 400:
            return _error_for(status, f"HTTP {status}", None, response, now), None
        return None, payload  # parse_* will say what it expected
    for recognise in _RECOGNISERS:
        found = recognise(payload, response, now)
        if found is not None:
            return found, None
    return None, payload


def _not_json(response: HTTPResponse, now: datetime | None) -> CometRunwayError:
    """What an answer that is not JSON stands for. Gateways (nginx, Cloudflare 502/524)
    answer 429/5xx with HTML pages: those keep their retry meaning (§3.2); an HTML page
    anywhere else means a wrong path."""
    status = response.status
    if response.body.strip() == _NOT_EXIST.encode():
        # A plain-text ``task_not_exist`` body, at any status (wire §8.4).
        return _error_for(status, _NOT_EXIST, _NOT_EXIST, response, now)
    if _looks_html(response) and status != 429 and status < 500:
        return EndpointError(
            f"got an HTML page (HTTP {status}), not the API: check the base URL and path",
            status=status,
            body=response.body,
        )
    if status >= 400:
        if _looks_html(response):
            page = f"HTTP {status}: the gateway answered with an HTML page"
        else:
            page = response.body[:200].decode("utf-8", "replace").strip()
        return _error_for(status, page or f"HTTP {status}", None, response, now)
    return DecodeError(f"HTTP {status}: body is not JSON", body=response.body)


# ---------------------------------------------------------------- what to do on failure


class SubmitDisposition(enum.Enum):
    """What a failed create allows."""

    RETRY = "retry"  # certainly not accepted: safe to send again
    AMBIGUOUS = "ambiguous"  # may have been accepted: never resend blindly
    FATAL = "fatal"  # refused: resending will not help


class PollDisposition(enum.Enum):
    """What a failed poll means for the task."""

    RETRY = "retry"  # transient: the task stays pending
    NOT_FOUND = "not_found"  # task_not_exist: pending within the grace window
    AUTH = "auth"  # the key is refused: every task fails
    FATAL = "fatal"  # this task cannot be polled


# 502/503: the gateway refused before processing. 500/504/524: it may have processed.
_SUBMIT_RETRY_STATUSES = frozenset({502, 503})


def submit_disposition(error: BaseException) -> SubmitDisposition:
    """Whether a create that failed with ``error`` may be sent again (see :doc:`/quirks`)."""
    if isinstance(error, TransportError):
        return SubmitDisposition.AMBIGUOUS if error.request_sent else SubmitDisposition.RETRY
    if isinstance(error, RateLimitError):
        return SubmitDisposition.RETRY
    if isinstance(error, InvalidRequestError):
        return SubmitDisposition.FATAL
    if isinstance(error, ServerError):
        if error.status in _SUBMIT_RETRY_STATUSES:
            return SubmitDisposition.RETRY
        return SubmitDisposition.AMBIGUOUS
    if isinstance(error, DecodeError):
        # A 2xx we cannot read: the task may well exist, without an id we know.
        return SubmitDisposition.AMBIGUOUS
    return SubmitDisposition.FATAL


def poll_disposition(error: BaseException) -> PollDisposition:
    """What a failed poll means: polls are free to retry, so most failures are transient."""
    if isinstance(error, TaskNotFound):
        return PollDisposition.NOT_FOUND
    if isinstance(error, AuthenticationError):
        return PollDisposition.AUTH
    if isinstance(error, TransportError | RateLimitError | ServerError | DecodeError):
        return PollDisposition.RETRY
    if isinstance(error, ClientStateError):
        # The client is closing and the poll was not sent: the task stays pending, and the
        # close fails its handle saying how to follow it again.
        return PollDisposition.RETRY
    return PollDisposition.FATAL
