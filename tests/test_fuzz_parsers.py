"""A bounded fuzz run over every parse entry point: poll answers, create answers and callback
payloads. Whatever a server sends, parsing ends in a value the rest of the client can use or
in a library error (``CometRunwayError``) — never a ``TypeError``, ``OverflowError``,
``UnicodeError`` or a hang that would end the client or a handle it should not.

The answers are built from the wire's own vocabulary (envelope keys, status words, progress,
timestamps, URLs) mixed with hostile values: naive and out-of-range timestamps, lone
surrogates, huge numbers, NaN, deep nesting, wrong types. ``FUZZ_EXAMPLES`` sets the budget
(CI runs the default; raise it locally for a longer hunt).
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cometrunway.errors import CometRunwayError
from cometrunway.models import Task
from cometrunway.protocol import HTTPResponse, parse_poll, parse_submit
from cometrunway.webhooks import CallbackReceiver

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)

KEYS = [
    "code", "data", "message", "msg", "task_id", "id", "status", "progress", "output",
    "outputs", "video_url", "url", "result", "fail_reason", "failure", "failureCode", "error",
    "created_at", "createdAt", "submit_time", "start_time", "finish_time", "finished_at",
    "estimatedCost", "cost", "credits", "task", "image", "poster",
]  # fmt: skip
WORDS = [
    "SUCCEEDED", "succeeded", "SUCCESS", "success", "FAILED", "failed", "FAILURE", "RUNNING",
    "IN_PROGRESS", "PENDING", "THROTTLED", "QUEUED", "NOT_START", "CANCELLED", "task_not_exist",
    "succeed", "", "\ud800", "200", "429",
]  # fmt: skip
TIMES = [
    "0001-01-01T00:00:00", "9999-12-31T23:59:59Z", "2026-11-30T10:00:00Z",
    "2026-11-30T10:00:00", "2026-13-45T99:99:99Z", "not a time",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, 1, 100, 200, 429, 503, 10**20, -1, 1700000000, 1700000000000]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(WORDS),
    st.sampled_from(TIMES),
    st.sampled_from(
        ["https://cdn.example/v.mp4", "http://x/y.png", "javascript:alert(1)", "ftp://a"]
    ),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=6),
    ),
    max_leaves=25,
)
envelopes = st.dictionaries(st.sampled_from(KEYS), values, max_size=8)


def encode(value: Any) -> bytes:
    # surrogatepass: a server can send the bytes of a lone surrogate escape ("\ud800").
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


bodies = st.one_of(
    envelopes.map(encode),
    values.map(encode),
    st.binary(max_size=64),
    st.sampled_from([b"task_not_exist", b"<html>502</html>", b"", b"[" * 5000, b"1e999999"]),
)
statuses = st.sampled_from([200, 201, 202, 400, 401, 404, 429, 500, 502, 503, 504, 524])
headers = st.sampled_from(
    [{}, {"content-type": "application/json"}, {"retry-after": "999999999"},
     {"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT"}, {"retry-after": "-5"}]
)  # fmt: skip


def check_task(task: Task) -> None:
    """A parsed snapshot the poller, the journal and the CLI can all use."""
    assert isinstance(task.task_id, str)
    assert task.task_id
    task.task_id.encode("utf-8")  # journaled and printed: must be real text
    if task.progress is not None:
        assert math.isfinite(task.progress)
        assert 0.0 <= task.progress <= 1.0
    for url in task.outputs:
        assert url.startswith(("http://", "https://"))
    for text in (task.error, task.error_code, task.raw_status):
        if text is not None:
            text.encode("utf-8")
    for stamp in (task.created_at, task.started_at, task.finished_at):
        if stamp is not None:
            assert isinstance(stamp, datetime)
            assert stamp.tzinfo is not None  # compared with aware clocks by the poller


@FUZZ
@given(status=statuses, headers=headers, body=bodies)
def test_parse_poll_returns_a_usable_task_or_a_library_error(
    status: int, headers: dict[str, str], body: bytes
) -> None:
    try:
        task = parse_poll(HTTPResponse(status, headers, body), task_id="task-1")
    except CometRunwayError:
        return
    check_task(task)


@FUZZ
@given(status=statuses, headers=headers, body=bodies)
def test_parse_submit_returns_a_task_id_or_a_library_error(
    status: int, headers: dict[str, str], body: bytes
) -> None:
    try:
        task_id = parse_submit(HTTPResponse(status, headers, body))
    except CometRunwayError:
        return
    assert isinstance(task_id, str)
    assert task_id
    task_id.encode("utf-8")


class _Woken:
    def __init__(self) -> None:
        self.woken: list[str] = []

    def wake(self, task_id: str) -> bool:
        self.woken.append(task_id)
        return True

    @property
    def callback_token(self) -> str:
        return "token"


@FUZZ
@given(body=bodies)
def test_callback_payloads_get_a_verdict(body: bytes) -> None:
    receiver = CallbackReceiver(_Woken())
    verdict = receiver.handle(body, {"token": "token"}, {"content-type": "application/json"})
    # handle() never raises; a 500 is its own bug caught and logged, which must not happen.
    assert verdict.reason != "error", verdict
