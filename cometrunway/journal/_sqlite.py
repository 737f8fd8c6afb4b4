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

import os
import sqlite3
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from ._rows import EntryState, JournalEntry, check_route, check_task_id
from ._schema import Connect, default_connect, open_file
from ._statements import Statements
from ._thread import ThreadedStore
from ._transitions import FOLLOWABLE, Action

__all__ = ["SQLiteJournal"]

T = TypeVar("T")


class SQLiteJournal(ThreadedStore):
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
        super().__init__(os.fspath(path), durable=durable)
        self._busy_timeout = busy_timeout
        self._connect = connect
        # Names this instance in the rows it marks SENDING (see ambiguous()).
        self._instance = f"{os.getpid()}:{uuid.uuid4().hex}"
        self._sql = Statements(self._spec, self._instance, clock)

    @property
    def path(self) -> str:
        return self._spec

    def __repr__(self) -> str:
        return f"SQLiteJournal({self._spec!r}, {self._state.value})"

    def _open_connection(self) -> sqlite3.Connection:
        """Open and check the file (on the journal's thread)."""
        return open_file(
            self._spec,
            busy_timeout=self._busy_timeout,
            durable=self._durable,
            connect=self._connect,
        )

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
        fields = _fields(request_type, path, body, poll_route, label)
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
        fields = _fields(request_type, path, body, poll_route, label)
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
        self._enqueue_behind(op, durable=True)
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
        estimated_cost: float | None = None,
        cost: float | None = None,
    ) -> None:
        """Record a task's latest status, found by task id, with its credits when known.

        A terminal status (an :class:`Outcome`) moves the row to DONE and is committed when
        this returns. A non-terminal one is write-behind: it returns at once and is
        committed, in order, with the next batch (reads made afterwards see it). An unknown
        task id is ignored (the task may be followed without a row). A DONE row ignores
        non-terminal updates (a stale poll must not reopen it) unless it ended NOT_FOUND
        (then the server knows the task after all: the row is SUBMITTED again). Non-empty
        outputs are never replaced by empty ones, nor credits by None. Identical repeats
        write nothing.
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
            estimated_cost=estimated_cost,
            cost=cost,
        )

        def op(conn: sqlite3.Connection) -> None:
            self._sql.record_status(conn, params)

        if terminal:
            # Written now and awaited, but without a disk sync of its own: should a power
            # loss take it, the row is SUBMITTED again and the next poll repeats it.
            await self._call(op, write=True, durable=False)
        else:
            self._enqueue_behind(op, durable=False)
        self._raise_deferred(worker)

    async def record_cancel_request(self, task_id: str) -> None:
        """Note when a cancel of ``task_id`` was first asked for (an unknown id is ignored).

        Committed when this returns, without a disk sync of its own (like a terminal
        status): it records what the user asked, and the task's end comes from the server.
        """
        check_task_id(task_id)
        await self._call(
            lambda conn: self._sql.record_cancel(conn, task_id), write=True, durable=False
        )

    async def track(
        self, task_id: str, *, poll_route: str, label: str | None = None
    ) -> JournalEntry:
        """Follow a task created elsewhere; returns its row (an existing one if the id has
        one, reopened when it ended NOT_FOUND)."""
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
        return await self._select(f"WHERE {FOLLOWABLE} ORDER BY submitted_at, seq")

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


def _fields(
    request_type: str, path: str, body: str, poll_route: str, label: str | None
) -> dict[str, Any]:
    check_route(poll_route)
    return {
        "request_type": request_type,
        "path": path,
        "body": body,
        "poll_route": poll_route,
        "label": label,
    }
