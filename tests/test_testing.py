"""FakeCometAPI, driven by a plain aiohttp session and the pure protocol functions."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web

from cometrunway import (
    ActOne,
    ImageToVideo,
    MediaInput,
    ReferenceImage,
    RunwayCharacterPerformance,
    RunwayImageToVideo,
    RunwayTextToImage,
    RunwayVideoToVideo,
    RunwayVideoUpscale,
    TaskStatus,
    TextToVideo,
    VideoToVideo,
)
from cometrunway.errors import (
    AuthenticationError,
    DecodeError,
    EndpointError,
    InvalidRequestError,
    RateLimitError,
    ServerError,
    TaskNotFound,
)
from cometrunway.models import Request, Task
from cometrunway.protocol import (
    HTTPRequest,
    HTTPResponse,
    build_poll,
    build_submit,
    parse_poll,
    parse_submit,
)
from cometrunway.testing import FakeCometAPI, Fault, Lifecycle

KEY = "sk-test"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


async def send(
    http: aiohttp.ClientSession, base: str, request: HTTPRequest, **kwargs: Any
) -> HTTPResponse:
    async with http.request(
        request.method,
        base + request.path,
        headers=list(request.headers),
        data=request.body,
        allow_redirects=False,
        **kwargs,
    ) as response:
        return HTTPResponse(response.status, response.headers, await response.read())


async def submit(http: aiohttp.ClientSession, fake: FakeCometAPI, request: Request) -> str:
    return parse_submit(await send(http, fake.url, build_submit(request, api_key=KEY)))


async def poll(
    http: aiohttp.ClientSession, fake: FakeCometAPI, task_id: str, route: str = "feed"
) -> Task:
    answer = await send(http, fake.url, build_poll(task_id, route, api_key=KEY))  # type: ignore[arg-type]
    return parse_poll(answer, task_id=task_id)


def raw_post(http: aiohttp.ClientSession, url: str, body: bytes, **headers: str) -> Any:
    headers.setdefault("Authorization", f"Bearer {KEY}")
    return http.post(url, data=body, headers=headers)


ALL_REQUESTS: list[Request] = [
    TextToVideo("a cat"),
    ImageToVideo("smile", image="https://example.com/1.jpeg"),
    VideoToVideo("pixelated style", video="https://example.com/v.mp4"),
    ActOne(video="https://example.com/v.mp4", image="https://example.com/1.jpeg"),
    RunwayImageToVideo("https://example.com/cat.jpg"),
    RunwayVideoToVideo("https://example.com/v.mp4", model="aleph2", prompt_text="cinematic"),
    RunwayVideoUpscale("https://example.com/v.mp4", model="upscale_v1"),
    RunwayCharacterPerformance(
        MediaInput("https://example.com/c.mp4"), MediaInput("https://example.com/r.mp4")
    ),
    RunwayTextToImage(
        "a cat", reference_images=[ReferenceImage("https://example.com/r.png", tag="cat")]
    ),
]


# ---------------------------------------------------------------- lifetime and routes


async def test_start_close_and_url() -> None:
    fake = FakeCometAPI()
    with pytest.raises(RuntimeError):
        _ = fake.url
    await fake.start()
    try:
        assert fake.url.startswith("http://127.0.0.1:")
        with pytest.raises(RuntimeError, match="already open"):
            await fake.start()
    finally:
        await fake.close()
    await fake.close()  # twice is fine
    with pytest.raises(RuntimeError):
        await fake.start()


@pytest.mark.parametrize("request_model", ALL_REQUESTS, ids=lambda r: type(r).__name__)
async def test_every_create_route_then_both_poll_routes(
    fake: FakeCometAPI, session: aiohttp.ClientSession, request_model: Request
) -> None:
    task_id = await submit(session, fake, request_model)
    record = fake.tasks[task_id]
    assert record.path == type(request_model).path
    assert record.body == json.loads(build_submit(request_model, api_key=KEY).body or b"")
    # Ids are shared by both poll routes (wire reference §5).
    for route in ("feed", "tasks"):
        task = await poll(session, fake, task_id, route)
        assert task.status is TaskStatus.SUCCEEDED
        assert task.outputs[0] == fake.output_url(task_id, record.files[0])
    assert record.polls == 2
    assert fake.created_count() == 1


async def test_text_to_video_poll_lifecycle(session: aiohttp.ClientSession) -> None:
    async with FakeCometAPI(lifecycle=Lifecycle.by_polls(queued=1, running=2)) as fake:
        task_id = await submit(session, fake, TextToVideo("a cat"))
        body = fake.tasks[task_id].body
        assert body["prompt"] == "a cat"
        assert body["options"]["seconds"] == 5
        assert fake.tasks[task_id].action == "TEXT_TO_VIDEO"

        seen = [await poll(session, fake, task_id) for _ in range(5)]
        assert [t.status for t in seen] == [
            TaskStatus.PENDING,
            TaskStatus.RUNNING,
            TaskStatus.RUNNING,
            TaskStatus.SUCCEEDED,
            TaskStatus.SUCCEEDED,
        ]
        progress = [t.progress for t in seen]
        assert progress[0] == 0.0
        assert progress[1] is not None
        assert progress[2] is not None
        assert 0 < progress[1] < progress[2] < 1
        assert progress[3] == 1.0
        done = seen[3]
        assert done.outputs[0] == f"{fake.url}/cdn/{task_id}/video.mp4"
        assert done.poster_url == f"{fake.url}/cdn/{task_id}/poster.png"
        assert done.last_frame_url == f"{fake.url}/cdn/{task_id}/last_frame.png"
        record = fake.tasks[task_id]
        assert record.polls == 5
        assert record.finished_at is not None
        assert record.outcome == "succeed"
        assert fake.status(task_id) is TaskStatus.SUCCEEDED


async def test_image_generate_is_image_to_video(
    fake: FakeCometAPI, session: aiohttp.ClientSession
) -> None:
    task_id = await submit(session, fake, ImageToVideo("smile", image="https://e.com/1.jpeg"))
    assert fake.tasks[task_id].action == "IMAGE_TO_VIDEO"
    fake.feed_envelope = "F1"
    answer = await send(session, fake.url, build_poll(task_id, api_key=KEY))
    assert json.loads(answer.body)["data"]["action"] == "IMAGE_TO_VIDEO"


# ---------------------------------------------------------------- envelopes


@pytest.mark.parametrize("envelope", ["A1", "A2", "A3"])
async def test_create_envelopes(session: aiohttp.ClientSession, envelope: str) -> None:
    async with FakeCometAPI(create_envelope=envelope) as fake:  # type: ignore[arg-type]
        answer = await send(session, fake.url, build_submit(TextToVideo("x"), api_key=KEY))
        task_id = parse_submit(answer)
        payload = json.loads(answer.body)
        assert payload["data"]["task_id"] == task_id
        assert payload["code"] == 200
        if envelope == "A2":
            assert payload["message"] == ""
            assert payload["msg"] == "success"
            assert "exec_time" not in payload
        else:
            assert payload["msg"] == "成功"
            assert isinstance(payload["exec_time"], float)


async def test_a1_video2video_has_rich_data(session: aiohttp.ClientSession) -> None:
    async with FakeCometAPI(create_envelope="A1") as fake:
        request = VideoToVideo("pixel", video="https://e.com/v.mp4")
        answer = await send(session, fake.url, build_submit(request, api_key=KEY))
        data = json.loads(answer.body)["data"]
        assert {"state", "status", "prompt_en", "video_url", "poster"} <= set(data)
        assert parse_submit(answer) == data["task_id"]


async def test_official_create_answers_id(
    fake: FakeCometAPI, session: aiohttp.ClientSession
) -> None:
    request = build_submit(RunwayImageToVideo("https://e.com/c.jpg"), api_key=KEY)
    answer = await send(session, fake.url, request)
    assert list(json.loads(answer.body)) == ["id", "estimatedCost"]  # wire §8.2
    assert parse_submit(answer) in fake.tasks
    fake.cost_fields = False  # as CometAPI's pages show it (§1.6)
    answer = await send(session, fake.url, request)
    assert list(json.loads(answer.body)) == ["id"]


OUTCOMES = {
    "succeed": Lifecycle(),
    "fail": Lifecycle().failing("moderation said no", "SAFETY.INPUT.TEXT"),
    "cancel": Lifecycle().cancelled(),
}


@pytest.mark.parametrize("envelope", ["F1", "F2", "F3"])
@pytest.mark.parametrize("outcome", ["succeed", "fail", "cancel"])
async def test_feed_envelopes(session: aiohttp.ClientSession, envelope: str, outcome: str) -> None:
    life = attrs.evolve(OUTCOMES[outcome], queued_polls=1, running_polls=1)
    async with FakeCometAPI(feed_envelope=envelope, lifecycle=life) as fake:  # type: ignore[arg-type]
        base = fake.url
        task_id = await submit(session, fake, TextToVideo("a cat"))
        statuses = []
        for _ in range(3):
            answer = await send(session, fake.url, build_poll(task_id, api_key=KEY))
            statuses.append(parse_poll(answer).status)
        payload = json.loads(answer.body)
        last = parse_poll(answer)
    assert statuses[:2] == [TaskStatus.PENDING, TaskStatus.RUNNING]
    if envelope == "F1":
        assert payload["code"] == "success"
        assert payload["data"]["task_id"] == task_id
        assert payload["data"]["progress"] == "100%"
    elif envelope == "F2":
        assert payload["task_id"] == task_id
        assert "code" not in payload
    else:
        assert payload["code"] == 200
        assert payload["msg"] == "成功"
        # Upstream digits: 3 = success, 2 = failure (wire reference §6 C4).
        assert payload["data"]["status"] == ("3" if outcome == "succeed" else "2")
    if outcome == "succeed":
        assert last.status is TaskStatus.SUCCEEDED
        assert last.video_url == f"{base}/cdn/{task_id}/video.mp4"
        assert last.poster_url == f"{base}/cdn/{task_id}/poster.png"
    else:
        assert last.status is TaskStatus.FAILED  # the wrapper has no cancel word
        assert last.error
        if outcome == "fail":
            assert last.error == "moderation said no"
            if envelope != "F3":
                assert last.error_code == "SAFETY.INPUT.TEXT"


@pytest.mark.parametrize("envelope", ["T1", "T2"])
@pytest.mark.parametrize("outcome", ["succeed", "fail", "cancel"])
async def test_tasks_envelopes(session: aiohttp.ClientSession, envelope: str, outcome: str) -> None:
    life = attrs.evolve(OUTCOMES[outcome], running_polls=1)
    async with FakeCometAPI(tasks_envelope=envelope, lifecycle=life) as fake:  # type: ignore[arg-type]
        task_id = await submit(session, fake, RunwayImageToVideo("https://e.com/c.jpg"))
        running = await poll(session, fake, task_id, "tasks")
        answer = await send(session, fake.url, build_poll(task_id, "tasks", api_key=KEY))
        last = parse_poll(answer)
    payload = json.loads(answer.body)
    assert running.status is TaskStatus.RUNNING
    assert running.progress is not None
    assert 0 < running.progress < 1
    if envelope == "T1":
        assert payload["id"] == task_id
        assert payload["status"] == {"succeed": "SUCCEEDED", "fail": "FAILED"}.get(
            outcome, "CANCELLED"
        )
    else:
        assert payload["code"] == "success"
    expected = {
        "succeed": TaskStatus.SUCCEEDED,
        "fail": TaskStatus.FAILED,
        "cancel": TaskStatus.CANCELLED if envelope == "T1" else TaskStatus.FAILED,
    }[outcome]
    assert last.status is expected
    if outcome == "fail":
        assert (last.error, last.error_code) == ("moderation said no", "SAFETY.INPUT.TEXT")


async def test_envelopes_change_at_runtime_and_are_checked(
    fake: FakeCometAPI, session: aiohttp.ClientSession
) -> None:
    task_id = await submit(session, fake, TextToVideo("a cat"))
    fake.feed_envelope = "F3"
    answer = await send(session, fake.url, build_poll(task_id, api_key=KEY))
    assert json.loads(answer.body)["code"] == 200
    with pytest.raises(ValueError, match="feed_envelope"):
        fake.feed_envelope = "F9"  # type: ignore[assignment]
    with pytest.raises(ValueError, match="create_envelope"):
        FakeCometAPI(create_envelope="B1")  # type: ignore[arg-type]


async def test_f1_queued_word(session: aiohttp.ClientSession) -> None:
    life = Lifecycle.by_polls(queued=1, running=0, queued_word="NOT_START")
    async with FakeCometAPI(lifecycle=life) as fake:
        task_id = await submit(session, fake, TextToVideo("a cat"))
        answer = await send(session, fake.url, build_poll(task_id, api_key=KEY))
        assert json.loads(answer.body)["data"]["status"] == "NOT_START"
        assert parse_poll(answer).status is TaskStatus.PENDING


# ---------------------------------------------------------------- lifecycles


async def test_instant_lifecycle_is_done_on_first_poll(
    fake: FakeCometAPI, session: aiohttp.ClientSession
) -> None:
    task_id = await submit(session, fake, TextToVideo("a cat"))
    assert (await poll(session, fake, task_id)).status is TaskStatus.SUCCEEDED


async def test_time_lifecycle_with_injected_clock(session: aiohttp.ClientSession) -> None:
    clock = Clock()
    life = Lifecycle.by_time(queued=10, running=20)
    async with FakeCometAPI(lifecycle=life, clock=clock, tick_interval=None) as fake:
        task_id = await submit(session, fake, TextToVideo("a cat"))
        assert (await poll(session, fake, task_id, "tasks")).status is TaskStatus.PENDING
        clock.now += 15
        running = await poll(session, fake, task_id, "tasks")
        assert running.status is TaskStatus.RUNNING
        assert running.progress == pytest.approx(0.25)
        clock.now += 100
        assert (await poll(session, fake, task_id, "tasks")).status is TaskStatus.SUCCEEDED
        record = fake.tasks[task_id]
        # The end is when the clock said so, not when someone looked.
        assert record.started_at == 1010.0
        assert record.finished_at == 1030.0


async def test_mixed_limits_wait_for_both(session: aiohttp.ClientSession) -> None:
    clock = Clock()
    life = Lifecycle(queued_for=5, queued_polls=2)
    async with FakeCometAPI(lifecycle=life, clock=clock, tick_interval=None) as fake:
        task_id = await submit(session, fake, TextToVideo("a cat"))
        for _ in range(3):
            assert (await poll(session, fake, task_id)).status is TaskStatus.PENDING
        clock.now += 5
        assert (await poll(session, fake, task_id)).status is TaskStatus.SUCCEEDED


async def test_not_found_polls(session: aiohttp.ClientSession) -> None:
    async with FakeCometAPI(lifecycle=Lifecycle(not_found_polls=2)) as fake:
        task_id = await submit(session, fake, TextToVideo("a cat"))
        for _ in range(2):
            answer = await send(session, fake.url, build_poll(task_id, api_key=KEY))
            assert answer.status == 400
            assert json.loads(answer.body) == {
                "code": "task_not_exist",
                "message": "task_not_exist",
                "data": None,
            }
            with pytest.raises(TaskNotFound):
                parse_poll(answer, task_id=task_id)
        assert (await poll(session, fake, task_id)).status is TaskStatus.SUCCEEDED
        assert fake.tasks[task_id].polls == 3
        assert fake.tasks[task_id].visible_polls == 1


async def test_not_found_for_seconds(session: aiohttp.ClientSession) -> None:
    clock = Clock()
    async with FakeCometAPI(lifecycle=Lifecycle(not_found_for=3), clock=clock) as fake:
        task_id = await submit(session, fake, RunwayImageToVideo("https://e.com/c.jpg"))
        with pytest.raises(TaskNotFound):
            await poll(session, fake, task_id, "tasks")
        clock.now += 3
        assert (await poll(session, fake, task_id, "tasks")).status is TaskStatus.SUCCEEDED


async def test_unknown_id_is_task_not_exist(
    fake: FakeCometAPI, session: aiohttp.ClientSession
) -> None:
    for route in ("feed", "tasks"):
        with pytest.raises(TaskNotFound):
            await poll(session, fake, "no-such-task", route)


async def test_lifecycle_for_by_prompt_and_callable(session: aiohttp.ClientSession) -> None:
    bad = Lifecycle().failing("nope", "SAFETY.INPUT.TEXT")
    async with FakeCometAPI(lifecycle_for={"a bad cat": bad}) as fake:
        good_id = await submit(session, fake, TextToVideo("a cat"))
        bad_id = await submit(session, fake, TextToVideo("a bad cat"))
        assert (await poll(session, fake, good_id)).status is TaskStatus.SUCCEEDED
        assert (await poll(session, fake, bad_id)).status is TaskStatus.FAILED
        fake.lifecycle_for = lambda body: bad if body.get("promptText") == "x" else None
        official = await submit(
            session, fake, RunwayImageToVideo("https://e.com/c.jpg", prompt_text="x")
        )
        assert fake.tasks[official].lifecycle is bad


async def test_finish_fail_cancel_helpers(session: aiohttp.ClientSession) -> None:
    async with FakeCometAPI(lifecycle=Lifecycle.by_polls(queued=100, running=0)) as fake:
        ids = [await submit(session, fake, TextToVideo(f"cat {i}")) for i in range(3)]
        assert fake.status(ids[0]) is TaskStatus.PENDING
        fake.finish(ids[0])
        fake.fail(ids[1], "blocked", "SAFETY.INPUT.TEXT")
        fake.cancel(ids[2])
        with pytest.raises(ValueError, match="already ended"):
            fake.finish(ids[0])
        with pytest.raises(KeyError):
            fake.finish("unknown")
        fake.tasks_envelope = "T1"
        done, failed, cancelled = [await poll(session, fake, i, "tasks") for i in ids]
        assert done.status is TaskStatus.SUCCEEDED
        assert (failed.status, failed.error, failed.error_code) == (
            TaskStatus.FAILED,
            "blocked",
            "SAFETY.INPUT.TEXT",
        )
        assert cancelled.status is TaskStatus.CANCELLED
        assert [fake.status(i) for i in ids] == [
            TaskStatus.SUCCEEDED,
            TaskStatus.FAILED,
            TaskStatus.CANCELLED,
        ]


def test_lifecycle_validates() -> None:
    with pytest.raises(ValueError, match="queued_polls"):
        Lifecycle(queued_polls=-1)
    with pytest.raises(ValueError):
        Lifecycle(outcome="explode")  # type: ignore[arg-type]
    assert Lifecycle.instant() == Lifecycle()
    assert Lifecycle.by_time(1, 2).running_for == 2


# ---------------------------------------------------------------- faults


async def test_429_with_and_without_retry_after(
    fake: FakeCometAPI, session: aiohttp.ClientSession
) -> None:
    fake.inject("submit", Fault.rate_limited(retry_after=2))
    fake.inject("submit", Fault.rate_limited(retry_after=None))
    first = await send(session, fake.url, build_submit(TextToVideo("x"), api_key=KEY))
    assert first.status == 429
    assert first.header("retry-after") == "2"
    with pytest.raises(RateLimitError) as caught:
        parse_submit(first)
    assert caught.value.retry_after == 2.0
    second = await send(session, fake.url, build_submit(TextToVideo("x"), api_key=KEY))
    assert second.status == 429
    assert second.header("retry-after") is None
    assert fake.created_count() == 0
    await submit(session, fake, TextToVideo("x"))
    assert fake.created_count() == 1
    assert fake.request_count("submit") == 3


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_error_before_create(
    fake: FakeCometAPI, session: aiohttp.ClientSession, status: int
) -> None:
    fake.inject("submit", Fault.server_error(status), times=2)
    for _ in range(2):
        answer = await send(session, fake.url, build_submit(TextToVideo("x"), api_key=KEY))
        assert answer.status == status
        with pytest.raises(ServerError):
            parse_submit(answer)
    assert fake.created_count() == 0
    assert fake.pending_faults("submit") == 0


async def test_server_error_after_create_makes_exactly_one_task(
    fake: FakeCometAPI, session: aiohttp.ClientSession
) -> None:
    fake.inject("submit", Fault.server_error(500, after_create=True))
    answer = await send(session, fake.url, build_submit(TextToVideo("x"), api_key=KEY))
    assert answer.status == 500
    with pytest.raises(ServerError):
        parse_submit(answer)
    assert fake.created_count() == 1
    (task,) = fake.tasks.values()
    assert (await poll(session, fake, task.task_id)).status is TaskStatus.SUCCEEDED


async def test_drop_after_create(fake: FakeCometAPI, session: aiohttp.ClientSession) -> None:
    fake.inject("submit", Fault.drop(after_create=True))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await send(session, fake.url, build_submit(TextToVideo("x"), api_key=KEY))
    assert fake.created_count() == 1
    await submit(session, fake, TextToVideo("x"))  # the next one is answered
    assert fake.created_count() == 2


async def test_drop_before_create(fake: FakeCometAPI, session: aiohttp.ClientSession) -> None:
    fake.inject("submit", Fault.drop())
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await send(session, fake.url, build_submit(TextToVideo("x"), api_key=KEY))
    assert fake.created_count() == 0


async def test_drop_mid_body_on_submit(fake: FakeCometAPI, session: aiohttp.ClientSession) -> None:
    fake.inject("submit", Fault.drop_mid_body(0.5))
    with pytest.raises(aiohttp.ClientPayloadError):
        await send(session, fake.url, build_submit(TextToVideo("x"), api_key=KEY))
    assert fake.created_count() == 1


async def test_delay_trips_client_timeout(session: aiohttp.ClientSession) -> None:
    fake = FakeCometAPI()
    async with fake:
        fake.inject("submit", Fault.delay(60))
        request = build_submit(TextToVideo("x"), api_key=KEY)
        with pytest.raises(TimeoutError):
            await send(session, fake.url, request, timeout=aiohttp.ClientTimeout(total=0.2))
        assert fake.created_count() == 0  # still waiting
    # Closing ended the wait; the request was then processed although its client left.
    assert fake.created_count() == 1


async def test_delay_then_fault(fake: FakeCometAPI, session: aiohttp.ClientSession) -> None:
    fake.inject("submit", Fault.delay(0, then=Fault.server_error(503)))
    answer = await send(session, fake.url, build_submit(TextToVideo("x"), api_key=KEY))
    assert answer.status == 503


async def test_garbage_html_and_401_faults(
    fake: FakeCometAPI, session: aiohttp.ClientSession
) -> None:
    fake.inject("submit", Fault.garbage())
    fake.inject("submit", Fault.html())
    fake.inject("submit", Fault.unauthorized())
    request = build_submit(TextToVideo("x"), api_key=KEY)
    with pytest.raises(DecodeError):
        parse_submit(await send(session, fake.url, request))
    with pytest.raises(EndpointError):
        parse_submit(await send(session, fake.url, request))
    with pytest.raises(AuthenticationError):
        parse_submit(await send(session, fake.url, request))
    assert fake.created_count() == 0


async def test_custom_response_after_create(
    fake: FakeCometAPI, session: aiohttp.ClientSession
) -> None:
    # The older official answer {} (wire reference §6 C11): the task exists, no id given.
    fake.inject("submit", Fault.response(200, {}, after_create=True))
    answer = await send(
        session, fake.url, build_submit(RunwayImageToVideo("https://e.com/c.jpg"), api_key=KEY)
    )
    with pytest.raises(DecodeError):
        parse_submit(answer)
    assert fake.created_count() == 1


async def test_poll_faults_do_not_count_as_polls(session: aiohttp.ClientSession) -> None:
    async with FakeCometAPI(lifecycle=Lifecycle.by_polls(queued=1, running=0)) as fake:
        task_id = await submit(session, fake, TextToVideo("x"))
        fake.inject("poll", Fault.server_error(503))
        fake.inject("poll", Fault.rate_limited(1))
        fake.inject("poll", Fault.server_error(500, after_create=True))
        for status in (503, 429):
            answer = await send(session, fake.url, build_poll(task_id, api_key=KEY))
            assert answer.status == status
        assert fake.tasks[task_id].polls == 0
        # An after-create poll fault counts the poll, then loses the answer.
        answer = await send(session, fake.url, build_poll(task_id, api_key=KEY))
        assert answer.status == 500
        assert fake.tasks[task_id].polls == 1
        assert (await poll(session, fake, task_id)).status is TaskStatus.SUCCEEDED


async def test_refusal_wins_over_after_create_fault(
    fake: FakeCometAPI, session: aiohttp.ClientSession
) -> None:
    fake.inject("submit", Fault.server_error(500, after_create=True))
    async with raw_post(session, fake.url + "/runway/pro/generate", b'{"prompt":"x"}') as r:
        assert r.status == 400
    assert fake.pending_faults("submit") == 0
    assert fake.created_count() == 0


def test_inject_checks_its_arguments() -> None:
    fake = FakeCometAPI()
    with pytest.raises(ValueError, match="kind"):
        fake.inject("create", Fault.drop())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="times"):
        fake.inject("poll", Fault.drop(), times=0)
    fake.inject("poll", Fault.drop(), times=3)
    assert fake.pending_faults("poll") == 3
    fake.clear_faults("poll")
    assert fake.pending_faults("poll") == 0
    with pytest.raises(ValueError, match="fraction"):
        Fault.drop_mid_body(1.5)


# ---------------------------------------------------------------- validation and auth


async def test_missing_and_wrong_key(session: aiohttp.ClientSession) -> None:
    async with FakeCometAPI(api_key=KEY) as fake:
        url = fake.url + "/runway/pro/generate"
        body = build_submit(TextToVideo("x"), api_key=KEY).body or b""
        async with session.post(url, data=body) as r:
            assert r.status == 401
            payload = await r.json()
            assert payload["error"]["type"] == "comet_api_error"
        wrong = build_submit(TextToVideo("x"), api_key="sk-wrong")
        with pytest.raises(AuthenticationError):
            parse_submit(await send(session, fake.url, wrong))
        with pytest.raises(AuthenticationError):
            parse_poll(await send(session, fake.url, build_poll("id", api_key="sk-wrong")))
        assert fake.created_count() == 0
        await submit(session, fake, TextToVideo("x"))
        assert fake.created_count() == 1


async def test_any_bearer_key_without_api_key(
    fake: FakeCometAPI, session: aiohttp.ClientSession
) -> None:
    answer = await send(session, fake.url, build_submit(TextToVideo("x"), api_key="whatever"))
    assert answer.status == 200
    async with raw_post(session, fake.url + "/runway/feed", b"{}", Authorization="Basic x") as r:
        assert r.status == 401


async def test_validation_errors(fake: FakeCometAPI, session: aiohttp.ClientSession) -> None:
    base = fake.url
    no_callback = json.dumps({"prompt": "x", "model": "gen4"}).encode()
    async with raw_post(session, base + "/runway/pro/act_one", no_callback) as r:
        assert r.status == 400
        assert await r.json() == {
            "code": "callback_url_empty",
            "message": "callback_url is required",
            "data": None,
        }
    body = json.dumps({"promptText": "a cat", "model": "gen4_image"}).encode()
    async with raw_post(session, base + "/runwayml/v1/text_to_image", body) as r:
        answer = HTTPResponse(r.status, r.headers, await r.read())
    assert json.loads(answer.body)["code"] == "reference_images_empty"
    with pytest.raises(InvalidRequestError):
        parse_submit(answer)
    async with raw_post(session, base + "/runway/pro/generate", b"{not json") as r:
        assert r.status == 400
        assert (await r.json())["code"] == "invalid_request"
    async with raw_post(session, base + "/runway/feed", b"[1]") as r:
        assert r.status == 400
    assert fake.created_count() == 0
    assert fake.requests[2].body is None
    assert fake.requests[2].raw == b"{not json"


async def test_version_header_required_when_asked(session: aiohttp.ClientSession) -> None:
    async with FakeCometAPI(require_version_header=True) as fake:
        request = RunwayVideoUpscale("https://e.com/v.mp4", model="upscale_v1")
        without = build_submit(request, api_key=KEY, runway_version=None)
        with pytest.raises(InvalidRequestError):
            parse_submit(await send(session, fake.url, without))
        await submit(session, fake, request)
        assert fake.created_count() == 1


async def test_unknown_path_is_html(fake: FakeCometAPI, session: aiohttp.ClientSession) -> None:
    wrong = HTTPRequest("POST", "/v1/runway/pro/generate", (("Authorization", "Bearer k"),))
    answer = await send(session, fake.url, wrong)
    assert answer.status == 404
    assert "text/html" in (answer.header("content-type") or "")
    with pytest.raises(EndpointError):
        parse_submit(answer)
    async with session.get(fake.url + "/runway/feed") as r:  # wrong method, too
        assert r.status == 404
        assert r.content_type == "text/html"
    assert fake.requests[-1].kind is None
    assert fake.request_count(None) == 2


async def test_delete_is_405_by_default(fake: FakeCometAPI, session: aiohttp.ClientSession) -> None:
    task_id = await submit(session, fake, RunwayImageToVideo("https://e.com/c.jpg"))
    headers = {"Authorization": f"Bearer {KEY}"}
    async with session.delete(f"{fake.url}/runwayml/v1/tasks/{task_id}", headers=headers) as r:
        assert r.status == 405


async def test_delete_cancels_or_deletes_when_allowed(session: aiohttp.ClientSession) -> None:
    life = Lifecycle.by_polls(queued=5, running=0)
    async with FakeCometAPI(allow_cancel=True, lifecycle=life) as fake:
        headers = {"Authorization": f"Bearer {KEY}"}
        running = await submit(session, fake, RunwayImageToVideo("https://e.com/c.jpg"))
        async with session.delete(f"{fake.url}/runwayml/v1/tasks/{running}", headers=headers) as r:
            assert r.status == 204
        assert (await poll(session, fake, running, "tasks")).status is TaskStatus.CANCELLED
        # A finished task is deleted: it cannot be fetched any more (wire reference §5).
        async with session.delete(f"{fake.url}/runwayml/v1/tasks/{running}", headers=headers) as r:
            assert r.status == 204
        with pytest.raises(TaskNotFound):
            await poll(session, fake, running, "tasks")


# ---------------------------------------------------------------- records


async def test_requests_are_recorded(fake: FakeCometAPI, session: aiohttp.ClientSession) -> None:
    task_id = await submit(session, fake, TextToVideo("a cat"))
    await poll(session, fake, task_id, "tasks")
    create, get = fake.requests
    assert (create.method, create.path, create.kind) == ("POST", "/runway/pro/generate", "submit")
    assert create.body["prompt"] == "a cat"
    assert create.headers["authorization"] == f"Bearer {KEY}"
    assert create.headers["X-Runway-Version"] == "2024-11-06"
    assert (get.method, get.path, get.kind, get.body) == (
        "GET",
        f"/runwayml/v1/tasks/{task_id}",
        "poll",
        None,
    )
    assert get.time >= create.time
    record = fake.tasks[task_id]
    assert record.family == "pro"
    assert record.polls == 1
    fake.reset()
    assert not fake.requests
    assert not fake.tasks
    assert fake.request_count(all_kinds=True) == 0


async def test_record_requests_off(session: aiohttp.ClientSession) -> None:
    async with FakeCometAPI(record_requests=False) as fake:
        await submit(session, fake, TextToVideo("x"))
        assert fake.requests == []
        assert fake.request_count("submit") == 1


# ---------------------------------------------------------------- callbacks


class Receiver:
    """A webhook receiver on 127.0.0.1 that keeps what it was sent."""

    def __init__(self) -> None:
        self.posts: list[Any] = []
        self.arrived = asyncio.Event()
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.posts.append(await request.json())
        self.arrived.set()
        return web.Response(text="ok")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    sink = Receiver()
    app = web.Application()
    app.router.add_post("/hook", sink.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    sink.url = f"http://{host}:{port}/hook"
    try:
        yield sink
    finally:
        await runner.cleanup()


async def test_callback_on_poll(session: aiohttp.ClientSession, receiver: Receiver) -> None:
    async with FakeCometAPI(lifecycle=Lifecycle.by_polls(queued=1, running=1)) as fake:
        task_id = await submit(session, fake, TextToVideo("a cat", callback_url=receiver.url))
        await poll(session, fake, task_id)
        await poll(session, fake, task_id)
        await fake.drain_callbacks()
        assert receiver.posts == []
        await poll(session, fake, task_id)  # the end is seen here
        await fake.drain_callbacks()
        await poll(session, fake, task_id)  # only once per task
        await fake.drain_callbacks()
    (payload,) = receiver.posts
    # The upstream F3 record without the outer envelope (wire reference §4).
    assert payload["task_id"] == task_id
    assert payload["status"] == "3"
    assert payload["video_url"].endswith(f"/cdn/{task_id}/video.mp4")
    (sent,) = fake.callbacks_sent
    assert (sent.task_id, sent.url, sent.status, sent.error) == (task_id, receiver.url, 200, None)


async def test_callback_without_polls_by_tick(
    session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    clock = Clock()
    life = Lifecycle.by_time(queued=1, running=1).failing("blocked", "SAFETY.INPUT.TEXT")
    fake = FakeCometAPI(lifecycle=life, clock=clock, tick_interval=None, callback_format="F1")
    async with fake:
        task_id = await submit(session, fake, TextToVideo("a cat", callback_url=receiver.url))
        await fake.tick()
        assert receiver.posts == []
        clock.now += 2
        await fake.tick()
        assert fake.tasks[task_id].finished_at == 1002.0
        assert fake.tasks[task_id].polls == 0
    (payload,) = receiver.posts
    # F1's data record: wrapper word, reason, nested failure code.
    assert payload["status"] == "FAILURE"
    assert payload["fail_reason"] == "blocked"
    assert payload["data"]["failureCode"] == "SAFETY.INPUT.TEXT"


async def test_background_ticker_sends_callbacks(
    session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    clock = Clock()
    life = Lifecycle.by_time(queued=0, running=5)
    async with FakeCometAPI(lifecycle=life, clock=clock, tick_interval=0.01) as fake:
        task_id = await submit(
            session,
            fake,
            ActOne(
                video="https://e.com/v.mp4", image="https://e.com/i.jpg", callback_url=receiver.url
            ),
        )
        clock.now += 5
        await asyncio.wait_for(receiver.arrived.wait(), 5)
        assert receiver.posts[0]["task_id"] == task_id


async def test_callback_duplicates_and_failures(
    session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    async with FakeCometAPI(callback_duplicates=2, tick_interval=None) as fake:
        task_id = await submit(session, fake, TextToVideo("a", callback_url=receiver.url))
        await poll(session, fake, task_id)
        await fake.drain_callbacks()
        assert len(receiver.posts) == 3
        assert [c.attempt for c in fake.callbacks_sent] == [0, 1, 2]
        # A receiver that is gone: the failure is recorded, not raised.
        fake.callback_duplicates = 0
        gone = receiver.url.rsplit(":", 1)[0] + ":9/hook"  # the discard port: nobody listens
        task_id = await submit(session, fake, TextToVideo("b", callback_url=gone))
        await poll(session, fake, task_id)
        await fake.drain_callbacks()
        last = fake.callbacks_sent[-1]
        assert last.status is None
        assert last.error


async def test_callbacks_never_leave_loopback(
    fake: FakeCometAPI, session: aiohttp.ClientSession
) -> None:
    inert = await submit(session, fake, TextToVideo("a"))  # https://callback.invalid/
    remote = await submit(session, fake, TextToVideo("b", callback_url="https://example.com/h"))
    await poll(session, fake, inert)
    await poll(session, fake, remote)
    await fake.drain_callbacks()
    (skipped,) = fake.callbacks_sent
    assert skipped.task_id == remote
    assert skipped.status is None
    assert skipped.error is not None
    assert skipped.error.startswith("skipped")


async def test_no_callbacks_for_official_routes(
    fake: FakeCometAPI, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    request = RunwayImageToVideo("https://e.com/c.jpg", extra={"callback_url": receiver.url})
    task_id = await submit(session, fake, request)
    await poll(session, fake, task_id, "tasks")
    await fake.drain_callbacks()
    assert receiver.posts == []
    assert fake.callbacks_sent == []


# ---------------------------------------------------------------- /cdn


async def test_cdn_serves_outputs(fake: FakeCometAPI, session: aiohttp.ClientSession) -> None:
    task_id = await submit(session, fake, TextToVideo("a cat"))
    task = await poll(session, fake, task_id)
    assert task.video_url is not None
    size = len(fake.output_bytes(task_id, "video.mp4"))
    async with session.get(task.video_url) as r:
        assert r.status == 200
        assert r.content_type == "video/mp4"
        assert r.headers["Content-Length"] == str(size)
        assert await r.read() == fake.output_bytes(task_id, "video.mp4")
    async with session.get(task.video_url, headers={"Range": "bytes=1000-"}) as r:
        assert r.status == 206
        assert r.headers["Content-Range"] == f"bytes 1000-{size - 1}/{size}"
        assert await r.read() == fake.output_bytes(task_id)[1000:]
    async with session.get(task.video_url, headers={"Range": "bytes=999999-"}) as r:
        assert r.status == 416
    assert task.poster_url is not None
    async with session.get(task.poster_url) as r:
        assert r.content_type == "image/png"
    cdn = [req for req in fake.requests if req.kind == "cdn"]
    assert len(cdn) == 4
    assert all("Authorization" not in req.headers for req in cdn)
    assert fake.output_bytes(task_id) != fake.output_bytes(task_id, "poster.png")


async def test_cdn_404_until_succeeded(session: aiohttp.ClientSession) -> None:
    async with FakeCometAPI(lifecycle=Lifecycle.by_polls(1, 0), output_size=10) as fake:
        task_id = await submit(session, fake, TextToVideo("a cat"))
        async with session.get(fake.output_url(task_id)) as r:
            assert r.status == 404
        async with session.get(fake.url + "/cdn/nope/video.mp4") as r:
            assert r.status == 404
        fake.finish(task_id)
        async with session.get(fake.output_url(task_id)) as r:
            assert await r.read() == fake.output_bytes(task_id)
            assert len(fake.output_bytes(task_id)) == 10
        async with session.get(fake.output_url(task_id, "other.mp4")) as r:
            assert r.status == 404


@pytest.mark.parametrize("status", [403, 404, 410])
async def test_cdn_expired(fake: FakeCometAPI, session: aiohttp.ClientSession, status: int) -> None:
    task_id = await submit(session, fake, TextToVideo("a cat"))
    await poll(session, fake, task_id)
    fake.inject("cdn", Fault.expired(status))
    async with session.get(fake.output_url(task_id)) as r:
        assert r.status == status
    async with session.get(fake.output_url(task_id)) as r:
        assert r.status == 200


async def test_cdn_drop_mid_body(fake: FakeCometAPI, session: aiohttp.ClientSession) -> None:
    task_id = await submit(session, fake, TextToVideo("a cat"))
    await poll(session, fake, task_id)
    fake.inject("cdn", Fault.drop_mid_body(0.25))
    async with session.get(fake.output_url(task_id)) as r:
        assert r.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await r.read()


# ---------------------------------------------------------------- python -m


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_runs_as_a_process(session: aiohttp.ClientSession) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cometrunway.testing",
        "--port",
        "0",
        "--feed-envelope",
        "F3",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        url = line.decode().strip()
        assert url.startswith("http://127.0.0.1:")
        task_id = parse_submit(
            await send(session, url, build_submit(TextToVideo("x"), api_key=KEY))
        )
        answer = await send(session, url, build_poll(task_id, api_key=KEY))
        assert json.loads(answer.body)["data"]["status"] == "3"
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 30)
    assert code == 0
