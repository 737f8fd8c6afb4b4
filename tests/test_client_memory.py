"""The client in memory, through ``MockTransport``: retries and dispositions of creates,
the lifecycle (CLOSING included), user callbacks kept away from the client's own work.

``MemoryAPI`` is a small fake of the two routes these tests need (create on
``/runway/pro/generate``, poll on ``/runway/feed``), scripted per test.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from cometrunway import (
    AmbiguousSubmitError,
    Client,
    ClientStateError,
    CometRunwayError,
    InvalidRequestError,
    PollPolicy,
    RetryPolicy,
    TaskStatus,
    TextToVideo,
    TransportError,
)
from cometrunway.events import Event, Submitted, TaskFinished
from cometrunway.protocol import HTTPRequest, HTTPResponse
from cometrunway.testing import MockTransport

KEY = "sk-memory-test-key-0123456789"
NO_WAIT_RETRY = RetryPolicy(max_tries=3, base_delay=0, max_delay=0, jitter=0)
QUICK_POLL = PollPolicy(initial_delay=0, interval=0.05, jitter=0)
JSON = {"content-type": "application/json"}


def answer(status: int, body: object, headers: dict[str, str] | None = None) -> HTTPResponse:
    return HTTPResponse(status, {**JSON, **(headers or {})}, json.dumps(body).encode())


class MemoryAPI:
    """Creates answer from ``create_script`` (then succeed); every task polls as SUCCESS."""

    def __init__(self) -> None:
        self.create_script: list[HTTPResponse | Exception] = []
        self.creates = 0
        self.polls = 0
        self.create_gate: asyncio.Event | None = None  # set: creates wait for it
        self.create_arrived = asyncio.Event()

    async def __call__(self, request: HTTPRequest) -> HTTPResponse:
        if request.path == "/runway/pro/generate":
            self.creates += 1
            self.create_arrived.set()
            if self.create_gate is not None:
                await self.create_gate.wait()
            if self.create_script:
                scripted = self.create_script.pop(0)
                if isinstance(scripted, Exception):
                    raise scripted
                return scripted
            return answer(200, {"code": 200, "msg": "ok", "data": {"task_id": f"t{self.creates}"}})
        if request.path == "/runway/feed":
            self.polls += 1
            task_id = request.json()["task_id"]
            record = {"task_id": task_id, "status": "SUCCESS", "progress": "100%"}
            record["data"] = {"output": [f"https://cdn.example/{task_id}.mp4"]}
            return answer(200, {"code": "success", "message": "", "data": record})
        return answer(404, {"error": {"message": f"no route {request.path}"}})


def client_with(api: MemoryAPI, **options: object) -> Client:
    options.setdefault("retry", NO_WAIT_RETRY)
    options.setdefault("poll", QUICK_POLL)
    return Client(KEY, transport=MockTransport(api), **options)  # type: ignore[arg-type]


async def test_a_create_answered_while_closing_fails_its_handle_at_once(tmp_path: Path) -> None:
    api = MemoryAPI()
    api.create_gate = asyncio.Event()
    journal = tmp_path / "run.sqlite"
    async with client_with(api, journal=str(journal)) as client:
        submitting = asyncio.create_task(client.submit(TextToVideo("late")))
        await api.create_arrived.wait()
        # The answer lands only once the block is being left: the client is closing.
        asyncio.get_running_loop().call_soon(api.create_gate.set)
    handle = await submitting
    assert handle.task_id == "t1"
    with pytest.raises(ClientStateError, match=r"client\.track\('t1'\)"):
        async with asyncio.timeout(5):  # before the fix this handle never finished
            await handle
    # The id was journaled before the handle was handed out: a new client picks it up.
    async with client_with(MemoryAPI(), journal=str(journal)) as again:
        resumed = await again.resume()
        assert [h.task_id for h in resumed] == ["t1"]
        assert (await resumed[0]).status is TaskStatus.SUCCEEDED


async def test_new_work_is_refused_while_closing() -> None:
    api = MemoryAPI()
    api.create_gate = asyncio.Event()
    seen: list[BaseException] = []
    async with client_with(api) as client:
        first = asyncio.create_task(client.submit(TextToVideo("first")))
        await api.create_arrived.wait()

        def try_more() -> None:
            try:
                client.track("other")
            except ClientStateError as exc:
                seen.append(exc)
            api.create_gate.set()  # type: ignore[union-attr]

        asyncio.get_running_loop().call_soon(try_more)
    await first
    assert len(seen) == 1 and "closing" in str(seen[0])


async def test_a_raising_on_event_callback_harms_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[Event] = []

    def on_event(event: Event) -> None:
        calls.append(event)
        raise RuntimeError("user bug in on_event")

    api = MemoryAPI()
    with caplog.at_level(logging.ERROR, logger="cometrunway"):
        async with client_with(api, on_event=on_event) as client:
            handle = await client.submit(TextToVideo("a cat"))
            task = await asyncio.wait_for(handle.wait(), 5)
    assert task.status is TaskStatus.SUCCEEDED
    assert any(isinstance(e, Submitted) for e in calls)
    assert any(isinstance(e, TaskFinished) for e in calls)
    logged = [r for r in caplog.records if "on_event" in r.getMessage()]
    assert len(logged) == len(calls)  # once per raise, no more
    assert all(r.exc_info is not None for r in logged)  # with its traceback


@pytest.mark.parametrize(
    "refusal",
    [
        answer(503, {"error": {"message": "busy"}}),
        answer(429, {"error": {"message": "slow down"}}, {"retry-after": "0"}),
        answer(502, {"error": {"message": "bad gateway"}}),
    ],
    ids=["503", "429", "502"],
)
async def test_creates_certainly_not_accepted_are_retried(refusal: HTTPResponse) -> None:
    api = MemoryAPI()
    api.create_script = [refusal]
    async with client_with(api) as client:
        handle = await client.submit(TextToVideo("a cat"))
        assert handle.task_id == "t2"
        assert client.statistics().submit_retries == 1
    assert api.creates == 2


async def test_a_connection_never_made_is_retried() -> None:
    api = MemoryAPI()
    api.create_script = [TransportError("refused", request_sent=False)]
    async with client_with(api) as client:
        handle = await client.submit(TextToVideo("a cat"))
    assert (handle.task_id, api.creates) == ("t2", 2)


@pytest.mark.parametrize(
    "maybe_accepted",
    [
        answer(500, {"error": {"message": "oops"}}),
        answer(524, {"error": {"message": "timeout"}}),
        TransportError("read timeout", request_sent=True),
        answer(200, {"code": 200, "data": {}}),  # a 2xx without an id
    ],
    ids=["500", "524", "read-timeout", "no-id"],
)
async def test_creates_that_may_have_been_accepted_are_never_resent(
    maybe_accepted: HTTPResponse | Exception,
) -> None:
    api = MemoryAPI()
    api.create_script = [maybe_accepted]
    async with client_with(api) as client:
        with pytest.raises(AmbiguousSubmitError):
            await client.submit(TextToVideo("a cat"))
        assert client.statistics().ambiguous_submits == 1
    assert api.creates == 1


async def test_a_refused_create_raises_the_api_error_without_retry() -> None:
    api = MemoryAPI()
    api.create_script = [answer(400, {"error": {"message": "prompt too long"}})]
    async with client_with(api) as client:
        with pytest.raises(InvalidRequestError, match="prompt too long"):
            await client.submit(TextToVideo("a cat"))
    assert api.creates == 1


async def test_retries_stop_at_max_tries() -> None:
    api = MemoryAPI()
    api.create_script = [answer(503, {"error": {"message": "busy"}})] * 5
    async with client_with(api) as client:
        with pytest.raises(Exception, match="busy"):
            await client.submit(TextToVideo("a cat"))
    assert api.creates == NO_WAIT_RETRY.max_tries


async def test_a_bug_in_the_poll_path_fails_the_handle_not_the_client() -> None:
    class Boom(Exception):
        pass

    def broken(request: HTTPRequest) -> HTTPResponse:
        raise Boom("bug in the poll path")

    async with Client(KEY, transport=MockTransport(broken), poll=QUICK_POLL) as client:
        handle = client.track("abc")
        with pytest.raises(CometRunwayError, match="task abc") as info:
            await asyncio.wait_for(handle, 5)
    assert isinstance(info.value.__cause__, Boom)  # the cause is kept, for the traceback


async def test_transport_is_closed_at_exit_and_lifecycle_is_enforced() -> None:
    transport = MockTransport(MemoryAPI())
    client = Client(KEY, transport=transport)
    with pytest.raises(ClientStateError, match="not open"):
        client.track("abc")
    async with client:
        assert not transport.closed
    assert transport.closed
    with pytest.raises(ClientStateError, match="cannot be reopened"):
        await client.__aenter__()


def test_transport_must_have_send_and_aclose() -> None:
    with pytest.raises(TypeError, match="send"):
        Client(KEY, transport=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not both"):
        Client(KEY, transport=MockTransport(MemoryAPI()), session=object())  # type: ignore[arg-type]


async def test_mock_transport_takes_sync_handlers_and_records_requests() -> None:
    seen: list[str] = []

    def handler(request: HTTPRequest) -> HTTPResponse:
        seen.append(request.path)
        return answer(200, {"code": 200, "data": {"task_id": "sync-1"}})

    transport = MockTransport(handler)
    async with Client(KEY, transport=transport, retry=NO_WAIT_RETRY) as client:
        handle = await client.submit(TextToVideo("a cat"))
    assert handle.task_id == "sync-1"
    assert seen[0] == "/runway/pro/generate"
    assert transport.requests[0].path == "/runway/pro/generate"
    with pytest.raises(TypeError, match="HTTPResponse"):
        await MockTransport(lambda request: "nope").send(transport.requests[0])  # type: ignore[arg-type,return-value]


def test_key_is_not_in_the_client_repr() -> None:
    client: Client = Client(KEY, transport=MockTransport(MemoryAPI()))
    shown: Callable[[object], str] = repr
    assert KEY not in shown(client)
    assert KEY not in shown(client._source)
