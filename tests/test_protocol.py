"""The sans-I/O core against the recorded samples of the wire reference (tests/samples)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cometrunway import protocol
from cometrunway.errors import (
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
from cometrunway.models import (
    ActOne,
    ContentModeration,
    ImageToVideo,
    MediaInput,
    MotionVector,
    PromptFrame,
    ReferenceImage,
    RunwayCharacterPerformance,
    RunwayImageToVideo,
    RunwayTextToImage,
    RunwayVideoToVideo,
    RunwayVideoUpscale,
    Task,
    TaskStatus,
    TextToVideo,
    VideoReference,
    VideoToVideo,
)
from cometrunway.protocol import (
    DEFAULT_CALLBACK_URL,
    DEFAULT_RUNWAY_VERSION,
    HTTPRequest,
    HTTPResponse,
    PollDisposition,
    SubmitDisposition,
    build_poll,
    build_submit,
    error_from_response,
    map_status,
    normalize_progress,
    parse_poll,
    parse_retry_after,
    parse_submit,
    poll_disposition,
    submit_disposition,
)

SAMPLES = Path(__file__).parent / "samples"
KEY = "sk-test-SECRET-0123456789"
NOW = datetime(2026, 3, 13, 12, 0, 0, tzinfo=UTC)

I2V_ID = "3d957031-9a2a-45e2-9dc7-bc8513059c50"
T1_ID = "d0658ae1-bbdd-4adc-aaba-fd8070e14d79"
F3_ID = "573772da-c2ec-4a60-987f-80b5ecc79b20"
F2_ID = "4156043d-9ea5-47c5-9e38-3f8446a0b20d"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def sample_json(name: str) -> Any:
    return json.loads(sample(name))


def answer(status: int, body: bytes | str | Any, headers: Any = None) -> HTTPResponse:
    if isinstance(body, str):
        raw = body.encode()
    elif isinstance(body, bytes):
        raw = body
    else:
        raw = json.dumps(body).encode()
    return HTTPResponse(status, headers or {}, raw)


def from_sample(status: int, name: str, headers: Any = None) -> HTTPResponse:
    if headers is None and name.endswith(".html"):
        headers = {"Content-Type": "text/html; charset=utf-8"}
    return HTTPResponse(status, headers or {"Content-Type": "application/json"}, sample(name))


def ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# ---------------------------------------------------------------- creates (parse_submit)

SUBMIT_OK = [
    ("create_A1.json", "<string>"),
    ("create_A2.json", "196642a0-05e1-441a-981e-eb0c1f5d983b"),
    ("create_A3.json", "0ab3bfe2-be23-4635-8c35-890fb2c1732d"),
    ("create_official_id.json", T1_ID),
    ("create_official_id_older.json", I2V_ID),
    ("create_video_to_video_id.json", "12a01a5e-ab55-4aa7-b002-7b873546cf76"),
    ("create_character_performance_older.json", "<string>"),
    ("create_character_performance_newer.json", "5b91e444-c232-deaf-a4d7-8aef3e57336b"),
]


@pytest.mark.parametrize(("name", "task_id"), SUBMIT_OK)
def test_parse_submit_reads_every_documented_create_answer(name: str, task_id: str) -> None:
    assert parse_submit(from_sample(200, name)) == task_id


SUBMIT_ERRORS: list[tuple[str, int, type[CometRunwayError], str | None]] = [
    # A 200 without an id (§6 C11's older `{}`): the task may exist, we cannot know its id.
    ("create_video_to_video_empty.json", 200, DecodeError, None),
    ("constructed_create_A3_business_400.json", 200, InvalidRequestError, "400"),
    ("error_platform_invalid_request.json", 400, InvalidRequestError, "invalid_request"),
    ("error_platform_invalid_request.json", 500, InvalidRequestError, "invalid_request"),
    ("error_platform_older.json", 400, InvalidRequestError, "comet_api_error"),
    ("error_platform_older.json", 500, ServerError, "comet_api_error"),
    ("error_task_not_exist.json", 400, TaskNotFound, "task_not_exist"),
    ("constructed_error_flat_callback_url_empty.json", 400, InvalidRequestError, None),
    ("constructed_error_insufficient_quota.json", 403, AuthenticationError, None),
    ("constructed_error_flat_saturated.json", 429, RateLimitError, None),
    ("constructed_error_html_404.html", 404, EndpointError, None),
    ("constructed_error_html_404.html", 200, EndpointError, None),
    ("constructed_error_html_524.html", 524, ServerError, None),
]


@pytest.mark.parametrize(("name", "status", "kind", "code"), SUBMIT_ERRORS)
def test_parse_submit_raises_the_documented_error(
    name: str, status: int, kind: type[CometRunwayError], code: str | None
) -> None:
    with pytest.raises(kind) as info:
        parse_submit(from_sample(status, name))
    assert type(info.value) is kind
    if code is not None:
        assert isinstance(info.value, APIError)
        assert info.value.code == code
    if isinstance(info.value, APIError):
        assert info.value.body == sample(name)


def test_platform_error_keeps_status_message_and_code() -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse_submit(from_sample(400, "error_platform_older.json"))
    err = info.value
    assert err.status == 400
    assert err.message == "model name is required (request id: ...)"
    assert "model name is required" in str(err)


def test_business_code_400_in_a_200_body_is_a_request_error() -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse_submit(from_sample(200, "constructed_create_A3_business_400.json"))
    assert info.value.status == 400
    assert info.value.message == "参数错误"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"code": "200", "data": {"task_id": "abc"}}, "abc"),
        ({"code": 0, "data": {"id": "from-data-id"}}, "from-data-id"),
        ({"task_id": "flat"}, "flat"),
        ({"id": 12345}, "12345"),
        ({"data": {"task_id": "  padded  "}}, "padded"),
        ({"code": 123, "data": {"task_id": "placeholder-code"}}, "placeholder-code"),
        ({"code": "SUCCESS", "data": {"task_id": "upper"}}, "upper"),
    ],
)
def test_parse_submit_finds_the_id_where_the_families_put_it(body: Any, expected: str) -> None:
    assert parse_submit(answer(200, body)) == expected


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"not json at all",
        b"[1, 2, 3]",
        b'"a string"',
        b'{"data": {"task_id": ""}}',
        b'{"data": {"task_id": true}}',
        b'{"data": {"task_id": {"nested": 1}}}',
        b'{"id": null}',
        b'{"code": 200, "msg": "success", "data": null}',
    ],
)
def test_a_2xx_without_a_usable_id_is_a_decode_error(body: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        parse_submit(HTTPResponse(200, {}, body))
    assert info.value.body == body


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (301, b"", EndpointError),
        (302, b'{"id": "x"}', EndpointError),
        (400, b"plain text refusal", InvalidRequestError),
        (401, b'{"message": "invalid token"}', AuthenticationError),
        (403, b"", AuthenticationError),
        (404, b'{"message": "no route"}', APIError),
        (405, b"[]", APIError),
        (413, b"", InvalidRequestError),
        (422, b'{"error": "unprocessable"}', InvalidRequestError),
        (429, b"", RateLimitError),
        (500, b"", ServerError),
        (502, b"<html><body>Bad Gateway</body></html>", ServerError),
        (503, b"Service Unavailable", ServerError),
        (504, b"null", ServerError),
        (524, b"", ServerError),
        (200, b'{"code": "1001", "msg": "balance too low"}', InvalidRequestError),
        (200, b'{"code": 1001, "msg": "balance too low", "data": null}', InvalidRequestError),
        # A 2xx was taken by the gateway: an error inside it, without a task id, leaves the
        # task's existence unknown (wire §8.7), so it is ambiguous, never retried.
        (200, b'{"code": 503, "msg": "busy"}', DecodeError),
        (200, b'{"code": 429}', DecodeError),
        (200, b'{"error": {"message": "nope", "code": "invalid_request"}}', InvalidRequestError),
        (200, b'{"code": "success", "message": "task_not_exist", "data": null}', TaskNotFound),
        (200, b'{"code": "invalid_token", "message": "bad key"}', AuthenticationError),
    ],
)
def test_status_and_body_choose_the_error_class(
    status: int, body: bytes, kind: type[CometRunwayError]
) -> None:
    with pytest.raises(kind) as info:
        parse_submit(HTTPResponse(status, {}, body))
    assert type(info.value) is kind


def test_the_http_status_outranks_a_business_code() -> None:
    with pytest.raises(ServerError) as info:
        parse_submit(answer(502, {"code": 400, "msg": "upstream said no"}))
    assert info.value.status == 502
    assert info.value.code == "400"
    assert submit_disposition(info.value) is SubmitDisposition.RETRY
    with pytest.raises(RateLimitError):
        parse_submit(answer(429, {"code": 500, "msg": "busy"}))


def test_an_empty_error_member_is_not_an_error() -> None:
    body = {"error": {}, "code": 200, "data": {"task_id": "ok"}}
    assert parse_submit(answer(200, body)) == "ok"
    assert parse_submit(answer(200, {"error": None, "id": "ok2"})) == "ok2"


def test_redirect_names_where_it_pointed() -> None:
    response = answer(301, b"", {"Location": "https://www.cometapi.com/"})
    with pytest.raises(EndpointError) as info:
        parse_submit(response)
    assert "https://www.cometapi.com/" in str(info.value)
    assert info.value.status == 301


def test_html_page_says_check_the_base_url() -> None:
    with pytest.raises(EndpointError) as info:
        parse_poll(from_sample(404, "constructed_error_html_404.html"))
    assert "base URL" in str(info.value)
    assert info.value.status == 404


def test_html_is_recognised_without_a_content_type() -> None:
    with pytest.raises(EndpointError):
        parse_submit(HTTPResponse(200, {}, b"  <!doctype html><html></html>"))


def test_gateway_html_5xx_is_a_server_error_not_a_wrong_path() -> None:
    with pytest.raises(ServerError) as info:
        parse_submit(from_sample(524, "constructed_error_html_524.html"))
    assert info.value.status == 524
    assert "HTML page" in info.value.message
    assert submit_disposition(info.value) is SubmitDisposition.AMBIGUOUS


def test_auth_error_hints_at_the_base_url_on_401_only() -> None:
    with pytest.raises(AuthenticationError) as e401:
        parse_submit(answer(401, {"error": {"message": "invalid token", "code": ""}}))
    with pytest.raises(AuthenticationError) as e403:
        parse_submit(answer(403, {"error": {"message": "blocked"}}))
    assert "base URL" in e401.value.message
    assert "base URL" not in e403.value.message


def test_error_message_and_code_from_non_string_members() -> None:
    body = {"error": {"message": ["field a", "field b"], "code": 17}}
    with pytest.raises(InvalidRequestError) as info:
        parse_submit(answer(400, body))
    assert info.value.code == "17"
    assert info.value.message == '["field a", "field b"]'


def test_unserialisable_error_members_are_dropped() -> None:
    circular: list[Any] = []
    circular.append(circular)
    assert protocol._text(circular) is None
    assert protocol._text({"a": float("nan")}) == '{"a": NaN}'
    assert protocol._text("  ") is None


def test_error_from_response_is_none_for_success() -> None:
    assert error_from_response(from_sample(200, "create_A2.json")) is None
    assert error_from_response(from_sample(200, "feed_F1_queued.json")) is None
    assert error_from_response(answer(200, [1, 2])) is None


# ---------------------------------------------------------------- Retry-After


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", 5.0),
        (" 12 ", 12.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("Fri, 13 Mar 2026 12:00:30 GMT", 30.0),
        ("Fri, 13 Mar 2026 11:59:00 GMT", 0.0),  # in the past: no wait
        ("Fri, 13 Mar 2026 13:00:00 +0100", 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("-3", None),
        ("nan", None),
        ("inf", None),
        ("1e999", None),
        ("1_0", None),
        ("0x10", None),
        ("Mon, 01 Jan 99999 00:00:00 GMT", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_parse_retry_after_naive_dates_are_utc() -> None:
    naive_now = NOW.replace(tzinfo=None)
    assert parse_retry_after("Fri, 13 Mar 2026 12:01:00 GMT", now=naive_now) == 60.0
    assert parse_retry_after("Fri, 13 Mar 2026 12:01:00 -0000", now=NOW) == 60.0


def test_parse_retry_after_defaults_to_the_clock() -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    waited = parse_retry_after(soon.strftime("%a, %d %b %Y %H:%M:%S GMT"))
    assert waited is not None
    assert 3500 < waited <= 3600


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), ("Fri, 13 Mar 2026 12:00:10 GMT", 10.0), ("junk", None), (None, None)],
)
def test_rate_limit_error_carries_retry_after(header: str | None, expected: float | None) -> None:
    headers = {"Retry-After": header} if header is not None else {}
    response = from_sample(429, "constructed_error_flat_saturated.json", headers)
    with pytest.raises(RateLimitError) as info:
        parse_submit(response, now=NOW)
    assert info.value.retry_after == expected
    assert info.value.status == 429
    assert info.value.message == "上游负载已饱和，请稍后再试"


def test_rate_limit_in_a_200_body_reads_the_header_too() -> None:
    response = answer(200, {"code": 429, "msg": "slow down"}, {"retry-after": "3"})
    with pytest.raises(RateLimitError) as info:
        parse_poll(response, now=NOW)
    assert info.value.retry_after == 3.0


# ---------------------------------------------------------------- polls (parse_poll)

FIELDS = (
    "task_id",
    "status",
    "progress",
    "outputs",
    "video_url",
    "poster_url",
    "last_frame_url",
    "error",
    "error_code",
    "raw_status",
    "created_at",
    "started_at",
    "finished_at",
)


def expect(task_id: str, status: TaskStatus, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict.fromkeys(FIELDS)
    base.update(task_id=task_id, status=status, outputs=())
    base.update(fields)
    return base


F3_VIDEO = (
    "http://cdn.duomiapi.com/attachments/video/runway/20240822/bac2acce179f63bafa7d6597028afe39.mp4"
)
F3_POSTER = (
    "http://cdn.duomiapi.com/attachments/video/runway/20240822/50201c7893f43cb7606d0b0c13ad5d6a.png"
)
F3_LAST = (
    "http://cdn.duomiapi.com/attachments/video/runway/20240822/426336fb8f95ea386af5ca82e0c17a06.png"
)
T1_CREATED = datetime(2026, 5, 1, 12, 47, 47, 351000, tzinfo=UTC)
F1_QUEUED = expect(
    I2V_ID,
    TaskStatus.PENDING,
    progress=0.0,
    raw_status="QUEUED",
    created_at=ts(1773366766),
)
NESTED_OUT = "https://cdn.example.com/runway/3d957031/output.mp4?sig=abc"
CDN = "http://cdn.example.com/attachments/video/runway/20240822/"

POLL_OK: list[tuple[str, dict[str, Any]]] = [
    ("feed_F1_queued.json", F1_QUEUED),
    ("tasks_T2_queued.json", F1_QUEUED),
    ("feed_F2_example.json", expect(F2_ID, TaskStatus.PENDING)),
    (
        "feed_F3_succeeded.json",
        expect(
            F3_ID,
            TaskStatus.SUCCEEDED,
            progress=1.0,
            outputs=(F3_VIDEO,),
            video_url=F3_VIDEO,
            poster_url=F3_POSTER,
            last_frame_url=F3_LAST,
            raw_status="3",
            created_at=ts(1724313052),
        ),
    ),
    (
        "tasks_T1_succeeded.json",
        expect(
            T1_ID,
            TaskStatus.SUCCEEDED,
            progress=1.0,
            outputs=("https://example.com/output.mp4",),
            video_url="https://example.com/output.mp4",
            raw_status="SUCCEEDED",
            created_at=T1_CREATED,
        ),
    ),
    (
        "constructed_feed_F1_succeeded_nested_output.json",
        expect(
            I2V_ID,
            TaskStatus.SUCCEEDED,
            progress=1.0,
            outputs=(NESTED_OUT,),
            video_url=NESTED_OUT,
            raw_status="SUCCESS",
            created_at=ts(1773366766),
            started_at=ts(1773366770),
            finished_at=ts(1773366890),
        ),
    ),
    (
        "constructed_feed_F1_succeeded_nested_f3.json",
        expect(
            F3_ID,
            TaskStatus.SUCCEEDED,
            progress=1.0,
            outputs=(CDN + "video.mp4",),
            video_url=CDN + "video.mp4",
            poster_url=CDN + "poster.png",
            last_frame_url=CDN + "last.png",
            raw_status="SUCCESS",
            created_at=ts(1724313052),
            started_at=ts(1724313060),
            finished_at=ts(1724313343),
        ),
    ),
    (
        # SUCCESS with no output URL anywhere yet: keep polling (§2 decision rule).
        "constructed_feed_F1_success_without_output.json",
        expect(
            I2V_ID,
            TaskStatus.RUNNING,
            progress=1.0,
            raw_status="SUCCESS",
            created_at=ts(1773366766),
            started_at=ts(1773366770),
            finished_at=ts(1773366890),
        ),
    ),
    (
        "constructed_feed_F1_in_progress.json",
        expect(
            I2V_ID,
            TaskStatus.RUNNING,
            progress=0.37,
            raw_status="IN_PROGRESS",
            created_at=ts(1773366766),
            started_at=ts(1773366770),
        ),
    ),
    (
        "constructed_feed_F1_failure.json",
        expect(
            I2V_ID,
            TaskStatus.FAILED,
            progress=1.0,
            error="Input image was flagged by content moderation.",
            error_code="SAFETY.INPUT.IMAGE",
            raw_status="FAILURE",
            created_at=ts(1773366766),
            started_at=ts(1773366770),
            finished_at=ts(1773366800),
        ),
    ),
    (
        "constructed_feed_F2_succeeded_result_url.json",
        expect(
            F2_ID,
            TaskStatus.SUCCEEDED,
            progress=1.0,
            outputs=("https://cdn.example.com/runway/4156043d/result.mp4",),
            video_url="https://cdn.example.com/runway/4156043d/result.mp4",
            raw_status="SUCCESS",
            created_at=ts(1773366766),
            started_at=ts(1773366770),
            finished_at=ts(1773366890),
        ),
    ),
    (
        "constructed_feed_F3_failed_refund.json",
        expect(
            F3_ID,
            TaskStatus.FAILED,
            error="generation failed: moderation",
            raw_status="2",
            created_at=ts(1724313052),
        ),
    ),
    (
        "constructed_feed_F3_in_progress.json",
        expect(F3_ID, TaskStatus.RUNNING, raw_status="1", created_at=ts(1724313052)),
    ),
    (
        "constructed_feed_F3_state_succeeded.json",
        expect(
            F3_ID,
            TaskStatus.SUCCEEDED,
            progress=1.0,
            outputs=("https://cdn.example.com/runway/573772da/raw.mp4",),
            video_url="https://cdn.example.com/runway/573772da/raw.mp4",
            poster_url="https://cdn.example.com/runway/573772da/poster.png",
            created_at=ts(1724313052),
        ),
    ),
    (
        "constructed_tasks_T1_failed.json",
        expect(
            T1_ID,
            TaskStatus.FAILED,
            error="The prompt was flagged by content moderation.",
            error_code="SAFETY.INPUT.TEXT",
            raw_status="FAILED",
            created_at=T1_CREATED,
        ),
    ),
    (
        "constructed_tasks_T1_running.json",
        expect(
            T1_ID, TaskStatus.RUNNING, progress=0.37, raw_status="RUNNING", created_at=T1_CREATED
        ),
    ),
    (
        "constructed_tasks_T1_throttled.json",
        expect(T1_ID, TaskStatus.PENDING, raw_status="THROTTLED", created_at=T1_CREATED),
    ),
    (
        "constructed_tasks_T1_cancelled.json",
        expect(T1_ID, TaskStatus.CANCELLED, raw_status="CANCELLED", created_at=T1_CREATED),
    ),
    (
        "constructed_tasks_T2_null_code.json",
        expect(
            T1_ID,
            TaskStatus.PENDING,
            progress=0.0,
            raw_status="NOT_START",
            created_at=ts(1773366766),
        ),
    ),
    (
        "constructed_tasks_T2_nested_official.json",
        expect(
            T1_ID,
            TaskStatus.SUCCEEDED,
            progress=1.0,
            outputs=("https://example.com/output.mp4",),
            video_url="https://example.com/output.mp4",
            raw_status="SUCCEEDED",
            created_at=T1_CREATED,
        ),
    ),
]


@pytest.mark.parametrize(("name", "expected"), POLL_OK, ids=[n for n, _ in POLL_OK])
def test_parse_poll_reads_every_documented_shape(name: str, expected: dict[str, Any]) -> None:
    task = parse_poll(from_sample(200, name))
    assert isinstance(task, Task)
    assert {f: getattr(task, f) for f in FIELDS} == expected
    assert task.raw == sample_json(name)
    assert task.is_terminal is expected["status"].is_terminal


POLL_ERRORS: list[tuple[str, int, type[CometRunwayError]]] = [
    ("error_task_not_exist.json", 400, TaskNotFound),
    ("error_task_not_exist.json", 200, TaskNotFound),
    ("constructed_wrapper_data_null.json", 200, TaskNotFound),
    ("error_platform_invalid_request.json", 400, InvalidRequestError),
    ("error_platform_older.json", 400, InvalidRequestError),
    ("constructed_error_insufficient_quota.json", 403, AuthenticationError),
    ("constructed_error_flat_saturated.json", 429, RateLimitError),
    ("constructed_error_html_404.html", 404, EndpointError),
    ("constructed_error_html_524.html", 524, ServerError),
    ("create_video_to_video_empty.json", 200, DecodeError),
    ("request_video_to_video_references.json", 200, DecodeError),  # a JSON list
]


@pytest.mark.parametrize(("name", "status", "kind"), POLL_ERRORS)
def test_parse_poll_raises_the_documented_error(
    name: str, status: int, kind: type[CometRunwayError]
) -> None:
    with pytest.raises(kind) as info:
        parse_poll(from_sample(status, name), task_id="the-id")
    assert type(info.value) is kind
    if isinstance(info.value, TaskNotFound):
        assert info.value.task_id == "the-id"
        assert isinstance(info.value, LookupError)


def test_task_not_exist_error_carries_the_token() -> None:
    with pytest.raises(TaskNotFound) as info:
        parse_poll(from_sample(400, "error_task_not_exist.json"), task_id=I2V_ID)
    assert info.value.code == "task_not_exist"
    assert info.value.status == 400
    assert info.value.task_id == I2V_ID
    assert poll_disposition(info.value) is PollDisposition.NOT_FOUND


def test_json_404_on_a_poll_means_the_id_is_unknown() -> None:
    with pytest.raises(TaskNotFound) as info:
        parse_poll(answer(404, {"error": "Task not found"}), task_id="gone")
    assert info.value.status == 404
    assert info.value.task_id == "gone"
    assert poll_disposition(info.value) is PollDisposition.NOT_FOUND


def test_json_404_on_a_submit_stays_a_plain_api_error() -> None:
    with pytest.raises(APIError) as info:
        parse_submit(answer(404, {"message": "no such route"}))
    assert type(info.value) is APIError
    assert submit_disposition(info.value) is SubmitDisposition.FATAL


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"code": "success", "data": [1, 2]}', "not an object"),
        (b'{"code": "success", "data": "queued"}', "not an object"),
        (b'{"foo": "bar"}', "none of the documented shapes"),
        (b"[]", "JSON list"),
        (b"42", "JSON int"),
        (b'{"id": "x"}', "unreadable task"),  # T1 without its required status
        (b'{"id": {"a": 1}, "status": "RUNNING"}', "unreadable task"),
        (b'{"task_id": ["x"]}', "unreadable task record"),
        (b'{"code": "success", "data": {"status": "QUEUED"}}', "unreadable task record"),
        (b'{"task_id": "x", "status": 1.5}', "unreadable task record"),
        (b"nope", "not JSON"),
    ],
)
def test_unreadable_polls_are_decode_errors_that_say_why(body: bytes, message: str) -> None:
    with pytest.raises(DecodeError) as info:
        parse_poll(HTTPResponse(200, {}, body))
    assert message in str(info.value)
    assert info.value.body == body


def test_wrapper_without_task_id_uses_the_polled_id() -> None:
    body = {"code": "success", "data": {"status": "IN_PROGRESS", "progress": "50%"}}
    task = parse_poll(answer(200, body), task_id="polled")
    assert task.task_id == "polled"
    assert task.status is TaskStatus.RUNNING
    assert task.progress == 0.5


def test_data_only_envelope_is_read_as_the_wrapper() -> None:
    task = parse_poll(answer(200, {"data": {"task_id": "t", "status": "QUEUED"}}))
    assert (task.task_id, task.status) == ("t", TaskStatus.PENDING)


def test_integer_ids_and_status_digits_are_accepted() -> None:
    task = parse_poll(answer(200, {"code": 200, "data": {"task_id": 42, "status": 1}}))
    assert task.task_id == "42"
    assert task.status is TaskStatus.RUNNING
    assert task.raw_status == "1"


# ---------------------------------------------------------------- statuses (§2)

WRAPPER_WORDS = {
    "NOT_START": TaskStatus.PENDING,
    "SUBMITTED": TaskStatus.PENDING,
    "QUEUED": TaskStatus.PENDING,
    "IN_PROGRESS": TaskStatus.RUNNING,
    "SUCCESS": TaskStatus.SUCCEEDED,
    "FAILURE": TaskStatus.FAILED,
    "UNKNOWN": TaskStatus.PENDING,  # "treat as pending but time-box"
}
RUNWAY_WORDS = {
    "PENDING": TaskStatus.PENDING,
    "THROTTLED": TaskStatus.PENDING,
    "RUNNING": TaskStatus.RUNNING,
    "SUCCEEDED": TaskStatus.SUCCEEDED,
    "FAILED": TaskStatus.FAILED,
    "CANCELLED": TaskStatus.CANCELLED,
}
# C4: evidence favours 3 = success, 2 = failure.
DIGITS = {
    "0": TaskStatus.PENDING,
    "1": TaskStatus.RUNNING,
    "2": TaskStatus.FAILED,
    "3": TaskStatus.SUCCEEDED,
}
ALL_WORDS = {**WRAPPER_WORDS, **RUNWAY_WORDS, **DIGITS}


@pytest.mark.parametrize(("word", "status"), sorted(ALL_WORDS.items()))
def test_map_status_covers_every_vocabulary(word: str, status: TaskStatus) -> None:
    assert map_status(word) is status
    assert map_status(word.lower()) is status
    assert map_status(f"  {word} ") is status


@pytest.mark.parametrize(
    "word", ["", "   ", "WEIRD", "DONE", "5", "succeed", None, True, 3.0, ["SUCCESS"], {"a": 1}]
)
def test_map_status_unknowns_are_none(word: object) -> None:
    assert map_status(word) is None


def test_map_status_accepts_integer_digits() -> None:
    assert map_status(3) is TaskStatus.SUCCEEDED
    assert map_status(2) is TaskStatus.FAILED


URL = "https://cdn.example.com/v.mp4"


@pytest.mark.parametrize(("word", "status"), sorted(WRAPPER_WORDS.items()))
def test_wrapper_words_through_feed(word: str, status: TaskStatus) -> None:
    data = {"task_id": "t", "status": word, "progress": "10%", "data": {"output": [URL]}}
    task = parse_poll(answer(200, {"code": "success", "message": "", "data": data}))
    assert task.status is status
    assert task.raw_status == word


@pytest.mark.parametrize(("word", "status"), sorted(RUNWAY_WORDS.items()))
def test_runway_words_through_tasks(word: str, status: TaskStatus) -> None:
    task = parse_poll(answer(200, {"id": "t", "status": word, "output": [URL]}))
    assert task.status is status
    assert task.raw_status == word


@pytest.mark.parametrize(("digit", "status"), sorted(DIGITS.items()))
def test_upstream_digits_through_feed(digit: str, status: TaskStatus) -> None:
    body = {"code": 200, "msg": "成功", "data": {"task_id": "t", "status": digit, "video_url": URL}}
    assert parse_poll(answer(200, body)).status is status


@pytest.mark.parametrize(
    ("state", "status"),
    [("succeeded", TaskStatus.SUCCEEDED), ("failed", TaskStatus.FAILED), ("", TaskStatus.PENDING)],
)
def test_upstream_state_word(state: str, status: TaskStatus) -> None:
    body = {"code": 200, "data": {"task_id": "t", "state": state, "video_url": URL}}
    assert parse_poll(answer(200, body)).status is status


@pytest.mark.parametrize("word", ["WEIRD", "FINISHED", "DONE"])
def test_unknown_words_stay_non_terminal(word: str) -> None:
    official = parse_poll(answer(200, {"id": "t", "status": word, "output": [URL]}))
    assert official.status is TaskStatus.PENDING
    assert official.raw_status == word
    # An unknown wrapper word is not overruled by a terminal nested word.
    data = {"task_id": "t", "status": word, "data": {"status": "SUCCEEDED", "output": [URL]}}
    wrapped = parse_poll(answer(200, {"code": "success", "data": data}))
    assert wrapped.status is TaskStatus.PENDING
    assert not wrapped.is_terminal
    assert wrapped.raw_status == word


def test_unknown_wrapper_word_takes_a_non_terminal_nested_word() -> None:
    data = {"task_id": "t", "status": "WARMING_UP", "data": {"status": "RUNNING"}}
    task = parse_poll(answer(200, {"code": "success", "data": data}))
    assert task.status is TaskStatus.RUNNING
    assert task.raw_status == "WARMING_UP"


def test_missing_wrapper_word_falls_back_to_the_nested_task() -> None:
    data = {"task_id": "t", "data": {"id": "t", "status": "SUCCEEDED", "output": [URL]}}
    task = parse_poll(answer(200, {"code": "success", "data": data}))
    assert task.status is TaskStatus.SUCCEEDED
    assert task.raw_status == "SUCCEEDED"
    assert task.video_url == URL


def test_wrapper_word_wins_over_the_nested_word() -> None:
    data = {
        "task_id": "t",
        "status": "IN_PROGRESS",
        "data": {"status": "SUCCEEDED", "output": [URL]},
    }
    task = parse_poll(answer(200, {"code": "success", "data": data}))
    assert task.status is TaskStatus.RUNNING
    assert task.outputs == (URL,)


@pytest.mark.parametrize(
    "body",
    [
        {"id": "t", "status": "SUCCEEDED"},
        {"id": "t", "status": "SUCCEEDED", "output": []},
        {"id": "t", "status": "SUCCEEDED", "output": ["not-a-url", 5, None]},
        {"code": "success", "data": {"task_id": "t", "status": "SUCCESS", "result_url": ""}},
        {"code": 200, "data": {"task_id": "t", "status": "3", "video_url": None}},
    ],
)
def test_success_without_any_output_url_stays_running(body: Any) -> None:
    task = parse_poll(answer(200, body))
    assert task.status is TaskStatus.RUNNING
    assert not task.is_terminal
    assert task.outputs == ()


@pytest.mark.parametrize(
    "body",
    [
        {"id": "t", "status": "RUNNING", "failure": "boom"},
        {"id": "t", "status": "PENDING", "failureCode": "INTERNAL.BAD_OUTPUT"},
        {"id": "t", "status": "SUCCEEDED", "failure": "no output produced"},
        {"code": "success", "data": {"task_id": "t", "status": "IN_PROGRESS", "fail_reason": "x"}},
        {"code": "success", "data": {"task_id": "t", "status": "SUCCESS", "fail_reason": "x"}},
        {"code": 200, "data": {"task_id": "t", "status": "1", "refund": "1"}},
        {"code": 200, "data": {"task_id": "t", "status": "1", "refund": 1}},
        {"code": "success", "data": {"task_id": "t", "data": {"failureCode": "SAFETY.X"}}},
    ],
)
def test_explicit_failure_evidence_is_terminal(body: Any) -> None:
    task = parse_poll(answer(200, body))
    assert task.status is TaskStatus.FAILED
    assert task.is_terminal


def test_refund_zero_or_junk_is_no_failure() -> None:
    for refund in ("0", 0, True, ["1"], {"1": 1}):
        body = {"code": 200, "data": {"task_id": "t", "status": "1", "refund": refund}}
        assert parse_poll(answer(200, body)).status is TaskStatus.RUNNING


def test_failure_text_falls_back_through_the_layers() -> None:
    nested = {"task_id": "t", "status": "FAILURE", "data": {"fail_reason": "inner reason"}}
    assert parse_poll(answer(200, {"code": "success", "data": nested})).error == "inner reason"
    nested_msg = {"task_id": "t", "status": "FAILURE", "data": {"msg": "inner msg"}}
    assert parse_poll(answer(200, {"code": "success", "data": nested_msg})).error == "inner msg"
    no_text = {"task_id": "t", "status": "FAILURE"}
    failed = parse_poll(answer(200, {"code": "success", "data": no_text}))
    assert failed.status is TaskStatus.FAILED
    assert failed.error is None


def test_error_fields_are_dropped_unless_the_task_failed() -> None:
    body = {"code": 200, "data": {"task_id": "t", "status": "3", "video_url": URL, "msg": "成功"}}
    task = parse_poll(answer(200, body))
    assert task.status is TaskStatus.SUCCEEDED
    assert task.error is None
    assert task.error_code is None


# ---------------------------------------------------------------- progress (Appendix 4)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("37%", 0.37),
        (" 37 % ", 0.37),
        (0.37, 0.37),
        (37, 0.37),
        ("37", 0.37),
        ("0%", 0.0),
        ("100%", 1.0),
        ("0.5%", 0.005),
        (0, 0.0),
        (1, 1.0),
        (1.0, 1.0),
        (100, 1.0),
        (250, 1.0),
        (-5, 0.0),
        (None, None),
        (True, None),
        ("", None),
        ("%", None),
        ("abc%", None),
        ("nan", None),
        (float("inf"), None),
        (10**400, None),
        ([37], None),
        ({"p": 1}, None),
    ],
)
def test_normalize_progress(value: object, expected: float | None) -> None:
    result = normalize_progress(value)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


@pytest.mark.parametrize(
    ("progress", "expected"),
    [("37%", 0.37), (0.37, 0.37), (37, 0.37), ("0%", 0.0), ("100%", 1.0), (None, None)],
)
def test_progress_through_every_poll_shape(progress: object, expected: float | None) -> None:
    official = parse_poll(answer(200, {"id": "t", "status": "RUNNING", "progress": progress}))
    record = parse_poll(
        answer(200, {"task_id": "t", "status": "IN_PROGRESS", "progress": progress})
    )
    nested = {"task_id": "t", "status": "IN_PROGRESS", "data": {"progress": progress}}
    from_nested = parse_poll(answer(200, {"code": "success", "data": nested}))
    for task in (official, record, from_nested):
        assert task.progress == (pytest.approx(expected) if expected is not None else None)


# ---------------------------------------------------------------- outputs and timestamps


def test_outputs_are_collected_from_every_key_and_layer_without_duplicates() -> None:
    body = {
        "code": "success",
        "data": {
            "task_id": "t",
            "status": "SUCCESS",
            "result_url": "https://a.example/result.mp4",
            "video_url": "https://a.example/result.mp4",
            "data": {
                "output": [
                    {"url": "https://a.example/one.mp4"},
                    {"uri": "https://a.example/two.mp4"},
                    "https://a.example/three.mp4",
                    ["https://a.example/too-deep.mp4"],
                    "ftp://a.example/not-http.mp4",
                ],
                "raw_video_url": " https://a.example/raw.mp4 ",
            },
        },
    }
    task = parse_poll(answer(200, body))
    assert task.outputs == (
        "https://a.example/one.mp4",
        "https://a.example/two.mp4",
        "https://a.example/three.mp4",
        "https://a.example/result.mp4",
        "https://a.example/raw.mp4",
    )


def test_video_url_skips_images() -> None:
    body = {
        "id": "t",
        "status": "SUCCEEDED",
        "output": ["https://a.example/cover.PNG?x=1", "https://a.example/clip.mp4"],
    }
    task = parse_poll(answer(200, body))
    assert task.video_url == "https://a.example/clip.mp4"
    only_images = parse_poll(answer(200, {**body, "output": ["https://a.example/i.jpg"]}))
    assert only_images.status is TaskStatus.SUCCEEDED
    assert only_images.video_url is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1773366766, ts(1773366766)),
        ("1724313052", ts(1724313052)),
        (1724313052.5, datetime.fromtimestamp(1724313052.5, UTC)),
        (0, None),
        ("0", None),
        (-1, None),
        (10**12, None),
        (10**400, None),
        ("1" * 40, None),
        ("²", None),
        (float("nan"), None),
        (True, None),
        ("2026-03-13T09:52:46+08:00", datetime(2026, 3, 13, 1, 52, 46, tzinfo=UTC)),
        ("2026-05-01T12:47:47.351Z", T1_CREATED),
        ("yesterday", None),
        ("", None),
        ([1724313052], None),
    ],
)
def test_timestamps(value: object, expected: datetime | None) -> None:
    task = parse_poll(answer(200, {"task_id": "t", "status": "QUEUED", "submit_time": value}))
    assert task.created_at == expected


def test_created_at_prefers_submit_time_then_create_time_then_created_at() -> None:
    nested = {"createdAt": "2026-03-13T09:52:46+08:00"}
    only_nested = {"task_id": "t", "submit_time": 0, "data": nested}
    assert parse_poll(answer(200, only_nested)).created_at == datetime(
        2026, 3, 13, 1, 52, 46, tzinfo=UTC
    )
    with_create = {**only_nested, "create_time": "1724313052"}
    assert parse_poll(answer(200, with_create)).created_at == ts(1724313052)


# ---------------------------------------------------------------- building requests

SEED_CALLBACK = "https://example.com/webhook"


def seed_request(**kw: Any) -> TextToVideo:
    return TextToVideo(
        "a cat", seconds=10, motion_vector=MotionVector(y=0.3999999999999999, r=-6), **kw
    )


def test_the_seed_request_builds_the_documented_body() -> None:
    built = build_submit(seed_request(callback_url=SEED_CALLBACK), api_key=KEY)
    assert built.json() == sample_json("request_seed_text_to_video.json")
    # Key order follows the documented example too.
    assert list(built.json()) == list(sample_json("request_seed_text_to_video.json"))
    assert list(built.json()["options"]["motion_vector"]) == [
        "x",
        "y",
        "z",
        "r",
        "bg_x_pan",
        "bg_y_pan",
    ]
    assert built.method == "POST"
    assert built.path == "/runway/pro/generate"
    assert built.kind == "submit"


def test_the_seed_with_the_clients_callback() -> None:
    built = build_submit(seed_request(), api_key=KEY, callback_url=SEED_CALLBACK)
    assert built.json() == sample_json("request_seed_text_to_video.json")


def test_submit_headers() -> None:
    built = build_submit(seed_request(), api_key=KEY)
    assert built.header("authorization") == f"Bearer {KEY}"
    assert built.header("Content-Type") == "application/json"
    assert built.header("X-Runway-Version") == DEFAULT_RUNWAY_VERSION == "2024-11-06"
    assert built.header("Accept") == "application/json"
    assert built.header("X-Missing") is None


def test_runway_version_can_be_changed_or_left_out() -> None:
    custom = build_submit(seed_request(), api_key=KEY, runway_version="2025-01-01")
    assert custom.header("X-Runway-Version") == "2025-01-01"
    omitted = build_submit(seed_request(), api_key=KEY, runway_version=None)
    assert omitted.header("X-Runway-Version") is None
    assert omitted.header("Authorization") == f"Bearer {KEY}"


def test_callback_precedence() -> None:
    own = build_submit(
        seed_request(callback_url="https://mine.example/hook"),
        api_key=KEY,
        callback_url="https://client.example/hook",
    )
    assert own.json()["callback_url"] == "https://mine.example/hook"
    client = build_submit(seed_request(), api_key=KEY, callback_url="https://client.example/hook")
    assert client.json()["callback_url"] == "https://client.example/hook"
    default = build_submit(seed_request(), api_key=KEY)
    assert default.json()["callback_url"] == DEFAULT_CALLBACK_URL == "https://callback.invalid/"


@pytest.mark.parametrize(
    "request_model",
    [
        RunwayImageToVideo("https://example.com/a.jpg"),
        RunwayVideoUpscale("https://example.com/a.mp4", model="upscale_v1"),
    ],
)
def test_official_routes_send_no_callback(request_model: Any) -> None:
    built = build_submit(request_model, api_key=KEY, callback_url="https://client.example/hook")
    body = built.json()
    assert "callback_url" not in body
    assert "callbackUrl" not in body


def test_image_to_video_minimal_documented_body() -> None:
    request = ImageToVideo(
        "Smile, Eat Burger", image="https://db.xiaohuhd.com/1.jpeg", ratio=None, seconds=None
    )
    built = build_submit(request, api_key=KEY, callback_url=SEED_CALLBACK)
    assert built.json() == sample_json("request_image_to_video_min.json")
    assert built.path == "/runway/pro/generate"


def test_image_to_video_defaults_add_ratio_and_seconds() -> None:
    request = ImageToVideo("Smile, Eat Burger", image="https://db.xiaohuhd.com/1.jpeg")
    body = build_submit(request, api_key=KEY, callback_url=SEED_CALLBACK).json()
    assert body == {
        **sample_json("request_image_to_video_min.json"),
        "ratio": "1280:720",
        "options": {"seconds": 5},
    }


def test_image_to_video_upstream_documented_body() -> None:
    request = ImageToVideo(
        "笑起来,吃汉堡",
        image="https://db.xiaohuhd.com/1.jpeg",
        style="cinematic",
        model="gen3",
        ratio=None,
        seconds=10,
        image_as_end_frame=False,
        motion_vector=MotionVector(x=-6.2),
        callback_url="http://baidu.com",
    )
    built = build_submit(request, api_key=KEY)
    assert built.json() == sample_json("request_image_to_video_upstream.json")
    assert "笑起来".encode() in (built.body or b"")  # sent as UTF-8, not \\u escapes


def test_image_to_video_end_frame_is_sent_as_last_image() -> None:
    request = ImageToVideo(
        "p", image="https://a.example/1.jpg", end_image="https://a.example/2.jpg", seconds=None
    )
    body = build_submit(request, api_key=KEY).json()
    assert body["last_image"] == "https://a.example/2.jpg"
    assert "options" not in body


def test_video_to_video_documented_options() -> None:
    request = VideoToVideo(
        "pixelated style",
        video="https://runwaycdn.rixapi.com/attachments/video/runway/20241015/82bc23c83b5c32e75059c8328df5cffb.mp4",
        structure_transformation=0.5,
        flip=True,
        seconds=None,
    )
    built = build_submit(request, api_key=KEY, callback_url=SEED_CALLBACK)
    body = built.json()
    assert built.path == "/runway/pro/video2video"
    assert body["options"] == sample_json("request_video_to_video_options.json")
    assert body["model"] == "gen4"
    assert body["prompt"] == "pixelated style"
    assert body["callback_url"] == SEED_CALLBACK
    assert set(body) == {"callback_url", "video", "model", "prompt", "options"}
    with_seconds = build_submit(VideoToVideo("p", video="https://a.example/v.mp4"), api_key=KEY)
    assert with_seconds.json()["options"] == {"seconds": 5}
    bare = build_submit(
        VideoToVideo("p", video="https://a.example/v.mp4", seconds=None), api_key=KEY
    )
    assert "options" not in bare.json()


def test_act_one_documented_body() -> None:
    request = ActOne(
        video="https://runwaycdn.rixapi.com/attachments/video/runway/20241015/82bc23c83b5c32e75059c8328df5cffb.mp4",
        image="https://db.xiaohuhd.com/1.jpeg",
    )
    built = build_submit(request, api_key=KEY, callback_url=SEED_CALLBACK)
    assert built.path == "/runway/pro/act_one"
    assert built.json() == {
        "callback_url": SEED_CALLBACK,
        "video": request.video,
        "image": "https://db.xiaohuhd.com/1.jpeg",
    }


def test_runway_image_to_video_documented_body() -> None:
    request = RunwayImageToVideo(
        "https://cdn.britannica.com/70/234870-050-D4D024BB/Orange-colored-cat-yawns-displaying-teeth.jpg",
        model="gen3a_turbo",
    )
    built = build_submit(request, api_key=KEY)
    assert built.json() == sample_json("request_runway_image_to_video.json")
    assert built.path == "/runwayml/v1/image_to_video"
    assert built.header("X-Runway-Version") == "2024-11-06"


def test_runway_image_to_video_camel_case_fields() -> None:
    request = RunwayImageToVideo(
        (PromptFrame("https://a.example/f.jpg"), PromptFrame("https://a.example/l.jpg", "last")),
        model="gen3a_turbo",
        prompt_text="a cat yawns",
        seed=7,
        duration=10,
        ratio="1280:768",
        watermark=False,
    )
    assert build_submit(request, api_key=KEY).json() == {
        "promptImage": [
            {"uri": "https://a.example/f.jpg", "position": "first"},
            {"uri": "https://a.example/l.jpg", "position": "last"},
        ],
        "model": "gen3a_turbo",
        "promptText": "a cat yawns",
        "seed": 7,
        "duration": 10,
        "ratio": "1280:768",
        "watermark": False,
    }


def test_runway_video_to_video_body() -> None:
    request = RunwayVideoToVideo(
        "https://filesystem.site/cdn/20250818/c4gCDVPhiBc6TomRTJ7zNg0KwO1PSJ.mp4",
        model="gen4_aleph",
        prompt_text="Make the motion feel cinematic.",
        seed=4294967295,
        references=[VideoReference("https://res.cloudinary.com/demo/image/upload/dog.jpg")],
        ratio="1280:720",
        content_moderation=ContentModeration(),
    )
    built = build_submit(request, api_key=KEY)
    body = built.json()
    assert built.path == "/runwayml/v1/video_to_video"
    assert body["references"] == sample_json("request_video_to_video_references.json")
    assert body["contentModeration"] == sample_json("request_content_moderation.json")
    assert body["videoUri"] == request.video_uri
    assert body["promptText"] == "Make the motion feel cinematic."
    assert body["seed"] == 4294967295
    assert body["model"] == "gen4_aleph"
    assert body["ratio"] == "1280:720"


def test_runway_video_to_video_minimal_body_omits_empty_fields() -> None:
    body = build_submit(
        RunwayVideoToVideo("https://a.example/v.mp4", model="gen4_aleph"), api_key=KEY
    ).json()
    assert body == {"videoUri": "https://a.example/v.mp4", "model": "gen4_aleph"}


def test_runway_video_upscale_body() -> None:
    built = build_submit(
        RunwayVideoUpscale("https://a.example/v.mp4", model="upscale_v1"), api_key=KEY
    )
    assert built.path == "/runwayml/v1/video_upscale"
    assert built.json() == {"videoUri": "https://a.example/v.mp4", "model": "upscale_v1"}


def test_runway_character_performance_documented_body() -> None:
    request = RunwayCharacterPerformance(
        MediaInput("https://your-video-host/character.mp4", type="video"),
        MediaInput("https://your-video-host/performance.mp4"),
        ratio="1280:720",
    )
    built = build_submit(request, api_key=KEY)
    assert built.path == "/runwayml/v1/character_performance"
    assert built.json() == sample_json("request_act_two_newer.json")


def test_runway_character_performance_optional_fields() -> None:
    request = RunwayCharacterPerformance(
        MediaInput("https://a.example/c.png", type="image"),
        MediaInput("https://a.example/r.mp4"),
        body_control=True,
        expression_intensity=3,
        seed=4294967295,
        content_moderation=ContentModeration("low"),
    )
    body = build_submit(request, api_key=KEY).json()
    assert body["character"] == {"uri": "https://a.example/c.png", "type": "image"}
    assert body["bodyControl"] is True
    assert body["expressionIntensity"] == 3
    assert body["seed"] == 4294967295
    assert body["contentModeration"] == {"publicFigureThreshold": "low"}


def test_runway_text_to_image_body() -> None:
    request = RunwayTextToImage(
        "@cat on a sofa", reference_images=[ReferenceImage("https://a.example/c.jpg", tag="cat")]
    )
    built = build_submit(request, api_key=KEY)
    assert built.path == "/runwayml/v1/text_to_image"
    assert built.json() == {
        "promptText": "@cat on a sofa",
        "referenceImages": [{"uri": "https://a.example/c.jpg", "tag": "cat"}],
        "model": "gen4_image",
        "ratio": "1280:720",
    }


def test_extra_deep_merges_into_the_body() -> None:
    request = seed_request(
        extra={"options": {"image_as_end_frame": True, "motion_vector": {"x": 1}}, "new": [1]}
    )
    body = build_submit(request, api_key=KEY).json()
    assert body["options"]["seconds"] == 10
    assert body["options"]["image_as_end_frame"] is True
    assert body["options"]["motion_vector"] == {
        "x": 1,
        "y": 0.3999999999999999,
        "z": 0,
        "r": -6,
        "bg_x_pan": 0,
        "bg_y_pan": 0,
    }
    assert body["new"] == [1]
    replaced = build_submit(seed_request(extra={"options": 5}), api_key=KEY).json()
    assert replaced["options"] == 5


def test_extra_on_official_routes_uses_wire_names() -> None:
    request = RunwayVideoUpscale(
        "https://a.example/v.mp4", model="upscale_v1", extra={"contentModeration": {"x": 1}}
    )
    assert build_submit(request, api_key=KEY).json()["contentModeration"] == {"x": 1}


def test_build_submit_rejects_what_is_not_a_request() -> None:
    with pytest.raises(TypeError):
        build_submit("a cat", api_key=KEY)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["", "   ", None])
def test_an_api_key_is_required(key: Any) -> None:
    with pytest.raises(ValueError, match="api_key"):
        build_submit(seed_request(), api_key=key)
    with pytest.raises(ValueError, match="api_key"):
        build_poll("t", api_key=key)


def test_build_poll_feed() -> None:
    built = build_poll(I2V_ID, "feed", api_key=KEY)
    assert built.method == "POST"
    assert built.path == "/runway/feed"
    assert built.json() == sample_json("request_feed.json")
    assert built.header("Authorization") == f"Bearer {KEY}"
    assert built.header("Content-Type") == "application/json"
    assert built.header("X-Runway-Version") == "2024-11-06"
    assert built.kind == "poll"
    assert build_poll(I2V_ID, api_key=KEY) == built  # feed is the default


def test_build_poll_tasks() -> None:
    built = build_poll(T1_ID, "tasks", api_key=KEY)
    assert built.method == "GET"
    assert built.path == f"/runwayml/v1/tasks/{T1_ID}"
    assert built.body is None
    assert built.json() is None
    assert built.header("Content-Type") is None
    assert built.header("Authorization") == f"Bearer {KEY}"
    assert built.header("X-Runway-Version") == "2024-11-06"


def test_build_poll_quotes_the_task_id() -> None:
    built = build_poll("a/b c?d#e%", "tasks", api_key=KEY)
    assert built.path == "/runwayml/v1/tasks/a%2Fb%20c%3Fd%23e%25"


@pytest.mark.parametrize("task_id", ["", "  ", None, 5])
def test_build_poll_needs_a_task_id(task_id: Any) -> None:
    with pytest.raises(ValueError, match="task_id"):
        build_poll(task_id, api_key=KEY)


def test_build_poll_rejects_unknown_routes() -> None:
    with pytest.raises(ValueError, match="route"):
        build_poll("t", "official", api_key=KEY)  # type: ignore[arg-type]


def test_the_api_key_never_appears_in_a_repr() -> None:
    for built in (
        build_submit(seed_request(), api_key=KEY),
        build_poll("t", "feed", api_key=KEY),
        build_poll("t", "tasks", api_key=KEY),
    ):
        assert KEY not in repr(built)
        assert KEY not in str(built)
        assert "<redacted>" in repr(built)
        assert "X-Runway-Version" in repr(built)


def test_http_request_header_lookup_is_case_insensitive() -> None:
    request = HTTPRequest("GET", "/x", (("X-One", "1"), ("x-two", "2")))
    assert request.header("x-one") == "1"
    assert request.header("X-TWO") == "2"


def test_http_response_lowercases_header_names() -> None:
    from_pairs = HTTPResponse(200, [("Retry-After", "3"), ("X-Request-Id", "r1")], b"")
    assert from_pairs.headers == {"retry-after": "3", "x-request-id": "r1"}
    assert from_pairs.header("RETRY-AFTER") == "3"
    from_mapping = HTTPResponse(200, {"Content-Type": "text/html"})
    assert from_mapping.header("content-type") == "text/html"
    assert from_mapping.body == b""


# ---------------------------------------------------------------- dispositions

SUBMIT_CASES: list[tuple[str, BaseException, SubmitDisposition]] = [
    ("connect failure", TransportError("refused", request_sent=False), SubmitDisposition.RETRY),
    ("read timeout", TransportError("timed out", request_sent=True), SubmitDisposition.AMBIGUOUS),
    ("429", RateLimitError("slow"), SubmitDisposition.RETRY),
    ("500", ServerError("boom", status=500), SubmitDisposition.AMBIGUOUS),
    ("502", ServerError("bad gateway", status=502), SubmitDisposition.RETRY),
    ("503", ServerError("unavailable", status=503), SubmitDisposition.RETRY),
    ("504", ServerError("gateway timeout", status=504), SubmitDisposition.AMBIGUOUS),
    ("524", ServerError("cf timeout", status=524), SubmitDisposition.AMBIGUOUS),
    ("2xx unreadable", DecodeError("no id"), SubmitDisposition.AMBIGUOUS),
    ("400", InvalidRequestError("bad", status=400), SubmitDisposition.FATAL),
    ("401", AuthenticationError("key", status=401), SubmitDisposition.FATAL),
    (
        "500 invalid_request",
        InvalidRequestError("bad", status=500, code="invalid_request"),
        SubmitDisposition.FATAL,
    ),
    ("html", EndpointError("html", status=404), SubmitDisposition.FATAL),
    ("not found", TaskNotFound("gone"), SubmitDisposition.FATAL),
    ("other api", APIError("teapot", status=418), SubmitDisposition.FATAL),
    ("foreign", ValueError("x"), SubmitDisposition.FATAL),
]


@pytest.mark.parametrize(
    ("error", "expected"), [(e, d) for _, e, d in SUBMIT_CASES], ids=[n for n, _, _ in SUBMIT_CASES]
)
def test_submit_disposition(error: BaseException, expected: SubmitDisposition) -> None:
    assert submit_disposition(error) is expected


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (429, b"", SubmitDisposition.RETRY),
        (502, b"<html><title>502</title></html>", SubmitDisposition.RETRY),
        (
            503,
            b'{"error": {"message": "busy", "type": "comet_api_error"}}',
            SubmitDisposition.RETRY,
        ),
        (500, b'{"error": {"message": "oops"}}', SubmitDisposition.AMBIGUOUS),
        (504, b"", SubmitDisposition.AMBIGUOUS),
        (524, b"<!DOCTYPE html><html></html>", SubmitDisposition.AMBIGUOUS),
        (200, b"{}", SubmitDisposition.AMBIGUOUS),
        (200, b"garbage", SubmitDisposition.AMBIGUOUS),
        (400, b'{"error": {"code": "invalid_request", "message": "x"}}', SubmitDisposition.FATAL),
        (401, b"", SubmitDisposition.FATAL),
        (500, b'{"error": {"code": "invalid_request", "message": "x"}}', SubmitDisposition.FATAL),
        (301, b"", SubmitDisposition.FATAL),
    ],
)
def test_submit_disposition_of_real_answers(
    status: int, body: bytes, expected: SubmitDisposition
) -> None:
    with pytest.raises(CometRunwayError) as info:
        parse_submit(HTTPResponse(status, {}, body))
    assert submit_disposition(info.value) is expected


POLL_CASES: list[tuple[str, BaseException, PollDisposition]] = [
    ("not found", TaskNotFound("gone"), PollDisposition.NOT_FOUND),
    ("401", AuthenticationError("key", status=401), PollDisposition.AUTH),
    ("403", AuthenticationError("quota", status=403), PollDisposition.AUTH),
    ("connect", TransportError("refused", request_sent=False), PollDisposition.RETRY),
    ("timeout", TransportError("timed out", request_sent=True), PollDisposition.RETRY),
    ("429", RateLimitError("slow", retry_after=3), PollDisposition.RETRY),
    ("500", ServerError("boom", status=500), PollDisposition.RETRY),
    ("524", ServerError("cf", status=524), PollDisposition.RETRY),
    ("decode", DecodeError("junk"), PollDisposition.RETRY),
    ("400", InvalidRequestError("bad", status=400), PollDisposition.FATAL),
    ("html", EndpointError("html", status=404), PollDisposition.FATAL),
    ("other api", APIError("teapot", status=418), PollDisposition.FATAL),
    ("foreign", KeyError("x"), PollDisposition.FATAL),
]


@pytest.mark.parametrize(
    ("error", "expected"), [(e, d) for _, e, d in POLL_CASES], ids=[n for n, _, _ in POLL_CASES]
)
def test_poll_disposition(error: BaseException, expected: PollDisposition) -> None:
    assert poll_disposition(error) is expected


# ---------------------------------------------------------------- the sample set itself


def test_every_sample_is_used_by_a_table() -> None:
    used = {name for name, _ in SUBMIT_OK}
    used |= {name for name, *_ in SUBMIT_ERRORS}
    used |= {name for name, _ in POLL_OK}
    used |= {name for name, *_ in POLL_ERRORS}
    used |= {
        "request_seed_text_to_video.json",
        "request_image_to_video_min.json",
        "request_image_to_video_upstream.json",
        "request_feed.json",
        "request_runway_image_to_video.json",
        "request_act_two_newer.json",
        "request_video_to_video_options.json",
        "request_video_to_video_references.json",
        "request_content_moderation.json",
    }
    present = {p.name for p in SAMPLES.iterdir() if p.name != "README.md"}
    assert present == used


def test_every_sample_is_valid_json_or_an_html_page() -> None:
    for path in SAMPLES.iterdir():
        if path.suffix == ".json":
            json.loads(path.read_bytes())
        elif path.suffix == ".html":
            assert path.read_bytes().lstrip().lower().startswith(b"<!doctype html")
        else:
            assert path.name == "README.md"


@pytest.mark.parametrize(
    "envelope",
    [
        {"code": "success", "message": " task_not_exist ", "data": None},
        {"code": "success", "message": "", "msg": "task_not_exist", "data": None},
        {"code": 200, "msg": "task_not_exist\n", "data": None},
        {"code": 0, "message": None, "msg": " task_not_exist", "data": None},
    ],
)
def test_a_success_envelope_naming_task_not_exist_is_still_not_found(envelope: Any) -> None:
    with pytest.raises(TaskNotFound):
        parse_poll(answer(200, envelope), task_id="t1")


@pytest.mark.parametrize("code", ["success", 200, 0, False, 200.0, None, " Success ", "SUCCESS"])
def test_success_codes_read_the_record(code: Any) -> None:
    record = {"task_id": "t1", "status": "IN_PROGRESS", "progress": "40%"}
    body = {"code": code, "message": "", "msg": "success", "data": record}
    task = parse_poll(answer(200, body), task_id="t1")
    assert (task.task_id, task.status, task.progress) == ("t1", TaskStatus.RUNNING, 0.4)


def test_headers_are_matched_case_insensitively_and_the_last_repeat_wins() -> None:
    response = HTTPResponse(429, [("Retry-After", "1"), ("retry-after", "7")], b"{}")
    assert response.header("RETRY-AFTER") == "7"
    assert response.headers == {"retry-after": "7"}
    assert HTTPResponse(200, {"X-A": "b"}).header("x-a") == "b"
    assert HTTPResponse(200).header("x-a") is None


# ---------------------------------------------------------------- one place for each rule


def test_task_id_and_route_are_checked_in_one_place() -> None:
    from cometrunway.protocol import check_poll_route, check_task_id

    assert check_task_id("  abc ") == "abc"
    for bad in ("", "   ", None, 3):
        with pytest.raises(ValueError, match="task_id"):
            check_task_id(bad)
    assert check_poll_route("feed") == "feed"
    assert check_poll_route("tasks") == "tasks"
    with pytest.raises(ValueError, match="'feed' or 'tasks'"):
        check_poll_route("official")


def test_queued_ness_and_answer_route_come_from_the_protocol() -> None:
    from cometrunway.protocol import is_queued, poll_route_of

    assert is_queued(Task("a", TaskStatus.PENDING, raw_status="THROTTLED"))
    assert not is_queued(Task("a", TaskStatus.PENDING, raw_status="UNKNOWN"))
    assert not is_queued(Task("a", TaskStatus.RUNNING, raw_status="QUEUED"))
    bare = parse_poll(HTTPResponse(200, {}, b'{"id": "t1", "status": "RUNNING"}'))
    assert poll_route_of(bare) == "tasks"
    wrapped = parse_poll(
        HTTPResponse(200, {}, b'{"code": "success", "data": {"task_id": "t1", "status": "QUEUED"}}')
    )
    assert poll_route_of(wrapped) == "feed"


def test_retry_after_is_capped_where_a_policy_says() -> None:
    assert parse_retry_after("3600") == 3600
    assert parse_retry_after("3600", cap=120) == 120
    assert parse_retry_after("5", cap=120) == 5


def test_lost_outcomes_are_named() -> None:
    from cometrunway.protocol import NOT_FOUND_CODE, LostTask

    assert LostTask.NOT_FOUND == "NOT_FOUND" and LostTask.LOST == "LOST"
    assert NOT_FOUND_CODE == "task_not_exist"
