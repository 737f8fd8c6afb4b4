"""One hostile or broken answer never ends the client (issue 13): a naive timestamp, a lone
surrogate in server text or in a created task id, another task's record in a poll. Each is
played in memory through ``MockTransport``, with and without a journal."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cometrunway import (
    AmbiguousSubmitError,
    Client,
    PollPolicy,
    RetryPolicy,
    TaskFailed,
    TaskStatus,
    TextToVideo,
)
from cometrunway.protocol import HTTPRequest, HTTPResponse
from cometrunway.testing import MockTransport

KEY = "sk-hostile-answers-key-0123456789"
NO_WAIT_RETRY = RetryPolicy(max_tries=3, base_delay=0, max_delay=0, jitter=0)
QUICK_POLL = PollPolicy(initial_delay=0, interval=0.05, jitter=0)
JSON = {"content-type": "application/json"}
LONE_SURROGATE = "\ud800"
#: A test that hangs is a failure, not a stuck CI run.
DEADLINE = 10

Record = Callable[[str, int], dict[str, object]]


def answer(body: object) -> HTTPResponse:
    # json.dumps writes a lone surrogate as the escape "\ud800", as a server would.
    return HTTPResponse(200, JSON, json.dumps(body).encode())


def created(task_id: str) -> HTTPResponse:
    return answer({"code": 200, "msg": "ok", "data": {"task_id": task_id}})


def success(task_id: str) -> dict[str, object]:
    return {
        "task_id": task_id,
        "status": "SUCCESS",
        "progress": "100%",
        "data": {"output": [f"https://cdn.example/{task_id}.mp4"]},
    }


class ScriptedAPI:
    """Creates answer ``t<n>`` (or the scripted id); the n-th poll of a task answers
    ``records(task_id, n)``."""

    def __init__(self, records: Record, *, create_ids: list[str] | None = None) -> None:
        self.records = records
        self.create_ids = create_ids or []
        self.creates = 0
        self.polls: dict[str, int] = {}

    def __call__(self, request: HTTPRequest) -> HTTPResponse:
        if request.path == "/runway/pro/generate":
            self.creates += 1
            if self.create_ids:
                return created(self.create_ids.pop(0))
            return created(f"t{self.creates}")
        task_id = request.json()["task_id"]
        n = self.polls[task_id] = self.polls.get(task_id, 0) + 1
        return answer({"code": "success", "message": "", "data": self.records(task_id, n)})


def client_for(api: ScriptedAPI, journal: Path | None) -> Client:
    return Client(
        KEY, transport=MockTransport(api), retry=NO_WAIT_RETRY, poll=QUICK_POLL, journal=journal
    )


@pytest.fixture(params=[False, True], ids=["no-journal", "journal"])
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> Path | None:
    return tmp_path / "run.sqlite" if request.param else None


async def test_a_naive_ancient_timestamp_next_to_progress_harms_nothing(
    journal: Path | None,
) -> None:
    def records(task_id: str, n: int) -> dict[str, object]:
        if n < 3:
            return {
                "task_id": task_id,
                "status": "IN_PROGRESS",
                "progress": f"{20 * n}%",
                "start_time": "0001-01-01T00:00:00",
            }
        return success(task_id)

    async with client_for(ScriptedAPI(records), journal) as client:
        handle = await client.submit(TextToVideo("a cat"))
        task = await asyncio.wait_for(handle, DEADLINE)
        other = await asyncio.wait_for(await client.submit(TextToVideo("a dog")), DEADLINE)
    assert task.status is TaskStatus.SUCCEEDED
    assert other.status is TaskStatus.SUCCEEDED


async def test_a_lone_surrogate_in_fail_reason_fails_only_that_task(journal: Path | None) -> None:
    def records(task_id: str, n: int) -> dict[str, object]:
        if task_id == "t1":
            return {"task_id": task_id, "status": "FAILURE", "fail_reason": f"bad {LONE_SURROGATE}"}
        return success(task_id)

    async with client_for(ScriptedAPI(records), journal) as client:
        bad = await client.submit(TextToVideo("a cat"))
        with pytest.raises(TaskFailed) as info:
            await asyncio.wait_for(bad, DEADLINE)
        good = await asyncio.wait_for(await client.submit(TextToVideo("a dog")), DEADLINE)
    assert info.value.task.task_id == "t1"
    assert info.value.task.error == "bad \ufffd"  # stored and printable
    assert good.status is TaskStatus.SUCCEEDED


async def test_a_lone_surrogate_in_a_created_task_id_is_an_ambiguous_create(
    journal: Path | None,
) -> None:
    api = ScriptedAPI(lambda task_id, n: success(task_id), create_ids=[f"x{LONE_SURROGATE}"])
    async with client_for(api, journal) as client:
        with pytest.raises(AmbiguousSubmitError, match="lone surrogate"):
            await client.submit(TextToVideo("a cat"))
        good = await asyncio.wait_for(await client.submit(TextToVideo("a dog")), DEADLINE)
    assert api.creates == 2  # the ambiguous create was never resent
    assert good.status is TaskStatus.SUCCEEDED


async def test_a_poll_answered_with_another_tasks_record_is_retried(
    journal: Path | None,
) -> None:
    def records(task_id: str, n: int) -> dict[str, object]:
        if task_id == "t1" and n == 1:
            return success("someone-else")
        return success(task_id)

    api = ScriptedAPI(records)
    async with client_for(api, journal) as client:
        task = await asyncio.wait_for(await client.submit(TextToVideo("a cat")), DEADLINE)
    assert task.task_id == "t1"
    assert task.outputs == ("https://cdn.example/t1.mp4",)
    assert api.polls["t1"] == 2


async def test_an_unexpected_failure_while_following_fails_that_handle_only() -> None:
    class Boom(Exception):
        pass

    def broken_for_one(request: HTTPRequest) -> HTTPResponse:
        task_id = request.json()["task_id"]
        if task_id == "bad":
            raise Boom("bug in the poll path")
        return answer({"code": "success", "message": "", "data": success(task_id)})

    async with Client(KEY, transport=MockTransport(broken_for_one), poll=QUICK_POLL) as client:
        bad, good = client.track("bad"), client.track("good")
        with pytest.raises(Exception, match="task bad") as info:
            await asyncio.wait_for(bad, DEADLINE)
        assert (await asyncio.wait_for(good, DEADLINE)).status is TaskStatus.SUCCEEDED
    assert isinstance(info.value.__cause__, Boom)
    assert "client.track('bad')" in str(info.value)


async def test_success_without_an_output_url_fails_after_output_grace() -> None:
    def records(task_id: str, n: int) -> dict[str, object]:
        return {"task_id": task_id, "status": "SUCCESS", "progress": "100%", "data": {}}

    api = ScriptedAPI(records)
    poll = PollPolicy(initial_delay=0, interval=0.05, jitter=0, output_grace=0.2)
    async with Client(KEY, transport=MockTransport(api), retry=NO_WAIT_RETRY, poll=poll) as c:
        handle = await c.submit(TextToVideo("a cat"))
        with pytest.raises(TaskFailed, match="no http\\(s\\) output URL arrived") as info:
            await asyncio.wait_for(handle, DEADLINE)
    assert info.value.task.task_id == "t1"
    assert api.polls["t1"] >= 2  # it waited for the URL before giving up


#: What a hostile server may ask: a pause of about 31 years.
HOSTILE_RETRY_AFTER = "999999999"


def rate_limited() -> HTTPResponse:
    return HTTPResponse(
        429,
        {**JSON, "retry-after": HOSTILE_RETRY_AFTER},
        json.dumps({"error": {"message": "slow down", "type": "rate_limit"}}).encode(),
    )


async def test_a_polls_retry_after_is_capped_by_max_retry_after() -> None:
    polls = 0

    def handler(request: HTTPRequest) -> HTTPResponse:
        nonlocal polls
        polls += 1
        if polls == 1:
            return rate_limited()
        return answer({"code": "success", "message": "", "data": success("abc")})

    retry = RetryPolicy(max_tries=3, base_delay=0, max_delay=0, jitter=0, max_retry_after=0.05)
    async with Client(KEY, transport=MockTransport(handler), retry=retry, poll=QUICK_POLL) as c:
        task = await asyncio.wait_for(c.track("abc"), DEADLINE)
    assert task.status is TaskStatus.SUCCEEDED
    assert polls == 2


async def test_a_long_retry_after_pause_never_blocks_closing() -> None:
    answered = asyncio.Event()

    def handler(request: HTTPRequest) -> HTTPResponse:
        answered.set()
        return rate_limited()

    client = Client(KEY, transport=MockTransport(handler), poll=QUICK_POLL)

    async def use_and_close() -> None:
        async with client:
            handle = client.track("abc")
            await answered.wait()
        assert "follow it again" in str(handle.exception())

    await asyncio.wait_for(use_and_close(), DEADLINE)


#: How long ago (seconds) the resumed task was submitted: far past any not-found grace.
LONG_AGO = 3600


async def test_a_resumed_task_gets_the_whole_not_found_grace(tmp_path: Path) -> None:
    journal = tmp_path / "run.sqlite"
    running = ScriptedAPI(lambda task_id, n: {"task_id": task_id, "status": "IN_PROGRESS"})
    async with client_for(running, journal) as client:
        client.track("old-task")  # journaled; still running when this run ends
    polls = 0

    def not_found_once(request: HTTPRequest) -> HTTPResponse:
        nonlocal polls
        polls += 1
        if polls == 1:
            return answer({"code": "task_not_exist", "message": "task_not_exist", "data": None})
        return answer({"code": "success", "message": "", "data": success("old-task")})

    later = Client(
        KEY,
        transport=MockTransport(not_found_once),
        retry=NO_WAIT_RETRY,
        poll=PollPolicy(initial_delay=0, interval=0.05, jitter=0, not_found_grace=30),
        journal=journal,
        wall_clock=lambda: time.time() + LONG_AGO,
    )
    async with later:
        (handle,) = await later.resume()
        task = await asyncio.wait_for(handle, DEADLINE)
    assert task.status is TaskStatus.SUCCEEDED
    assert polls == 2


async def test_two_creates_answered_with_one_task_id_flag_the_second_only(
    journal: Path | None,
) -> None:
    api = ScriptedAPI(lambda task_id, n: success(task_id), create_ids=["same", "same"])
    async with client_for(api, journal) as client:
        first = await client.submit(TextToVideo("a cat"), key="key-cat")
        with pytest.raises(AmbiguousSubmitError, match="already given") as info:
            await client.submit(TextToVideo("a dog"), key="key-dog")
        assert (await asyncio.wait_for(first, DEADLINE)).task_id == "same"
        third = await asyncio.wait_for(await client.submit(TextToVideo("a cow")), DEADLINE)
    assert third.status is TaskStatus.SUCCEEDED  # the client lives on
    if journal is not None:
        assert "key-cat" in str(info.value) and "key-dog" in str(info.value)
    assert api.creates == 3  # nothing resent
