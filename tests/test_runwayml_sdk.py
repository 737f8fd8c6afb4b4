"""Runway's official Python SDK (``runwayml``), a client nobody here wrote, against FakeCometAPI.

With ``_strict_response_validation=True`` the SDK checks every answer against Runway's own
response models (``estimatedCost`` on creates and unfinished tasks, ``cost`` once they end,
wire reference §8.2), so these tests say the fake answers like the official API on every
official-format route it serves: create → ``wait_for_task_output()`` → ``tasks.retrieve`` →
``tasks.delete``. The SDK only talks to the fake on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import runwayml
import runwayml.lib.polling
from runwayml import AsyncRunwayML

from cometrunway.testing import FakeCometAPI, Lifecycle

KEY = "sk-test"
IMAGE = "https://example.com/cat.jpg"
VIDEO = "https://example.com/clip.mp4"
# Polls answered queued, then running, before each fake task ends: the SDK's waiting loop
# meets every state the official API has on the way.
QUEUED_POLLS = 1
RUNNING_POLLS = 1

Create = Callable[[AsyncRunwayML], Awaitable[Any]]


@pytest.fixture(autouse=True)
def no_sdk_poll_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK waits about 6 s between polls (runwayml.lib.polling); the fake needs none.
    monkeypatch.setattr(runwayml.lib.polling, "POLL_TIME", 0)
    monkeypatch.setattr(runwayml.lib.polling, "POLL_JITTER", 0)


@pytest.fixture
async def fake() -> AsyncIterator[FakeCometAPI]:
    life = Lifecycle.by_polls(queued=QUEUED_POLLS, running=RUNNING_POLLS)
    async with FakeCometAPI(api_key=KEY, lifecycle=life, allow_cancel=True) as server:
        yield server


@pytest.fixture
async def sdk(fake: FakeCometAPI) -> AsyncIterator[AsyncRunwayML]:
    # The SDK's paths are /v1/...; CometAPI serves Runway's format under /runwayml/v1/...
    # No proxy from the environment: the SDK talks to the fake on 127.0.0.1 and nothing else.
    async with AsyncRunwayML(
        api_key=KEY,
        base_url=f"{fake.url}/runwayml",
        max_retries=0,
        http_client=runwayml.DefaultAsyncHttpxClient(trust_env=False),
        _strict_response_validation=True,
    ) as client:
        yield client


ROUTES: dict[str, tuple[Create, str]] = {
    "image_to_video": (
        lambda c: c.image_to_video.create(
            model="gen4_turbo", prompt_image=IMAGE, ratio="1280:720", prompt_text="a yawn"
        ),
        "video.mp4",
    ),
    "video_to_video": (
        lambda c: c.video_to_video.create(
            model="aleph2", video_uri=VIDEO, prompt_text="make it snow"
        ),
        "video.mp4",
    ),
    "video_upscale": (
        lambda c: c.video_upscale.create(model="magnific_video_upscaler_creative", video_uri=VIDEO),
        "video.mp4",
    ),
    "character_performance": (
        lambda c: c.character_performance.create(
            model="act_two",
            character={"type": "image", "uri": IMAGE},
            reference={"type": "video", "uri": VIDEO},
            ratio="1280:720",
        ),
        "video.mp4",
    ),
    "text_to_image": (
        lambda c: c.text_to_image.create(
            model="gen4_image",
            prompt_text="@cat on a hat",
            ratio="1920:1080",
            reference_images=[{"uri": IMAGE, "tag": "cat"}],
        ),
        "image.png",
    ),
    "text_to_speech": (
        lambda c: c.text_to_speech.create(
            model="eleven_multilingual_v2",
            prompt_text="Hello from the fake.",
            voice={"type": "runway-preset", "preset_id": "Maya"},
        ),
        "audio.mp3",
    ),
    "sound_effect": (
        lambda c: c.sound_effect.create(
            model="eleven_text_to_sound_v2", prompt_text="A door creaks.", duration=2, loop=False
        ),
        "audio.mp3",
    ),
}


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_official_sdk_create_wait_retrieve_delete(
    fake: FakeCometAPI, sdk: AsyncRunwayML, route: str
) -> None:
    create, main_output = ROUTES[route]
    created = await create(sdk)
    assert created.estimated_cost.credits > 0  # strictly validated create answer (§8.2)
    record = fake.tasks[created.id]
    assert record.path == f"/runwayml/v1/{route}"
    assert fake.requests[-1].headers["X-Runway-Version"] == "2024-11-06"

    finished = await created.wait_for_task_output(timeout=None)
    assert finished.status == "SUCCEEDED"
    assert finished.output == [fake.output_url(created.id, main_output)]
    assert finished.cost.credits == created.estimated_cost.credits
    assert record.polls == QUEUED_POLLS + RUNNING_POLLS + 1  # met PENDING and RUNNING too

    again = await sdk.tasks.retrieve(created.id)
    assert again.status == "SUCCEEDED"
    assert again.id == created.id

    assert await sdk.tasks.delete(created.id) is None  # 204: a finished task is deleted
    with pytest.raises(runwayml.APIStatusError):
        await sdk.tasks.retrieve(created.id)


async def test_official_sdk_cancels_a_running_task(fake: FakeCometAPI, sdk: AsyncRunwayML) -> None:
    fake.lifecycle = Lifecycle.by_polls(queued=10, running=10)
    created = await sdk.text_to_speech.create(
        model="eleven_v3",
        prompt_text="Stop me.",
        voice={"type": "runway-preset", "preset_id": "Bernard"},
    )
    pending = await sdk.tasks.retrieve(created.id)
    assert pending.status == "PENDING"
    assert pending.estimated_cost.credits == created.estimated_cost.credits

    await sdk.tasks.delete(created.id)
    cancelled = await sdk.tasks.retrieve(created.id)
    assert cancelled.status == "CANCELLED"
    assert cancelled.cost.credits == 0
    with pytest.raises(runwayml.TaskFailedError):
        await created.wait_for_task_output(timeout=None)


async def test_official_sdk_reads_a_failed_task(fake: FakeCometAPI, sdk: AsyncRunwayML) -> None:
    fake.lifecycle = Lifecycle().failing("The prompt was refused.", "SAFETY.INPUT.TEXT")
    created = await sdk.sound_effect.create(model="eleven_text_to_sound_v2", prompt_text="No.")
    with pytest.raises(runwayml.TaskFailedError) as caught:
        await created.wait_for_task_output(timeout=None)
    failed = caught.value.task_details
    assert failed.status == "FAILED"
    assert failed.failure == "The prompt was refused."
    assert failed.failure_code == "SAFETY.INPUT.TEXT"
    assert failed.cost.credits == 0


async def test_without_cost_fields_the_strict_sdk_refuses(
    fake: FakeCometAPI, sdk: AsyncRunwayML
) -> None:
    # What CometAPI's pages show (no cost fields) fails Runway's strict validation: the
    # reason the fake sends them by default.
    fake.cost_fields = False
    with pytest.raises(runwayml.APIResponseValidationError):
        await sdk.image_to_video.create(model="gen4_turbo", prompt_image=IMAGE, ratio="1280:720")


async def test_cancel_refused_like_cometapi_documents(
    fake: FakeCometAPI, sdk: AsyncRunwayML
) -> None:
    fake.allow_cancel = False
    created = await sdk.image_to_video.create(
        model="gen4_turbo", prompt_image=IMAGE, ratio="1280:720"
    )
    with pytest.raises(runwayml.APIStatusError) as caught:
        await sdk.tasks.delete(created.id)
    assert caught.value.status_code == 405
