"""Journal errors name the real cause: read-only, disk full, locked, corrupt, foreign, newer.

The causes are produced for real where SQLite lets a test do so without privileges (a
read-only connection, a page limit that fills the "disk", another connection's lock, bytes
overwritten in the file); the rest are SQLite's own errors raised by a connection that
fails the way a disk does, passed in through ``SQLiteJournal(connect=...)``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from cometrunway.errors import JournalError
from cometrunway.journal import APPLICATION_ID, SCHEMA_VERSION, SQLiteJournal
from cometrunway.journal._schema import default_connect

# SQLite's primary result codes (https://www.sqlite.org/rescode.html).
SQLITE_IOERR = 10
# Pages a journal may grow to in the "disk full" test: room for the schema, not for rows.
TINY_PAGE_LIMIT = 8
LARGE_BODY = "x" * 100_000


async def claim(journal: SQLiteJournal, key: str = "k", body: str = "{}") -> None:
    await journal.reserve_sending(
        key, request_type="TextToVideo", path="/p", body=body, poll_route="feed"
    )


async def make_journal(path: Path) -> None:
    async with SQLiteJournal(path) as journal:
        await claim(journal, "first")


async def test_read_only_file_says_read_only(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    await make_journal(path)

    def read_only(spec: str, timeout: float) -> sqlite3.Connection:
        return sqlite3.connect(
            f"file:{spec}?mode=ro", uri=True, isolation_level=None, timeout=timeout
        )

    async with SQLiteJournal(path, connect=read_only) as journal:
        with pytest.raises(JournalError, match="read-only: the file or its folder") as info:
            await claim(journal, "second")
        assert str(path) in str(info.value)
        assert [e.key for e in await journal.entries()] == ["first"]


async def test_disk_full_says_disk_full_and_nothing_was_written(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    await make_journal(path)

    def small_disk(spec: str, timeout: float) -> sqlite3.Connection:
        conn = default_connect(spec, timeout)
        conn.execute(f"PRAGMA max_page_count = {TINY_PAGE_LIMIT}")
        return conn

    async with SQLiteJournal(path, connect=small_disk) as journal:
        with pytest.raises(JournalError, match="disk full: free some space"):
            await claim(journal, "big", body=LARGE_BODY)
        assert await journal.get("big") is None


async def test_locked_file_says_another_process_is_writing(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    await make_journal(path)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        async with SQLiteJournal(path, busy_timeout=0.05) as journal:
            with pytest.raises(JournalError, match="locked: another process is writing"):
                await claim(journal, "second")
        other.execute("ROLLBACK")
    finally:
        other.close()


async def test_corrupt_file_says_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    await make_journal(path)
    data = bytearray(path.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    data[page_size : 2 * page_size] = b"\xa5" * page_size  # the second page: a b-tree page
    path.write_bytes(bytes(data))
    with pytest.raises(JournalError, match="corrupt"):
        async with SQLiteJournal(path):
            pass


async def test_foreign_application_says_whose(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA application_id = 1234")
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    with pytest.raises(JournalError, match="belongs to another application"):
        async with SQLiteJournal(path):
            pass


async def test_newer_schema_says_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    await make_journal(path)
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(JournalError, match=r"newer cometrunway.*upgrade cometrunway"):
        async with SQLiteJournal(path):
            pass
    with sqlite3.connect(path) as conn:  # left untouched
        assert conn.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
    conn.close()


async def test_a_path_that_is_a_directory_says_so(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="is a directory"):
        async with SQLiteJournal(tmp_path):
            pass


class FailingCommits:
    """A connection whose COMMIT fails as a failing disk makes it (SQLITE_IOERR)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT":
            error = sqlite3.OperationalError("disk I/O error")
            error.sqlite_errorcode = SQLITE_IOERR  # as sqlite3 sets it
            raise error
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


async def test_an_io_error_at_commit_says_the_disk_failed(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    await make_journal(path)

    def failing(spec: str, timeout: float) -> sqlite3.Connection:
        return FailingCommits(default_connect(spec, timeout))  # type: ignore[return-value]

    async with SQLiteJournal(path, connect=failing) as journal:
        with pytest.raises(JournalError, match=r"commit failed.*disk I/O error: the disk"):
            await claim(journal, "second")
