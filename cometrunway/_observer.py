"""The poller's sink: what a poll saw goes out as events and into the journal.

``TaskObserver`` is the ``TaskSink`` the client gives its poller. It emits typed events (user
callbacks are isolated in ``EventHub``: an exception there is logged and goes no further)
and returns the journal write a change needs, so the poller can await it for that task only.
"""

from __future__ import annotations

from collections.abc import Awaitable

from .errors import TaskNotFound
from .events import EventHub, StatusChanged, TaskFinished, TaskLost
from .handles import TaskHandle
from .journal import Journal
from .journal._credits import status_keywords
from .models import Task
from .protocol import NOT_FOUND_CODE, LostTask

__all__ = ["TaskObserver"]


class TaskObserver:
    """Events out, journal rows in, for every change the poller sees."""

    def __init__(self, events: EventHub) -> None:
        self._events = events
        self.journal: Journal | None = None  # set once the client opened it

    def updated(self, handle: TaskHandle, old: Task | None, new: Task) -> Awaitable[None] | None:
        """A poll answered; returns the journal write to await, if the task changed."""
        if old is not None and (old.status, old.progress, old.outputs) == (
            new.status,
            new.progress,
            new.outputs,
        ):
            # Only credits the server said for the first time (or changed) still go in.
            if _same_credits(old, new) or self.journal is None:
                return None
            return self._record(new)
        if self._events.active:
            if new.status.is_terminal:
                self._events.emit(TaskFinished(new.task_id, new.status, new))
            else:
                self._events.emit(StatusChanged(new.task_id, new.status, new.progress, new))
        if self.journal is None:
            return None
        return self._record(new)

    def settled_elsewhere(self, task: Task) -> None:
        """Another worker of the fleet saw ``task`` end (its journal row said so): the
        same event a poll here would have emitted; the row is already written."""
        self._events.emit(TaskFinished(task.task_id, task.status, task))

    def _record(self, new: Task) -> Awaitable[None]:
        assert self.journal is not None
        credits = status_keywords(self.journal, estimated_cost=new.estimated_cost, cost=new.cost)
        return self.journal.record_status(
            new.task_id,
            status=new.status.value,
            progress=new.progress,
            outputs=new.all_urls,
            error=new.error,
            error_code=new.error_code,
            terminal=new.status.is_terminal,
            **credits,
        )

    def finished(self, handle: TaskHandle, error: BaseException | None) -> Awaitable[None] | None:
        """Polling of ``handle`` stopped; an id the server never knew is journaled as such
        (a terminal row, so ``resume()`` stops offering it)."""
        if error is not None and not (handle.task is not None and handle.task.is_terminal):
            self._events.emit(TaskLost(handle.task_id, error))
        if self.journal is not None and isinstance(error, TaskNotFound):
            return self.journal.record_status(
                handle.task_id,
                status=LostTask.NOT_FOUND.value,
                progress=None,
                outputs=(),
                error=str(error),
                error_code=NOT_FOUND_CODE,
                terminal=True,
            )
        return None


def _same_credits(old: Task, new: Task) -> bool:
    """Whether ``new`` says no credits ``old`` did not (a figure left out is not a change)."""
    return (new.estimated_cost is None or new.estimated_cost == old.estimated_cost) and (
        new.cost is None or new.cost == old.cost
    )
