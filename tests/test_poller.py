"""The poller on a virtual clock, against an in-memory fake of the poll call.

No HTTP here: ``FakeTasks`` plays the server side of a poll (a scripted function from task id
and time to a ``Task`` or an error), and the clock only moves when the poller sleeps.
"""

from __future__ import annotations

import asyncio
import itertools
import random

import pytest

from cometrunway.errors import (
    AuthenticationError,
    CometRunwayError,
    RateLimitError,
    ServerError,
    TaskFailed,
    TaskNotFound,
    TransportError,
)
from cometrunway.handles import TaskHandle
from cometrunway.models import PollRoute, Task, TaskStatus
from cometrunway.policies import PollPolicy
from cometrunway.poller import Poller


class VirtualClock:
    """Time that passes only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.now += max(0.0, delay)
        await asyncio.sleep(0)


class FakeTasks:
    """Server side of polls: each task runs from ``start`` to ``end`` with linear progress."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.spans: dict[str, tuple[float, float]] = {}
        self.outcome: dict[str, TaskStatus] = {}
        # Scripted answers before the normal ones: an error to raise, or None for a normal one.
        self.errors: dict[str, list[Exception | None]] = {}
        self.polls: dict[str, list[float]] = {}
        self.progress = True

    def add(
        self, task_id: str, start: float, end: float, outcome: TaskStatus = TaskStatus.SUCCEEDED
    ) -> None:
        self.spans[task_id] = (start, end)
        self.outcome[task_id] = outcome

    async def fetch(self, task_id: str, route: PollRoute) -> Task:
        now = self.clock()
        self.polls.setdefault(task_id, []).append(now)
        queued = self.errors.get(task_id)
        if queued:
            error = queued.pop(0)
            if error is not None:
                raise error
        start, end = self.spans[task_id]
        if now >= end:
            status = self.outcome[task_id]
            outputs = (
                (f"https://cdn.example/{task_id}.mp4",) if status is TaskStatus.SUCCEEDED else ()
            )
            return Task(
                task_id,
                status,
                1.0,
                outputs,
                outputs[0] if outputs else None,
                error=None if outputs else "moderation",
                error_code=None if outputs else "SAFETY.INPUT.TEXT",
            )
        if now < start:
            return Task(task_id, TaskStatus.PENDING, raw_status="QUEUED")
        progress = (now - start) / (end - start) if self.progress else None
        return Task(task_id, TaskStatus.RUNNING, progress, raw_status="RUNNING")


def make(policy: PollPolicy | None = None) -> tuple[VirtualClock, FakeTasks, Poller]:
    clock = VirtualClock()
    tasks = FakeTasks(clock)
    poller = Poller(
        tasks,
        policy
        or PollPolicy(initial_delay=5, interval=5, max_interval=30, not_found_grace=60, jitter=0),
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(7),
    )
    return clock, tasks, poller


async def run_until(poller: Poller, handles: list[TaskHandle]) -> None:
    async def body() -> None:
        await asyncio.gather(
            *(asyncio.ensure_future(h.wait()) for h in handles), return_exceptions=True
        )

    runner = asyncio.ensure_future(poller.run())
    try:
        await asyncio.wait_for(body(), 5)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


def handle(task_id: str, route: PollRoute = "feed") -> TaskHandle:
    return TaskHandle(task_id, poll_route=route)


async def test_task_resolves_with_final_snapshot() -> None:
    clock, tasks, poller = make()
    tasks.add("a", 2, 30)
    h = poller.track(handle("a"), submitted_at=0)
    await run_until(poller, [h])
    task = await h
    assert task.status is TaskStatus.SUCCEEDED
    assert task.video_url == "https://cdn.example/a.mp4"
    assert h.done() and h.status is TaskStatus.SUCCEEDED
    assert poller.statistics().tracked == 0
    assert poller.statistics().succeeded == 1


async def test_progress_estimate_lands_close_after_finish_with_few_polls() -> None:
    clock, tasks, poller = make()
    tasks.add("a", 3, 33)
    h = poller.track(handle("a"), submitted_at=0)
    await run_until(poller, [h])
    polls = tasks.polls["a"]
    # The last poll saw the finish; the one before did not.
    assert polls[-1] >= 33 and polls[-2] < 33
    assert polls[-1] - 33 <= 2.0, polls
    assert len(polls) <= 5, polls


async def test_without_progress_interval_grows_with_age() -> None:
    clock, tasks, poller = make()
    tasks.progress = False
    tasks.add("a", 0, 600)
    h = poller.track(handle("a"), submitted_at=0)
    await run_until(poller, [h])
    gaps = [b - a for a, b in zip(tasks.polls["a"], tasks.polls["a"][1:], strict=False)]
    assert gaps[0] < gaps[-1]
    assert max(gaps) <= 30.0 + 1e-9


async def test_queued_tasks_are_polled_more_slowly_than_running_ones() -> None:
    clock, tasks, poller = make()
    tasks.progress = False
    tasks.add("queued", 10_000, 20_000)
    tasks.add("running", 0, 20_000)
    hq = poller.track(handle("queued"), submitted_at=0)
    hr = poller.track(handle("running"), submitted_at=0)
    runner = asyncio.ensure_future(poller.run())
    while clock.now < 60:
        await asyncio.sleep(0)
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    assert len(tasks.polls["queued"]) < len(tasks.polls["running"])
    assert not hq.done() and not hr.done()


async def test_learned_durations_delay_the_first_poll() -> None:
    clock, tasks, poller = make()
    tasks.progress = False
    for i in range(20):
        tasks.add(f"t{i}", 0, 40)
    first = [poller.track(handle(f"t{i}"), submitted_at=0) for i in range(20)]
    await run_until(poller, first)
    start = clock.now
    tasks.add("late", start, start + 40)
    h = poller.track(handle("late"), submitted_at=start)
    await run_until(poller, [h])
    assert tasks.polls["late"][0] - start >= 15  # half the 20th-percentile duration
    assert len(tasks.polls["late"]) < len(tasks.polls["t0"])


async def test_failed_task_raises_task_failed_with_snapshot() -> None:
    clock, tasks, poller = make()
    tasks.add("bad", 0, 10, TaskStatus.FAILED)
    h = poller.track(handle("bad"), submitted_at=0)
    await run_until(poller, [h])
    with pytest.raises(TaskFailed) as info:
        await h
    assert info.value.task.error_code == "SAFETY.INPUT.TEXT"
    assert "moderation" in str(info.value)
    assert poller.statistics().failed == 1


async def test_transient_errors_keep_the_task_pending() -> None:
    clock, tasks, poller = make()
    tasks.add("a", 0, 20)
    tasks.errors["a"] = [
        TransportError("reset", request_sent=True),
        ServerError("bad gateway", status=502),
        ServerError("timeout", status=524),
    ]
    h = poller.track(handle("a"), submitted_at=0)
    await run_until(poller, [h])
    assert (await h).status is TaskStatus.SUCCEEDED
    assert poller.statistics().poll_errors == 3


async def test_error_waits_double_and_start_again_after_a_good_answer() -> None:
    """Failed polls wait as ``PollPolicy.error_backoff()``'s generator says (5, 10, 20 s
    here); a good answer ends the series, so the next failure waits 5 s again."""
    clock, tasks, poller = make()
    tasks.add("a", 0, 1000)
    down = ServerError("bad gateway", status=502)
    tasks.errors["a"] = [down, down, down, None, down, down]
    h = poller.track(handle("a"), submitted_at=0)
    runner = asyncio.ensure_future(poller.run())
    try:
        async with asyncio.timeout(5):
            while len(tasks.polls.get("a", [])) < 7:
                await asyncio.sleep(0)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    times = tasks.polls["a"]
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(times)]
    assert gaps[:3] == [5, 10, 20]
    assert gaps[4:6] == [5, 10]
    assert not h.done()


async def test_a_huge_retry_after_on_a_poll_waits_only_the_cap() -> None:
    clock = VirtualClock()
    tasks = FakeTasks(clock)
    poller = Poller(
        tasks,
        PollPolicy(initial_delay=5, interval=5, max_interval=30, jitter=0),
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(7),
        max_retry_after=90,
    )
    tasks.add("a", 0, 20)
    tasks.errors["a"] = [RateLimitError("slow down", status=429, retry_after=999_999_999)]
    h = poller.track(handle("a"), submitted_at=0)
    await run_until(poller, [h])
    assert (await h).status is TaskStatus.SUCCEEDED
    first, second = tasks.polls["a"][:2]
    assert second - first == 90


@pytest.mark.parametrize(("visible_after", "fails"), [(30.0, False), (10_000.0, True)])
async def test_task_not_exist_is_pending_within_grace(visible_after: float, fails: bool) -> None:
    clock, tasks, poller = make()
    tasks.add("a", 0, visible_after + 5)
    original = tasks.fetch

    async def fetch(task_id: str, route: PollRoute) -> Task:
        if clock() < visible_after:
            raise TaskNotFound("task_not_exist", task_id=task_id)
        return await original(task_id, route)

    poller._fetch = fetch
    h = poller.track(handle("a"), submitted_at=0)
    await run_until(poller, [h])
    if fails:
        with pytest.raises(TaskNotFound) as info:
            await h
        assert info.value.task_id == "a"
        assert clock.now >= 60  # the grace window was honoured
    else:
        assert (await h).status is TaskStatus.SUCCEEDED
    assert poller.statistics().not_found >= 1


async def test_authentication_error_fails_every_handle() -> None:
    clock, tasks, poller = make()
    for name in ("a", "b", "c"):
        tasks.add(name, 0, 100)
    tasks.errors["a"] = [AuthenticationError("invalid token", status=401)]
    hs = [poller.track(handle(n), submitted_at=0) for n in ("a", "b", "c")]
    await run_until(poller, hs)
    for h in hs:
        with pytest.raises(AuthenticationError):
            await h


async def test_wake_polls_at_once() -> None:
    clock, tasks, poller = make(
        PollPolicy(initial_delay=25, interval=25, max_interval=30, jitter=0)
    )

    async def frozen_sleep(delay: float) -> None:
        await asyncio.Event().wait()  # time stands still: only a wake-up can cause a poll

    poller._sleep = frozen_sleep
    tasks.progress = False
    tasks.add("a", 0, 0)
    h = poller.track(handle("a"), submitted_at=0)
    runner = asyncio.ensure_future(poller.run())
    for _ in range(3):
        await asyncio.sleep(0)
    assert "a" not in tasks.polls
    assert poller.wake("a") is True
    assert poller.wake("unknown") is False
    await asyncio.wait_for(h.wait(), 5)
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    assert tasks.polls["a"] == [0.0]


async def test_tracking_the_same_id_twice_returns_one_handle() -> None:
    clock, tasks, poller = make()
    first = poller.track(handle("a"))
    assert poller.track(handle("a")) is first
    assert poller.get("a") is first
    assert poller.statistics().tracked == 1


async def test_close_fails_pending_handles() -> None:
    clock, tasks, poller = make()
    h = poller.track(handle("a"))
    poller.close(RuntimeError("closed"))
    with pytest.raises(RuntimeError, match="closed"):
        await h
    assert poller.statistics().tracked == 0


async def test_shielded_await_survives_a_timeout() -> None:
    clock, tasks, poller = make()
    tasks.add("a", 0, 40)
    h = poller.track(handle("a"), submitted_at=0)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0):
            await h
    assert not h.done()
    await run_until(poller, [h])
    assert (await h).status is TaskStatus.SUCCEEDED


async def test_a_bug_in_the_poll_path_fails_that_handle_not_the_poller() -> None:
    clock, tasks, _ = make()
    tasks.add("good", 0, 0)

    class BrokenForOne:
        async def fetch(self, task_id: str, route: PollRoute) -> Task:
            if task_id == "bad":
                raise KeyError("bug")
            return await tasks.fetch(task_id, route)

    poller = Poller(
        BrokenForOne(), PollPolicy(initial_delay=5, jitter=0), clock=clock, sleep=clock.sleep
    )
    bad = poller.track(handle("bad"), submitted_at=0, first_delay=0)
    good = poller.track(handle("good"), submitted_at=0, first_delay=0)
    await run_until(poller, [bad, good])
    error = bad.exception()
    assert isinstance(error, CometRunwayError) and "task bad" in str(error)
    assert isinstance(error.__cause__, KeyError)
    assert (await good).status is TaskStatus.SUCCEEDED


async def test_success_without_output_fails_after_the_default_output_grace() -> None:
    clock, _, _ = make()
    policy = PollPolicy(initial_delay=5, interval=5, max_interval=30, jitter=0)

    class SuccessWithoutOutput:
        async def fetch(self, task_id: str, route: PollRoute) -> Task:
            # What the protocol makes of SUCCESS without a usable URL: still running.
            return Task(task_id, TaskStatus.RUNNING, 1.0, raw_status="SUCCESS")

    poller = Poller(SuccessWithoutOutput(), policy, clock=clock, sleep=clock.sleep)
    h = poller.track(handle("a"), submitted_at=0, first_delay=0)
    await run_until(poller, [h])
    error = h.exception()
    assert isinstance(error, TaskFailed) and "no http(s) output URL" in str(error)
    assert error.task.task_id == "a"
    assert clock() >= policy.output_grace  # it waited the whole grace, on the virtual clock
