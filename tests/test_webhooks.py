"""The callback receiver: FakeCometAPI posts real callbacks to ``client.callback_app()`` on
127.0.0.1 and each one wakes the poller; forgeries, oversized and malformed bodies are
refused; repeats are idempotent; the Starlette adapter behaves the same."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from support import FAST_POLL, FAST_RETRY, KEY

from cometrunway import Client, PollPolicy, TextToVideo
from cometrunway.testing import FakeCometAPI, Lifecycle
from cometrunway.webhooks import (
    RECEIVER_KEY,
    REJECT_REASONS,
    CallbackReceiver,
    CallbackVerdict,
    aiohttp_app,
    starlette_endpoint,
)

# Polls so slow that only a callback can make a handle resolve within the test's timeout.
LONG_POLL = PollPolicy(
    initial_delay=30,
    interval=30,
    max_interval=60,
    min_interval=1,
    requests_per_second=5000,
    jitter=0,
)
PATH = "/runway/callback"
SHORT_LIFE = Lifecycle.by_time(queued=0.02, running=0.05)


class StubClient:
    """A client stand-in: a token, and a record of the tasks woken."""

    def __init__(self, known: set[str] | None = None, token: str = "s3cret") -> None:
        self.callback_token = token
        self.known = known if known is not None else set()
        self.woken: list[str] = []

    def wake(self, task_id: str) -> bool:
        self.woken.append(task_id)
        return task_id in self.known


@asynccontextmanager
async def serving(app_for: Any) -> AsyncIterator[tuple[str, Any]]:
    """Reserve a loopback port first, so the client can be built with its callback URL
    before the app (which needs the client) exists. Yields (url, start(app))."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> web.Application:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        runners.append(runner)
        await web.SockSite(runner, sock).start()
        return app

    try:
        yield f"http://127.0.0.1:{port}{PATH}", start
    finally:
        for runner in runners:
            await runner.cleanup()
        sock.close()


@asynccontextmanager
async def wired(
    fake: FakeCometAPI, poll: PollPolicy = LONG_POLL
) -> AsyncIterator[tuple[Client, CallbackReceiver]]:
    """A client whose callback URL is its own running ``callback_app()``."""
    async with serving(None) as (url, start):
        async with Client(
            KEY, base_url=fake.url, callback_url=url, poll=poll, retry=FAST_RETRY
        ) as client:
            app = await start(client.callback_app())
            yield client, app[RECEIVER_KEY]


# ---------------------------------------------------------------- end to end


@pytest.mark.parametrize("callback_format", ["F3", "F1"])
async def test_a_callback_resolves_without_waiting_for_the_next_poll(callback_format: str) -> None:
    async with FakeCometAPI(lifecycle=SHORT_LIFE, callback_format=callback_format) as fake:  # type: ignore[arg-type]
        async with wired(fake) as (client, receiver):
            handle = await client.submit(TextToVideo("a cat"))
            async with asyncio.timeout(5):  # the first poll is 30 s away
                task = await handle
    assert task.task_id == handle.task_id
    assert task.video_url == fake.output_url(task.task_id)
    assert fake.request_count("poll") == 1  # the one the callback asked for
    [record] = fake.callbacks_sent
    assert record.status == 200 and record.error is None
    assert record.url.endswith(f"?token={client.callback_token}")
    stats = receiver.statistics()
    assert (stats.received, stats.accepted, stats.duplicates, stats.unknown) == (1, 1, 0, 0)
    assert stats.rejected_total == 0


async def test_duplicate_posts_are_idempotent() -> None:
    async with FakeCometAPI(lifecycle=SHORT_LIFE, callback_duplicates=3) as fake:
        async with wired(fake) as (client, receiver):
            handle = await client.submit(TextToVideo("a cat"))
            async with asyncio.timeout(5):
                await handle
            await fake.drain_callbacks()
            stats = client.statistics()
    assert [r.attempt for r in fake.callbacks_sent] == [0, 1, 2, 3]
    assert all(r.status == 200 for r in fake.callbacks_sent)
    assert stats.poller.succeeded == 1 and stats.poller.failed == 0
    assert fake.request_count("poll") <= 4  # at most one poll per post, usually one in all
    received = receiver.statistics()
    assert (received.received, received.accepted, received.duplicates) == (4, 4, 3)


async def test_the_poll_and_the_callback_race_without_errors() -> None:
    lives = {f"p{i}": Lifecycle.by_time(queued=0, running=0.01 * i) for i in range(12)}
    lives |= {f"q{i}": Lifecycle.by_polls(queued=0, running=1) for i in range(4)}
    async with (
        FakeCometAPI(lifecycle_for=lives, callback_duplicates=1) as fake,
        wired(fake, poll=FAST_POLL) as (client, receiver),
    ):
        handles = await client.submit_many([TextToVideo(p) for p in lives])
        async with asyncio.timeout(10):
            tasks = await asyncio.gather(*handles)
        await fake.drain_callbacks()
    assert len({t.task_id for t in tasks}) == len(lives)
    assert len(fake.callbacks_sent) == 2 * len(lives)
    # Whoever came first, nothing failed: late posts for finished tasks are 200 or 202.
    assert {r.status for r in fake.callbacks_sent} <= {200, 202}
    assert all(r.error is None for r in fake.callbacks_sent)
    stats = receiver.statistics()
    assert stats.rejected_total == 0
    assert stats.accepted + stats.unknown == stats.received == 2 * len(lives)


# ---------------------------------------------------------------- refusals over HTTP


@pytest.fixture
async def live() -> AsyncIterator[tuple[str, Client, CallbackReceiver, str]]:
    """A receiver on 127.0.0.1 whose client follows one task (the returned id)."""
    async with FakeCometAPI(lifecycle=Lifecycle.by_time(queued=60)) as fake:
        async with wired(fake) as (client, receiver):
            handle = await client.submit(TextToVideo("a cat"))
            yield client.callback_url or "", client, receiver, handle.task_id


async def post(url: str, body: bytes | Any, **options: Any) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=body, **options) as answer,
    ):
        return answer.status, await answer.json()


def f3(task_id: str, status: str = "3") -> bytes:
    record = {"task_id": task_id, "status": status, "video_url": None, "msg": None}
    return json.dumps(record).encode()


async def test_a_good_callback_over_http(live: tuple[str, Client, CallbackReceiver, str]) -> None:
    url, client, receiver, task_id = live
    status, body = await post(url, f3(task_id, "1"))
    assert status == 200
    assert body == {"ok": True, "message": body["message"], "task_id": task_id, "duplicate": False}
    status, body = await post(url, f3(task_id, "1"))
    assert (status, body["duplicate"]) == (200, True)
    status, body = await post(url, f3(task_id, "3"))  # a new state is not a duplicate
    assert (status, body["duplicate"]) == (200, False)


async def test_forged_and_missing_tokens_are_refused(
    live: tuple[str, Client, CallbackReceiver, str],
) -> None:
    url, client, receiver, task_id = live
    base = url.split("?")[0]
    assert (await post(base + "?token=guess", f3(task_id)))[0] == 401
    assert (await post(base + "?token=" + client.callback_token[:-1], f3(task_id)))[0] == 401
    assert (await post(base + "?token=", f3(task_id)))[0] == 401
    status, body = await post(base, f3(task_id))
    assert status == 401 and "task_id" not in body
    assert (await post(base + "?token=t%C3%B6k%C3%A9n", f3(task_id)))[0] == 401
    rejected = receiver.statistics().rejected
    assert rejected["token_invalid"] == 3 and rejected["token_missing"] == 2
    assert receiver.statistics().accepted == 0


async def test_oversized_bodies_are_refused(
    live: tuple[str, Client, CallbackReceiver, str],
) -> None:
    url, client, receiver, task_id = live
    huge = b'{"task_id": "' + task_id.encode() + b'", "pad": "' + b"x" * 300_000 + b'"}'
    assert (await post(url, huge))[0] == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: streamed, cut at the cap
        for _ in range(40):
            yield b" " * 10_000

    assert (await post(url, chunks()))[0] == 413
    assert receiver.statistics().rejected["too_large"] == 2


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe\x00garbage",
        b'{"task_id": "abc",',
        b"[" * 100_000,
    ],
)
async def test_malformed_json_is_refused(
    live: tuple[str, Client, CallbackReceiver, str], body: bytes
) -> None:
    url, client, receiver, task_id = live
    status, answer = await post(url, body)
    assert (status, answer["ok"]) == (400, False)
    assert receiver.statistics().rejected["not_json"] == 1


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "a string",
        42,
        {},
        {"status": "3"},
        {"task_id": 123, "status": "3"},
        {"task_id": "", "status": "3"},
        {"task_id": "../../etc/passwd", "status": "3"},
        {"task_id": "x\n[fake log line]", "status": "3"},
        {"task_id": "abc", "status": {"nested": True}},
        {"id": "abc"},  # an id without a status is not a Runway task
        {"code": "task_not_exist", "message": "task_not_exist", "data": None},
        {"code": 200, "data": [1, 2]},
    ],
)
async def test_wrong_shapes_are_refused(
    live: tuple[str, Client, CallbackReceiver, str], payload: Any
) -> None:
    url, client, receiver, task_id = live
    status, answer = await post(url, json.dumps(payload).encode())
    assert (status, answer["ok"]) == (400, False)
    assert receiver.statistics().rejected["bad_shape"] == 1


async def test_an_unknown_task_is_accepted_and_ignored(
    live: tuple[str, Client, CallbackReceiver, str], caplog: pytest.LogCaptureFixture
) -> None:
    url, client, receiver, task_id = live
    with caplog.at_level("INFO", logger="cometrunway.webhooks"):
        status, body = await post(url, f3("0ab3bfe2-be23-4635-8c35-890fb2c1732d"))
    assert status == 202 and body["ok"] is True
    assert receiver.statistics().unknown == 1
    assert "0ab3bfe2-be23-4635-8c35-890fb2c1732d" in caplog.text
    assert client.callback_token not in caplog.text


async def test_only_post_is_routed(live: tuple[str, Client, CallbackReceiver, str]) -> None:
    url, client, receiver, task_id = live
    async with aiohttp.ClientSession() as http, http.get(url) as answer:
        assert answer.status == 405
    assert receiver.statistics().received == 0


# ---------------------------------------------------------------- the core


@pytest.mark.parametrize(
    "payload",
    [
        # Upstream F3 data record (wire reference §1.5, §4).
        {"task_id": "t-1", "status": "3", "video_url": "http://cdn/x.mp4", "refund": "0"},
        # The CometAPI wrapper record (F1 data), with its nested provider task.
        {"task_id": "t-1", "status": "SUCCESS", "progress": "100%", "data": {"id": "t-1"}},
        # A bare Runway task (§1.10 T1).
        {"id": "t-1", "status": "SUCCEEDED", "output": ["https://cdn/x.mp4"]},
        # Enveloped, just in case: F3 and F1 with their outer envelopes.
        {"code": 200, "msg": "成功", "data": {"task_id": "t-1", "status": "3"}},
        {"code": "success", "message": "", "data": {"task_id": "t-1", "status": "SUCCESS"}},
        {"code": "success", "data": {"data": {"id": "t-1", "status": "SUCCEEDED"}}},
        {"task_id": "t-1", "status": 3},
        {"task_id": "t-1"},
    ],
)
def test_every_documented_payload_wakes_its_task(payload: Mapping[str, Any]) -> None:
    stub = StubClient({"t-1"})
    receiver = CallbackReceiver(stub)
    verdict = receiver.handle(json.dumps(payload).encode(), {"token": "s3cret"}, {})
    assert verdict == CallbackVerdict(200, verdict.message, "t-1", False)
    assert stub.woken == ["t-1"]


def test_a_callback_never_resolves_anything_itself() -> None:
    stub = StubClient({"t-1"})
    receiver = CallbackReceiver(stub)
    receiver.handle(f3("t-1"), {"token": "s3cret"}, {})
    assert stub.woken == ["t-1"]  # all it does is ask for a poll


def test_refusals_wake_nothing_and_are_counted() -> None:
    stub = StubClient({"t-1"})
    receiver = CallbackReceiver(stub, max_body_bytes=1000)
    good = {"token": "s3cret"}
    verdicts = [
        receiver.handle(f3("t-1"), {}, {}),
        receiver.handle(f3("t-1"), {"token": "S3CRET"}, {}),
        receiver.handle(b"x" * 1001, good, {}),
        receiver.handle(b"", good, {"Content-Length": "5000"}),
        receiver.handle(b"{", good, {}),
        receiver.handle(b"[]", good, {}),
    ]
    assert [v.status for v in verdicts] == [401, 401, 413, 413, 400, 400]
    assert all(v.task_id is None and not v.accepted for v in verdicts)
    assert stub.woken == []
    stats = receiver.statistics()
    assert stats.received == 6 and stats.rejected_total == 6
    assert set(stats.rejected) == set(REJECT_REASONS)
    assert stats.rejected["too_large"] == 2


def test_a_finished_task_reposted_is_a_duplicate_not_unknown() -> None:
    stub = StubClient({"t-1"})
    receiver = CallbackReceiver(stub)
    first = receiver.handle(f3("t-1"), {"token": "s3cret"}, {})
    stub.known.clear()  # the poller resolved it and forgot it
    again = receiver.handle(f3("t-1"), {"token": "s3cret"}, {})
    assert (first.status, first.duplicate) == (200, False)
    assert (again.status, again.duplicate) == (200, True)
    assert receiver.statistics().unknown == 0


def test_a_bug_in_wake_answers_500_and_does_not_raise() -> None:
    class Broken(StubClient):
        def wake(self, task_id: str) -> bool:
            raise RuntimeError("boom")

    receiver = CallbackReceiver(Broken())
    verdict = receiver.handle(f3("t-1"), {"token": "s3cret"}, {})
    assert verdict.status == 500
    assert receiver.statistics().rejected["error"] == 1


def test_receiver_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="max_body_bytes"):
        CallbackReceiver(StubClient(), max_body_bytes=0)
    with pytest.raises(TypeError):
        CallbackReceiver(StubClient(), max_body_bytes=True)
    with pytest.raises(ValueError, match="path"):
        aiohttp_app(StubClient(), path="runway/callback")


async def test_callback_app_takes_a_custom_path(fake: FakeCometAPI) -> None:
    async with Client(KEY, base_url=fake.url) as client:
        app = client.callback_app("/hooks/runway", max_body_bytes=10)
        assert app[RECEIVER_KEY].max_body_bytes == 10
        assert [r.resource.canonical for r in app.router.routes()] == ["/hooks/runway"]  # type: ignore[union-attr]


# ---------------------------------------------------------------- Starlette / FastAPI


async def asgi_post(
    app: Any, query: str, chunks: list[bytes], *, length: bool = True
) -> tuple[int, dict[str, Any]]:
    headers = [(b"content-type", b"application/json")]
    if length:
        headers.append((b"content-length", str(sum(map(len, chunks))).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body)


async def test_starlette_endpoint_wakes_the_poller() -> None:
    pytest.importorskip("starlette")
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import Route

    async with (
        FakeCometAPI(lifecycle=SHORT_LIFE) as fake,
        Client(KEY, base_url=fake.url, poll=LONG_POLL, retry=FAST_RETRY) as client,
    ):
        endpoint = starlette_endpoint(client)
        app = Starlette(routes=[Route(PATH, endpoint, methods=["POST"])])
        handle = await client.submit(TextToVideo("a cat"))  # inert callback URL: we post
        fake.finish(handle.task_id)
        token = f"token={client.callback_token}"
        status, body = await asgi_post(app, token, [f3(handle.task_id)])
        assert (status, body["task_id"]) == (200, handle.task_id)
        async with asyncio.timeout(5):
            await handle
        assert (await asgi_post(app, "token=nope", [f3(handle.task_id)]))[0] == 401
        assert (await asgi_post(app, "", [f3(handle.task_id)]))[0] == 401
        assert (await asgi_post(app, token, [b"{nope"]))[0] == 400
        assert (await asgi_post(app, token, [b"[1]"]))[0] == 400
        assert (await asgi_post(app, token, [b" " * 300_000]))[0] == 413
        big = [b" " * 100_000] * 4
        assert (await asgi_post(app, token, big, length=False))[0] == 413
        assert (await asgi_post(app, token, [f3("someone-else")]))[0] == 202
    stats = endpoint.receiver.statistics()  # type: ignore[attr-defined]
    assert stats.received == 8 and stats.accepted == 1 and stats.unknown == 1
    # FastAPI reads the signature to inject the request: it must name the real class.
    assert inspect.signature(endpoint).parameters["request"].annotation is Request


def test_starlette_endpoint_shares_a_given_receiver() -> None:
    pytest.importorskip("starlette")
    receiver = CallbackReceiver(StubClient())
    endpoint = starlette_endpoint(receiver)
    assert endpoint.receiver is receiver  # type: ignore[attr-defined]


def test_forgeries_warn_at_most_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    receiver = CallbackReceiver(StubClient({"t-1"}))
    with caplog.at_level("WARNING", logger="cometrunway.webhooks"):
        for _ in range(50):
            receiver.handle(f3("t-1"), {"token": "forged"}, {})
    assert len(caplog.records) == 1
    assert "s3cret" not in caplog.text and "forged" not in caplog.text


async def test_the_access_log_never_writes_the_callback_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import aiohttp
    from aiohttp import web

    from cometrunway.webhooks import RedactingAccessLogger

    secret = "tok-0123456789abcdefghijkl"

    class Woken:
        callback_token = secret

        def wake(self, task_id: str) -> bool:
            return True

    caplog.set_level(logging.INFO, logger="aiohttp.access")
    runner = web.AppRunner(aiohttp_app(Woken()), access_log_class=RedactingAccessLogger)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{port}/runway/callback?token={secret}"
            async with http.post(url, json={"task_id": "t-1", "status": "SUCCEEDED"}) as answer:
                assert answer.status == 200
    finally:
        await runner.cleanup()
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert any("/runway/callback?token=***" in line for line in lines), lines
    assert all(secret not in line for line in lines)
