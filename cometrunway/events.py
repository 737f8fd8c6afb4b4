"""Typed events about submits and tasks, and a batch tally for progress displays.

The client emits a frozen event for each thing that happens: a task created (with Runway's
cost estimate when the server sent one), its status or progress changed, it succeeded or
failed (the finished ``Task`` carries its ``cost``), a create that may have been accepted, an
id the server never knew. Read them from ``client.events()`` (an async iterator per reader) or pass
``Client(on_event=callback)``. Per task, events come in the order they happened.

``BatchTally`` folds events into counts per state and an ETA, for progress bars.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import TypeAlias

from attrs import define, field, frozen

from .models import Task, TaskStatus

log: logging.Logger = logging.getLogger("cometrunway.events")

__all__ = [
    "AmbiguousSubmit",
    "BatchTally",
    "Event",
    "EventHub",
    "StatusChanged",
    "SubmitRejected",
    "Submitted",
    "TaskFinished",
    "TaskLost",
]


@frozen
class Submitted:
    """A create was accepted (or a journaled one was found): ``task_id`` is known."""

    task_id: str
    key: str | None
    request_type: str
    label: str | None = None
    reused: bool = False  # True: the journal already had it, nothing was paid again
    estimated_cost: float | None = None  # credits, when the create answer said (wire §8.2)


@frozen
class StatusChanged:
    """A poll saw a new status or progress."""

    task_id: str
    status: TaskStatus
    progress: float | None
    task: Task = field(repr=False)


@frozen
class TaskFinished:
    """The task reached a terminal status: SUCCEEDED, FAILED or CANCELLED."""

    task_id: str
    status: TaskStatus
    task: Task = field(repr=False)

    @property
    def succeeded(self) -> bool:
        return self.status is TaskStatus.SUCCEEDED

    @property
    def cost(self) -> float | None:
        """Credits the task cost, when the server said (wire §8.2); None: unknown."""
        return self.task.cost

    @property
    def estimated_cost(self) -> float | None:
        """Credits the server estimated, when it said in this last answer; None: unknown."""
        return self.task.estimated_cost


@frozen
class TaskLost:
    """Polling stopped without a result: the id is unknown (``task_not_exist`` past the
    grace), or polling was refused (401/403). ``error`` says which."""

    task_id: str
    error: BaseException


@frozen
class AmbiguousSubmit:
    """A create may have been accepted and was not retried; settle it (journal)."""

    key: str | None
    request_type: str
    error: BaseException
    label: str | None = None


@frozen
class SubmitRejected:
    """The server refused a create (nothing was created)."""

    key: str | None
    request_type: str
    error: BaseException
    label: str | None = None


Event: TypeAlias = (
    Submitted | StatusChanged | TaskFinished | TaskLost | AmbiguousSubmit | SubmitRejected
)


class EventHub:
    """Fans events out to a callback and to every open ``events()`` reader.

    The callback is user code: an exception it raises is logged once, with its traceback,
    and goes no further. It never fails a handle, a create or the client.
    """

    def __init__(self, callback: Callable[[Event], object] | None = None) -> None:
        self._callback = callback
        self._readers: list[asyncio.Queue[Event | None]] = []

    @property
    def active(self) -> bool:
        return self._callback is not None or bool(self._readers)

    def emit(self, event: Event) -> None:
        if self._callback is not None:
            try:
                self._callback(event)
            except Exception:
                log.exception("the on_event callback raised on %r; the client carries on", event)
        for queue in self._readers:
            queue.put_nowait(event)

    def close(self) -> None:
        for queue in self._readers:
            queue.put_nowait(None)

    def stream(self) -> AsyncIterator[Event]:
        """Every event from this call on (subscribed at once, not at the first iteration),
        until the client closes."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._readers.append(queue)
        return self._read(queue)

    async def _read(self, queue: asyncio.Queue[Event | None]) -> AsyncIterator[Event]:
        try:
            while (event := await queue.get()) is not None:
                yield event
        finally:
            self._readers.remove(queue)


@define
class BatchTally:
    """Counts per state and an ETA for a batch, fed with ``add(event)``.

    ``total`` is the number of requests in the batch. The ETA assumes the tasks still
    running finish at the rate tasks have been finishing.
    """

    total: int
    clock: Callable[[], float] = time.monotonic
    submitted: int = 0
    reused: int = 0
    queued: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    lost: int = 0
    ambiguous: int = 0
    rejected: int = 0
    started: float = field(init=False)
    _estimates: dict[str, float] = field(init=False, factory=dict)
    _costs: dict[str, float] = field(init=False, factory=dict)
    _status: dict[str, TaskStatus] = field(init=False, factory=dict)
    _progress: dict[str, float] = field(init=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        self.started = self.clock()

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed + self.lost

    @property
    def settled(self) -> int:
        """Requests with a final answer: finished tasks plus refused or ambiguous creates."""
        return self.finished + self.ambiguous + self.rejected

    def progress_of(self, task_id: str) -> float | None:
        return self._progress.get(task_id)

    @property
    def credits_spent(self) -> float | None:
        """Credits the finished tasks cost, summed over those whose cost the server said;
        None when it said none (CometAPI may not pass Runway's ``cost`` on, wire §8.2)."""
        return sum(self._costs.values()) if self._costs else None

    @property
    def credits_estimated(self) -> float | None:
        """Credits the server estimated, summed over the tasks it estimated; None if none."""
        return sum(self._estimates.values()) if self._estimates else None

    @property
    def cost_unknown(self) -> int:
        """Finished tasks whose cost the server did not say."""
        return self.finished - len(self._costs)

    def _note_credits(self, task_id: str, estimate: float | None, cost: float | None) -> None:
        if estimate is not None:
            self._estimates[task_id] = estimate
        if cost is not None:
            self._costs[task_id] = cost

    def add(self, event: Event) -> None:
        if isinstance(event, Submitted):
            self.submitted += 1
            self.reused += event.reused
            self._move(event.task_id, TaskStatus.PENDING)
            self._note_credits(event.task_id, event.estimated_cost, None)
        elif isinstance(event, StatusChanged):
            self._move(event.task_id, event.status)
            self._note_credits(event.task_id, event.task.estimated_cost, None)
            if event.progress is not None:
                self._progress[event.task_id] = event.progress
        elif isinstance(event, TaskFinished):
            self._move(event.task_id, None)
            self._progress.pop(event.task_id, None)
            self._note_credits(event.task_id, event.estimated_cost, event.cost)
            if event.succeeded:
                self.succeeded += 1
            else:
                self.failed += 1
        elif isinstance(event, TaskLost):
            self._move(event.task_id, None)
            self.lost += 1
        elif isinstance(event, AmbiguousSubmit):
            self.ambiguous += 1
        else:
            self.rejected += 1

    def _move(self, task_id: str, status: TaskStatus | None) -> None:
        old = self._status.pop(task_id, None)
        if old is TaskStatus.PENDING:
            self.queued -= 1
        elif old is TaskStatus.RUNNING:
            self.running -= 1
        if status is TaskStatus.PENDING:
            self.queued += 1
        elif status is TaskStatus.RUNNING:
            self.running += 1
        if status is not None:
            self._status[task_id] = status

    def eta(self) -> float | None:
        """Seconds until every request is settled, at the rate seen so far; None if unknown."""
        elapsed = self.clock() - self.started
        left = self.total - self.settled
        if left <= 0:
            return 0.0
        if self.finished == 0 or elapsed <= 0:
            return None
        rate = self.finished / elapsed
        eta = left / rate
        return eta if math.isfinite(eta) else None
