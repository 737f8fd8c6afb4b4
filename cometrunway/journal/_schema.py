"""The SQLite journal file: its schema and migrations, the checks made before use, and
what each SQLite error means for the user.

The file carries ``PRAGMA application_id`` = :data:`APPLICATION_ID` and its schema version in
``PRAGMA user_version`` (also mirrored in the ``meta`` table). A file that is not SQLite, is
corrupt, belongs to another application or was written by a newer cometrunway raises
:class:`~cometrunway.errors.JournalError` and is left untouched. Errors name the real cause
(read-only, disk full, locked, corrupt) rather than SQLite's terse words alone.
"""

from __future__ import annotations

import importlib.metadata
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from ..errors import JournalError

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SELECT",
    "Connect",
    "open_file",
    "wrap_sqlite_error",
]

#: ``PRAGMA application_id`` of every journal file: ASCII "CmRw".
APPLICATION_ID: Final = 0x436D5277

MEMORY: Final = ":memory:"
_SQLITE_HEADER: Final = b"SQLite format 3\x00"
# How many problems quick_check lists before it stops: enough to say what is wrong.
_QUICK_CHECK_LIMIT: Final = 5
_MS_PER_SECOND: Final = 1000

#: Opens a connection: ``connect(path, timeout_seconds)``; tests inject failing ones.
Connect = Callable[[str, float], sqlite3.Connection]


def default_connect(path: str, timeout: float) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None, timeout=timeout, check_same_thread=True)


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


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    # Credits as the server said them (wire §8.2) and when a cancel was asked for. Added
    # columns are NULL in the rows already there: "the server did not say" / "never asked".
    for column in ("estimated_cost", "cost", "cancel_requested_at"):
        conn.execute(f"ALTER TABLE entries ADD COLUMN {column} REAL")


#: ``MIGRATIONS[v]`` upgrades a file from schema version ``v`` to ``v + 1``, inside the
#: transaction that also bumps ``user_version``; a new schema appends a function here.
MIGRATIONS: Final[tuple[Callable[[sqlite3.Connection], None], ...]] = (
    _migrate_0_to_1,
    _migrate_1_to_2,
)

#: The schema version this cometrunway writes (``PRAGMA user_version``).
SCHEMA_VERSION: Final = len(MIGRATIONS)


def _package_version() -> str:
    try:
        return importlib.metadata.version("cometrunway")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


COLUMNS: Final = (
    "key, request_type, path, body, poll_route, state, task_id, status, progress, outputs, "
    "error, error_code, created_at, updated_at, submitted_at, label, estimated_cost, cost, "
    "cancel_requested_at"
)
SELECT: Final = f"SELECT {COLUMNS} FROM entries"


# ---------------------------------------------------------------- what an error means

# SQLite's primary result codes (the low byte of ``sqlite_errorcode``) → what to tell the
# user. https://www.sqlite.org/rescode.html
_CAUSES: Final[dict[int, str]] = {
    3: "permission denied: the file or its folder cannot be written by this user",
    5: "locked: another process is writing to it (waited busy_timeout); try again when it "
    "is done, or use a journal file of your own",
    6: "locked by another connection of this process",
    8: "read-only: the file or its folder cannot be written (permissions, a read-only "
    "mount, or a -wal/-shm file owned by another user)",
    10: "disk I/O error: the disk or file system failed",
    11: "corrupt: the database file is damaged; restore it from a backup or start a new "
    "journal file (its rows are lost)",
    13: "disk full: free some space (or lift the quota), then run again; nothing of this "
    "commit was written",
    14: "cannot open the file: check the folder exists and is writable",
    26: "not a database: the file is not an SQLite journal",
}
_PRIMARY_CODE_MASK: Final = 0xFF


def cause_of(exc: sqlite3.Error) -> str | None:
    """The user-facing cause of an SQLite error, or None when its code says nothing more."""
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(code, int):
        return None
    return _CAUSES.get(code & _PRIMARY_CODE_MASK)


def wrap_sqlite_error(exc: sqlite3.Error, where: str, what: str = "") -> JournalError:
    """A :class:`JournalError` naming the journal, what was being done and the real cause."""
    prefix = f"{what}: " if what else ""
    cause = cause_of(exc)
    detail = f"{cause} (sqlite: {exc})" if cause else str(exc)
    wrapped = JournalError(f"journal {where}: {prefix}{detail}")
    wrapped.__cause__ = exc
    return wrapped


# ---------------------------------------------------------------- opening a file


def open_file(
    spec: str, *, busy_timeout: float, durable: bool, connect: Connect = default_connect
) -> sqlite3.Connection:
    """Open (or create) the journal at ``spec``, check it, migrate it; return the connection.

    Runs on the journal's thread. Nothing in a file is changed before it is known to be a
    journal this version can use, or blank.
    """
    existing = False
    if spec != MEMORY:
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
        conn = connect(spec, busy_timeout)
    except sqlite3.Error as exc:
        raise wrap_sqlite_error(exc, spec, "cannot open") from exc
    try:
        _prepare(conn, spec, existing=existing, busy_timeout=busy_timeout, durable=durable)
    except sqlite3.Error as exc:
        conn.close()
        cause = cause_of(exc)
        if cause is None and isinstance(exc, sqlite3.DatabaseError):
            cause = "the file is corrupt or not a journal"
        raise JournalError(f"journal {spec}: cannot use it: {cause or exc} ({exc})") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _classify(conn: sqlite3.Connection, spec: str) -> int:
    """Check the file is ours (or blank); return its schema version (0 when blank)."""
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


def _prepare(
    conn: sqlite3.Connection, spec: str, *, existing: bool, busy_timeout: float, durable: bool
) -> None:
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * _MS_PER_SECOND)}")
    version = _classify(conn, spec)
    if existing and version > 0:
        problems = [row[0] for row in conn.execute(f"PRAGMA quick_check({_QUICK_CHECK_LIMIT})")]
        if problems != ["ok"]:
            raise JournalError(f"journal {spec}: the file is corrupt: {'; '.join(problems)}")
    # Only now, once the file is known to be ours or blank, change anything in it.
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
    if version == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have created or upgraded the file while we looked.
        version = _classify(conn, spec)
        for step in range(version, SCHEMA_VERSION):
            MIGRATIONS[step](conn)
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
