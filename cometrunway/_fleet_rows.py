"""A fleet worker's reading of a finished journal row: the ``Task`` another worker's last
poll saw, and a waiting handle settled from it as that poll settled its own."""

from __future__ import annotations

from .errors import CometRunwayError, TaskFailed, TaskNotFound
from .handles import TaskHandle
from .journal import EntryState, JournalEntry
from .models import Task, TaskStatus
from .protocol.fields import video_url_of

__all__ = ["settle_from_row", "task_of_row"]


def task_of_row(entry: JournalEntry) -> Task | None:
    """The ``Task`` a finished journal row describes (None unless the row is DONE with a
    task status): what the worker that polled it last saw."""
    if entry.state is not EntryState.DONE or entry.task_id is None:
        return None
    status = entry.status
    if status is None or status not in TaskStatus.__members__:
        return None
    outputs = entry.outputs  # every URL the poll saw (posters and frames too)
    return Task(
        entry.task_id,
        TaskStatus(status),
        progress=entry.progress,
        outputs=outputs,
        video_url=video_url_of(outputs),
        error=entry.error,
        error_code=entry.error_code,
        raw_status=entry.status,
        estimated_cost=entry.estimated_cost,
        cost=entry.cost,
    )


def settle_from_row(handle: TaskHandle, entry: JournalEntry) -> Task | None:
    """Settle ``handle`` from its task's finished row, as the poll that finished it did;
    returns the task the row describes (None when it names no task status)."""
    task = task_of_row(entry)
    if task is not None:
        handle._update(task)
        if task.status is TaskStatus.SUCCEEDED:
            handle._resolve(task)
        else:
            handle._fail(TaskFailed(task), task)
        return handle.task
    why = entry.error or f"its journal row ended as {entry.status}"
    if entry.error_code == "task_not_exist" or entry.status == "NOT_FOUND":
        handle._fail(TaskNotFound(why, task_id=handle.task_id, status=404))
    else:
        handle._fail(
            CometRunwayError(f"task {handle.task_id} was followed no further by the fleet: {why}")
        )
    return None
