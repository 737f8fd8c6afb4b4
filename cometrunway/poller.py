"""The one poller: a single scheduling coroutine that follows every tracked task.

Tasks wait in a heap keyed by their next poll time, so a tick costs O(log n) however many
tasks are tracked. A small fixed pool of worker coroutines performs the polls the scheduler
hands out; there is no coroutine per task. Each task's next poll is chosen from what is
known about it:

* progress seen twice gives a finish estimate, and the next poll lands just after it;
* without progress, durations learned from finished tasks say when to look first;
* otherwise the interval grows with the task's age, and doubles while it is queued.

Transient poll failures keep a task pending (with backoff); ``task_not_exist`` is "not
visible yet" for ``not_found_grace`` after the submit (see C14 in :doc:`/quirks`); a
401/403 fails every handle. Clock, sleep and randomness are injectable.

The poller knows two small objects, not the client: a ``TaskSource`` (one poll: build, send,
parse) and a ``TaskSink`` (what a poll saw: events out, journal rows in). A failure while
handling one task fails that handle only; an unexpected one (a bug) also surfaces from
``run()``.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
import time
from collections.abc import Awaitable
from typing import Protocol

from attrs import frozen

from . import _pacing
from .budget import Clock, Sleep
from .errors import CometRunwayError, RateLimitError, TaskFailed, TaskNotFound
from .handles import TaskHandle
from .models import PollRoute, Task, TaskStatus
from .policies import PollPolicy
from .protocol import PollDisposition, is_queued, poll_disposition

__all__ = ["Poller", "PollerStatistics", "TaskSink", "TaskSource"]

log: logging.Logger = logging.getLogger("cometrunway.poller")


class TaskSource(Protocol):
    """One poll of one task: its snapshot, or the ``CometRunwayError`` it failed with."""

    async def fetch(self, task_id: str, route: PollRoute) -> Task: ...


class TaskSink(Protocol):
    """Where what the poller sees goes. Both run inline and return an awaitable only when
    they have I/O to do (a journal write), which the poller awaits for that task alone."""

    def updated(
        self, handle: TaskHandle, old: Task | None, new: Task
    ) -> Awaitable[None] | None: ...

    def finished(
        self, handle: TaskHandle, error: BaseException | None
    ) -> Awaitable[None] | None: ...


class _NoSink:
    def updated(self, handle: TaskHandle, old: Task | None, new: Task) -> None:
        return None

    def finished(self, handle: TaskHandle, error: BaseException | None) -> None:
        return None


# While nothing is known about durations, only this many tasks probe at initial_delay; the
# rest wait for what the scouts learn (their first poll is then re-planned).
_SCOUTS = 8


@frozen
class PollerStatistics:
    """Counts since the client opened (``Client.statistics()``)."""

    tracked: int
    in_flight: int
    polls: int
    poll_errors: int
    rate_limited: int
    not_found: int
    succeeded: int
    failed: int
    typical_duration: float | None


class _Tracked:
    """What the poller knows about one task. Slotted: 10,000 of these must stay small."""

    __slots__ = (
        "calibrating",
        "due",
        "errors",
        "handle",
        "in_flight",
        "last_at",
        "last_progress",
        "polls",
        "recheck",
        "route",
        "submitted_at",
    )

    def __init__(self, handle: TaskHandle, route: PollRoute, submitted_at: float) -> None:
        self.handle = handle
        self.route: PollRoute = route
        self.submitted_at = submitted_at
        self.due = 0.0
        self.polls = 0
        self.errors = 0
        self.in_flight = False
        self.recheck = False
        self.last_progress: float | None = None
        self.last_at: float | None = None
        # The next reading was asked for to measure the rate, whatever the task's start:
        # only such readings teach start times without bias (an early landing happens
        # mostly to tasks that started early).
        self.calibrating = False


class Poller:
    """Follows tasks until each is terminal. ``run()`` is the one long-lived coroutine."""

    def __init__(
        self,
        source: TaskSource,
        policy: PollPolicy,
        *,
        sink: TaskSink | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        wall: Clock = time.time,
    ) -> None:
        self._fetch = source.fetch
        self._policy = policy
        self._sink: TaskSink = sink or _NoSink()
        self._clock = clock
        self._wall = wall  # server timestamps are wall-clock times
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._tracked: dict[str, _Tracked] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = 0
        self._wakeup = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None  # the one run() runs in
        self._queue: asyncio.Queue[_Tracked] = asyncio.Queue()
        self._learned = _pacing.Learned()
        self._scouts_left = _SCOUTS
        self._unplanned: list[str] = []
        self._counts = dict.fromkeys(
            ("polls", "poll_errors", "rate_limited", "not_found", "succeeded", "failed"), 0
        )

    # ---------------------------------------------------------------- registration

    def track(
        self,
        handle: TaskHandle,
        *,
        submitted_at: float | None = None,
        first_delay: float | None = None,
    ) -> TaskHandle:
        """Follow ``handle``'s task; returns the handle already tracked for that id, if any."""
        existing = self._tracked.get(handle.task_id)
        if existing is not None:
            return existing.handle
        now = self._clock()
        state = _Tracked(handle, handle.poll_route, now if submitted_at is None else submitted_at)
        self._tracked[handle.task_id] = state
        if first_delay is not None:
            delay = first_delay
        elif self._learned.durations or self._scouts_left > 0:
            if not self._learned.durations:
                self._scouts_left -= 1
            delay = self._first_delay()
        else:
            # Nothing learned yet and enough scouts out: a late provisional first poll,
            # brought forward as soon as the scouts learn how long tasks take.
            delay = self._jitter(3 * self._policy.initial_delay)
            self._unplanned.append(handle.task_id)
        self._schedule(state, max(0.0, state.submitted_at + delay - now))
        return handle

    def get(self, task_id: str) -> TaskHandle | None:
        state = self._tracked.get(task_id)
        return state.handle if state is not None else None

    def wake(self, task_id: str) -> bool:
        """Poll this task now (a callback said it changed). False if it is not tracked."""
        state = self._tracked.get(task_id)
        if state is None:
            return False
        if state.in_flight:
            state.recheck = True
        else:
            self._schedule(state, 0.0)
        return True

    def statistics(self) -> PollerStatistics:
        return PollerStatistics(
            tracked=len(self._tracked),
            in_flight=sum(1 for s in self._tracked.values() if s.in_flight),
            typical_duration=self._learned.typical_duration(),
            **self._counts,
        )

    def close(self, error: BaseException) -> None:
        """Stop following every task: each pending handle fails with ``error``."""
        for state in self._tracked.values():
            state.handle._fail(error)
        self._tracked.clear()
        self._heap.clear()

    # ---------------------------------------------------------------- the coroutine

    async def run(self) -> None:
        """Schedule polls forever (until cancelled). Worker bugs propagate, never vanish."""
        self._loop = asyncio.get_running_loop()
        async with asyncio.TaskGroup() as group:
            for _ in range(self._policy.max_concurrent_polls):
                group.create_task(self._worker())
            await self._scheduler()

    async def _scheduler(self) -> None:
        heap = self._heap
        while True:
            self._wakeup.clear()
            now = self._clock()
            while heap and heap[0][0] <= now:
                due, _, task_id = heapq.heappop(heap)
                state = self._tracked.get(task_id)
                if state is None or state.due != due or state.in_flight:
                    continue  # finished, or rescheduled since: a stale heap entry
                state.in_flight = True
                self._queue.put_nowait(state)
            await self._wait(heap[0][0] - now if heap else None)

    async def _wait(self, delay: float | None) -> None:
        if delay is None:
            await self._wakeup.wait()
            return
        if self._sleep is asyncio.sleep:
            # A timer that sets the event: no timeout context, no exception per expiry.
            assert self._loop is not None  # set by run(), the only caller's caller
            timer = self._loop.call_later(delay, self._wakeup.set)
            try:
                await self._wakeup.wait()
            finally:
                timer.cancel()
            return
        # An injected sleep (tests, simulations) races the wake-up event.
        sleeper = asyncio.ensure_future(self._sleep(delay))
        waker = asyncio.ensure_future(self._wakeup.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for fut in (sleeper, waker):
                fut.cancel()
            await asyncio.gather(sleeper, waker, return_exceptions=True)

    async def _worker(self) -> None:
        while True:
            state = await self._queue.get()
            try:
                await self._poll(state)
            except CometRunwayError as exc:
                # Handling this one task went wrong (say, its journal write): its handle
                # fails, the others go on.
                log.warning("following task %s failed: %s", state.handle.task_id, exc)
                self._drop(state, exc)
            except Exception as exc:
                self._drop(state, exc)
                raise  # a bug: it surfaces from run() (and the client's block)
            finally:
                state.in_flight = False
            if state.recheck and state.handle.task_id in self._tracked:
                state.recheck = False
                self._schedule(state, 0.0)

    # ---------------------------------------------------------------- one poll

    async def _poll(self, state: _Tracked) -> None:
        handle = state.handle
        self._counts["polls"] += 1
        try:
            task = await self._fetch(handle.task_id, state.route)
        except CometRunwayError as exc:
            await self._poll_failed(state, exc)
            return
        state.errors = 0
        state.polls += 1
        old = handle.task
        handle._update(task)
        pending = self._sink.updated(handle, old, task)
        if pending is not None:
            await pending
        if task.status.is_terminal:
            pending = self._finish(state, task)
            if pending is not None:
                await pending
        else:
            self._schedule(state, self._next_delay(state, task))

    async def _poll_failed(self, state: _Tracked, exc: CometRunwayError) -> None:
        disposition = poll_disposition(exc)
        task_id = state.handle.task_id
        if disposition is PollDisposition.RETRY:
            self._counts["poll_errors"] += 1
            state.errors += 1
            retry_after = None
            if isinstance(exc, RateLimitError):
                self._counts["rate_limited"] += 1
                retry_after = exc.retry_after
            delay = _pacing.retry_delay(self._policy, state.errors, retry_after)
            log.info("poll of %s failed (%s); retrying in %.1fs", task_id, exc, delay)
            self._schedule(state, self._jitter(delay))
        elif disposition is PollDisposition.NOT_FOUND:
            self._counts["not_found"] += 1
            age = self._clock() - state.submitted_at
            if age < self._policy.not_found_grace:
                # Freshly created ids are invisible for a while (wire reference §3.1).
                state.errors += 1
                delay = _pacing.not_found_delay(self._policy, state.errors)
                self._schedule(state, self._jitter(delay))
            else:
                error = TaskNotFound(
                    f"task {task_id} still unknown to the server {age:.0f}s after submit "
                    f"(task_not_exist); check the id and the route ({state.route!r})",
                    task_id=task_id,
                    status=exc.status if isinstance(exc, TaskNotFound) else 404,
                    body=getattr(exc, "body", None),
                )
                pending = self._finish(state, None, error)
                if pending is not None:
                    await pending
        elif disposition is PollDisposition.AUTH:
            log.error("polling refused (%s): failing every tracked task", exc)
            for other in list(self._tracked.values()):
                pending = self._finish(other, None, exc)
                if pending is not None:
                    await pending
        else:
            log.warning("poll of %s failed for good: %s", task_id, exc)
            pending = self._finish(state, None, exc)
            if pending is not None:
                await pending

    def _finish(
        self, state: _Tracked, task: Task | None, error: BaseException | None = None
    ) -> Awaitable[None] | None:
        handle = state.handle
        self._tracked.pop(handle.task_id, None)
        if task is not None and error is None:
            if task.status is TaskStatus.SUCCEEDED:
                self._counts["succeeded"] += 1
                self._learn(self._clock() - state.submitted_at)
                handle._resolve(task)
            else:
                error = TaskFailed(task)
        if error is not None:
            self._counts["failed"] += 1
            handle._fail(error, task)
        return self._sink.finished(handle, error)

    def _drop(self, state: _Tracked, error: Exception) -> None:
        """Stop following one task whose handling failed: its handle fails with ``error``."""
        if self._tracked.pop(state.handle.task_id, None) is not None:
            self._counts["failed"] += 1
        state.handle._fail(error)

    # ---------------------------------------------------------------- pacing

    def _schedule(self, state: _Tracked, delay: float) -> None:
        due = self._clock() + delay
        state.due = due
        if delay <= 0 and not state.in_flight:
            # Due now (a callback's wake-up, a zero first delay): straight to a worker; any
            # older heap entry of this task is now stale and will be skipped.
            state.in_flight = True
            self._queue.put_nowait(state)
            return
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, state.handle.task_id))
        if self._heap[0][2] == state.handle.task_id:
            self._wakeup.set()  # earlier than what the scheduler sleeps towards

    def _jitter(self, delay: float) -> float:
        return _pacing.jittered(delay, self._policy.jitter, self._rng)

    def _learn(self, duration: float) -> None:
        self._learned.add_duration(duration)
        if self._unplanned and self._learned.durations >= _SCOUTS:
            # Every scout has reported: one sample alone could be the slowest task.
            self._replan()

    def _replan(self) -> None:
        """First knowledge of durations: re-plan the provisional first polls."""
        now = self._clock()
        for task_id in self._unplanned:
            state = self._tracked.get(task_id)
            if state is None or state.polls or state.in_flight:
                continue
            due = state.submitted_at + self._first_delay()
            self._schedule(state, max(0.0, due - now))
        self._unplanned.clear()

    def _first_delay(self) -> float:
        fast = self._learned.fast_duration()
        return self._jitter(_pacing.first_poll_delay(self._policy, fast))

    def _next_delay(self, state: _Tracked, task: Task) -> float:
        """Pacing is pure (``_pacing``); this gathers what it needs and learns from it."""
        now = self._clock()
        age = now - state.submitted_at
        previous = None
        if state.last_progress is not None and state.last_at is not None:
            previous = _pacing.Reading(state.last_progress, state.last_at)
        server_ran = None
        if task.started_at is not None:  # the server said when it started (F1 start_time)
            server_ran = self._wall() - task.started_at.timestamp()
        estimate = _pacing.estimate_finish(
            task.progress,
            now=now,
            age=age,
            previous=previous,
            server_ran=server_ran,
            typical_start=self._learned.typical_start(),
        )
        if task.progress is not None and 0 < task.progress < 1:
            state.last_progress, state.last_at = task.progress, now
        if estimate is not None and estimate.start_age is not None and state.calibrating:
            self._learned.add_start(estimate.start_age)
            self._learn(age + estimate.remaining)  # an estimate of the whole duration
        state.calibrating = estimate is not None and estimate.spread >= _pacing.TRUSTED_SPREAD
        delay = _pacing.next_poll_delay(
            self._policy,
            age=age,
            estimate=estimate,
            queued=is_queued(task),
            started=task.status is not TaskStatus.PENDING,
            typical_duration=self._learned.typical_duration(),
        )
        return delay if _pacing.is_landing(estimate) else self._jitter(delay)
