"""The sans-I/O core: build every request, read every documented answer. No I/O here.

``build_submit``/``build_poll`` make an ``HTTPRequest``; ``parse_submit``/``parse_poll`` turn
an ``HTTPResponse`` into a task id or a ``Task``, or raise the right error from
``errors``. ``submit_disposition``/``poll_disposition`` say what the async layer may do about
a failure: a create that may have reached the server is never retried.

Every envelope of the wire reference is accepted (§1.A, §1.5, §1.10, §3, §6): create A1/A2/A3
and ``{"id"}``; poll F1/F2/F3 (``/runway/feed``) and T1/T2 (``/runwayml/v1/tasks``);
``task_not_exist``; ``{"error": {...}}``; flat ``{"code","message","data"}``; HTML pages.
This module never awaits and never imports asyncio or aiohttp.
"""

from __future__ import annotations

import enum
import functools
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import quote

from attrs import field, frozen

from ._converter import OfficialTaskWire, RecordWire, request_body, structure
from .errors import (
    APIError,
    AuthenticationError,
    CometRunwayError,
    DecodeError,
    EndpointError,
    InvalidRequestError,
    RateLimitError,
    ServerError,
    TaskNotFound,
    TransportError,
)
from .models import PollRoute, Request, Task, TaskStatus

__all__ = [
    "DEFAULT_CALLBACK_URL",
    "DEFAULT_RUNWAY_VERSION",
    "HTTPRequest",
    "HTTPResponse",
    "PollDisposition",
    "SubmitDisposition",
    "build_poll",
    "build_submit",
    "error_from_response",
    "map_status",
    "normalize_progress",
    "parse_poll",
    "parse_retry_after",
    "parse_submit",
    "poll_disposition",
    "submit_disposition",
]

DEFAULT_RUNWAY_VERSION = "2024-11-06"
# `.invalid` never resolves (RFC 2606), so results are never posted to a stranger; the
# wrapper refuses a create without callback_url (wire reference §3.1 callback_url_empty).
DEFAULT_CALLBACK_URL = "https://callback.invalid/"


# ---------------------------------------------------------------- the seam's values


def _redact_headers(headers: tuple[tuple[str, str], ...]) -> str:
    return repr(tuple((k, "<redacted>" if k.lower() == "authorization" else v) for k, v in headers))


@frozen
class HTTPRequest:
    """One request for the transport. ``path`` is joined to the client's base URL.

    The repr hides the ``Authorization`` header: the key never reaches a log line.
    """

    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = field(repr=_redact_headers)
    body: bytes | None = None
    kind: Literal["submit", "poll"] = "poll"

    def header(self, name: str) -> str | None:
        lname = name.lower()
        return next((v for k, v in self.headers if k.lower() == lname), None)

    def json(self) -> Any:
        return None if self.body is None else json.loads(self.body)


def _header_dict(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    # One plain copy, names as received: a single object per answer, built in C.
    return dict(headers.items() if isinstance(headers, Mapping) else headers)


@frozen
class HTTPResponse:
    """One answer from the transport: status, headers, raw body.

    Headers are kept as received and matched case-insensitively when asked for: most answers
    are read without looking at a single header, so none are normalised up front.
    """

    status: int
    _headers: Mapping[str, str] = field(factory=dict, converter=_header_dict)
    body: bytes = b""

    @property
    def headers(self) -> Mapping[str, str]:
        """Every header, names lower-cased (the last of a repeated name wins)."""
        return {str(k).lower(): str(v) for k, v in self._headers.items()}

    def header(self, name: str) -> str | None:
        lname = name.lower()
        found = None
        for key, value in self._headers.items():
            if str(key).lower() == lname:
                found = str(value)  # the last wins, as in ``headers``
        return found


# ---------------------------------------------------------------- building


@functools.lru_cache(maxsize=32)
def _headers(
    api_key: str, runway_version: str | None, json_body: bool
) -> tuple[tuple[str, str], ...]:
    # The same few tuples serve every request of a client: built once, not per request.
    if not isinstance(api_key, str) or not api_key.strip():
        raise ValueError("api_key must be a non-empty string (your CometAPI key)")
    headers = [("Authorization", f"Bearer {api_key}"), ("Accept", "application/json")]
    # Sent on every route: required on /runwayml/v1 creates, harmless elsewhere (§0, §6 C5).
    if runway_version:
        headers.append(("X-Runway-Version", runway_version))
    if json_body:
        headers.append(("Content-Type", "application/json"))
    return tuple(headers)


# One encoder for every body: json.dumps builds a new one per call for non-default options.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _dumps(body: Any) -> bytes:
    return _ENCODER.encode(body).encode()


def build_submit(
    request: Request,
    *,
    api_key: str,
    runway_version: str | None = DEFAULT_RUNWAY_VERSION,
    callback_url: str | None = None,
) -> HTTPRequest:
    """The create request for any request model.

    ``callback_url`` is the client's; the request's own wins, and with neither the inert
    ``https://callback.invalid/`` is sent (only ``/runway/pro/*`` routes take one, §4).
    """
    path = getattr(type(request), "path", None)
    if path is None:
        raise TypeError(f"not a cometrunway request model: {request!r}")
    headers = _headers(api_key, runway_version, True)
    body = request_body(request, callback_url=callback_url or DEFAULT_CALLBACK_URL)
    return HTTPRequest("POST", path, headers, _dumps(body), kind="submit")


def build_poll(
    task_id: str,
    route: PollRoute = "feed",
    *,
    api_key: str,
    runway_version: str | None = DEFAULT_RUNWAY_VERSION,
) -> HTTPRequest:
    """``POST /runway/feed`` (route "feed") or ``GET /runwayml/v1/tasks/{id}`` ("tasks")."""
    if not isinstance(task_id, str) or not task_id.strip():
        raise ValueError(f"task_id must be a non-empty string, got {task_id!r}")
    if route == "feed":
        headers = _headers(api_key, runway_version, True)
        body = b'{"task_id":%s}' % _ENCODER.encode(task_id).encode()  # a string: no dict walk
        return HTTPRequest("POST", "/runway/feed", headers, body)
    if route == "tasks":
        headers = _headers(api_key, runway_version, False)
        return HTTPRequest("GET", f"/runwayml/v1/tasks/{quote(task_id, safe='')}", headers)
    raise ValueError(f"route must be 'feed' or 'tasks', got {route!r}")


# ---------------------------------------------------------------- errors


# RFC 9110 delta-seconds (a fraction tolerated); "1_0", "0x10", "nan" and friends are junk.
_DELTA_SECONDS = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,9})?$", re.ASCII)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds (``"5"``, ``"1.5"``) or an HTTP-date; None if absent/bad."""
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
    return max(0.0, seconds)


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


def _classify(response: HTTPResponse, now: datetime | None) -> tuple[CometRunwayError | None, Any]:
    """The error an answer stands for, or None if it is a success to parse further.

    Knows the platform ``{"error": {...}}`` envelope, the flat task error
    ``{"code","message","data"}``, business codes inside a 200 body (A3: ``code: 400``),
    ``task_not_exist`` at any status, redirects and HTML pages (§3, §6 C17).
    """
    status = response.status
    if 300 <= status < 400:
        where = response.header("location") or "elsewhere"
        return (
            EndpointError(
                f"redirected to {where}: wrong path or base URL (the API never redirects)",
                status=status,
                body=response.body,
            )
        ), None
    try:
        # API answers are UTF-8 (RFC 8259 §8.1; a BOM is tolerated): decoding here spares
        # json.loads its encoding sniffing on every answer. Other bytes are "not JSON".
        text = response.body.decode("utf-8-sig")
        payload = json.loads(text) if text.strip() else None
    except (ValueError, RecursionError):
        # Gateways (nginx, Cloudflare 502/524) answer 429/5xx with HTML pages: those keep
        # their retry meaning (§3.2); an HTML page anywhere else means a wrong path.
        if _looks_html(response) and status != 429 and status < 500:
            return (
                EndpointError(
                    f"got an HTML page (HTTP {status}), not the API: check the base URL and path",
                    status=status,
                    body=response.body,
                )
            ), None
        if status >= 400:
            if _looks_html(response):
                page = f"HTTP {status}: the gateway answered with an HTML page"
            else:
                page = response.body[:200].decode("utf-8", "replace").strip()
            return (_error_for(status, page or f"HTTP {status}", None, response, now)), None
        return (DecodeError(f"HTTP {status}: body is not JSON", body=response.body)), None

    if not isinstance(payload, dict):
        if status >= 400:
            return (_error_for(status, f"HTTP {status}", None, response, now)), None
        return None, payload  # parse_* will say what it expected

    err = payload.get("error")
    raw_code: object = payload.get("code")
    if err is None and status < 400 and (raw_code == "success" or raw_code in (200, 0)):
        # The usual success envelopes (F1 "success", A1/F3 200): only a task_not_exist word
        # could still make one an error, and then the full reading below decides.
        said, msg = payload.get("message"), payload.get("msg")
        if (said is None or (type(said) is str and "task_not_exist" not in said)) and (
            msg is None or (type(msg) is str and "task_not_exist" not in msg)
        ):
            return None, payload
    if isinstance(err, dict) and err:
        err_message = _text(err.get("message")) or f"HTTP {status}"
        err_code = _text(err.get("code")) or _text(err.get("type"))
        return (
            _error_for(status if status >= 400 else 400, err_message, err_code, response, now)
        ), None
    if isinstance(err, str) and err.strip() and status >= 400:
        return (_error_for(status, err.strip(), None, response, now)), None

    message = _text(payload.get("message")) or _text(payload.get("msg"))
    code = _business_code(raw_code)
    if code is None and isinstance(raw_code, str):
        token = raw_code.strip()
        if token and token.lower() != "success":
            # A task error token: {"code": "task_not_exist", "message": ..., "data": null}.
            return (
                _error_for(status if status >= 400 else 400, message or token, token, response, now)
            ), None
    if code is not None and code not in (0, 200):
        # A business code inside the body (upstream A3/F3: 400 = request error). Success is
        # HTTP 2xx plus business data (§1.A), so the A1 placeholder ``"code": 123`` beside a
        # ``data`` object is not an error; an odd code with no data is. An HTTP error status
        # outranks the body's code: it is what decides whether a retry is safe.
        if 400 <= code <= 599:
            business = status if status >= 400 else code
            return (_error_for(business, message or f"code {code}", str(code), response, now)), None
        if not isinstance(payload.get("data"), dict):
            business = status if status >= 400 else 400
            return (_error_for(business, message or f"code {code}", str(code), response, now)), None
    if message == "task_not_exist":
        return (_error_for(status, message, "task_not_exist", response, now)), None
    if status >= 400:
        return (_error_for(status, message or f"HTTP {status}", None, response, now)), None
    return None, payload


# ---------------------------------------------------------------- creates


def parse_submit(response: HTTPResponse, *, now: datetime | None = None) -> str:
    """The task id a create answered with, or the error it stands for.

    ``data.task_id`` on ``/runway/pro/*`` (A1/A2/A3), ``id`` on ``/runwayml/v1/*``. A 2xx
    without an id is a ``DecodeError`` (the task may exist: the client treats it as an
    ambiguous submit).
    """
    error, payload = _classify(response, now)
    if error is not None:
        raise error
    if isinstance(payload, dict):
        data = payload.get("data")
        candidates = [data.get("task_id"), data.get("id")] if isinstance(data, dict) else []
        candidates += [payload.get("id"), payload.get("task_id")]
        for candidate in candidates:
            if isinstance(candidate, str) and candidate.strip():
                return candidate.strip()
            if isinstance(candidate, int) and not isinstance(candidate, bool):
                return str(candidate)
    raise DecodeError(
        f"HTTP {response.status} create answer has no task id (data.task_id or id)",
        body=response.body,
    )


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
    if type(word) is str:  # the usual shape, first
        return _STATUS_WORDS.get(word.strip().upper())
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
    if type(value) is int:  # the usual shape, first
        return datetime.fromtimestamp(value, UTC) if 0 < value <= 1e11 else None
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
            return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


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


def _collect(layers: list[Mapping[str, Any]], keys: tuple[str, ...]) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for key in keys:
        for layer in layers:
            value = layer.get(key)
            if not value:  # most keys are absent or empty while a task runs: skip them cheaply
                continue
            if type(value) is str:  # one URL, the usual shape
                url = _url(value)
                if url is not None:
                    found.setdefault(url)
            else:
                for url in _urls(value):
                    found.setdefault(url)
    return tuple(found)


def _first(layers: list[Mapping[str, Any]], key: str) -> str | None:
    for layer in layers:
        value = layer.get(key)
        if not value:
            continue
        if type(value) is str:  # one URL, the usual shape
            url = _url(value)
            if url is not None:
                return url
        else:
            for url in _urls(value):
                return url
    return None


def _video_of(outputs: tuple[str, ...]) -> str | None:
    for url in outputs:
        if not url.lower().split("?", 1)[0].endswith(_IMAGE_SUFFIXES):
            return url
    return None


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
) -> Task:
    outputs = _collect(layers, _OUTPUT_KEYS)
    if status is TaskStatus.SUCCEEDED and not outputs:
        # Success without a usable URL yet: keep polling until the provider metadata has
        # one (wire reference §1.5 F1, §2 decision rule) -- unless the record also names a
        # failure, which the same rule makes terminal.
        status = TaskStatus.FAILED if failed else TaskStatus.RUNNING
    if status is TaskStatus.SUCCEEDED:
        progress = 1.0
    return Task(
        task_id=task_id,
        status=status,
        progress=progress,
        outputs=outputs,
        video_url=_video_of(outputs),
        error=error if status in (TaskStatus.FAILED, TaskStatus.CANCELLED) else None,
        error_code=error_code if status in (TaskStatus.FAILED, TaskStatus.CANCELLED) else None,
        body=body,
        raw_status=raw_status,
        poster_url=_first(layers, "poster"),
        last_frame_url=_first(layers, "last_frame"),
        created_at=_timestamp(created),
        started_at=_timestamp(started),
        finished_at=_timestamp(finished),
    )


def _official_task(payload: dict[str, Any], body: bytes | None) -> Task:
    wire = structure(payload, OfficialTaskWire, what="task", body=body)
    status = map_status(wire.status) or TaskStatus.PENDING  # unknown words: non-terminal (§2)
    failure = _text(wire.failure)
    failure_code = _text(wire.failure_code)
    if not status.is_terminal and (failure or failure_code):
        status = TaskStatus.FAILED
    return _task(
        task_id=wire.id,
        status=status,
        raw_status=wire.status,
        progress=normalize_progress(wire.progress),
        layers=[payload],
        error=failure,
        error_code=failure_code,
        body=body,
        failed=bool(failure or failure_code),
        created=wire.created_at,
    )


def _record_task(record: dict[str, Any], body: bytes | None) -> Task:
    # Only the identity is typed; every other member is read loosely, as found (§1.5).
    get = record.get
    task_id, word = get("task_id"), get("status")
    if type(task_id) is not str or (word is not None and type(word) is not str):
        # Anything but the usual string id and word: the converter coerces or says why not.
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
    )


def parse_poll(
    response: HTTPResponse, *, task_id: str | None = None, now: datetime | None = None
) -> Task:
    """The task snapshot a poll answered with, or the error it stands for.

    Reads F1 (``{"code":"success","data":{record}}``), F2 (a flat record), F3
    (``{"code":200,"data":{record}}``), T1 (a bare Runway task) and T2 (= F1). ``task_id``,
    when given, names the task in a ``TaskNotFound``.
    """
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
    """Whether a create that failed with ``error`` may be sent again (wire reference §3.2)."""
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
    return PollDisposition.FATAL
