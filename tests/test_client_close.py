"""Closing never waits out a pause: a server's ``Retry-After`` pauses every request (up to
``RetryPolicy.max_retry_after``, two minutes by default), but leaving ``async with Client``
ends that wait at once. A create that was waiting and had sent nothing fails with the
client's closing error, is journaled as rejected (not ambiguous: nothing was sent), and
reaches no server; polls stop.

The pause is 100 s of real time; the close is bounded by ``CLOSE_BOUND``, far below it and
far above what closing takes, so a pass cannot be luck and a slow machine cannot fail it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from cometrunway import (
    Client,
    ClientStateError,
    PollPolicy,
    RateLimitError,
    RetryPolicy,
    TextToVideo,
)
from cometrunway.journal import EntryState, open_journal
from cometrunway.protocol import HTTPRequest, HTTPResponse
from cometrunway.testing import MockTransport

KEY = "sk-close-during-pause-0123456789"
PAUSE = 100  # the server's Retry-After, seconds
CLOSE_BOUND = 10  # seconds: a close that waited the pause out would take ten times this
CREATE = "/runway/pro/generate"
JSON = {"content-type": "application/json"}


def created(task_id: str) -> HTTPResponse:
    body = {"code": 200, "msg": "ok", "data": {"task_id": task_id}}
    return HTTPResponse(200, JSON, json.dumps(body).encode())


def rate_limited() -> HTTPResponse:
    body = {"code": 429, "message": "rate limit exceeded"}
    return HTTPResponse(429, {**JSON, "retry-after": str(PAUSE)}, json.dumps(body).encode())


class LongWaits:
    """The client's sleep: real, but ``started`` is set once a wait of the pause's length
    begins (the condition the tests wait on)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        if delay >= PAUSE / 2:
            self.started.set()
        await asyncio.sleep(delay)


async def rows(path: Path) -> dict[str, EntryState]:
    journal = open_journal(path)
    await journal.open()
    try:
        return {entry.key: entry.state for entry in await journal.entries()}
    finally:
        await journal.close()


@pytest.mark.parametrize("retry", [RetryPolicy(), RetryPolicy(max_retry_after=PAUSE)])
async def test_a_create_waiting_out_a_pause_is_rejected_at_close(
    retry: RetryPolicy, tmp_path: Path
) -> None:
    """One poll draws a 429 with ``Retry-After: 100``; a create then waits for the pause
    to end when the client closes."""

    def api(request: HTTPRequest) -> HTTPResponse:
        return created("t-1") if request.path == CREATE else rate_limited()

    transport, waits = MockTransport(api), LongWaits()
    journal = tmp_path / "journal.sqlite"
    async with asyncio.timeout(CLOSE_BOUND):
        async with Client(
            KEY, transport=transport, journal=journal, retry=retry, sleep=waits
        ) as client:
            first = await client.submit(TextToVideo("sent before the pause"))
            with pytest.raises(RateLimitError):
                await client.fetch("t-1")  # the poller's first poll is seconds away
            waiting = asyncio.create_task(client.submit(TextToVideo("waits for the pause")))
            await waits.started.wait()  # the only long wait: the create's, for its slot
            assert not waiting.done()
        with pytest.raises(ClientStateError, match="closing"):
            await waiting
    assert [r.path for r in transport.requests].count(CREATE) == 1
    assert sorted((await rows(journal)).values()) == [EntryState.REJECTED, EntryState.SUBMITTED]
    with pytest.raises(ClientStateError, match="follow it again"):
        await first  # polls stopped: its handle says how to follow it again


async def test_a_create_refused_with_a_long_retry_after_is_rejected_at_close(
    tmp_path: Path,
) -> None:
    """The create's own answer is the 429: backoff waits 100 s before the retry, and the
    close ends that wait."""
    transport = MockTransport(lambda _request: rate_limited())
    journal = tmp_path / "journal.sqlite"
    async with asyncio.timeout(CLOSE_BOUND):
        async with Client(KEY, transport=transport, journal=journal) as client:
            waiting = asyncio.create_task(client.submit(TextToVideo("refused, then waits")))
            while client.statistics().submit_retries < 1:  # backoff's wait has begun
                await asyncio.sleep(0)
            assert not waiting.done()
        with pytest.raises(ClientStateError, match="closing"):
            await waiting
    assert len(transport.requests) == 1  # the retry was never sent
    assert list((await rows(journal)).values()) == [EntryState.REJECTED]
    assert client.statistics().submit_retries == 1


async def test_a_closed_client_sends_nothing_it_was_still_pacing(tmp_path: Path) -> None:
    """Without any 429: creates queued behind the rate (1 request/s) when the client closes
    fail unsent; those already answered keep their tasks."""

    def api(request: HTTPRequest) -> HTTPResponse:
        return created(f"t-{len(transport.requests)}")

    transport = MockTransport(api)
    slow = PollPolicy(initial_delay=60, requests_per_second=1)
    async with asyncio.timeout(CLOSE_BOUND):
        async with Client(KEY, transport=transport, poll=slow) as client:
            tasks = [
                asyncio.create_task(client.submit(TextToVideo(f"paced {i}"))) for i in range(20)
            ]
            while len(transport.requests) < 1:
                await asyncio.sleep(0)
        results = await asyncio.gather(*tasks, return_exceptions=True)
    refused = [r for r in results if isinstance(r, ClientStateError)]
    assert refused and len(refused) + len(transport.requests) == 20


async def test_the_closed_wait_leaves_the_caller_free_to_carry_on(tmp_path: Path) -> None:
    """The close ends backoff's wait the way ``asyncio.timeout()`` ends one: the caller
    gets the closing error, and no cancellation is left pending on its task."""
    transport = MockTransport(lambda _request: rate_limited())

    async def caller(client: Client) -> tuple[str, int]:
        try:
            await client.submit(TextToVideo("refused, then waits"))
        except ClientStateError as exc:
            await asyncio.sleep(0)  # a pending cancel would land here
            task = asyncio.current_task()
            assert task is not None
            return str(exc), task.cancelling()
        return "created", 0

    async with asyncio.timeout(CLOSE_BOUND):
        async with Client(KEY, transport=transport, journal=tmp_path / "j.sqlite") as client:
            waiting = asyncio.create_task(caller(client))
            while client.statistics().submit_retries < 1:
                await asyncio.sleep(0)
        message, cancelling = await waiting
    assert "closing" in message
    assert cancelling == 0
    assert len(transport.requests) == 1


async def test_a_caller_cancelled_while_the_client_closes_is_cancelled(tmp_path: Path) -> None:
    """A caller cancelled during the same wait hears its own cancellation, not the close."""
    transport = MockTransport(lambda _request: rate_limited())
    async with asyncio.timeout(CLOSE_BOUND):
        async with Client(KEY, transport=transport, journal=tmp_path / "j.sqlite") as client:
            waiting = asyncio.create_task(client.submit(TextToVideo("refused, then waits")))
            while client.statistics().submit_retries < 1:
                await asyncio.sleep(0)
            waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    assert len(transport.requests) == 1
