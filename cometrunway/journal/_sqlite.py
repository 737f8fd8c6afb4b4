"""The embedded journal store: one SQLite file, one thread that owns it, group commit.

* All SQLite work runs on the journal's own thread (:mod:`._thread`); the event loop only
  queues operations and awaits their futures. What piles up while the thread is busy is
  committed in one transaction, so many concurrent callers share one disk sync.
* Durable before visible: the file is in WAL mode, and every commit that carries a key or a
  task id (``reserve_sending``, ``mark_*``, ``attach_task``, ``release``, ``track``) uses
  ``synchronous=FULL``: when the call returns the row is on disk, even across a power loss.
  So a create is never sent before its SENDING row is, and ``mark_submitted`` returns only
  once the task id is; the client hands out a handle only after that.
* Statuses use ``synchronous=NORMAL`` (safe across a crash of the process, not of the
  machine): a status is read again from the server, so nothing is lost for good. A terminal
  status is committed before ``record_status`` returns; non-terminal progress is
  write-behind and rides along with the next commit. ``durable=False`` uses NORMAL for
  everything, trading power-loss safety for speed.
"""

from __future__ import annotations

import asyncio
import enum
import os
import sqlite3
import time
import uuid
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TypeVar

from ..errors import JournalError
from ._rows import EntryState, JournalEntry, check_route, check_task_id
from ._schema import Connect, default_connect, open_file
from ._statements import Statements
from ._thread import Op, Stop, Worker
from ._transitions import Action

__all__ = ["SQLiteJournal"]

T = TypeVar("T")


class _LifeCycle(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


class SQLiteJournal:
    """The embedded journal (see the module docstring); a :class:`Journal` and a
    :class:`JournalAdmin`.

    ``path`` is the file (created if missing; its directory must exist), or ``":memory:"``
    for a journal that lasts as long as the object. ``durable=False`` commits transitions
    with ``synchronous=NORMAL``: safe across a crash of the process, not of the machine.
    ``busy_timeout`` is how long, in seconds, to wait for another process's write lock.
    ``clock`` gives the row timestamps (unix seconds). ``connect`` opens the connection
    (``connect(path, timeout)``); tests pass one that fails the way a disk does.

    Use it as ``async with SQLiteJournal(path) as journal:`` or ``await open()`` /
    ``await close()``. Several processes may use the same file one after the other, and
    concurrent writers do not corrupt it; but a SENDING row of another *live* process is
    indistinguishable from one a crash left behind, so run one process per file at a time.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durable: bool = True,
        busy_timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        connect: Connect = default_connect,
    ) -> None:
        self._spec = os.fspath(path)
        self._durable = durable
        self._busy_timeout = busy_timeout
        self._connect = connect
        self._state = _LifeCycle.NEW
        self._worker: Worker | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._open_lock = asyncio.Lock()
        self._pending: dict[asyncio.AbstractEventLoop, list[Op]] = {}
        # Names this instance in the rows it marks SENDING (see ambiguous()).
        self._instance = f"{os.getpid()}:{uuid.uuid4().hex}"
        self._sql = Statements(self._spec, self._instance, clock)

    @property
    def path(self) -> str:
        return self._spec

    @property
    def is_open(self) -> bool:
        return self._state is _LifeCycle.OPEN

    @property
    def worker_thread_id(self) -> int | None:
        """``threading.get_ident()`` of the thread that runs every SQLite call, once open."""
        worker = self._worker
        return worker.thread.ident if worker is not None else None

    def __repr__(self) -> str:
        return f"SQLiteJournal({self._spec!r}, {self._state.value})"

    # -- lifecycle

    async def open(self) -> None:
        """Open (or create) the file and check it is a journal this version can use.

        Calling it again while open does nothing; after :meth:`close` it raises.
        """
        async with self._open_lock:
            if self._state is _LifeCycle.OPEN:
                return
            if self._state is _LifeCycle.CLOSED:
                raise JournalError(
                    f"journal {self._spec} is closed; create a new SQLiteJournal to open it again"
                )
            worker = Worker(self._spec, durable=self._durable)
            loop = asyncio.get_running_loop()
            future: asyncio.Future[None] = loop.create_future()

            def connect() -> None:
                worker.conn = open_file(
                    self._spec,
                    busy_timeout=self._busy_timeout,
                    durable=self._durable,
                    connect=self._connect,
                )

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

    # -- writes

    async def reserve(
        self,
        key: str,
        *,
        request_type: str,
        path: str,
        body: str,
        poll_route: str,
        label: str | None = None,
    ) -> tuple[JournalEntry, bool]:
        """Insert a QUEUED row for ``key``, or return the existing row unchanged (False).

        A row filed under ``key`` for another request raises ``JournalKeyConflict``.
        """
        check_route(poll_route)
        fields = {
            "request_type": request_type,
            "path": path,
            "body": body,
            "poll_route": poll_route,
            "label": label,
        }
        return await self._call(
            lambda conn: self._sql.reserve(conn, key, fields, sending=False), write=True
        )

    async def reserve_sending(
        self,
        key: str,
        *,
        request_type: str,
        path: str,
        body: str,
        poll_route: str,
        label: str | None = None,
    ) -> tuple[JournalEntry, bool]:
        """``reserve`` and ``mark_sending`` in one durable step: a new row, or an existing
        QUEUED/REJECTED one, becomes SENDING and the bool is True (send it now). Any other
        existing row comes back unchanged with False; a row filed under ``key`` for another
        request raises ``JournalKeyConflict``."""
        check_route(poll_route)
        fields = {
            "request_type": request_type,
            "path": path,
            "body": body,
            "poll_route": poll_route,
            "label": label,
        }
        return await self._call(
            lambda conn: self._sql.reserve(conn, key, fields, sending=True), write=True
        )

    async def mark_sending(self, key: str) -> None:
        await self._call(
            lambda conn: self._sql.move(
                conn, key, Action.SEND, "state = 'sending', sending_by = :by", by=self._instance
            ),
            write=True,
        )

    async def mark_submitted(self, key: str, task_id: str, *, wait: bool = True) -> None:
        """→ SUBMITTED with ``task_id``, from any state that has no task id yet; committed
        durably when this returns.

        Recording an id is always allowed, because losing one is worse: a late answer may
        settle an AMBIGUOUS row. The same id again is a no-op; a *different* id for a row
        that already has one raises (both tasks may be billed: the message names both).
        ``wait=False`` (not for the client, which must not hand out a handle before the id
        is on disk) queues the write in order and returns at once; a failure is raised by
        the next call or by ``close()``.
        """
        check_task_id(task_id)

        def op(conn: sqlite3.Connection) -> None:
            self._sql.set_task(conn, key, task_id, Action.SUBMITTED)

        if wait:
            await self._call(op, write=True)
            return
        worker = self._live_worker()
        self._enqueue(
            asyncio.get_running_loop(), Op(op, loop=None, future=None, write=True, durable=True)
        )
        self._raise_deferred(worker)

    async def attach_task(self, key: str, task_id: str) -> None:
        """Settle a row without a task id with the task id the user found: → SUBMITTED.

        If that id is already followed by a :meth:`track` row, the two rows merge into
        ``key`` (the tracked status and outputs are kept).
        """
        check_task_id(task_id)
        await self._call(
            lambda conn: self._sql.set_task(conn, key, task_id, Action.ATTACH), write=True
        )

    async def mark_ambiguous(self, key: str, error: str) -> None:
        """→ AMBIGUOUS, from any state without a task id (the cautious direction)."""
        await self._call(
            lambda conn: self._sql.move(
                conn,
                key,
                Action.AMBIGUOUS,
                "state = 'ambiguous', error = :error, error_code = NULL, sending_by = NULL",
                error=error,
            ),
            write=True,
        )

    async def mark_rejected(self, key: str, error: str, error_code: str | None = None) -> None:
        """→ REJECTED from QUEUED, SENDING or REJECTED (not AMBIGUOUS: release() it first)."""
        await self._call(
            lambda conn: self._sql.move(
                conn,
                key,
                Action.REJECT,
                "state = 'rejected', error = :error, error_code = :code, sending_by = NULL",
                error=error,
                code=error_code,
            ),
            write=True,
        )

    async def release(self, key: str) -> None:
        """→ QUEUED from any state without a task id: the user resubmits on purpose.

        The last error is kept for the record. A row with a task id cannot be released.
        """
        await self._call(
            lambda conn: self._sql.move(
                conn, key, Action.RELEASE, "state = 'queued', sending_by = NULL"
            ),
            write=True,
        )

    async def record_status(
        self,
        task_id: str,
        *,
        status: str,
        progress: float | None,
        outputs: tuple[str, ...],
        error: str | None,
        error_code: str | None,
        terminal: bool,
    ) -> None:
        """Record a task's latest status, found by task id.

        A terminal status (an :class:`Outcome`) moves the row to DONE and is committed when
        this returns. A non-terminal one is write-behind: it returns at once and is
        committed, in order, with the next batch (reads made afterwards see it). An unknown
        task id is ignored (the task may be followed without a row). A DONE row ignores
        non-terminal updates (a stale poll must not reopen it), and non-empty outputs are
        never replaced by empty ones. Identical repeats write nothing.
        """
        worker = self._live_worker()
        params = self._sql.status_params(
            task_id,
            status=status,
            progress=progress,
            outputs=outputs,
            error=error,
            error_code=error_code,
            terminal=terminal,
        )

        def op(conn: sqlite3.Connection) -> None:
            self._sql.record_status(conn, params)

        if terminal:
            # Written now and awaited, but without a disk sync of its own: should a power
            # loss take it, the row is SUBMITTED again and the next poll repeats it.
            await self._call(op, write=True, durable=False)
        else:
            self._enqueue(
                asyncio.get_running_loop(),
                Op(op, loop=None, future=None, write=True, durable=False),
            )
        self._raise_deferred(worker)

    async def track(
        self, task_id: str, *, poll_route: str, label: str | None = None
    ) -> JournalEntry:
        """Follow a task created elsewhere; returns its row (an existing one if the id has one)."""
        check_route(poll_route)
        check_task_id(task_id)
        return await self._call(
            lambda conn: self._sql.track(conn, task_id, poll_route, label), write=True
        )

    # -- reads

    async def get(self, key: str) -> JournalEntry | None:
        return await self._call(lambda conn: self._sql.fetch_key(conn, key), write=False)

    async def get_by_task(self, task_id: str) -> JournalEntry | None:
        return await self._call(lambda conn: self._sql.fetch_task(conn, task_id), write=False)

    async def _select(self, where: str, params: tuple[Any, ...] = ()) -> list[JournalEntry]:
        return await self._call(lambda conn: self._sql.select(conn, where, params), write=False)

    async def unfinished(self) -> list[JournalEntry]:
        return await self._select("WHERE state = 'submitted' ORDER BY submitted_at, seq")

    async def ambiguous(self, *, include_in_flight: bool = False) -> list[JournalEntry]:
        """AMBIGUOUS rows, and SENDING rows left by an earlier run (a crash mid-send).

        This instance's own sends still in flight are left out unless ``include_in_flight``.
        """
        if include_in_flight:
            return await self._select("WHERE state IN ('sending', 'ambiguous') ORDER BY seq")
        return await self._select(
            "WHERE state = 'ambiguous' OR (state = 'sending' AND sending_by IS NOT ?) ORDER BY seq",
            (self._instance,),
        )

    async def pending_submits(self) -> list[JournalEntry]:
        return await self._select("WHERE state IN ('queued', 'rejected') ORDER BY seq")

    async def entries(self) -> list[JournalEntry]:
        return await self._select("ORDER BY seq")

    async def counts(self) -> dict[str, int]:
        def op(conn: sqlite3.Connection) -> dict[str, int]:
            found = dict(conn.execute("SELECT state, count(*) FROM entries GROUP BY state"))
            return {state.value: int(found.get(state.value, 0)) for state in EntryState}

        return await self._call(op, write=False)
