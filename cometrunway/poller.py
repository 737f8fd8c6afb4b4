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
handling one task, expected or not, fails that handle only, never the poller.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import random
import time

from attrs import frozen

from ._poll_handling import SCOUTS, TaskHandling, TaskSink, TaskSource, Tracked
from .budget import Clock, Sleep
from .errors import CometRunwayError
from .handles import TaskHandle
from .policies import PollPolicy

__all__ = ["Poller", "PollerStatistics", "TaskSink", "TaskSource"]

log: logging.Logger = logging.getLogger("cometrunway.poller")


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


class Poller(TaskHandling):
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
        max_retry_after: float = math.inf,
    ) -> None:
        super().__init__(
            source,
            policy,
            sink=sink,
            clock=clock,
            rng=rng,
            wall=wall,
            max_retry_after=max_retry_after,
        )
        self._sleep = sleep
        self._heap: list[tuple[float, int, str]] = []
        self._seq = 0
        self._wakeup = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None  # the one run() runs in
        self._queue: asyncio.Queue[Tracked] = asyncio.Queue()
        self._scouts_left = SCOUTS

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
        state = Tracked(handle, handle.poll_route, now if submitted_at is None else submitted_at)
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

    def release(self, task_id: str) -> TaskHandle | None:
        """Stop polling this task and hand back its handle, still waiting (another worker
        polls it now). A poll in flight still lands: a terminal answer settles the handle."""
        state = self._tracked.pop(task_id, None)
        return state.handle if state is not None else None

    def followed(self) -> list[str]:
        """The ids of every task this poller follows now."""
        return list(self._tracked)

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
        """Schedule polls forever (until cancelled)."""
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
                # Not a library error (a bug, or an answer nothing foresaw): it fails this
                # task's handle, never the poller or the client (issue 13).
                task_id = state.handle.task_id
                log.error("following task %s failed unexpectedly", task_id, exc_info=True)
                error = CometRunwayError(
                    f"following task {task_id} failed unexpectedly "
                    f"({type(exc).__name__}: {exc}); its id is still valid: follow it again "
                    f"with client.track({task_id!r})"
                )
                error.__cause__ = exc
                self._drop(state, error)
            finally:
                state.in_flight = False
            if state.recheck and state.handle.task_id in self._tracked:
                state.recheck = False
                self._schedule(state, 0.0)

    # ---------------------------------------------------------------- scheduling

    def _schedule(self, state: Tracked, delay: float) -> None:
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
