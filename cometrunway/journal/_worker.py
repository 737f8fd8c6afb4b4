"""The SQLite journal's worker thread: it owns the connection and commits in groups.

Operations queued while the thread is busy are committed together in one transaction (group
commit), so a batch of thousands of concurrent submits pays for few disk syncs, and each
caller still returns only once its own write is committed. :mod:`._thread` is the event
loop's side.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, Final, TypeVar

from ..errors import JournalError
from ._schema import wrap_sqlite_error

__all__ = ["MAX_BATCH", "Op", "Stop", "Worker"]

T = TypeVar("T")

# Enough to amortise a disk sync over many concurrent callers, small enough that one
# transaction never holds the write lock for long.
MAX_BATCH: Final = 256


class Op:
    """One unit of work for the worker thread.

    ``fn`` takes the connection and runs inside the batch transaction, or, for a ``raw``
    op, takes nothing and runs alone. ``future`` is None for write-behind work nobody awaits.
    """

    __slots__ = ("durable", "fn", "future", "loop", "raw", "write")

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        loop: asyncio.AbstractEventLoop | None,
        future: asyncio.Future[Any] | None,
        write: bool,
        durable: bool,
        raw: bool = False,
    ) -> None:
        self.fn = fn
        self.loop = loop
        self.future = future
        self.write = write
        self.durable = durable
        self.raw = raw


class Stop:
    __slots__ = ("future", "loop")

    def __init__(
        self, loop: asyncio.AbstractEventLoop | None, future: asyncio.Future[None] | None
    ) -> None:
        self.loop = loop
        self.future = future


def _settle(items: list[tuple[asyncio.Future[Any], BaseException | None, Any]]) -> None:
    for future, exc, value in items:
        if future.done():  # the awaiting coroutine was cancelled; the work still happened
            continue
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(value)


class Worker:
    """The thread that owns the SQLite connection and runs every statement.

    The event loop hands it lists of ops (everything queued during one loop iteration);
    whatever has piled up while it was busy runs as one transaction.
    """

    def __init__(self, where: str, *, durable: bool) -> None:
        self.where = where
        self.durable = durable
        self.conn: sqlite3.Connection | None = None
        self.deferred_error: BaseException | None = None
        self._queue: queue.SimpleQueue[list[Op] | Stop] = queue.SimpleQueue()
        self._synchronous: str | None = None
        # A daemon thread, so a program that forgets close() can still exit: everything a
        # caller awaited is committed already, only write-behind progress could be lost.
        self.thread = threading.Thread(target=self._run, name="cometrunway-journal", daemon=True)
        self.thread.start()

    def submit(self, item: list[Op] | Stop) -> None:
        self._queue.put(item)

    def stop_nowait(self) -> None:
        self._queue.put(Stop(None, None))

    # -- thread side

    def _run(self) -> None:
        stop: Stop | None = None
        while stop is None:
            batch: list[Op] = []
            item: list[Op] | Stop | None = self._queue.get()
            while item is not None:
                if isinstance(item, Stop):
                    stop = item
                    break
                batch += item
                if len(batch) >= MAX_BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    item = None
            # Drop every reference to finished work before blocking again: an op's closure
            # holds its journal, which must stay collectable (its finalizer stops us).
            item = None
            try:
                self._execute(batch)
            except Exception as exc:  # a bug here must fail the callers, not strand them
                self._fail_all(
                    batch, JournalError(f"journal {self.where}: internal error: {exc!r}")
                )
            del batch
        if self.conn is not None:
            try:
                self.conn.close()
            except sqlite3.Error:
                pass
            self.conn = None
        leftovers: list[tuple[Op, BaseException | None, Any]] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, list):
                closed = JournalError(f"journal {self.where} is closed")
                leftovers += [(op, closed, None) for op in item]
        self._deliver(leftovers)
        if stop.future is not None and stop.loop is not None:
            self._post(stop.loop, [(stop.future, None, None)])

    def _execute(self, batch: list[Op]) -> None:
        group: list[Op] = []
        for op in batch:
            if op.raw:
                self._run_group(group)
                group = []
                try:
                    self._deliver([(op, None, op.fn())])
                except Exception as exc:
                    self._deliver([(op, self._wrap(exc), None)])
            else:
                group.append(op)
        self._run_group(group)

    def _run_group(self, ops: list[Op]) -> None:
        """Run ``ops`` in one transaction and deliver each one's result after the commit.

        Ops are written so that a refusal (``JournalError``) is raised before they write,
        and each writes with a single statement, which SQLite undoes on its own if it fails;
        the one op that needs two statements guards them with its own savepoint. So a
        failing op never undoes the others' work in the same commit.
        """
        if not ops:
            return
        conn = self.conn
        if conn is None:
            self._fail_all(ops, JournalError(f"journal {self.where} is not open"))
            return
        writes = False
        full = False
        for op in ops:
            writes = writes or op.write
            full = full or op.durable
        try:
            if writes:
                self._set_synchronous(conn, "FULL" if full and self.durable else "NORMAL")
                # IMMEDIATE takes the write lock now, so a concurrent writer in another
                # process makes us wait (busy_timeout) here rather than fail at COMMIT.
                conn.execute("BEGIN IMMEDIATE")
            else:
                conn.execute("BEGIN")
        except sqlite3.Error as exc:
            self._fail_all(ops, self._wrap(exc, "cannot start a transaction"))
            return
        results: list[tuple[Op, BaseException | None, Any]] = []
        for op in ops:
            try:
                results.append((op, None, op.fn(conn)))
            except Exception as exc:
                if not conn.in_transaction:
                    # SQLite rolled the whole transaction back (disk full, I/O error): the
                    # ops before this one lost their writes too.
                    self._fail_all(ops, self._wrap(exc, "transaction rolled back"))
                    return
                results.append((op, self._wrap(exc), None))
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._abort(conn)
            self._fail_all(ops, self._wrap(exc, "commit failed, nothing was written"))
            return
        self._deliver(results)

    def _set_synchronous(self, conn: sqlite3.Connection, mode: str) -> None:
        if self._synchronous != mode:
            conn.execute(f"PRAGMA synchronous = {mode}")
            self._synchronous = mode

    @staticmethod
    def _abort(conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def _wrap(self, exc: Exception, what: str = "") -> Exception:
        if isinstance(exc, sqlite3.Error):
            return wrap_sqlite_error(exc, self.where, what)
        return exc

    def _fail_all(self, ops: list[Op], exc: BaseException) -> None:
        self._deliver([(op, exc, None) for op in ops])

    def _deliver(self, results: list[tuple[Op, BaseException | None, Any]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, Any]]] = {}
        for op, exc, value in results:
            if op.future is None or op.loop is None:
                if exc is not None and self.deferred_error is None:
                    self.deferred_error = exc
                continue
            by_loop.setdefault(op.loop, []).append((op.future, exc, value))
        for loop, items in by_loop.items():
            self._post(loop, items)

    @staticmethod
    def _post(
        loop: asyncio.AbstractEventLoop,
        items: list[tuple[asyncio.Future[Any], BaseException | None, Any]],
    ) -> None:
        try:
            loop.call_soon_threadsafe(_settle, items)
        except RuntimeError:  # that loop is closed: nobody is waiting any more
            pass
