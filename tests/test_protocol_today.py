"""The parsers against every shape of the wire reference §8 (2026-11-30): cost fields, the
"not visible yet" answers, failure text under ``error``, lowercase status words and audio
outputs. Pure functions: no event loop, no server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cometrunway.errors import DecodeError, TaskNotFound
from cometrunway.models import TaskStatus
from cometrunway.protocol import HTTPResponse, parse_poll, parse_submit
from cometrunway.protocol.tasks import credits_of, parse_created
from cometrunway.testing import NOT_FOUND_SHAPES

JSON = {"Content-Type": "application/json"}
CDN = "https://cdn.example.com/"


def answer(body: Any, status: int = 200) -> HTTPResponse:
    return HTTPResponse(status, JSON, json.dumps(body).encode())


def runway_task(status: str, **fields: Any) -> dict[str, Any]:
    return {"id": "t-1", "status": status, "createdAt": "2026-11-30T09:00:00Z", **fields}


# ---------------------------------------------------------------- cost (§8.2)


@pytest.mark.parametrize(
    ("body", "estimate"),
    [
        ({"id": "t-1", "estimatedCost": {"credits": 25}}, 25.0),
        ({"id": "t-1", "estimatedCost": {"credits": 2.5}}, 2.5),
        ({"id": "t-1"}, None),  # CometAPI's pages: no cost fields
        ({"id": "t-1", "estimatedCost": None}, None),
        ({"id": "t-1", "estimatedCost": {"credits": "25"}}, None),
        ({"id": "t-1", "estimatedCost": {"credits": -1}}, None),
        ({"id": "t-1", "estimatedCost": {"credits": True}}, None),
        # The wrapper around a created task (T2-like): data carries the id and estimate.
        ({"code": "success", "data": {"id": "t-1", "estimatedCost": {"credits": 10}}}, 10.0),
        ({"code": 200, "data": {"task_id": "t-1"}}, None),
    ],
)
def test_create_answer_carries_the_estimate_when_present(
    body: dict[str, Any], estimate: float | None
) -> None:
    created = parse_created(answer(body))
    assert (created.task_id, created.status, created.estimated_cost) == (
        "t-1",
        TaskStatus.PENDING,
        estimate,
    )
    assert created.cost is None
    assert parse_submit(answer(body)) == "t-1"


@pytest.mark.parametrize(
    ("body", "estimated", "spent"),
    [
        # T1 while running: the estimate; once ended: the cost (§8.2).
        (runway_task("RUNNING", estimatedCost={"credits": 25}), 25.0, None),
        (runway_task("SUCCEEDED", output=[CDN + "v.mp4"], cost={"credits": 25}), None, 25.0),
        (runway_task("FAILED", failure="no", cost={"credits": 0}), None, 0.0),
        (runway_task("CANCELLED", cost={"credits": 0}), None, 0.0),
        (runway_task("SUCCEEDED", output=[CDN + "v.mp4"]), None, None),
        # T2: the wrapper's record around the Runway task (data.data).
        (
            {
                "code": "success",
                "data": {
                    "task_id": "t-1",
                    "status": "SUCCESS",
                    "data": runway_task("SUCCEEDED", output=[CDN + "v.mp4"], cost={"credits": 5}),
                },
            },
            None,
            5.0,
        ),
        (
            {
                "code": "success",
                "data": {
                    "task_id": "t-1",
                    "status": "IN_PROGRESS",
                    "data": runway_task("RUNNING", estimatedCost={"credits": 7}),
                },
            },
            7.0,
            None,
        ),
        # A wrapped bare Runway task.
        (
            {"code": "success", "data": runway_task("RUNNING", estimatedCost={"credits": 3})},
            3.0,
            None,
        ),
    ],
)
def test_poll_answers_carry_cost_fields_when_present(
    body: dict[str, Any], estimated: float | None, spent: float | None
) -> None:
    task = parse_poll(answer(body), task_id="t-1")
    assert (task.estimated_cost, task.cost) == (estimated, spent)


@pytest.mark.parametrize(
    ("value", "credits"),
    [({"credits": 4}, 4.0), (4, 4.0), ({"credits": float("nan")}, None), ("4", None), ([], None)],
)
def test_credits_of_reads_numbers_only(value: object, credits: float | None) -> None:
    assert credits_of(value) == credits


# ---------------------------------------------------------------- not visible yet (§8.4)


@pytest.mark.parametrize("shape", sorted(NOT_FOUND_SHAPES))
def test_every_not_found_shape_of_the_fake_is_not_visible_yet(shape: str) -> None:
    status, body, content_type = NOT_FOUND_SHAPES[shape]  # type: ignore[index]
    response = HTTPResponse(status, {"Content-Type": content_type}, body)
    with pytest.raises(TaskNotFound) as caught:
        parse_poll(response, task_id="t-1")
    assert caught.value.task_id == "t-1"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b'{"status":"task_not_exist"}'),
        (200, b'{"status":"TASK_NOT_EXIST"}'),
        (404, b'{"status":"task_not_exist"}'),
        (200, b'{"code":"task_not_exist","message":"task_not_exist","data":null}'),
        (400, b'{"code":"task_not_exist","message":"task_not_exist","data":null}'),
        (200, b'{"message":"task_not_exist"}'),
        (200, b"task_not_exist"),
        (400, b"task_not_exist\n"),
        (404, b"task_not_exist"),
    ],
)
def test_not_visible_yet_at_any_status(status: int, body: bytes) -> None:
    with pytest.raises(TaskNotFound):
        parse_poll(HTTPResponse(status, {}, body), task_id="t-1")


def test_a_200_without_a_known_shape_is_still_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        parse_poll(answer({"status": "weird"}), task_id="t-1")


# ---------------------------------------------------------------- failure text, words (§8.5)


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (
            runway_task("failed", error="content moderation"),
            TaskStatus.FAILED,
            "content moderation",
        ),
        (runway_task("FAILED", failure="first", error="second"), TaskStatus.FAILED, "first"),
        (runway_task("cancelled"), TaskStatus.CANCELLED, None),
        # An ``error`` beside a running status does not end the task: the status decides.
        (runway_task("running", error="transient"), TaskStatus.RUNNING, None),
        (runway_task("pending"), TaskStatus.PENDING, None),
        (runway_task("throttled"), TaskStatus.PENDING, None),
        (runway_task("succeeded", output=[CDN + "v.mp4"]), TaskStatus.SUCCEEDED, None),
        (
            {"task_id": "t-1", "status": "failure", "error": "refused upstream"},
            TaskStatus.FAILED,
            "refused upstream",
        ),
        (
            {"task_id": "t-1", "status": "FAILURE", "fail_reason": "", "msg": "by msg"},
            TaskStatus.FAILED,
            "by msg",
        ),
    ],
)
def test_failure_text_and_lowercase_words(
    body: dict[str, Any], status: TaskStatus, error: str | None
) -> None:
    task = parse_poll(answer(body), task_id="t-1")
    assert (task.status, task.error) == (status, error)


def test_lowercase_queued_words_still_count_as_queued() -> None:
    from cometrunway.protocol.tasks import is_queued

    assert is_queued(parse_poll(answer(runway_task("throttled")), task_id="t-1"))


# ---------------------------------------------------------------- audio outputs (§8.1)


@pytest.mark.parametrize("name", ["speech.mp3", "fx.WAV", "a.m4a?sig=1", "b.ogg", "c.flac"])
def test_audio_outputs_are_outputs_but_never_the_video(name: str) -> None:
    task = parse_poll(answer(runway_task("SUCCEEDED", output=[CDN + name])), task_id="t-1")
    assert (task.status, task.outputs, task.video_url) == (
        TaskStatus.SUCCEEDED,
        (CDN + name,),
        None,
    )


def test_the_audio_route_decides_even_without_a_suffix() -> None:
    record = {
        "task_id": "t-1",
        "action": "TEXT_TO_SPEECH",
        "status": "SUCCESS",
        "data": runway_task("SUCCEEDED", output=[CDN + "output"]),
    }
    task = parse_poll(answer({"code": "success", "data": record}), task_id="t-1")
    assert (task.outputs, task.video_url) == ((CDN + "output",), None)


def test_a_video_output_is_still_the_video() -> None:
    task = parse_poll(answer(runway_task("SUCCEEDED", output=[CDN + "v.mp4"])), task_id="t-1")
    assert task.video_url == CDN + "v.mp4"
