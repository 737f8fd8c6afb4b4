"""What the poller does with one task: poll it, read the answer, finish or re-plan it.

``poller.Poller`` is the scheduler (a heap of next-poll times, a fixed worker pool); this is
its per-task half. Transient poll failures keep a task pending (with backoff);
``task_not_exist`` is "not visible yet" for ``not_found_grace`` (wire reference §1.5, §6
C14); a 401/403 fails every handle. When to poll next is the pure ``_pacing``'s answer; what
a poll saw goes to a ``TaskSink``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Generator
from typing import Any, Protocol

import attrs

from . import _pacing
from .budget import Clock
from .errors import CometRunwayError, RateLimitError, TaskFailed, TaskNotFound
from .handles import TaskHandle
from .models import PollRoute, Task, TaskStatus
from .policies import PollPolicy
from .protocol import PollDisposition, is_queued, map_status, poll_disposition

__all__ = ["SCOUTS", "TaskHandling", "TaskSink", "TaskSource", "Tracked"]

log: logging.Logger = logging.getLogger("cometrunway.poller")

# The error code of a task failed for reporting success without an output URL.
NO_OUTPUT_CODE = "no_output_url"


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
SCOUTS = 8


class Tracked:
    """What the poller knows about one task. Slotted: 10,000 of these must stay small."""

    __slots__ = (
        "calibrating",
        "due",
        "handle",
        "in_flight",
        "last_at",
        "last_progress",
        "not_found_polls",
        "not_found_since",
        "polls",
        "recheck",
        "retry_waits",
        "route",
        "submitted_at",
        "success_since",
    )

    def __init__(self, handle: TaskHandle, route: PollRoute, submitted_at: float) -> None:
        self.handle = handle
        self.route: PollRoute = route
        self.submitted_at = submitted_at
        self.due = 0.0
        self.polls = 0
        # The waits after failed polls in a row (PollPolicy.error_backoff's generator),
        # started at the first failure and dropped after a good answer.
        self.retry_waits: Generator[float, Any, None] | None = None
        self.not_found_polls = 0
        self.in_flight = False
        self.recheck = False
        self.last_progress: float | None = None
        self.last_at: float | None = None
        # The next reading was asked for to measure the rate, whatever the task's start:
        # only such readings teach start times without bias (an early landing happens
        # mostly to tasks that started early).
        self.calibrating = False
        # When the task first reported success without a usable output (PollPolicy.output_grace).
        self.success_since: float | None = None
        # When this run first saw ``task_not_exist`` for it (the not-found grace).
        self.not_found_since: float | None = None


class TaskHandling:
    """The per-task half of the poller: one poll of one task and what follows from it.
    ``poller.Poller`` adds the scheduling (``_schedule``) and the coroutine."""

    def __init__(
        self,
        source: TaskSource,
        policy: PollPolicy,
        *,
        sink: TaskSink | None,
        clock: Clock,
        rng: random.Random | None,
        wall: Clock,
        max_retry_after: float,
    ) -> None:
        self._fetch = source.fetch
        self._policy = policy
        self._error_backoff = policy.error_backoff()
        self._max_retry_after = max_retry_after
        self._sink: TaskSink = sink or _NoSink()
        self._clock = clock
        self._wall = wall  # server timestamps are wall-clock times
        self._rng = rng or random.Random()
        self._tracked: dict[str, Tracked] = {}
        self._learned = _pacing.Learned()
        self._unplanned: list[str] = []
        self._counts = dict.fromkeys(
            ("polls", "poll_errors", "rate_limited", "not_found", "succeeded", "failed"), 0
        )

    def _schedule(self, state: Tracked, delay: float) -> None:
        """Poll ``state``'s task ``delay`` seconds from now (the scheduler's part)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- one poll

    async def _poll(self, state: Tracked) -> None:
        handle = state.handle
        self._counts["polls"] += 1
        try:
            task = await self._fetch(handle.task_id, state.route)
        except CometRunwayError as exc:
            await self._poll_failed(state, exc)
            return
        state.retry_waits = None
        state.not_found_polls = 0
        state.not_found_since = None
        state.polls += 1
        old = handle.task
        handle._update(task)
        pending = self._sink.updated(handle, old, task)
        if pending is not None:
            await pending
        if task.status.is_terminal:
            pending = self._finish(state, task)
        elif self._output_overdue(state, task):
            error = TaskFailed(
                attrs.evolve(
                    task,
                    error=f"the task reported success but no http(s) output URL arrived "
                    f"within {self._policy.output_grace:g}s (PollPolicy.output_grace)",
                    error_code=NO_OUTPUT_CODE,
                )
            )
            pending = self._finish(state, task, error)
        else:
            self._schedule(state, self._next_delay(state, task))
            return
        if pending is not None:
            await pending

    def _output_overdue(self, state: Tracked, task: Task) -> bool:
        """Whether ``task`` has reported success without a usable output for longer than
        ``output_grace`` (the URL can lag the status: wire reference §1.5 F1, §2)."""
        if map_status(task.raw_status) is not TaskStatus.SUCCEEDED:
            state.success_since = None
            return False
        now = self._clock()
        if state.success_since is None:
            state.success_since = now
        return now - state.success_since >= self._policy.output_grace

    async def _poll_failed(self, state: Tracked, exc: CometRunwayError) -> None:
        disposition = poll_disposition(exc)
        task_id = state.handle.task_id
        if disposition is PollDisposition.RETRY:
            self._counts["poll_errors"] += 1
            if isinstance(exc, RateLimitError):
                self._counts["rate_limited"] += 1
            if state.retry_waits is None:
                # A 429's Retry-After is a floor, never longer than
                # RetryPolicy.max_retry_after, whatever the server asks.
                state.retry_waits = self._error_backoff.waits(
                    max_retry_after=self._max_retry_after, rng=self._rng
                )
                next(state.retry_waits)  # primed, as backoff primes it
            delay = state.retry_waits.send(exc)
            log.info("poll of %s failed (%s); retrying in %.1fs", task_id, exc, delay)
            self._schedule(state, delay)
        elif disposition is PollDisposition.NOT_FOUND:
            self._counts["not_found"] += 1
            now = self._clock()
            if state.not_found_since is None:
                state.not_found_since = now
            # The grace runs from the first not-found this run saw, never from a submit
            # before a restart: a resumed task gets the whole window too (issue 13).
            unseen = now - state.not_found_since
            age = now - state.submitted_at
            if unseen < self._policy.not_found_grace:
                # Freshly created ids are invisible for a while (wire reference §3.1).
                state.not_found_polls += 1
                delay = _pacing.not_found_delay(self._policy, state.not_found_polls)
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
        self, state: Tracked, task: Task | None, error: BaseException | None = None
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

    def _drop(self, state: Tracked, error: Exception) -> None:
        """Stop following one task whose handling failed: its handle fails with ``error``."""
        if self._tracked.pop(state.handle.task_id, None) is not None:
            self._counts["failed"] += 1
        state.handle._fail(error)

    # ---------------------------------------------------------------- pacing

    def _jitter(self, delay: float) -> float:
        return _pacing.jittered(delay, self._policy.jitter, self._rng)

    def _learn(self, duration: float) -> None:
        self._learned.add_duration(duration)
        if self._unplanned and self._learned.durations >= SCOUTS:
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

    def _next_delay(self, state: Tracked, task: Task) -> float:
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
