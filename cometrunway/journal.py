"""The journal: a durable record of every paid submission, so no task id is lost or paid twice.

Each create request gets a row, keyed by its idempotency key, *before* its bytes leave; the
row then follows the request through its states::

    QUEUED ──mark_sending──► SENDING ──mark_submitted──► SUBMITTED ──record_status(terminal)──► DONE
      ▲                         │  ╲                        ▲
      │                         │   ╲mark_rejected──► REJECTED (safe to send again)
      │                         ╰──mark_ambiguous──► AMBIGUOUS
      │                                                 │
      ╰───────────── release (resubmit on purpose) ─────┤
                                  attach_task (the id the user found) ──► SUBMITTED

Only QUEUED and REJECTED rows may be sent. A SENDING row means the request may have reached
the server: if the process dies there, the next run lists it in ``ambiguous()`` and never
re-sends it on its own, because that could pay for the same generation twice.

:class:`Journal` is the small async protocol the client talks to; :class:`SQLiteJournal`
is the embedded default, on the standard library's ``sqlite3``:

* All SQLite work runs on one worker thread that owns the connection; the event loop only
  queues operations and awaits their futures. Operations queued while the thread is busy
  are committed together in one transaction (group commit), so a batch of thousands of
  concurrent submits pays for few disk syncs.
* Durability: the file is in WAL mode. Commits that carry a key or task-id transition
  (``reserve``, ``mark_*``, ``attach_task``, ``release``, ``track``) use
  ``synchronous=FULL``: when the call returns, the row is on disk, even across a power
  loss, so a create is never sent before its SENDING row is, and a task id once recorded
  stays. Statuses use ``synchronous=NORMAL``, which survives a crash of the process but
  not of the machine; nothing is lost for good there, because a status is read again
  from the server: a terminal status is committed before ``record_status`` returns (a
  power loss can only put the row back to SUBMITTED, to be polled again), and non-terminal
  progress is write-behind: ``record_status`` returns at once and the update rides along
  with the next commit. ``SQLiteJournal(path, durable=False)`` uses NORMAL for
  everything, trading power-loss safety for speed.
* The file carries ``PRAGMA application_id`` = :data:`APPLICATION_ID` and its schema version
  in ``PRAGMA user_version`` (also mirrored in the ``meta`` table). A file that is not
  SQLite, is corrupt, belongs to another application or was written by a newer
  cometrunway raises :class:`~cometrunway.errors.JournalError` and is left untouched.
"""

from __future__ import annotations

import asyncio
import enum
import importlib.metadata
import json
import os
import queue
import re
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Protocol, Self, TypeVar, runtime_checkable

import attrs

from .errors import JournalError

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "EntryState",
    "Journal",
    "JournalEntry",
    "SQLiteJournal",
    "open_journal",
]

T = TypeVar("T")

#: ``PRAGMA application_id`` of every journal file: ASCII "CmRw".
APPLICATION_ID: Final = 0x436D5277

POLL_ROUTES: Final = frozenset({"feed", "tasks"})

_SQLITE_HEADER: Final = b"SQLite format 3\x00"
_MEMORY: Final = ":memory:"
# Enough to amortise a disk sync over many concurrent callers, small enough that one
# transaction never holds the write lock for long.
_MAX_BATCH: Final = 256
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+)://")


class EntryState(enum.StrEnum):
    """Where one journaled create request stands."""

    QUEUED = "queued"
    """Recorded, not yet sent: safe to send later."""
    SENDING = "sending"
    """The create's bytes may have left: never resent automatically."""
    SUBMITTED = "submitted"
    """The task id is known; the task is being polled."""
    AMBIGUOUS = "ambiguous"
    """The create may have reached the server; the outcome is unknown."""
    REJECTED = "rejected"
    """The server refused the create (no task exists); ``error`` says why. Safe to retry."""
    DONE = "done"
    """The task reached a terminal status (see ``status``)."""


_HAS_NO_TASK: Final = frozenset(
    {EntryState.QUEUED, EntryState.SENDING, EntryState.AMBIGUOUS, EntryState.REJECTED}
)


@attrs.frozen
class JournalEntry:
    """One row of the journal: a create request and what became of it.

    ``body`` is the canonical JSON of the wire body (without ``callback_url``), so the
    request can be sent again. A row made by :meth:`Journal.track` follows a task created
    elsewhere: its key is ``"task:{task_id}"`` and ``request_type``, ``path`` and ``body``
    are empty strings.
    """

    key: str
    request_type: str
    path: str
    body: str
    poll_route: str
    state: EntryState
    task_id: str | None
    status: str | None
    progress: float | None
    outputs: tuple[str, ...]
    error: str | None
    error_code: str | None
    created_at: float
    updated_at: float
    submitted_at: float | None
    label: str | None = None


@runtime_checkable
class Journal(Protocol):
    """The store the client records submissions in; see the module docstring for states."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

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
        """Insert a QUEUED row for ``key``, or return the existing row unchanged.

        The bool says whether the row was created by this call.
        """
        ...

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
        """Reserve ``key`` and mark it SENDING in one durable step; True: send it now.
        An existing row that is not QUEUED/REJECTED comes back unchanged with False."""
        ...

    async def mark_sending(self, key: str) -> None:
        """QUEUED/REJECTED → SENDING, durably, before the create's bytes leave."""
        ...

    async def mark_submitted(self, key: str, task_id: str, *, wait: bool = True) -> None:
        """The server accepted the create: → SUBMITTED with ``task_id``.

        ``wait=False`` queues the durable write and returns at once; it is committed in
        order before anything written after it, and a failure surfaces on a later call.
        """
        ...

    async def mark_ambiguous(self, key: str, error: str) -> None:
        """The create may have reached the server: → AMBIGUOUS."""
        ...

    async def mark_rejected(self, key: str, error: str, error_code: str | None = None) -> None:
        """The server refused the create: → REJECTED (safe to send again later)."""
        ...

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
        """Record a task's latest status; a terminal one moves the row to DONE."""
        ...

    async def attach_task(self, key: str, task_id: str) -> None:
        """Settle an ambiguous or interrupted row with the task id the user found."""
        ...

    async def release(self, key: str) -> None:
        """Settle an ambiguous or interrupted row by resubmitting on purpose: → QUEUED."""
        ...

    async def track(
        self, task_id: str, *, poll_route: str, label: str | None = None
    ) -> JournalEntry:
        """Follow a task created elsewhere: a SUBMITTED row keyed ``"task:{task_id}"``."""
        ...

    async def get(self, key: str) -> JournalEntry | None: ...

    async def get_by_task(self, task_id: str) -> JournalEntry | None: ...

    async def unfinished(self) -> list[JournalEntry]:
        """SUBMITTED rows (a task id, not yet DONE), oldest submission first."""
        ...

    async def ambiguous(self) -> list[JournalEntry]:
        """AMBIGUOUS rows and SENDING rows an earlier run left behind."""
        ...

    async def pending_submits(self) -> list[JournalEntry]:
        """QUEUED and REJECTED rows: requests that may be sent."""
        ...

    async def entries(self) -> list[JournalEntry]:
        """Every row, in insertion order."""
        ...

    async def counts(self) -> dict[str, int]:
        """How many rows are in each state (every state is present, zeros included)."""
        ...


# ---------------------------------------------------------------- schema


def _migrate_0_to_1(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
    # seq is the rowid: insertion order, and the cheapest primary key SQLite has.
    # sending_by names the journal instance that marked a row SENDING, so that instance's
    # own in-flight sends are not reported as interrupted ones.
    conn.execute(
        """
        CREATE TABLE entries (
            seq          INTEGER PRIMARY KEY,
            key          TEXT NOT NULL UNIQUE,
            request_type TEXT NOT NULL,
            path         TEXT NOT NULL,
            body         TEXT NOT NULL,
            poll_route   TEXT NOT NULL,
            state        TEXT NOT NULL,
            task_id      TEXT,
            status       TEXT,
            progress     REAL,
            outputs      TEXT NOT NULL DEFAULT '[]',
            error        TEXT,
            error_code   TEXT,
            created_at   REAL NOT NULL,
            updated_at   REAL NOT NULL,
            submitted_at REAL,
            label        TEXT,
            sending_by   TEXT
        )
        """
    )
    # One row per task: two keys claiming the same task id is a bookkeeping error worth
    # refusing rather than a state to paper over.
    conn.execute(
        "CREATE UNIQUE INDEX entries_task_id ON entries (task_id) WHERE task_id IS NOT NULL"
    )
    conn.executemany(
        "INSERT INTO meta (name, value) VALUES (?, ?)",
        [
            ("application_id", str(APPLICATION_ID)),
            ("schema_version", "1"),
            ("created_by", f"cometrunway {_package_version()}"),
            ("created_at", repr(time.time())),
        ],
    )


#: ``_MIGRATIONS[v]`` upgrades a file from schema version ``v`` to ``v + 1``, inside the
#: transaction that also bumps ``user_version``; a new schema appends a function here.
_MIGRATIONS: Final[tuple[Callable[[sqlite3.Connection], None], ...]] = (_migrate_0_to_1,)

#: The schema version this cometrunway writes (``PRAGMA user_version``).
SCHEMA_VERSION: Final = len(_MIGRATIONS)


def _package_version() -> str:
    try:
        return importlib.metadata.version("cometrunway")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


_COLUMNS: Final = (
    "key, request_type, path, body, poll_route, state, task_id, status, progress, outputs, "
    "error, error_code, created_at, updated_at, submitted_at, label"
)
_SELECT: Final = f"SELECT {_COLUMNS} FROM entries"


# ---------------------------------------------------------------- worker thread


class _Op:
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


class _Stop:
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


class _Worker:
    """The thread that owns the SQLite connection and runs every statement.

    The event loop hands it lists of ops (everything queued during one loop iteration);
    whatever has piled up while it was busy runs as one transaction.
    """

    def __init__(self, where: str, *, durable: bool) -> None:
        self.where = where
        self.durable = durable
        self.conn: sqlite3.Connection | None = None
        self.deferred_error: BaseException | None = None
        self._queue: queue.SimpleQueue[list[_Op] | _Stop] = queue.SimpleQueue()
        self._synchronous: str | None = None
        # A daemon thread, so a program that forgets close() can still exit: everything a
        # caller awaited is committed already, only write-behind progress could be lost.
        self.thread = threading.Thread(target=self._run, name="cometrunway-journal", daemon=True)
        self.thread.start()

    def submit(self, item: list[_Op] | _Stop) -> None:
        self._queue.put(item)

    def stop_nowait(self) -> None:
        self._queue.put(_Stop(None, None))

    # -- thread side

    def _run(self) -> None:
        stop: _Stop | None = None
        while stop is None:
            batch: list[_Op] = []
            item: list[_Op] | _Stop | None = self._queue.get()
            while item is not None:
                if isinstance(item, _Stop):
                    stop = item
                    break
                batch += item
                if len(batch) >= _MAX_BATCH:
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
        leftovers: list[tuple[_Op, BaseException | None, Any]] = []
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

    def _execute(self, batch: list[_Op]) -> None:
        group: list[_Op] = []
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

    def _run_group(self, ops: list[_Op]) -> None:
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
        results: list[tuple[_Op, BaseException | None, Any]] = []
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
            prefix = f"{what}: " if what else ""
            wrapped = JournalError(f"journal {self.where}: {prefix}{exc}")
            wrapped.__cause__ = exc
            return wrapped
        return exc

    def _fail_all(self, ops: list[_Op], exc: BaseException) -> None:
        self._deliver([(op, exc, None) for op in ops])

    def _deliver(self, results: list[tuple[_Op, BaseException | None, Any]]) -> None:
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


# ---------------------------------------------------------------- SQLite journal


class _LifeCycle(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


class SQLiteJournal:
    """The embedded journal: one SQLite file, one worker thread (see the module docstring).

    ``path`` is the file (created if missing; its directory must exist), or ``":memory:"``
    for a journal that lasts as long as the object. ``durable=False`` commits transitions
    with ``synchronous=NORMAL``: safe across a crash of the process, not of the machine.
    ``busy_timeout`` is how long, in seconds, to wait for another process's write lock.
    ``clock`` gives the row timestamps (unix seconds).

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
    ) -> None:
        self._spec = os.fspath(path)
        self._durable = durable
        self._busy_timeout = busy_timeout
        self._clock = clock
        self._state = _LifeCycle.NEW
        self._worker: _Worker | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._open_lock = asyncio.Lock()
        self._pending: dict[asyncio.AbstractEventLoop, list[_Op]] = {}
        # Names this instance in the rows it marks SENDING (see ambiguous()).
        self._instance = f"{os.getpid()}:{uuid.uuid4().hex}"

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
            worker = _Worker(self._spec, durable=self._durable)
            loop = asyncio.get_running_loop()
            future: asyncio.Future[None] = loop.create_future()
            worker.submit(
                [
                    _Op(
                        lambda: self._connect(worker),
                        loop=loop,
                        future=future,
                        write=True,
                        durable=True,
                        raw=True,
                    )
                ]
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
        worker.submit(_Stop(loop, done))
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

    def _connect(self, worker: _Worker) -> None:
        """Open and validate the file (on the worker thread); sets ``worker.conn``."""
        spec = self._spec
        existing = False
        if spec != _MEMORY:
            file = Path(spec)
            parent = file.absolute().parent
            if not parent.is_dir():
                raise JournalError(
                    f"journal {spec}: the directory {parent} does not exist; create it first"
                )
            if file.is_dir():
                raise JournalError(f"journal {spec}: is a directory, not a journal file")
            try:
                existing = file.exists() and file.stat().st_size > 0
                if existing:
                    with file.open("rb") as f:
                        header = f.read(len(_SQLITE_HEADER))
                    if header != _SQLITE_HEADER:
                        raise JournalError(
                            f"journal {spec}: not an SQLite database (it starts with "
                            f"{header!r}); refusing to use or overwrite it"
                        )
            except OSError as exc:
                raise JournalError(f"journal {spec}: cannot read the file: {exc}") from exc
        try:
            conn = sqlite3.connect(
                spec, isolation_level=None, timeout=self._busy_timeout, check_same_thread=True
            )
        except sqlite3.Error as exc:
            raise JournalError(f"journal {spec}: cannot open: {exc}") from exc
        try:
            self._prepare(conn, existing=existing)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise JournalError(
                f"journal {spec}: the file is corrupt or not a journal: {exc}"
            ) from exc
        except BaseException:
            conn.close()
            raise
        worker.conn = conn

    def _classify(self, conn: sqlite3.Connection) -> int:
        """Check the file is ours (or blank); return its schema version (0 when blank)."""
        spec = self._spec
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        if app_id not in (0, APPLICATION_ID):
            raise JournalError(
                f"journal {spec}: this SQLite file belongs to another application "
                f"(application_id {app_id:#010x}, a cometrunway journal has "
                f"{APPLICATION_ID:#010x}); refusing to use it"
            )
        if app_id == 0:
            if tables:
                shown = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "")
                raise JournalError(
                    f"journal {spec}: this SQLite file is another application's database "
                    f"(tables: {shown}); refusing to use it as a journal"
                )
            return 0
        if version > SCHEMA_VERSION:
            raise JournalError(
                f"journal {spec}: written by a newer cometrunway (schema version {version}; "
                f"this version reads up to {SCHEMA_VERSION}); upgrade cometrunway to use it"
            )
        return int(version)

    def _prepare(self, conn: sqlite3.Connection, *, existing: bool) -> None:
        spec = self._spec
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        version = self._classify(conn)
        if existing and version > 0:
            problems = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
            if problems != ["ok"]:
                raise JournalError(f"journal {spec}: the file is corrupt: {'; '.join(problems)}")
        # Only now, once the file is known to be ours or blank, change anything in it.
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {'FULL' if self._durable else 'NORMAL'}")
        if version == SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have created or upgraded the file while we looked.
            version = self._classify(conn)
            for step in range(version, SCHEMA_VERSION):
                _MIGRATIONS[step](conn)
                conn.execute(f"PRAGMA user_version = {step + 1}")
                conn.execute(
                    "UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(step + 1),)
                )
            if version == 0:
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # -- plumbing

    def _live_worker(self) -> _Worker:
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
        self._enqueue(loop, _Op(fn, loop=loop, future=future, write=write, durable=durable))
        return await future

    def _enqueue(self, loop: asyncio.AbstractEventLoop, op: _Op) -> None:
        # Ops queued during one loop iteration travel to the worker together, at the end of
        # it: one thread wake-up and one transaction for many callers, instead of one each.
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

    def _raise_deferred(self, worker: _Worker) -> None:
        exc = worker.deferred_error
        if exc is not None:
            worker.deferred_error = None
            detail = exc.__cause__ if exc.__cause__ is not None else exc
            raise JournalError(
                f"journal {self._spec}: an earlier progress update could not be written: {detail}"
            ) from exc

    def _entry(self, row: Any) -> JournalEntry:
        try:
            state = EntryState(row[5])
            outputs = tuple(str(url) for url in json.loads(row[9]))
        except (ValueError, TypeError) as exc:
            raise JournalError(f"journal {self._spec}: unreadable row {row[0]!r}: {exc}") from exc
        return JournalEntry(
            key=row[0],
            request_type=row[1],
            path=row[2],
            body=row[3],
            poll_route=row[4],
            state=state,
            task_id=row[6],
            status=row[7],
            progress=row[8],
            outputs=outputs,
            error=row[10],
            error_code=row[11],
            created_at=row[12],
            updated_at=row[13],
            submitted_at=row[14],
            label=row[15],
        )

    def _fetch_key(self, conn: sqlite3.Connection, key: str) -> JournalEntry | None:
        row = conn.execute(f"{_SELECT} WHERE key = ?", (key,)).fetchone()
        return None if row is None else self._entry(row)

    def _state_of(
        self, conn: sqlite3.Connection, key: str, action: str
    ) -> tuple[EntryState, str | None]:
        row = conn.execute("SELECT state, task_id FROM entries WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise JournalError(f"journal {self._spec}: cannot {action} {key!r}: no such entry")
        return EntryState(row[0]), row[1]

    def _refuse(self, conn: sqlite3.Connection, key: str, action: str) -> JournalError:
        """Say why ``action`` does not apply to the row (raises if there is no row)."""
        state, task_id = self._state_of(conn, key, action)
        why = {
            EntryState.SENDING: "its create may already have reached the server; settle it "
            "first: attach_task() with the task id you found, or release() to resubmit on "
            "purpose",
            EntryState.AMBIGUOUS: "its create may have reached the server; settle it first: "
            "attach_task() with the task id you found, or release() to resubmit on purpose",
            EntryState.SUBMITTED: f"it already has task {task_id}"
            + ("; sending it again would pay twice" if action == "send" else ""),
            EntryState.DONE: f"it already has task {task_id}, which has finished",
            EntryState.QUEUED: "it has not been sent",
            EntryState.REJECTED: "the server refused it, so no task exists",
        }[state]
        return JournalError(f"journal {self._spec}: cannot {action} {key!r} (state {state}): {why}")

    # -- writes
    #
    # Each transition is one conditional UPDATE on the happy path; only when it matches no
    # row does the op look at the row again, to say why it refuses.

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
        _check_route(poll_route)

        def op(conn: sqlite3.Connection) -> tuple[JournalEntry, bool]:
            now = self._clock()
            inserted = conn.execute(
                "INSERT INTO entries (key, request_type, path, body, poll_route, state, "
                "created_at, updated_at, label) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?) "
                "ON CONFLICT (key) DO NOTHING",
                (key, request_type, path, body, poll_route, now, now, label),
            ).rowcount
            if inserted == 1:
                entry = JournalEntry(
                    key=key,
                    request_type=request_type,
                    path=path,
                    body=body,
                    poll_route=poll_route,
                    state=EntryState.QUEUED,
                    task_id=None,
                    status=None,
                    progress=None,
                    outputs=(),
                    error=None,
                    error_code=None,
                    created_at=now,
                    updated_at=now,
                    submitted_at=None,
                    label=label,
                )
                return entry, True
            existing = self._fetch_key(conn, key)
            assert existing is not None
            return existing, False

        return await self._call(op, write=True)

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
        existing row comes back unchanged with False."""
        _check_route(poll_route)

        def op(conn: sqlite3.Connection) -> tuple[JournalEntry, bool]:
            now = self._clock()
            inserted = conn.execute(
                "INSERT INTO entries (key, request_type, path, body, poll_route, state, "
                "created_at, updated_at, label, sending_by) "
                "VALUES (?, ?, ?, ?, ?, 'sending', ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                (key, request_type, path, body, poll_route, now, now, label, self._instance),
            ).rowcount
            claimed = bool(inserted) or bool(
                conn.execute(
                    "UPDATE entries SET state = 'sending', sending_by = ?, updated_at = ? "
                    "WHERE key = ? AND state IN ('queued', 'rejected')",
                    (self._instance, now, key),
                ).rowcount
            )
            entry = self._fetch_key(conn, key)
            assert entry is not None
            return entry, claimed

        return await self._call(op, write=True)

    async def mark_sending(self, key: str) -> None:
        def op(conn: sqlite3.Connection) -> None:
            changed = conn.execute(
                "UPDATE entries SET state = 'sending', sending_by = ?, updated_at = ? "
                "WHERE key = ? AND state IN ('queued', 'rejected')",
                (self._instance, self._clock(), key),
            ).rowcount
            if not changed:
                raise self._refuse(conn, key, "send")

        await self._call(op, write=True)

    async def mark_submitted(self, key: str, task_id: str, *, wait: bool = True) -> None:
        """→ SUBMITTED with ``task_id``, from any state that has no task id yet.

        Recording an id is always allowed, because losing one is worse: a late answer may
        settle an AMBIGUOUS row. The same id again is a no-op; a *different* id for a row
        that already has one raises (both tasks may be billed: the message names both).
        With ``wait=False`` the write (still durable, still in order) is queued and this
        returns at once; a failure is raised by the next call or by ``close()``. A crash
        before it commits leaves the row SENDING, which lists it as ambiguous: never paid
        twice, the id to be found by the user.
        """
        _check_task_id(task_id)

        def op(conn: sqlite3.Connection) -> None:
            self._set_task(conn, key, task_id, "mark submitted")

        if wait:
            await self._call(op, write=True)
            return
        worker = self._live_worker()
        self._enqueue(
            asyncio.get_running_loop(), _Op(op, loop=None, future=None, write=True, durable=True)
        )
        self._raise_deferred(worker)

    async def attach_task(self, key: str, task_id: str) -> None:
        """Settle a SENDING or AMBIGUOUS row with the task id the user found: → SUBMITTED.

        If that id is already followed by a :meth:`track` row, the two rows merge into
        ``key`` (the tracked status and outputs are kept).
        """
        _check_task_id(task_id)
        await self._call(
            lambda conn: self._set_task(conn, key, task_id, "attach a task to"), write=True
        )

    def _set_task(self, conn: sqlite3.Connection, key: str, task_id: str, action: str) -> None:
        now = self._clock()
        try:
            changed = conn.execute(
                "UPDATE entries SET state = 'submitted', task_id = ?, submitted_at = ?, "
                "updated_at = ?, error = NULL, error_code = NULL, sending_by = NULL "
                "WHERE key = ? AND task_id IS NULL",
                (task_id, now, now, key),
            ).rowcount
        except sqlite3.IntegrityError:
            # Another row holds this task id (the unique index said so).
            self._adopt(conn, key, task_id, action, now)
            return
        if changed:
            return
        current = self._state_of(conn, key, action)[1]
        # Every row without a task id matched the UPDATE, so this row has one already.
        if current != task_id:
            raise JournalError(
                f"journal {self._spec}: cannot {action} {key!r} with task {task_id}: it already "
                f"has task {current} (both may be billed; keep both ids)"
            )

    def _adopt(
        self, conn: sqlite3.Connection, key: str, task_id: str, action: str, now: float
    ) -> None:
        """Give ``key`` a task id a :meth:`track` row holds, folding that row into it.

        The task was followed by id before its request row was settled; what the poller
        learned (status, outputs) is kept. Any other owner is a conflict.
        """
        owner = conn.execute(
            "SELECT key, request_type, state, status, progress, outputs, error, error_code, "
            "submitted_at, label FROM entries WHERE task_id = ?",
            (task_id,),
        ).fetchone()
        if owner is None or owner[0] != _track_key(task_id) or owner[1] != "":
            raise JournalError(
                f"journal {self._spec}: cannot {action} {key!r} with task {task_id}: "
                f"that task already belongs to {owner[0] if owner else None!r}"
            )
        current = self._state_of(conn, key, action)[1]
        if current is not None:
            raise JournalError(
                f"journal {self._spec}: cannot {action} {key!r} with task {task_id}: it already "
                f"has task {current} (both may be billed; keep both ids)"
            )
        # Two statements: a savepoint keeps them all-or-nothing inside the shared commit.
        conn.execute("SAVEPOINT adopt")
        try:
            conn.execute("DELETE FROM entries WHERE key = ?", (owner[0],))
            conn.execute(
                "UPDATE entries SET state = ?, task_id = ?, submitted_at = ?, updated_at = ?, "
                "status = ?, progress = ?, outputs = ?, error = ?, error_code = ?, "
                "label = COALESCE(label, ?), sending_by = NULL WHERE key = ?",
                (
                    owner[2],
                    task_id,
                    owner[8] if owner[8] is not None else now,
                    now,
                    owner[3],
                    owner[4],
                    owner[5],
                    owner[6],
                    owner[7],
                    owner[9],
                    key,
                ),
            )
        except BaseException:
            conn.execute("ROLLBACK TO adopt")
            conn.execute("RELEASE adopt")
            raise
        conn.execute("RELEASE adopt")

    async def mark_ambiguous(self, key: str, error: str) -> None:
        """→ AMBIGUOUS, from any state without a task id (the cautious direction)."""

        def op(conn: sqlite3.Connection) -> None:
            changed = conn.execute(
                "UPDATE entries SET state = 'ambiguous', error = ?, error_code = NULL, "
                "sending_by = NULL, updated_at = ? "
                "WHERE key = ? AND state IN ('queued', 'sending', 'ambiguous', 'rejected')",
                (error, self._clock(), key),
            ).rowcount
            if not changed:
                raise self._refuse(conn, key, "mark ambiguous")

        await self._call(op, write=True)

    async def mark_rejected(self, key: str, error: str, error_code: str | None = None) -> None:
        """→ REJECTED from QUEUED, SENDING or REJECTED.

        Not from AMBIGUOUS: an ambiguous create may still exist, whatever a later attempt
        hears; release() it first.
        """

        def op(conn: sqlite3.Connection) -> None:
            changed = conn.execute(
                "UPDATE entries SET state = 'rejected', error = ?, error_code = ?, "
                "sending_by = NULL, updated_at = ? "
                "WHERE key = ? AND state IN ('queued', 'sending', 'rejected')",
                (error, error_code, self._clock(), key),
            ).rowcount
            if not changed:
                raise self._refuse(conn, key, "mark rejected")

        await self._call(op, write=True)

    async def release(self, key: str) -> None:
        """→ QUEUED from SENDING, AMBIGUOUS or REJECTED: the user resubmits on purpose.

        The last error is kept for the record. A row with a task id cannot be released.
        """

        def op(conn: sqlite3.Connection) -> None:
            changed = conn.execute(
                "UPDATE entries SET state = 'queued', sending_by = NULL, updated_at = ? "
                "WHERE key = ? AND state IN ('sending', 'ambiguous', 'rejected')",
                (self._clock(), key),
            ).rowcount
            if not changed and self._state_of(conn, key, "release")[0] is not EntryState.QUEUED:
                raise self._refuse(conn, key, "release")

        await self._call(op, write=True)

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

        A terminal status moves the row to DONE and is committed when this returns. A
        non-terminal one is write-behind: it returns at once and is committed, in order,
        with the next batch (reads made afterwards see it). An unknown task id is ignored
        (the task may be followed without a row). A DONE row ignores non-terminal updates
        (a stale poll must not reopen it), and non-empty outputs are never replaced by
        empty ones. Identical repeats write nothing.
        """
        worker = self._live_worker()
        # Named placeholders: numbered ones warn on Python 3.12.0-3.12.3 (CPython gh-117995).
        params = {
            "task_id": task_id,
            "status": str(status),
            "progress": progress,
            "outputs": json.dumps(list(outputs)) if outputs else "[]",
            "error": error,
            "error_code": error_code,
            "state": EntryState.DONE.value if terminal else EntryState.SUBMITTED.value,
            "terminal": terminal,
        }

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(_RECORD_STATUS, {**params, "now": self._clock()})

        if terminal:
            # Written now and awaited, but without a disk sync of its own: should a power
            # loss take it, the row is SUBMITTED again and the next poll repeats it.
            await self._call(op, write=True, durable=False)
        else:
            self._enqueue(
                asyncio.get_running_loop(),
                _Op(op, loop=None, future=None, write=True, durable=False),
            )
        self._raise_deferred(worker)

    async def track(
        self, task_id: str, *, poll_route: str, label: str | None = None
    ) -> JournalEntry:
        """Follow a task created elsewhere; returns its row (an existing one if the id has one)."""
        _check_route(poll_route)
        _check_task_id(task_id)

        def op(conn: sqlite3.Connection) -> JournalEntry:
            row = conn.execute(f"{_SELECT} WHERE task_id = ?", (task_id,)).fetchone()
            if row is not None:
                return self._entry(row)
            now = self._clock()
            key = _track_key(task_id)
            inserted = conn.execute(
                "INSERT INTO entries (key, request_type, path, body, poll_route, state, "
                "task_id, created_at, updated_at, submitted_at, label) "
                "VALUES (?, '', '', '', ?, 'submitted', ?, ?, ?, ?, ?) "
                "ON CONFLICT (key) DO NOTHING",
                (key, poll_route, task_id, now, now, now, label),
            ).rowcount
            if inserted != 1:
                raise JournalError(
                    f"journal {self._spec}: cannot track task {task_id}: the key {key!r} is "
                    "already used by a request without that task id"
                )
            entry = self._fetch_key(conn, key)
            assert entry is not None
            return entry

        return await self._call(op, write=True)

    # -- reads

    async def get(self, key: str) -> JournalEntry | None:
        return await self._call(lambda conn: self._fetch_key(conn, key), write=False)

    async def get_by_task(self, task_id: str) -> JournalEntry | None:
        def op(conn: sqlite3.Connection) -> JournalEntry | None:
            row = conn.execute(f"{_SELECT} WHERE task_id = ?", (task_id,)).fetchone()
            return None if row is None else self._entry(row)

        return await self._call(op, write=False)

    async def _select(self, where: str, params: tuple[Any, ...] = ()) -> list[JournalEntry]:
        def op(conn: sqlite3.Connection) -> list[JournalEntry]:
            return [self._entry(row) for row in conn.execute(f"{_SELECT} {where}", params)]

        return await self._call(op, write=False)

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


# A DONE row only takes another terminal report; identical repeats touch nothing, so a poller
# that sees no change costs one index lookup.
_RECORD_STATUS: Final = """
UPDATE entries SET
    status = :status,
    progress = :progress,
    outputs = CASE WHEN :outputs = '[]' THEN outputs ELSE :outputs END,
    error = :error,
    error_code = :error_code,
    state = :state,
    updated_at = :now
WHERE task_id = :task_id
  AND (state = 'submitted' OR (:terminal AND state = 'done'))
  AND (state IS NOT :state
       OR status IS NOT :status
       OR progress IS NOT :progress
       OR (:outputs != '[]' AND outputs IS NOT :outputs)
       OR error IS NOT :error
       OR error_code IS NOT :error_code)
"""


def _track_key(task_id: str) -> str:
    return f"task:{task_id}"


def _check_task_id(task_id: str) -> None:
    if not isinstance(task_id, str) or not task_id:
        raise ValueError(f"task_id must be a non-empty string, got {task_id!r}")


def _check_route(poll_route: str) -> None:
    if poll_route not in POLL_ROUTES:
        raise ValueError(f"poll_route must be 'feed' or 'tasks', got {poll_route!r}")


def open_journal(spec: str | os.PathLike[str] | Journal) -> Journal:
    """Turn the client's ``journal=`` argument into an (unopened) :class:`Journal`.

    A path gives a :class:`SQLiteJournal`; a ``Journal`` is passed through as is. A
    ``postgresql://`` URL needs the server-backed store, which is not installed.
    """
    if isinstance(spec, (str, os.PathLike)):
        text = os.fspath(spec)
        match = _URL.match(text)
        if match is not None:
            scheme = match["scheme"].lower()
            if scheme in ("postgresql", "postgres"):
                raise JournalError(
                    "PostgreSQL journals need the optional server-backed journal store, "
                    "which is not installed; use a SQLite file path instead"
                )
            raise JournalError(
                f"unsupported journal URL scheme {scheme!r}: give a SQLite file path"
            )
        return SQLiteJournal(text)
    if isinstance(spec, Journal):
        return spec
    raise TypeError(
        f"journal must be a path, a postgresql:// URL or a Journal, got {type(spec).__name__}"
    )
