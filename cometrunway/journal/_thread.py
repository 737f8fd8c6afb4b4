"""The SQLite journal's own thread: it owns the connection and commits in groups.

The event loop only queues operations and awaits their futures. Operations queued while the
thread is busy are committed together in one transaction (group commit), so a batch of
thousands of concurrent submits pays for few disk syncs, and each caller still returns only
once its own write is committed.
"""

from __future__ import annotations

import asyncio
import enum
import queue
import sqlite3
import threading
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final, Self, TypeVar

from ..errors import JournalError
from ._schema import wrap_sqlite_error

__all__ = ["Op", "Stop", "ThreadedStore", "Worker"]

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
