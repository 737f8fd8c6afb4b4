"""What a type checker sees in a user's code: every value a user touches has a precise type.

CI checks this script with ``mypy --strict`` and with ``pyright`` in strict mode (the comment
below), and the example tests run it. Each ``assert_type`` fails the type check if the
library's annotation turned into ``Any``: a typo such as ``exc.task.eror_code`` would then
pass unnoticed.

    python examples/typed_usage.py

It runs offline against an in-process ``FakeCometAPI``: no key, no network, nothing paid.
"""
# pyright: strict

from __future__ import annotations

import asyncio
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import assert_type

from aiohttp import web

from cometrunway import (
    AmbiguousSubmitError,
    BatchSubmitError,
    Client,
    PollPolicy,
    Task,
    TaskFailed,
    TaskHandle,
    TaskStatus,
    TextToVideo,
)
from cometrunway.models import Request
from cometrunway.testing import FakeCometAPI, Fault, Lifecycle

FAST = PollPolicy(initial_delay=0, interval=0.02, min_interval=0.01, jitter=0)
REFUSED = "a storm at sea (refused)"
FLAGGED = "a flagged prompt"
INVALID = {"error": {"message": "bad prompt", "type": "comet_api_error", "code": "invalid_request"}}


async def first_failure(client: Client) -> str:
    """The failure reason of a task that fails, read through the typed ``TaskFailed.task``."""
    handle = await client.submit(TextToVideo(FLAGGED))
    try:
        await handle
    except TaskFailed as exc:
        assert_type(exc.task, Task)
        assert_type(exc.task.error_code, str | None)
        assert_type(exc.task.status, TaskStatus)
        return f"{exc.task.status.value}: {exc.task.error} [{exc.task.error_code}]"
    raise AssertionError("the flagged prompt should have failed")


async def partial_batch(client: Client, fake: FakeCometAPI) -> tuple[int, int]:
    """A batch where one create is refused: every other task is still handed back."""
    fake.inject("submit", Fault.response(400, INVALID), times=1)
    prompts = [REFUSED, "a lighthouse at dusk", "a fox in the snow"]
    try:
        await client.submit_many([TextToVideo(p) for p in prompts], max_concurrency=1)
    except BatchSubmitError as exc:
        assert_type(exc.handles, tuple[TaskHandle | None, ...])
        created = [handle for handle in exc.handles if handle is not None]
        finished = [await handle for handle in created]
        assert all(task.status is TaskStatus.SUCCEEDED for task in finished)
        return len(created), len(exc.exceptions)
    raise AssertionError("one create should have been refused")


def describe_ambiguous(exc: AmbiguousSubmitError) -> str:
    """What a user logs about a create that may have reached the server."""
    request = exc.request
    # Any request model: a typo such as ``request.promt`` fails type checking.
    assert_type(request, Request)
    kind = type(request).__name__
    return f"{kind} may have been created (journal key {exc.key or 'none'}): settle it"


async def maybe_created(client: Client, fake: FakeCometAPI) -> str:
    """A create whose answer is lost after the server made the task: never resent blind."""
    fake.inject("submit", Fault.server_error(500, after_create=True), times=1)
    try:
        await client.submit(TextToVideo("a kite over the dunes"))
    except AmbiguousSubmitError as exc:
        return describe_ambiguous(exc)
    raise AssertionError("the create should have been ambiguous")


def client_from_environment() -> Client:
    """``from_env`` takes ``Client``'s options by name and type: a misspelt or mistyped one
    is a type error (not called here: it needs ``COMETAPI_KEY``)."""
    return Client.from_env(poll=FAST, journal="run.sqlite", runway_version=None)


async def main() -> None:
    flagged = Lifecycle.by_polls(1, 1).failing("flagged", code="SAFETY.INPUT.TEXT")
    lives = {FLAGGED: flagged}
    fake_api = FakeCometAPI(lifecycle=Lifecycle.by_polls(1, 1), lifecycle_for=lives)
    async with fake_api as fake, Client("demo-key", base_url=fake.url, poll=FAST) as client:
        handle = await client.submit(TextToVideo("a paper boat on a lake"))
        assert_type(handle.task_id, str)
        assert_type(client.callback_app(), web.Application)
        task = await handle
        assert_type(task, Task)
        assert_type(task.video_url, str | None)
        assert_type(task.outputs, tuple[str, ...])
        with TemporaryDirectory() as folder:
            paths = await handle.download(folder)
            assert_type(paths, list[Path])
            print(f"downloaded {len(paths)} file(s)")
        print(f"failure: {await first_failure(client)}")
        created, refused = await partial_batch(client, fake)
        print(f"batch: created={created} refused={refused}")
        print(f"ambiguous: {await maybe_created(client, fake)}")
    print("typed usage: ok")


if __name__ == "__main__":
    asyncio.run(main())
