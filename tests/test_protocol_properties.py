"""Whatever the server sends, the parsers answer with a value or a CometRunwayError.

Arbitrary bytes, arbitrary JSON, near misses of every recorded envelope (fields deleted,
wrong types swapped in, nested data replaced), any status 100–599 and junk headers: never
a KeyError, TypeError, AttributeError, RecursionError or anything else unnamed.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cometrunway.errors import CometRunwayError, RateLimitError
from cometrunway.models import Task, TaskStatus
from cometrunway.protocol import (
    HTTPResponse,
    error_from_response,
    map_status,
    normalize_progress,
    parse_poll,
    parse_retry_after,
    parse_submit,
)

SAMPLES = Path(__file__).parent / "samples"
NOW = datetime(2026, 3, 13, 12, 0, 0, tzinfo=UTC)

PROPERTY = settings(
    max_examples=250,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Every recorded answer body (requests and pages excluded): the seeds of the near misses.
ENVELOPES: list[Any] = [
    json.loads(p.read_bytes())
    for p in sorted(SAMPLES.glob("*.json"))
    if not p.name.startswith(("request_", "constructed_error_html"))
]

# ---------------------------------------------------------------- strategies

# Values that have broken tolerant parsers before: digits that are not ASCII, integers too
# big for a float or for int(str), non-finite floats, near-miss words.
TRICKY: list[Any] = [
    "",
    " ",
    "success",
    "SUCCESS",
    "task_not_exist",
    "invalid_request",
    "200",
    "400",
    "429",
    "0",
    "1",
    "2",
    "3",
    "²",
    "٣",
    "9" * 50,
    "9" * 5000,
    "37%",
    "%",
    "100%",
    "1e999%",
    "https://a.example/v.mp4",
    "http://a.example/p.png",
    "https://",
    "2026-05-01T12:47:47.351Z",
    "2026-13-45T99:99:99Z",
    "1724313052",
    "NaN",
    10**400,
    -(10**400),
    10**20,
    1e308,
    float("inf"),
    float("-inf"),
    float("nan"),
    123,
    200,
    404,
    429,
    503,
    0,
    -1,
    True,
    False,
    None,
]
scalars = st.one_of(
    st.sampled_from(TRICKY),
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
KEYS = [
    "code",
    "message",
    "msg",
    "data",
    "id",
    "task_id",
    "status",
    "state",
    "output",
    "video_url",
    "raw_video_url",
    "result_url",
    "poster",
    "last_frame",
    "progress",
    "error",
    "failure",
    "failureCode",
    "fail_reason",
    "refund",
    "submit_time",
    "start_time",
    "finish_time",
    "create_time",
    "createdAt",
]
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), children, max_size=6),
    ),
    max_leaves=25,
)


@st.composite
def deep_nest(draw: st.DrawFn) -> Any:
    """A list or object nested hundreds or thousands deep (near and past the limit)."""
    depth = draw(st.integers(min_value=50, max_value=3000))
    leaf: Any = draw(st.sampled_from([[], {}, "https://a.example/x.mp4", 1, None]))
    use_dict = draw(st.booleans())
    value = leaf
    for _ in range(depth):
        value = {"data": value} if use_dict else [value]
    return value


replacements = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.text(max_size=5), scalars, max_size=3),
    st.just([]),
    st.just({}),
    deep_nest(),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if len(prefix) >= 6:  # documented envelopes are shallow; a swapped-in deep nest is not
        return found
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any, delete: bool) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    if not rest and delete:
        del copy[head]
    else:
        copy[head] = _replace(value[head], rest, new, delete)
    return copy


@st.composite
def near_misses(draw: st.DrawFn) -> Any:
    """A documented envelope with a few fields deleted or given the wrong type."""
    value = draw(st.sampled_from(ENVELOPES))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(value)
        path = draw(st.sampled_from(paths))
        operation = draw(st.sampled_from(["delete", "tricky", "tricky", "replace"]))
        delete = bool(path) and operation == "delete"
        new = draw(st.sampled_from(TRICKY) if operation == "tricky" else replacements)
        value = _replace(value, path, new, delete)
    return value


@st.composite
def documented_fields(draw: st.DrawFn) -> Any:
    """Every documented key at each layer (top, ``data``, ``data.data``), each value tricky."""
    fields = st.dictionaries(st.sampled_from(KEYS), scalars, max_size=8)
    inner = draw(fields)
    middle = draw(fields)
    if draw(st.booleans()):
        middle["data"] = inner
    top = draw(fields)
    if draw(st.booleans()):
        top["data"] = middle
    return top


def _dumps(value: Any) -> bytes:
    try:
        return json.dumps(value).encode()
    except (RecursionError, ValueError):
        return b"[" * 5000 + b"]" * 5000


bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(_dumps),
    near_misses().map(_dumps),
    documented_fields().map(_dumps),
    deep_nest().map(_dumps),
    st.sampled_from(
        [
            b"",
            b"<!DOCTYPE html><html></html>",
            b"<html>",
            b"null",
            b"[]",
            b'"x"',
            b"\xff\xfe\x00",
            b"NaN",
            b"1" * 5000,
            b'{"code": ' + b"9" * 5000 + b"}",
        ]
    ),
)
header_values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "5",
            "-1",
            "1e999",
            "nan",
            "inf",
            "0x10",
            "Fri, 13 Mar 2026 12:00:30 GMT",
            "Mon, 01 Jan 99999 00:00:00 GMT",
            "Wed, 21 Oct 2015 07:28:00 +9999",
            "Tue, 31 Feb 2026 25:61:61 GMT",
            "text/html; charset=utf-8",
            "application/json",
            "https://elsewhere.example/",
        ]
    ),
)
headers = st.dictionaries(
    st.sampled_from(["Retry-After", "retry-after", "Content-Type", "Location", "X-Other"]),
    header_values,
    max_size=3,
)
statuses = st.one_of(
    st.integers(min_value=100, max_value=599),
    st.sampled_from([200, 201, 301, 400, 401, 403, 404, 429, 500, 502, 503, 504, 524]),
)
responses = st.builds(HTTPResponse, statuses, headers, bodies)


# ---------------------------------------------------------------- invariants


def _check_task(task: Task) -> None:
    assert isinstance(task.task_id, str)
    assert isinstance(task.status, TaskStatus)
    assert task.progress is None or 0.0 <= task.progress <= 1.0
    assert all(u.startswith(("https://", "http://")) for u in task.outputs)
    if task.status is TaskStatus.SUCCEEDED:
        assert task.outputs
        assert task.progress == 1.0
    if not task.status.is_terminal or task.status is TaskStatus.SUCCEEDED:
        assert task.error is None
        assert task.error_code is None
    assert task.video_url is None or task.video_url in task.outputs


@PROPERTY
@given(responses)
def test_parse_submit_answers_an_id_or_a_library_error(response: HTTPResponse) -> None:
    try:
        task_id: str | CometRunwayError = parse_submit(response, now=NOW)
    except CometRunwayError as err:
        task_id = err
    if isinstance(task_id, RateLimitError):
        wait = task_id.retry_after
        assert wait is None or (math.isfinite(wait) and wait >= 0)
    if isinstance(task_id, CometRunwayError):
        assert str(task_id)
        assert repr(task_id)
    else:
        assert task_id.strip() == task_id
        assert task_id


@PROPERTY
@given(responses, st.one_of(st.none(), st.text(min_size=1, max_size=10)))
def test_parse_poll_answers_a_task_or_a_library_error(
    response: HTTPResponse, task_id: str | None
) -> None:
    try:
        task = parse_poll(response, task_id=task_id, now=NOW)
    except CometRunwayError as err:
        str(err)
        repr(err)
    else:
        _check_task(task)


@PROPERTY
@given(near_misses(), st.sampled_from([200, 200, 201, 400, 404, 429, 500]))
def test_near_misses_of_every_envelope(value: Any, status: int) -> None:
    response = HTTPResponse(status, {"Content-Type": "application/json"}, _dumps(value))
    for parse in (parse_submit, parse_poll):
        try:
            result = parse(response)
        except CometRunwayError:
            continue
        if isinstance(result, Task):
            _check_task(result)
        else:
            assert isinstance(result, str)
            assert result


@PROPERTY
@given(responses)
def test_error_from_response_returns_rather_than_raises(response: HTTPResponse) -> None:
    error = error_from_response(response, now=NOW)
    assert error is None or isinstance(error, CometRunwayError)
    if 300 <= response.status < 400 or response.status >= 400:
        assert error is not None


@settings(max_examples=300, deadline=None, database=None)
@given(header_values)
def test_parse_retry_after_is_never_negative_or_infinite(value: str) -> None:
    seconds = parse_retry_after(value, now=NOW)
    assert seconds is None or (math.isfinite(seconds) and seconds >= 0)


@settings(max_examples=300, deadline=None, database=None)
@given(json_values)
def test_progress_and_status_readers_take_anything(value: Any) -> None:
    progress = normalize_progress(value)
    assert progress is None or 0.0 <= progress <= 1.0
    status = map_status(value)
    assert status is None or isinstance(status, TaskStatus)


@PROPERTY
@given(documented_fields(), st.sampled_from([200, 200, 200, 400, 404, 429, 502]))
def test_documented_fields_with_tricky_values(value: Any, status: int) -> None:
    response = HTTPResponse(status, {}, _dumps(value))
    for parse in (parse_submit, parse_poll):
        try:
            result = parse(response)
        except CometRunwayError:
            continue
        if isinstance(result, Task):
            _check_task(result)
        else:
            assert result


def test_every_tricky_value_at_every_field_of_every_envelope() -> None:
    """Exhaustive: each recorded envelope with one field swapped for each tricky value."""
    checked = 0
    for envelope in ENVELOPES:
        for path in _paths(envelope):
            if not path:
                continue
            for new in [*TRICKY, [], {}, ["https://a.example/v.mp4"], {"url": 5}]:
                body = _dumps(_replace(envelope, path, new, delete=False))
                for status in (200, 400):
                    response = HTTPResponse(status, {}, body)
                    for parse in (parse_submit, parse_poll):
                        try:
                            result = parse(response)
                        except CometRunwayError:
                            continue
                        if isinstance(result, Task):
                            _check_task(result)
                        else:
                            assert result
                        checked += 1
    assert checked > 1000


def _deepest_readable(opener: bytes, closer: bytes) -> int:
    """The deepest nesting ``json.loads`` accepts from here (it depends on the stack)."""
    low, high = 1, 200_000
    while low < high:
        mid = (low + high + 1) // 2
        try:
            json.loads(opener * mid + b"1" + closer * mid)
        except RecursionError:
            high = mid - 1
        else:
            low = mid
    return low


def test_nesting_right_at_the_parser_limit() -> None:
    """Bodies nested just shallow enough for ``json`` to read, in every field we look into."""
    templates = [
        b'{"id": "t", "status": "SUCCEEDED", "output": %s}',
        b'{"id": "t", "status": "FAILED", "failure": %s, "failureCode": %s}',
        b'{"code": "success", "data": {"task_id": "t", "status": %s, "refund": %s}}',
        b'{"code": "success", "data": {"task_id": "t", "fail_reason": %s, "data": %s}}',
        b'{"code": 200, "data": {"task_id": "t", "status": "3", "video_url": %s}}',
        b'{"error": {"message": %s, "code": %s}}',
        b'{"code": %s, "message": %s, "data": {"task_id": %s}}',
    ]
    outcomes = 0
    for opener, closer in ((b"[", b"]"), (b'{"data": ', b"}")):
        limit = _deepest_readable(opener, closer)
        for depth in range(max(1, limit - 30), limit + 3):
            nest = opener * depth + b"1" + closer * depth
            for template in templates:
                body = template.replace(b"%s", nest)
                for parse in (parse_submit, parse_poll):
                    try:
                        parse(HTTPResponse(200, {}, body))
                    except CometRunwayError:
                        pass
                    outcomes += 1
    assert outcomes == 2 * 33 * len(templates) * 2
