"""The client end to end against FakeCometAPI: every route and envelope, the fault matrix,
lifecycle rules, shielded awaits and clean shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from support import FAST_RETRY, KEY, client_for

from cometrunway import (
    ActOne,
    AmbiguousSubmitError,
    AuthenticationError,
    Client,
    ClientStateError,
    EndpointError,
    ImageToVideo,
    InvalidRequestError,
    MediaInput,
    PollPolicy,
    RateLimitError,
    ReferenceImage,
    RetryPolicy,
    RunwayCharacterPerformance,
    RunwayImageToVideo,
    RunwayTextToImage,
    RunwayVideoToVideo,
    RunwayVideoUpscale,
    TaskFailed,
    TaskNotFound,
    TaskStatus,
    TextToVideo,
    TransportError,
    VideoToVideo,
)
from cometrunway.models import Request
from cometrunway.testing import FakeCometAPI, Fault, Lifecycle

EVERY_REQUEST: list[Request] = [
    TextToVideo("a cat"),
    ImageToVideo("Smile, Eat Burger", image="https://db.xiaohuhd.com/1.jpeg"),
    VideoToVideo("pixelated style", video="https://example.com/in.mp4"),
    ActOne(video="https://example.com/in.mp4", image="https://example.com/face.jpeg"),
    RunwayImageToVideo("https://example.com/cat.jpg", prompt_text="yawn"),
    RunwayVideoToVideo("https://example.com/in.mp4", model="aleph2", prompt_text="cinematic"),
    RunwayVideoUpscale("https://example.com/in.mp4", model="upscale_v1"),
    RunwayCharacterPerformance(
        MediaInput("https://example.com/character.mp4"),
        MediaInput("https://example.com/performance.mp4"),
    ),
    RunwayTextToImage(
        "a cat in a hat", reference_images=[ReferenceImage("https://example.com/ref.png")]
    ),
]


@pytest.fixture
async def polled_fake() -> AsyncIterator[FakeCometAPI]:
    async with FakeCometAPI(lifecycle=Lifecycle.by_polls(queued=1, running=2)) as server:
        yield server


@pytest.mark.parametrize("request_model", EVERY_REQUEST, ids=lambda r: type(r).__name__)
async def test_every_route_submits_and_resolves(
    polled_fake: FakeCometAPI, request_model: Request
) -> None:
    async with client_for(polled_fake) as client:
        handle = await client.submit(request_model)
        task = await handle
    assert task.status is TaskStatus.SUCCEEDED
    assert task.outputs and task.outputs[0].startswith(polled_fake.url + "/cdn/")
    assert polled_fake.created_count() == 1
    record = polled_fake.tasks[handle.task_id]
    assert record.body is not None


@pytest.mark.parametrize("envelope", ["A1", "A2", "A3"])
@pytest.mark.parametrize("feed", ["F1", "F2", "F3"])
async def test_every_pro_envelope(polled_fake: FakeCometAPI, envelope: str, feed: str) -> None:
    polled_fake.create_envelope = envelope  # type: ignore[assignment]
    polled_fake.feed_envelope = feed  # type: ignore[assignment]
    async with client_for(polled_fake) as client:
        task = await (await client.submit(TextToVideo("a cat")))
    assert task.status is TaskStatus.SUCCEEDED
    assert task.video_url == polled_fake.output_url(task.task_id)


@pytest.mark.parametrize("envelope", ["T1", "T2"])
async def test_every_tasks_envelope(polled_fake: FakeCometAPI, envelope: str) -> None:
    polled_fake.tasks_envelope = envelope  # type: ignore[assignment]
    async with client_for(polled_fake) as client:
        task = await (await client.submit(RunwayImageToVideo("https://example.com/cat.jpg")))
    assert task.status is TaskStatus.SUCCEEDED
    assert task.video_url == polled_fake.output_url(task.task_id)


async def test_the_wire_request_carries_key_version_and_callback(fake: FakeCometAPI) -> None:
    async with client_for(fake, callback_url="https://hooks.example.com/runway") as client:
        await (await client.submit(TextToVideo("a cat")))
        token = client.callback_token
    create = next(r for r in fake.requests if r.path == "/runway/pro/generate")
    assert create.headers["Authorization"] == f"Bearer {KEY}"
    assert create.headers["X-Runway-Version"] == "2024-11-06"
    assert create.body["callback_url"] == f"https://hooks.example.com/runway?token={token}"
    assert create.body["options"]["seconds"] == 5


async def test_default_callback_is_inert(fake: FakeCometAPI) -> None:
    async with client_for(fake) as client:
        await (await client.submit(TextToVideo("a cat")))
    create = next(r for r in fake.requests if r.path == "/runway/pro/generate")
    assert create.body["callback_url"] == "https://callback.invalid/"


async def test_failed_task_raises_task_failed(fake: FakeCometAPI) -> None:
    fake.lifecycle = Lifecycle.by_polls(1, 1).failing("bad prompt", "SAFETY.INPUT.TEXT")
    async with client_for(fake) as client:
        handle = await client.submit(TextToVideo("a cat"))
        with pytest.raises(TaskFailed) as info:
            await handle
    assert info.value.task.error_code in ("SAFETY.INPUT.TEXT", None)
    assert "bad prompt" in str(info.value)
    assert handle.status is TaskStatus.FAILED


# ---------------------------------------------------------------- the fault matrix


@pytest.mark.parametrize(
    "fault",
    [
        Fault.rate_limited(0.01),
        Fault.rate_limited(None),
        Fault.server_error(503),
        Fault.server_error(502),
    ],
    ids=["429-retry-after", "429-bare", "503", "502"],
)
async def test_not_accepted_creates_are_retried_once_created(
    fake: FakeCometAPI, fault: Fault
) -> None:
    fake.inject("submit", fault, times=2)
    async with client_for(fake) as client:
        task = await (await client.submit(TextToVideo("a cat")))
        stats = client.statistics()
    assert task.status is TaskStatus.SUCCEEDED
    assert fake.created_count() == 1
    assert stats.submit_retries == 2


async def test_retry_after_is_honoured_as_a_floor(fake: FakeCometAPI) -> None:
    fake.inject("submit", Fault.rate_limited(0.2), times=1)
    loop = asyncio.get_running_loop()
    async with client_for(fake) as client:
        started = loop.time()
        await client.submit(TextToVideo("a cat"))
        waited = loop.time() - started
        assert client.statistics().rate_limited == 1
    assert waited >= 0.2


async def test_retries_give_up_with_the_servers_error(fake: FakeCometAPI) -> None:
    fake.inject("submit", Fault.rate_limited(0.001), times=10)
    async with client_for(fake) as client:
        with pytest.raises(RateLimitError):
            await client.submit(TextToVideo("a cat"))
    assert fake.created_count() == 0


@pytest.mark.parametrize(
    "fault",
    [
        Fault.server_error(500, after_create=True),
        Fault.server_error(504, after_create=True),
        Fault.server_error(524, after_create=True),
        Fault.drop(after_create=True),
        Fault.garbage(200, after_create=True),
        Fault.response(200, {}, after_create=True),
    ],
    ids=["500-after", "504-after", "524-after", "drop-after", "garbage-200", "empty-200"],
)
async def test_maybe_accepted_creates_are_never_retried(fake: FakeCometAPI, fault: Fault) -> None:
    fake.inject("submit", fault, times=5)
    request = TextToVideo("a cat")
    async with client_for(fake) as client:
        with pytest.raises(AmbiguousSubmitError) as info:
            await client.submit(request)
        assert client.statistics().ambiguous_submits == 1
    assert info.value.request is request
    assert fake.created_count() == 1  # exactly one, never a second paid create
    assert fake.request_count("submit") == 1


async def test_read_timeout_on_create_is_ambiguous(fake: FakeCometAPI) -> None:
    fake.inject("submit", Fault.delay(0.5), times=1)
    timeout = aiohttp.ClientTimeout(sock_read=0.05, connect=5)
    async with client_for(fake, http_timeouts=timeout) as client:
        with pytest.raises(AmbiguousSubmitError) as info:
            await client.submit(TextToVideo("a cat"))
    assert isinstance(info.value.__cause__, TransportError)
    assert fake.request_count("submit") == 1


async def test_connect_failure_is_retried_then_raised() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with Client(KEY, base_url=f"http://127.0.0.1:{port}", retry=FAST_RETRY) as client:
        with pytest.raises(TransportError) as info:
            await client.submit(TextToVideo("a cat"))
        assert client.statistics().submit_retries == FAST_RETRY.max_tries - 1
    assert info.value.request_sent is False


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.unauthorized(), AuthenticationError),
        (Fault.html(404), EndpointError),
        (Fault.server_error(500, after_create=False), AmbiguousSubmitError),
    ],
    ids=["401", "html", "500"],
)
async def test_refusals_are_raised(fake: FakeCometAPI, fault: Fault, error: type) -> None:
    fake.inject("submit", fault)
    async with client_for(fake) as client:
        with pytest.raises(error):
            await client.submit(TextToVideo("a cat"))
    assert fake.request_count("submit") == 1


async def test_validation_error_from_server(fake: FakeCometAPI) -> None:
    async with client_for(fake) as client:
        with pytest.raises(InvalidRequestError) as info:
            await client.submit(TextToVideo("a cat", extra={"callback_url": ""}))
    assert info.value.code == "callback_url_empty"


async def test_wrong_key_fails_fast(fake: FakeCometAPI) -> None:
    fake.api_key = "the-right-key"
    async with client_for(fake) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.submit(TextToVideo("a cat"))
    assert KEY not in str(info.value) and KEY not in repr(info.value)


# ---------------------------------------------------------------- polling


async def test_poll_faults_keep_the_task_pending(polled_fake: FakeCometAPI) -> None:
    polled_fake.inject("poll", Fault.server_error(503), times=2)
    polled_fake.inject("poll", Fault.rate_limited(0.01), times=1)
    polled_fake.inject("poll", Fault.drop(), times=1)
    polled_fake.inject("poll", Fault.garbage(), times=1)
    async with client_for(polled_fake) as client:
        task = await (await client.submit(TextToVideo("a cat")))
        stats = client.statistics()
    assert task.status is TaskStatus.SUCCEEDED
    assert stats.poller.poll_errors == 5


async def test_401_on_poll_fails_every_handle(polled_fake: FakeCometAPI) -> None:
    async with client_for(polled_fake) as client:
        handles = await client.submit_many([TextToVideo(f"cat {i}") for i in range(3)])
        polled_fake.inject("poll", Fault.unauthorized(), times=1)
        for handle in handles:
            with pytest.raises(AuthenticationError):
                await handle


async def test_task_not_exist_window_then_success(fake: FakeCometAPI) -> None:
    fake.lifecycle = Lifecycle(not_found_polls=3, queued_polls=1)
    async with client_for(fake) as client:
        task = await (await client.submit(TextToVideo("a cat")))
        assert client.statistics().poller.not_found == 3
    assert task.status is TaskStatus.SUCCEEDED


async def test_unknown_id_fails_after_grace(fake: FakeCometAPI) -> None:
    policy = PollPolicy(
        initial_delay=0,
        interval=0.01,
        max_interval=0.02,
        min_interval=0.005,
        not_found_grace=0.05,
        requests_per_second=5000,
        jitter=0,
    )
    async with client_for(fake, poll=policy) as client:
        handle = client.track("no-such-task")
        with pytest.raises(TaskNotFound) as info:
            await handle
    assert info.value.task_id == "no-such-task"


async def test_track_follows_an_existing_id_on_either_route(polled_fake: FakeCometAPI) -> None:
    async with client_for(polled_fake) as client:
        created = await client.submit(RunwayImageToVideo("https://example.com/cat.jpg"))
        via_feed = client.track(created.task_id, route="feed")
        assert via_feed is created  # one handle per id
        task = await created
        fresh = await client.fetch(created.task_id, route="feed")
    assert task.status is TaskStatus.SUCCEEDED
    assert fresh.status is TaskStatus.SUCCEEDED


async def test_shielded_await_leaves_the_task_tracked(polled_fake: FakeCometAPI) -> None:
    async with client_for(polled_fake) as client:
        handle = await client.submit(TextToVideo("a cat"))
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0):
                await handle
        assert not handle.done()
        task = await handle
    assert task.status is TaskStatus.SUCCEEDED


async def test_as_completed_yields_each_once(polled_fake: FakeCometAPI) -> None:
    polled_fake.lifecycle_for = {"slow": Lifecycle.by_polls(3, 6), "fast": Lifecycle.instant()}
    async with client_for(polled_fake) as client:
        slow = await client.submit(TextToVideo("slow"))
        fast = await client.submit(TextToVideo("fast"))
        order = [h async for h in client.as_completed([slow, fast, slow])]
    assert order == [fast, slow]


# ---------------------------------------------------------------- lifecycle


async def test_lifecycle_messages() -> None:
    client = Client(KEY, base_url="http://127.0.0.1:9")
    with pytest.raises(ClientStateError, match="not open"):
        await client.submit(TextToVideo("a cat"))
    async with client:
        with pytest.raises(ClientStateError, match="already open"):
            await client.__aenter__()
    with pytest.raises(ClientStateError, match="cannot be reopened"):
        async with client:
            pass
    with pytest.raises(ClientStateError, match="closed"):
        client.track("abc")


async def test_leaving_the_block_fails_pending_handles_cleanly(fake: FakeCometAPI) -> None:
    fake.lifecycle = Lifecycle.by_polls(1000, 1000)
    async with client_for(fake) as client:
        handle = await client.submit(TextToVideo("a cat"))
    with pytest.raises(ClientStateError, match=r"client\.track"):
        await handle
    assert fake.created_count() == 1


async def test_borrowed_session_is_left_open(fake: FakeCometAPI) -> None:
    async with aiohttp.ClientSession() as session:
        async with client_for(fake, session=session) as client:
            await (await client.submit(TextToVideo("a cat")))
        assert not session.closed


async def test_key_never_in_repr_or_logs(
    fake: FakeCometAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.inject("poll", Fault.server_error(503))
    async with client_for(fake) as client:
        assert KEY not in repr(client)
        await (await client.submit(TextToVideo("a cat")))
    assert KEY not in caplog.text


def test_constructor_refuses_bad_options() -> None:
    with pytest.raises(ValueError, match="api_key"):
        Client("")
    with pytest.raises(ValueError, match="base_url"):
        Client(KEY, base_url="api.cometapi.com")
    with pytest.raises(TypeError, match="PollPolicy"):
        Client(KEY, poll=RetryPolicy())  # type: ignore[arg-type]


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMETAPI_KEY", raising=False)
    with pytest.raises(ValueError, match="COMETAPI_KEY"):
        Client.from_env()
    monkeypatch.setenv("COMETAPI_KEY", KEY)
    monkeypatch.setenv("COMETAPI_BASE_URL", "http://127.0.0.1:9")
    client = Client.from_env()
    assert client.base_url == "http://127.0.0.1:9"
    assert Client.from_env(base_url="https://other.example").base_url == "https://other.example"


async def test_errors_inside_the_block_are_not_wrapped(fake: FakeCometAPI) -> None:
    with pytest.raises(KeyError, match="mine"):
        async with client_for(fake):
            raise KeyError("mine")
    with pytest.raises(ClientStateError, match="journal"):
        async with client_for(fake) as client:
            await client.resume()


async def test_stable_callback_token_survives_a_new_client(fake: FakeCometAPI) -> None:
    token = "a-stable-secret-token-0123"
    one = client_for(fake, callback_url="https://hooks.example.com/cb", callback_token=token)
    two = client_for(fake, callback_url="https://hooks.example.com/cb", callback_token=token)
    assert one.callback_url == two.callback_url == f"https://hooks.example.com/cb?token={token}"
    assert client_for(fake).callback_token != client_for(fake).callback_token
    with pytest.raises(ValueError, match="16 characters"):
        client_for(fake, callback_token="short")
