"""The canary key on the paths after a create: polls (malformed answers, the key echoed in
a body or a header, a 401, a 429, a record that breaks the task's parsing), cancels, and
the tasks followed again by ``settle``/``settle_all``/``resume``. Each must leave the key in
no exception, no DEBUG log record and no journal byte (see ``canary.py``)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from canary import CANARY, DEADLINE, SCRIPTS, assert_no_secret
from hostile import HostileServer, Received, Script, http_answer
from support import FAST_POLL, FAST_RETRY

from cometrunway import AmbiguousSubmitError, Client, CometRunwayError, TaskHandle, TextToVideo

TASK_ID = "t-canary-1"
CREATE = "POST /runway/pro/generate"
#: Polls a task must have had before a test looks: enough to go through the retry path.
POLLS = 3
JSON = {"Content-Type": "application/json"}


def created(_request: Received) -> bytes:
    body = json.dumps({"code": 200, "msg": "ok", "data": {"task_id": TASK_ID}})
    return http_answer("HTTP/1.1 200 OK", JSON, body.encode())


def record(fields: Callable[[str], dict[str, object]]) -> Script:
    """A poll answer whose task record is ``fields(authorization header)``."""

    def script(request: Received) -> bytes:
        data = {"task_id": TASK_ID, **fields(request.header("authorization") or "")}
        body = json.dumps({"code": "success", "message": "", "data": data})
        return http_answer("HTTP/1.1 200 OK", JSON, body.encode())

    return script


POLL_SCRIPTS: dict[str, Script] = {
    **SCRIPTS,
    "429 with the key in its body": lambda request: http_answer(
        "HTTP/1.1 429 Too Many Requests",
        {"Retry-After": "0", **JSON},
        json.dumps(
            {"code": 429, "message": f"slow down, {request.header('authorization')}"}
        ).encode(),
    ),
    "a record that breaks parsing": record(
        lambda auth: {"status": auth, "progress": auth, "submit_time": auth, "data": [auth]}
    ),
    "a failure quoting the key": record(
        lambda auth: {"status": "FAILURE", "progress": "100%", "fail_reason": f"bad key {auth}"}
    ),
    "a success whose output URL holds the key": record(
        lambda auth: {
            "status": "SUCCESS",
            "progress": "100%",
            "data": {"output": [f"https://cdn.example/{auth.split()[-1]}/v.mp4"]},
        }
    ),
}


def api(polls: Script, create: Script = created) -> Script:
    """Creates answered by ``create``, everything else by ``polls``."""
    return lambda request: create(request) if request.target == CREATE else polls(request)


def client(server: HostileServer, folder: Path) -> Client:
    return Client(
        CANARY,
        base_url=server.url,
        journal=folder / "journal.sqlite",
        retry=FAST_RETRY,
        poll=FAST_POLL,
    )


async def polled(
    server: HostileServer, handles: list[TaskHandle], errors: list[BaseException]
) -> None:
    """Wait until every handle ended or the tasks had ``POLLS`` polls each; keep the
    errors of the handles that ended."""

    def enough(received: list[Received]) -> bool:
        return sum(1 for r in received if r.target != CREATE) >= POLLS * len(handles)

    async def all_ended() -> None:
        await asyncio.gather(*(h.wait() for h in handles), return_exceptions=True)

    waits = {asyncio.create_task(server.wait_until(enough)), asyncio.create_task(all_ended())}
    done, pending = await asyncio.wait(waits, timeout=DEADLINE, return_when=asyncio.FIRST_COMPLETED)
    for waiting in pending:
        waiting.cancel()
    assert done, "the tasks were neither polled nor ended within the deadline"
    errors += [e for h in handles if h.done() and (e := h.exception()) is not None]


def ended(handles: list[TaskHandle], errors: list[BaseException]) -> None:
    """After the client closed: every handle's error (a closed client fails the rest)."""
    errors += [e for h in handles if h.done() and (e := h.exception()) is not None]


@pytest.mark.parametrize("name", list(POLL_SCRIPTS))
async def test_no_poll_error_path_leaks_the_key(
    name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    handles: list[TaskHandle] = []
    async with HostileServer(api(POLL_SCRIPTS[name])) as server:
        try:
            async with client(server, tmp_path) as c:
                handles.append(await c.submit(TextToVideo("a canary in a coal mine")))
                await polled(server, handles, errors)
                try:
                    await c.fetch(TASK_ID)
                except Exception as exc:
                    errors.append(exc)
        except (CometRunwayError, ExceptionGroup) as exc:
            errors.append(exc)
    ended(handles, errors)
    polls = [r for r in server.received if r.target != CREATE]
    assert polls, "no poll reached the hostile server"
    assert all(r.header("authorization") == f"Bearer {CANARY}" for r in polls)
    assert_no_secret(name, errors, caplog.records, tmp_path)
    for handle in handles:
        assert CANARY not in repr(handle), name
        if handle.task is not None:
            assert CANARY not in repr(handle.task), name


@pytest.mark.parametrize("name", list(SCRIPTS))
async def test_no_cancel_error_path_leaks_the_key(
    name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    async with HostileServer(SCRIPTS[name]) as server:
        try:
            async with client(server, tmp_path) as c:
                try:
                    await c.cancel(TASK_ID)
                except Exception as exc:
                    errors.append(exc)
        except (CometRunwayError, ExceptionGroup) as exc:
            errors.append(exc)
    assert server.received, name
    assert {r.target for r in server.received} == {f"DELETE /runwayml/v1/tasks/{TASK_ID}"}
    if name != "key echoed in a 200 error":  # the only one a cancel takes as accepted
        assert errors, name
    assert_no_secret(name, errors, caplog.records, tmp_path)


SETTLE_SCRIPTS = [
    "bad status line",
    "key echoed in a 401",
    "key echoed in a 500",
    "429 with the key in its body",
    "a failure quoting the key",
]


@pytest.mark.parametrize("name", SETTLE_SCRIPTS)
async def test_settled_and_resumed_tasks_leak_no_key(
    name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A create cut short is journaled as ambiguous; the task it may have made is settled
    (``settle`` and ``settle_all``), then resumed by a second client, all against hostile
    polls."""
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    handles: list[TaskHandle] = []
    cut_short = SCRIPTS["body cut short"]
    async with HostileServer(api(POLL_SCRIPTS[name], create=cut_short)) as server:
        try:
            async with client(server, tmp_path) as c:
                for prompt in ("first canary", "second canary"):
                    with pytest.raises(AmbiguousSubmitError) as caught:
                        await c.submit(TextToVideo(prompt))
                    errors.append(caught.value)
                first, second = await c.ambiguous()
                settled = await c.settle(first.key, task_id=TASK_ID)
                assert settled is not None
                handles.append(settled)
                handles += await c.settle_all(task_ids={second.key: TASK_ID + "-2"})
                await polled(server, handles, errors)
        except (CometRunwayError, ExceptionGroup) as exc:
            errors.append(exc)
        ended(handles, errors)
        resumed: list[TaskHandle] = []
        try:
            async with client(server, tmp_path) as c:
                resumed += await c.resume()
                await polled(server, resumed, errors)
        except (CometRunwayError, ExceptionGroup) as exc:
            errors.append(exc)
        ended(resumed, errors)
    assert len(handles) == 2
    assert_no_secret(name, errors, caplog.records, tmp_path)
