"""``TaskHandle``: an awaitable reference to one remote task that the poller follows.

It imports only the models: the poller settles it (``_update``/``_resolve``/``_fail``) and
its ``download()`` and ``cancel()`` go through callables the client injects.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Generator
from pathlib import Path
from types import TracebackType
from typing import Any

import attrs

from .models import PollRoute, Task, TaskStatus

__all__ = ["CancelFn", "DownloadFn", "TaskHandle"]

# (finished task, its poll route, dest, progress) -> the written paths (Client.download).
DownloadFn = Callable[
    [Task, PollRoute, "str | os.PathLike[str]", "Callable[[int, int | None], Any] | None"],
    Awaitable[list[Path]],
]
# (task id, its poll route) -> None once the server accepted the cancel (Client.cancel).
CancelFn = Callable[[str, PollRoute], Awaitable[None]]


class TaskHandle:
    """A task the client follows. ``await handle`` returns the finished ``Task``.

    Awaiting raises ``TaskFailed`` when the task failed or was cancelled remotely,
    ``TaskNotFound`` when the id never became visible, or the error that stopped polling.
    Awaiting is shielded: a timeout or cancellation in one awaiter (``asyncio.timeout``)
    leaves the task tracked, and the handle can be awaited again.
    """

    __slots__ = (
        "_cancel",
        "_download",
        "_error_tb",
        "_estimate",
        "_future",
        "_outcome",
        "_task",
        "poll_route",
        "task_id",
    )

    def __init__(
        self,
        task_id: str,
        *,
        poll_route: PollRoute,
        download: DownloadFn | None = None,
        cancel: CancelFn | None = None,
    ) -> None:
        self.task_id: str = task_id
        self.poll_route: PollRoute = poll_route
        self._download = download
        self._cancel = cancel
        self._task: Task | None = None
        # The finished Task or the error, once done. The future exists only while somebody
        # waits for a handle that is not done yet: most finish before anyone looks.
        self._outcome: Task | BaseException | None = None
        self._future: asyncio.Future[Task] | None = None
        self._error_tb: TracebackType | None = None
        # The last estimate heard (create answer or poll): Runway sends ``estimatedCost``
        # only until a task ends, ``cost`` after (wire §8.2); snapshots keep both.
        self._estimate: float | None = None

    def __repr__(self) -> str:
        return f"<TaskHandle {self.task_id} {self.status.value}>"

    def __await__(self) -> Generator[Any, None, Task]:
        if self._outcome is not None:  # nothing to wait for, so nothing to shield
            return _finished(self._outcome, self._error_tb)
        return asyncio.shield(self._waiter()).__await__()

    def _waiter(self) -> asyncio.Future[Task]:
        if self._future is None:
            self._future = asyncio.get_running_loop().create_future()
        return self._future

    async def wait(self) -> Task:
        """Same as ``await handle``."""
        return await self

    @property
    def task(self) -> Task | None:
        """The latest snapshot, or None before the first poll answered."""
        return self._task

    @property
    def status(self) -> TaskStatus:
        return self._task.status if self._task is not None else TaskStatus.PENDING

    @property
    def progress(self) -> float | None:
        return self._task.progress if self._task is not None else None

    def done(self) -> bool:
        return self._outcome is not None

    def exception(self) -> BaseException | None:
        """The error the handle ended with, None if it succeeded; only once ``done()``."""
        if self._outcome is None:
            raise asyncio.InvalidStateError(f"task {self.task_id} is not finished yet")
        return self._outcome if isinstance(self._outcome, BaseException) else None

    def add_done_callback(self, callback: Callable[[TaskHandle], Any]) -> None:
        """Call ``callback(handle)`` once the handle is done (soon, if it already is)."""
        if self._outcome is not None:
            asyncio.get_running_loop().call_soon(callback, self)
        else:
            self._waiter().add_done_callback(lambda _: callback(self))

    async def download(
        self,
        dest: str | os.PathLike[str],
        *,
        progress: Callable[[int, int | None], Any] | None = None,
    ) -> list[Path]:
        """Wait for the task, then stream its outputs to ``dest`` (a folder or a file path)."""
        if self._download is None:
            raise RuntimeError("this handle has no client to download with")
        task = await self
        return await self._download(task, self.poll_route, dest, progress)

    async def cancel(self) -> None:
        """Ask the server to cancel the task (``DELETE /runwayml/v1/tasks/{id}``, wire §8.6).

        Returns once the server accepted; the handle keeps following the task, and awaiting
        it raises ``TaskFailed`` carrying the CANCELLED task once a poll says so (or gives
        whatever the task ended with instead: it may have finished first). Raises
        ``CancelNotSupported`` when the server has no cancel (404/405) or the task is a
        ``/runway/pro/*`` one (nothing is sent); the task is still followed. A handle that
        is already done sends nothing.
        """
        if self._cancel is None:
            raise RuntimeError("this handle has no client to cancel with")
        if self._outcome is not None:
            return  # finished: on Runway a DELETE would delete its outputs, not cancel it
        await self._cancel(self.task_id, self.poll_route)

    # --- used by the poller -------------------------------------------------------------

    def _note_estimate(self, credits: float | None) -> None:
        """The create answer's estimate (wire §8.2), kept for the snapshots to come."""
        if credits is not None:
            self._estimate = credits
            if self._task is not None and self._task.estimated_cost is None:
                self._task = attrs.evolve(self._task, estimated_cost=credits)

    def _with_estimate(self, task: Task) -> Task:
        if task.estimated_cost is not None:
            self._estimate = task.estimated_cost
            return task
        if self._estimate is None:
            return task
        return attrs.evolve(task, estimated_cost=self._estimate)

    def _update(self, task: Task) -> None:
        self._task = self._with_estimate(task)

    def _resolve(self, task: Task) -> None:
        task = self._task = self._with_estimate(task)
        if self._outcome is None:
            self._outcome = task
            if self._future is not None:
                self._future.set_result(task)

    def _fail(self, error: BaseException, task: Task | None = None) -> None:
        if task is not None:
            self._task = self._with_estimate(task)
        if self._outcome is None:
            self._outcome = error
            self._error_tb = error.__traceback__
            if self._future is not None:
                self._future.set_exception(error)
                # A handle nobody awaits must not log "exception was never retrieved" at exit.
                self._future.exception()


def _finished(
    outcome: Task | BaseException, error_tb: TracebackType | None
) -> Generator[Any, None, Task]:
    """What awaiting a finished handle gives: the task, or its error raised (with its own
    traceback each time, as a future re-raises it, so repeated awaits do not grow it)."""
    if isinstance(outcome, BaseException):
        raise outcome.with_traceback(error_tb)
    return outcome
    yield  # type: ignore[unreachable]  # a generator: `await` needs an iterator
