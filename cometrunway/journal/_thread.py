"""The SQLite journal's own thread, seen from the event loop: it owns the connection
(:mod:`._worker`) and commits in groups.

The event loop only queues operations and awaits their futures; each caller returns only
once its own write is committed.
"""

from __future__ import annotations

import asyncio
import enum
import sqlite3
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TypeVar

from ..errors import JournalError
from ._worker import Op, Stop, Worker

__all__ = ["Op", "Stop", "ThreadedStore", "Worker"]

T = TypeVar("T")


class _LifeCycle(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


class ThreadedStore:
    """A store whose every statement runs on its own :class:`Worker` thread.

    Subclasses open their connection in ``_open_connection`` (called on the thread) and
    run operations with ``_call`` (awaited) or ``_enqueue_behind`` (write-behind).
    """

    def __init__(self, spec: str, *, durable: bool) -> None:
        self._spec = spec
        self._durable = durable
        self._state = _LifeCycle.NEW
        self._worker: Worker | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._open_lock = asyncio.Lock()
        self._pending: dict[asyncio.AbstractEventLoop, list[Op]] = {}

    @property
    def is_open(self) -> bool:
        return self._state is _LifeCycle.OPEN

    @property
    def worker_thread_id(self) -> int | None:
        """``threading.get_ident()`` of the thread that runs every SQLite call, once open."""
        worker = self._worker
        return worker.thread.ident if worker is not None else None

    def _open_connection(self) -> sqlite3.Connection:
        raise NotImplementedError

    # -- lifecycle

    async def open(self) -> None:
        """Start the thread and open the store on it (see ``_open_connection``).

        Calling it again while open does nothing; after :meth:`close` it raises.
        """
        async with self._open_lock:
            if self._state is _LifeCycle.OPEN:
                return
            if self._state is _LifeCycle.CLOSED:
                raise JournalError(
                    f"journal {self._spec} is closed; create a new "
                    f"{type(self).__name__} to open it again"
                )
            worker = Worker(self._spec, durable=self._durable)
            loop = asyncio.get_running_loop()
            future: asyncio.Future[None] = loop.create_future()

            def connect() -> None:
                worker.conn = self._open_connection()

            worker.submit(
                [Op(connect, loop=loop, future=future, write=True, durable=True, raw=True)]
            )
            try:
                await future
            except BaseException:
                worker.stop_nowait()
                raise
            self._worker = worker
            self._state = _LifeCycle.OPEN
            self._finalizer = weakref.finalize(self, worker.stop_nowait)

    async def close(self) -> None:
        """Finish every queued write, then close the file. Calling it again does nothing.

        Raises :class:`JournalError` if a write-behind progress update could not be written.
        """
        if self._state is not _LifeCycle.OPEN:
            self._state = _LifeCycle.CLOSED
            return
        self._state = _LifeCycle.CLOSED
        worker = self._worker
        assert worker is not None
        if self._finalizer is not None:
            self._finalizer.detach()
        # Whatever callers queued in this loop iteration still goes first.
        for pending in self._pending.values():
            worker.submit(pending)
        self._pending.clear()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        worker.submit(Stop(loop, done))
        await done
        # The thread posts `done` as its very last act, so this join returns at once.
        worker.thread.join()
        self._raise_deferred(worker)

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- plumbing

    def _live_worker(self) -> Worker:
        if self._state is _LifeCycle.NEW:
            raise JournalError(
                f"journal {self._spec} is not open: use `async with` or await open() first"
            )
        if self._state is _LifeCycle.CLOSED:
            raise JournalError(f"journal {self._spec} is closed")
        assert self._worker is not None
        return self._worker

    async def _call(
        self, fn: Callable[[sqlite3.Connection], T], *, write: bool, durable: bool = True
    ) -> T:
        self._live_worker()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._enqueue(loop, Op(fn, loop=loop, future=future, write=write, durable=durable))
        return await future

    def _enqueue(self, loop: asyncio.AbstractEventLoop, op: Op) -> None:
        # Ops queued during one loop iteration travel to the thread together, at the end of
        # it: one thread wake-up and one transaction for many callers (group commit).
        pending = self._pending.get(loop)
        if pending is None:
            self._pending[loop] = [op]
            loop.call_soon(self._flush, loop)
        else:
            pending.append(op)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        ops = self._pending.pop(loop, None)
        if ops and self._worker is not None:
            self._worker.submit(ops)

    def _raise_deferred(self, worker: Worker) -> None:
        exc = worker.deferred_error
        if exc is not None:
            worker.deferred_error = None
            detail = exc.__cause__ if exc.__cause__ is not None else exc
            raise JournalError(
                f"journal {self._spec}: an earlier progress update could not be written: {detail}"
            ) from exc

    def _enqueue_behind(self, fn: Callable[[sqlite3.Connection], Any], *, durable: bool) -> None:
        """Queue ``fn`` without waiting: committed in order; a failure surfaces later."""
        self._enqueue(
            asyncio.get_running_loop(),
            Op(fn, loop=None, future=None, write=True, durable=durable),
        )
