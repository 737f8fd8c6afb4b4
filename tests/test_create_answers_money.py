"""Money: an answer that carries a task id is a created task, whatever else it says (wire
reference §8.7), and a 2xx that says "error" without an id is ambiguous, never resent.
Error answers (429/502/503 at HTTP level) stay retried: the gateway refunds them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support import FAST_POLL, FAST_RETRY

from cometrunway import AmbiguousSubmitError, Client, TextToVideo
from cometrunway.errors import DecodeError, RateLimitError, ServerError
from cometrunway.protocol import (
    HTTPRequest,
    HTTPResponse,
    SubmitDisposition,
    parse_submit,
    submit_disposition,
)
from cometrunway.testing import MockTransport

JSON = {"content-type": "application/json"}


def answer(status: int, body: Any) -> HTTPResponse:
    return HTTPResponse(status, JSON, json.dumps(body).encode())


CARRY_AN_ID = [
    (200, {"code": 503, "message": "upstream busy", "data": {"task_id": "t-503"}}, "t-503"),
    (200, {"code": 429, "message": "slow down", "data": {"task_id": "t-429"}}, "t-429"),
    (200, {"error": {"message": "x", "type": "server"}, "data": {"task_id": "t-e"}}, "t-e"),
    (200, {"error": {"message": "overloaded"}, "id": "t-official"}, "t-official"),
    (503, {"code": 503, "message": "busy", "data": {"task_id": "t-http-503"}}, "t-http-503"),
]


@pytest.mark.parametrize(("status", "body", "task_id"), CARRY_AN_ID)
def test_an_answer_carrying_a_task_id_is_a_created_task(
    status: int, body: dict[str, Any], task_id: str
) -> None:
    assert parse_submit(answer(status, body)) == task_id


@pytest.mark.parametrize(
    "body",
    [
        {"code": 429, "message": "slow down"},
        {"code": 503, "message": "upstream saturated"},
        {"code": 502, "msg": "bad gateway"},
    ],
)
def test_a_2xx_with_a_retryable_error_and_no_id_is_ambiguous(body: dict[str, Any]) -> None:
    with pytest.raises(DecodeError) as caught:
        parse_submit(answer(200, body))
    assert submit_disposition(caught.value) is SubmitDisposition.AMBIGUOUS
    assert "no task id" in str(caught.value)


@pytest.mark.parametrize(
    ("status", "kind"), [(429, RateLimitError), (502, ServerError), (503, ServerError)]
)
def test_http_error_answers_without_an_id_stay_retried(status: int, kind: type) -> None:
    with pytest.raises(kind) as caught:
        parse_submit(answer(status, {"code": status, "message": "busy"}))
    assert submit_disposition(caught.value) is SubmitDisposition.RETRY


def test_a_2xx_business_request_error_is_still_refused_not_ambiguous() -> None:
    # A3's "code": 400 is a request error: fix the request; nothing was created.
    with pytest.raises(Exception) as caught:
        parse_submit(answer(200, {"code": 400, "msg": "prompt is required"}))
    assert submit_disposition(caught.value) is SubmitDisposition.FATAL


def counting(body: dict[str, Any], status: int = 200) -> tuple[MockTransport, list[str]]:
    creates: list[str] = []

    def handler(request: HTTPRequest) -> HTTPResponse:
        if request.kind == "submit":
            creates.append(request.path)
            return answer(status, body)
        return answer(200, {"code": "success", "data": {"task_id": "x", "status": "RUNNING"}})

    return MockTransport(handler), creates


@pytest.mark.parametrize(("status", "body", "task_id"), CARRY_AN_ID)
async def test_the_client_keeps_the_id_and_creates_once(
    status: int, body: dict[str, Any], task_id: str
) -> None:
    transport, creates = counting(body, status)
    async with Client(
        "sk-test-0123456789", transport=transport, retry=FAST_RETRY, poll=FAST_POLL
    ) as client:
        handle = await client.submit(TextToVideo("a fox in the snow"))
        assert handle.task_id == task_id
        client.wake(task_id)
    assert creates == ["/runway/pro/generate"]


async def test_a_2xx_with_code_429_is_never_resent() -> None:
    transport, creates = counting({"code": 429, "message": "slow down"})
    async with Client(
        "sk-test-0123456789", transport=transport, retry=FAST_RETRY, poll=FAST_POLL
    ) as client:
        with pytest.raises(AmbiguousSubmitError):
            await client.submit(TextToVideo("a fox in the snow"))
    assert len(creates) == 1
