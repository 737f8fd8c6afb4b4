"""TaskHandle on its own: awaiting, shielding, done callbacks and errors, with no poller."""

from __future__ import annotations

import asyncio
import gc
import traceback

import pytest

from cometrunway.errors import TaskFailed, TaskNotFound
from cometrunway.handles import TaskHandle
from cometrunway.models import Task, TaskStatus

DONE = Task("t1", TaskStatus.SUCCEEDED, 1.0, outputs=("https://cdn.invalid/t1.mp4",))
RUNNING = Task("t1", TaskStatus.RUNNING, 0.4)


def _raised(error: BaseException) -> BaseException:
    try:
        raise error
    except BaseException as exc:
        return exc


async def test_a_pending_handle_resolves_its_waiters() -> None:
    handle = TaskHandle("t1", poll_route="feed")
    waiter = asyncio.ensure_future(handle.wait())
    await asyncio.sleep(0)
    assert not handle.done() and not waiter.done()
    handle._update(RUNNING)
    assert handle.status is TaskStatus.RUNNING and handle.progress == 0.4
    handle._resolve(DONE)
    assert await waiter is DONE
    assert handle.done() and handle.exception() is None
    assert await handle is DONE  # again, now from the finished outcome


async def test_a_finished_handle_returns_without_a_future() -> None:
    handle = TaskHandle("t1", poll_route="feed")
    handle._resolve(DONE)
    assert handle._future is None
    assert await handle is DONE
    assert handle._future is None


async def test_the_first_outcome_wins() -> None:
    handle = TaskHandle("t1", poll_route="feed")
    handle._resolve(DONE)
    handle._fail(TaskNotFound("late", task_id="t1"))
    assert await handle is DONE and handle.exception() is None


async def test_a_failed_handle_raises_the_same_error_with_a_stable_traceback() -> None:
    handle = TaskHandle("t1", poll_route="feed")
    error = _raised(TaskFailed(Task("t1", TaskStatus.FAILED, error="moderation")))
    handle._fail(error, error.task)  # type: ignore[attr-defined]
    depths = []
    for _ in range(3):
        with pytest.raises(TaskFailed) as info:
            await handle
        assert info.value is error
        depths.append(len(traceback.extract_tb(info.value.__traceback__)))
    assert depths[0] == depths[1] == depths[2]
    assert handle.exception() is error
    assert handle.status is TaskStatus.FAILED


async def test_a_failure_nobody_awaits_is_not_reported_as_unretrieved() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _, context: reported.append(context))
    try:
        handle = TaskHandle("t1", poll_route="feed")
        waiter = asyncio.ensure_future(handle.wait())
        await asyncio.sleep(0)
        waiter.cancel()  # the only awaiter leaves; the handle's future stays unobserved
        await asyncio.gather(waiter, return_exceptions=True)
        handle._fail(TaskNotFound("gone", task_id="t1"))
        del handle, waiter
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert reported == []


async def test_exception_before_done_says_so() -> None:
    handle = TaskHandle("t1", poll_route="feed")
    with pytest.raises(asyncio.InvalidStateError, match="t1 is not finished yet"):
        handle.exception()


async def test_a_cancelled_awaiter_leaves_the_handle_waitable() -> None:
    handle = TaskHandle("t1", poll_route="feed")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0):
            await handle
    assert not handle.done()
    handle._resolve(DONE)
    assert await handle is DONE


async def test_done_callbacks_run_once_for_pending_and_finished_handles() -> None:
    seen: list[str] = []
    pending = TaskHandle("p", poll_route="feed")
    pending.add_done_callback(lambda h: seen.append(f"{h.task_id} {h.done()}"))
    await asyncio.sleep(0)
    assert seen == []
    pending._resolve(Task("p", TaskStatus.SUCCEEDED, 1.0, outputs=("https://x.invalid/p",)))
    finished = TaskHandle("f", poll_route="tasks")
    finished._fail(TaskNotFound("gone", task_id="f"))
    finished.add_done_callback(lambda h: seen.append(f"{h.task_id} {h.done()}"))
    assert seen == []  # never inline: callbacks run from the loop, as asyncio's do
    for _ in range(3):
        await asyncio.sleep(0)
    assert sorted(seen) == ["f True", "p True"]


async def test_handles_work_with_asyncio_helpers() -> None:
    finished = TaskHandle("t1", poll_route="feed")
    finished._resolve(DONE)
    later = TaskHandle("t2", poll_route="feed")
    asyncio.get_running_loop().call_soon(later._resolve, DONE)
    assert await asyncio.gather(finished, later) == [DONE, DONE]
    assert await asyncio.wait_for(finished, 1) is DONE
    failed = TaskHandle("t3", poll_route="feed")
    failed._fail(TaskNotFound("gone", task_id="t3"))
    results = await asyncio.gather(failed, finished, return_exceptions=True)
    assert isinstance(results[0], TaskNotFound) and results[1] is DONE


def test_the_create_estimate_stays_on_snapshots_that_do_not_repeat_it() -> None:
    """Runway's create answer carries ``estimatedCost`` (wire §8.2); later polls may not: the
    finished snapshot (and so the ``TaskFinished`` event) still says what was estimated."""
    handle = TaskHandle("t-1", poll_route="tasks")
    handle._note_estimate(4.0)
    handle._update(Task("t-1", TaskStatus.RUNNING, 0.5, raw_status="RUNNING"))
    assert handle.task is not None and handle.task.estimated_cost == 4.0
    handle._update(Task("t-1", TaskStatus.RUNNING, 0.7, raw_status="RUNNING", estimated_cost=5.0))
    assert handle.task.estimated_cost == 5.0  # the server's newer word wins
    handle._resolve(Task("t-1", TaskStatus.SUCCEEDED, 1.0, ("https://cdn.example/a.mp3",)))
    assert handle.task.estimated_cost == 5.0
