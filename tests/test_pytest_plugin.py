"""The ``fake_cometapi`` fixture users get from the installed pytest plugin."""

from __future__ import annotations

from cometrunway import Client, PollPolicy, TaskStatus, TextToVideo
from cometrunway.testing import FakeCometAPI, Lifecycle


async def test_fixture_serves_a_working_fake(fake_cometapi: FakeCometAPI) -> None:
    fake_cometapi.lifecycle = Lifecycle.by_polls(1, 1)
    policy = PollPolicy(initial_delay=0, interval=0.01, min_interval=0.005, jitter=0)
    async with Client("key", base_url=fake_cometapi.url, poll=policy) as client:
        task = await (await client.submit(TextToVideo("a cat")))
    assert task.status is TaskStatus.SUCCEEDED
    assert fake_cometapi.created_count() == 1
