"""FakeCometAPI and the 2026-11-30 wire (reference §8): audio routes, cost fields, DELETE,
every "not visible yet" shape, failure text under ``error``, unknown routes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from cometrunway import RunwayImageToVideo, RunwaySoundEffect, RunwayTextToSpeech, TextToVideo
from cometrunway.models import Request
from cometrunway.protocol import HTTPResponse, build_submit, parse_submit
from cometrunway.testing import NOT_FOUND_SHAPES, FakeCometAPI, Fault, Lifecycle

KEY = "sk-test"
AUTH = {"Authorization": f"Bearer {KEY}"}
IMAGE = "https://e.com/c.jpg"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


async def create(http: aiohttp.ClientSession, fake: FakeCometAPI, request: Request) -> str:
    built = build_submit(request, api_key=KEY)
    async with http.post(fake.url + built.path, data=built.body, headers=list(built.headers)) as r:
        return parse_submit(HTTPResponse(r.status, r.headers, await r.read()))


async def get_task(
    http: aiohttp.ClientSession, fake: FakeCometAPI, task_id: str
) -> tuple[int, dict[str, Any]]:
    async with http.get(f"{fake.url}/runwayml/v1/tasks/{task_id}", headers=AUTH) as r:
        return r.status, json.loads(await r.read())


# ---------------------------------------------------------------- audio routes (§8.1)


@pytest.mark.parametrize(
    ("request_model", "action"),
    [
        (RunwayTextToSpeech("Hello.", voice="Maya"), "TEXT_TO_SPEECH"),
        (RunwaySoundEffect("A door slams.", duration=2, loop=True), "SOUND_EFFECT"),
    ],
)
async def test_audio_routes_create_tasks_with_audio_outputs(
    session: aiohttp.ClientSession, request_model: Request, action: str
) -> None:
    async with FakeCometAPI() as fake:
        task_id = await create(session, fake, request_model)
        record = fake.tasks[task_id]
        assert (record.family, record.action, record.files) == ("official", action, ("audio.mp3",))
        status, task = await get_task(session, fake, task_id)
    assert status == 200
    assert task["status"] == "SUCCEEDED"
    assert task["output"] == [fake.output_url(task_id, "audio.mp3")]


async def test_sound_effect_is_strict_and_audio_needs_a_prompt(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeCometAPI() as fake:
        url = fake.url + "/runwayml/v1/sound_effect"
        extra = {"model": "eleven_text_to_sound_v2", "promptText": "x", "seed": 1}
        async with session.post(url, json=extra, headers=AUTH) as r:
            assert r.status == 400
            assert await r.json() == {
                "code": "invalid_request",
                "message": "unknown field(s): seed",
                "data": None,
            }
        for path in ("/runwayml/v1/sound_effect", "/runwayml/v1/text_to_speech"):
            async with session.post(fake.url + path, json={"model": "m"}, headers=AUTH) as r:
                assert r.status == 400
                assert (await r.json())["message"] == "promptText is required"
        assert fake.created_count() == 0


# ---------------------------------------------------------------- cost fields (§8.2)


async def test_cost_fields_follow_the_task_life(session: aiohttp.ClientSession) -> None:
    async with FakeCometAPI(lifecycle=Lifecycle.by_polls(queued=1, running=1)) as fake:
        built = build_submit(RunwayImageToVideo(IMAGE), api_key=KEY)
        async with session.post(
            fake.url + built.path, data=built.body, headers=list(built.headers)
        ) as r:
            answer = await r.json()
        estimate = answer["estimatedCost"]["credits"]
        assert estimate > 0
        seen = [await get_task(session, fake, answer["id"]) for _ in range(3)]
    pending, running, done = (task for _, task in seen)
    assert (pending["status"], pending["estimatedCost"]) == ("PENDING", {"credits": estimate})
    assert (running["status"], running["estimatedCost"]) == ("RUNNING", {"credits": estimate})
    assert "cost" not in pending
    assert "cost" not in running
    assert done["status"] == "SUCCEEDED"
    assert done["cost"] == {"credits": estimate}
    assert isinstance(done["cost"]["credits"], int)
    assert "estimatedCost" not in done


@pytest.mark.parametrize("life", [Lifecycle().failing(), Lifecycle().cancelled()])
async def test_failed_and_cancelled_tasks_cost_nothing(
    session: aiohttp.ClientSession, life: Lifecycle
) -> None:
    async with FakeCometAPI(lifecycle=life) as fake:
        task_id = await create(session, fake, RunwayImageToVideo(IMAGE))
        _, task = await get_task(session, fake, task_id)
    assert task["status"] in ("FAILED", "CANCELLED")
    assert task["cost"] == {"credits": 0}  # refunded, as Runway reports it


async def test_cost_fields_can_be_left_out(session: aiohttp.ClientSession) -> None:
    async with FakeCometAPI(cost_fields=False) as fake:
        task_id = await create(session, fake, RunwayImageToVideo(IMAGE))
        _, task = await get_task(session, fake, task_id)
    assert task["status"] == "SUCCEEDED"
    assert "cost" not in task
    assert "estimatedCost" not in task


async def test_wrapped_official_task_carries_cost_and_pro_tasks_none(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeCometAPI(tasks_envelope="T2") as fake:
        official = await create(session, fake, RunwayImageToVideo(IMAGE))
        _, wrapped = await get_task(session, fake, official)
        pro = await create(session, fake, TextToVideo("a cat"))
        async with session.post(
            fake.url + "/runway/feed", json={"task_id": pro}, headers=AUTH
        ) as r:
            feed = await r.json()
    assert wrapped["data"]["data"]["cost"]["credits"] > 0
    assert "cost" not in feed["data"]["data"]
    assert "estimatedCost" not in feed["data"]["data"]


# ---------------------------------------------------------------- DELETE (§8.6)


async def test_delete_is_405_json_by_default(session: aiohttp.ClientSession) -> None:
    async with FakeCometAPI(lifecycle=Lifecycle.by_polls(queued=3)) as fake:
        task_id = await create(session, fake, RunwayImageToVideo(IMAGE))
        async with session.delete(f"{fake.url}/runwayml/v1/tasks/{task_id}", headers=AUTH) as r:
            assert r.status == 405
            assert r.headers["Allow"] == "GET"
            assert (await r.json())["error"]["message"] == "Method Not Allowed"
        assert fake.tasks[task_id].outcome is None  # nothing stopped
        assert fake.request_count("cancel") == 1


async def test_allowed_delete_cancels_a_pending_task(session: aiohttp.ClientSession) -> None:
    async with FakeCometAPI(allow_cancel=True, lifecycle=Lifecycle.by_polls(queued=3)) as fake:
        task_id = await create(session, fake, RunwayTextToSpeech("Hi"))
        async with session.delete(f"{fake.url}/runwayml/v1/tasks/{task_id}", headers=AUTH) as r:
            assert r.status == 204
            assert await r.read() == b""
        _, task = await get_task(session, fake, task_id)
        assert task["status"] == "CANCELLED"
        assert task["cost"] == {"credits": 0}
        async with session.delete(f"{fake.url}/runwayml/v1/tasks/nope", headers=AUTH) as r:
            assert r.status == 400
            assert (await r.json())["code"] == "task_not_exist"


# ---------------------------------------------------------------- not visible yet (§8.4)


@pytest.mark.parametrize("shape", sorted(NOT_FOUND_SHAPES))
async def test_every_not_found_shape(session: aiohttp.ClientSession, shape: Any) -> None:
    status, body, content_type = NOT_FOUND_SHAPES[shape]
    async with FakeCometAPI(not_found_shape=shape, lifecycle=Lifecycle(not_found_polls=1)) as fake:
        task_id = await create(session, fake, RunwayImageToVideo(IMAGE))
        for path in (f"/runwayml/v1/tasks/{task_id}", "/runwayml/v1/tasks/unknown"):
            async with session.get(fake.url + path, headers=AUTH) as r:
                assert (r.status, await r.read()) == (status, body)
                assert r.headers["Content-Type"] == content_type
        async with session.post(
            fake.url + "/runway/feed", json={"task_id": "unknown"}, headers=AUTH
        ) as r:
            assert r.status == status
            assert b"task_not_exist" in await r.read()
        _, task = await get_task(session, fake, task_id)  # visible after the window
        assert task["status"] == "SUCCEEDED"


def test_the_documented_shapes_are_all_there() -> None:
    bodies = {shape: body for shape, (_, body, _) in NOT_FOUND_SHAPES.items()}
    assert json.loads(bodies["code_400"])["code"] == "task_not_exist"
    assert NOT_FOUND_SHAPES["code_200"][0] == 200
    assert json.loads(bodies["status_200"]) == {"status": "task_not_exist"}
    assert json.loads(bodies["message_200"]) == {"message": "task_not_exist"}
    assert bodies["text_400"] == b"task_not_exist"


async def test_not_found_fault_for_one_poll(session: aiohttp.ClientSession) -> None:
    async with FakeCometAPI() as fake:
        task_id = await create(session, fake, RunwayImageToVideo(IMAGE))
        fake.inject("poll", Fault.task_not_exist("status_200"))
        first = await get_task(session, fake, task_id)
        second = await get_task(session, fake, task_id)
    assert first == (200, {"status": "task_not_exist"})
    assert second[1]["status"] == "SUCCEEDED"
    with pytest.raises(ValueError, match="shape must be one of"):
        Fault.task_not_exist("nope")  # type: ignore[arg-type]


def test_not_found_shape_is_checked() -> None:
    fake = FakeCometAPI()
    with pytest.raises(ValueError, match="not_found_shape must be one of"):
        fake.not_found_shape = "404"  # type: ignore[assignment]


# ---------------------------------------------------------------- failure under error (§8.5)


@pytest.mark.parametrize(
    ("life", "word"),
    [
        (Lifecycle(), "succeeded"),
        (Lifecycle().failing("content moderation"), "failed"),
        (Lifecycle().cancelled(), "cancelled"),
        (Lifecycle.by_polls(queued=1, running=0), "pending"),
    ],
)
async def test_lowercase_envelope(
    session: aiohttp.ClientSession, life: Lifecycle, word: str
) -> None:
    async with FakeCometAPI(tasks_envelope="lowercase", lifecycle=life) as fake:
        task_id = await create(session, fake, RunwayImageToVideo(IMAGE))
        _, task = await get_task(session, fake, task_id)
    assert task["status"] == word
    assert "failure" not in task
    assert "failureCode" not in task
    if word == "failed":
        assert task["error"] == "content moderation"
    else:
        assert "error" not in task


# ---------------------------------------------------------------- unknown routes


async def test_unknown_routes_html_by_default_json_when_asked(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeCometAPI() as fake:
        async with session.post(fake.url + "/runwayml/v1/nope", headers=AUTH) as r:
            assert r.status == 404
            assert r.content_type == "text/html"  # as CometAPI answers a wrong path (§3.2)
        fake.unknown_route = "json"
        async with session.post(fake.url + "/runwayml/v1/nope", headers=AUTH) as r:
            assert r.status == 404
            assert r.content_type == "application/json"
            error = (await r.json())["error"]
        assert error["message"] == "Invalid URL (POST /runwayml/v1/nope)"
        assert error["code"] == "invalid_request"
        assert fake.request_count(None) == 2
