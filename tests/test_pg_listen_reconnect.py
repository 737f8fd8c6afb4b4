"""The PostgreSQL journal's LISTEN connection comes back after it drops: its backend is
killed (``pg_terminate_backend``) on a throwaway server (``pg_server.py``), and the journal
reconnects, is live again to the other workers, wakes its waiters and tells its listeners."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from journal_rows import finish
from pg_server import PostgresServer

from cometrunway.journal import EntryState, PostgresJournal, RowChange
from cometrunway.journal._pg_notify import RECONNECT_FIRST_SECONDS, RECONNECT_MAX_SECONDS
from cometrunway.journal._pg_schema import RESYNC_STATE

psycopg = pytest.importorskip(
    "psycopg", reason="needs the postgres extra: pip install -e '.[postgres]'"
)

PATH = "/runway/pro/generate"
PASSWORD = "s3cret-never-logged"
# Every wait in these tests is on a condition; this only bounds a broken one.
BOUND_SECONDS = 10.0
# Wake-ups must reach another worker within this (the bound).
WAKE_UP_BOUND_SECONDS = 1.0
# Closing the journal must not wait for the reconnect wait to end.
CLOSE_BOUND_SECONDS = 2.0
# How often the test asks the server again while it waits for a condition.
RECHECK_SECONDS = 0.02
RESYNC = RowChange("", None, RESYNC_STATE, None)


class Gate:
    """The journal's sleep between reconnect attempts: it ends only once the test opens it,
    so the test decides when the journal reconnects, whatever the wall clock does."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.asked = asyncio.Event()
        self.opened = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.asked.set()
        await self.opened.wait()


@pytest.fixture
async def admin(postgres_url: str) -> AsyncIterator[psycopg.AsyncConnection[object]]:
    """A connection of the test's own, to look at and kill the journals' sessions."""
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        yield conn


async def sessions(admin: psycopg.AsyncConnection[object], name: str) -> list[int]:
    """The backend pids of the sessions named ``name`` (a journal's instance id)."""
    cur = await admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,)
    )
    return [row[0] for row in await cur.fetchall()]


async def kill_listen_session(admin: psycopg.AsyncConnection[object], name: str) -> int:
    (pid,) = await sessions(admin, name)
    await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    while pid in await sessions(admin, name):  # gone once the server has ended it
        await asyncio.sleep(RECHECK_SECONDS)
    return int(pid)


async def submitted(j: PostgresJournal, key: str, task_id: str) -> None:
    entry, claimed = await j.reserve_sending(
        key, request_type="TextToVideo", path=PATH, body='{"p":1}', poll_route="feed"
    )
    assert claimed
    await j.mark_submitted(key, task_id)


def readers() -> list[asyncio.Task[object]]:
    """The journals' LISTEN readers still running in this loop."""
    return [t for t in asyncio.all_tasks() if "Announcements" in repr(t.get_coro())]


def with_password(url: str) -> str:
    # The test server trusts every local connection: a password is accepted and unused.
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{PASSWORD}@{host}"


async def test_a_killed_listen_connection_comes_back_live_and_wakes_again(
    postgres_url: str,
    admin: psycopg.AsyncConnection[object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="cometrunway.journal")
    async with (
        PostgresJournal(with_password(postgres_url)) as a,
        PostgresJournal(postgres_url) as b,
    ):
        heard: list[RowChange] = []
        resynced = asyncio.Event()
        ended = asyncio.Event()

        def listener(change: RowChange) -> None:
            heard.append(change)
            if change == RESYNC:
                resynced.set()
            elif change.state == EntryState.DONE:
                ended.set()

        a.add_listener(listener)
        await submitted(b, "k0", "t0")
        old = await kill_listen_session(admin, a.instance_id)

        async with asyncio.timeout(BOUND_SECONDS):
            await resynced.wait()  # back, listening again
            while not await sessions(admin, a.instance_id):
                await asyncio.sleep(RECHECK_SECONDS)
        (new,) = await sessions(admin, a.instance_id)
        assert new != old  # the same instance name, on a new session: live to the others

        waiter = asyncio.create_task(a.wait_finished("t0", within=BOUND_SECONDS))
        await finish(b, "t0")  # another worker, after the drop
        async with asyncio.timeout(WAKE_UP_BOUND_SECONDS):
            entry = await waiter
            await ended.wait()
        assert entry is not None and entry.state is EntryState.DONE
        assert heard[-1] == RowChange("k0", "t0", "done", "SUCCEEDED")
        assert heard.count(RESYNC) == 1

    lines = [r for r in caplog.records if "LISTEN connection" in r.getMessage()]
    assert [r.levelno for r in lines] == [logging.WARNING, logging.INFO]
    assert "lost" in lines[0].getMessage() and "back" in lines[1].getMessage()
    assert PASSWORD not in caplog.text
    assert all(PASSWORD not in r.getMessage() for r in caplog.records)


async def test_a_waiter_whose_row_changed_while_disconnected_is_woken_by_the_reconnect(
    postgres_url: str, admin: psycopg.AsyncConnection[object]
) -> None:
    gate = Gate()
    async with PostgresJournal(postgres_url, sleep=gate) as a, PostgresJournal(postgres_url) as b:
        await submitted(b, "k0", "t0")
        waiter = asyncio.create_task(a.wait_finished("t0", within=3600.0))
        async with asyncio.timeout(BOUND_SECONDS):
            await kill_listen_session(admin, a.instance_id)
            await gate.asked.wait()  # A saw the drop and waits to reconnect
        await finish(b, "t0")  # announced while nobody listens for A
        assert not waiter.done()

        gate.opened.set()
        async with asyncio.timeout(BOUND_SECONDS):
            entry = await waiter  # woken by the reconnect, it re-read the row
        assert entry is not None and entry.state is EntryState.DONE


async def test_closing_during_the_reconnect_wait_ends_promptly_and_leaves_nothing_behind(
    postgres_url: str, admin: psycopg.AsyncConnection[object]
) -> None:
    gate = Gate()  # never opened: the journal waits until it is closed
    a = PostgresJournal(postgres_url, sleep=gate)
    await a.open()
    try:
        async with asyncio.timeout(BOUND_SECONDS):
            await kill_listen_session(admin, a.instance_id)
            await gate.asked.wait()
        assert len(readers()) == 1
    finally:
        async with asyncio.timeout(CLOSE_BOUND_SECONDS):
            await a.close()

    assert readers() == []
    # Every connection of the journal is gone (the server ends a backend a moment after
    # its client hung up): only the test's own is left.
    async with asyncio.timeout(BOUND_SECONDS):
        while True:
            cur = await admin.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            row = await cur.fetchone()
            if row is not None and row[0] == 0:
                break
            await asyncio.sleep(RECHECK_SECONDS)


async def test_the_waits_between_refused_attempts_grow_up_to_a_cap(
    postgres_server: PostgresServer, postgres_url: str, admin: psycopg.AsyncConnection[object]
) -> None:
    gate = Gate()
    gate.opened.set()  # every wait ends at once: only their lengths are looked at
    database = postgres_url.rsplit("/", 1)[1]
    async with (
        PostgresJournal(postgres_url, sleep=gate) as a,
        await psycopg.AsyncConnection.connect(postgres_server.url(), autocommit=True) as server,
    ):
        resynced = asyncio.Event()
        a.add_listener(lambda change: resynced.set() if change == RESYNC else None)
        # New sessions are refused (open ones stay): every attempt to reconnect fails.
        await server.execute(f"ALTER DATABASE {database} ALLOW_CONNECTIONS false".encode())
        try:
            async with asyncio.timeout(BOUND_SECONDS):
                await kill_listen_session(admin, a.instance_id)
                while len(gate.waits) < 9:
                    await asyncio.sleep(RECHECK_SECONDS)
        finally:
            await server.execute(f"ALTER DATABASE {database} ALLOW_CONNECTIONS true".encode())
        async with asyncio.timeout(BOUND_SECONDS):
            await resynced.wait()
        assert await sessions(admin, a.instance_id)
    first, cap = RECONNECT_FIRST_SECONDS, RECONNECT_MAX_SECONDS
    growing = [min(first * 2**n, cap) for n in range(9)]
    assert gate.waits[:9] == growing and growing[-1] == cap and growing[0] < cap
