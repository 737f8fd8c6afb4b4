"""The PostgreSQL journal's connections: life cycle, schema on first use, statements, reads.

:class:`PostgresBase` owns a connection pool for statements and one session connection
that LISTENs (:mod:`._pg_notify`, which reconnects it when it drops) and names the instance
to the other workers. The store itself is :class:`~cometrunway.journal.PostgresJournal`
(:mod:`._postgres`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Self

from ..errors import JournalError
from . import _pg_schema as q
from ._pg_notify import Announcements
from ._rows import EntryState, JournalEntry
from ._statements import Statements
from ._transitions import FOLLOWABLE, TRANSITIONS, Action, refusal

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

__all__ = ["Duplicate", "PostgresBase", "Row"]

Row = tuple[Any, ...]


class Duplicate(Exception):
    """A unique constraint refused the statement (another row holds that task id)."""


def _driver() -> tuple[Any, Any]:
    try:
        import psycopg
        import psycopg_pool
    except ImportError as exc:
        raise JournalError(
            "a postgresql:// journal needs the PostgreSQL driver, which is not installed: "
            f"pip install 'cometrunway[postgres]' ({exc})"
        ) from exc
    return psycopg, psycopg_pool


class PostgresBase:
    """Connections, schema and reads of a :class:`~cometrunway.journal.PostgresJournal`."""

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = 10,
        connect_timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections}")
        self._url = url
        self._where = q.redact(url)
        self._max = max_connections
        self._connect_timeout = connect_timeout
        self._clock = clock
        self._sleep = sleep  # between attempts to reconnect the LISTEN connection
        #: Names this instance in the rows it sends and the leases it holds.
        self.instance_id: str = f"{q.INSTANCE_PREFIX}{uuid.uuid4().hex}"
        self._sql = Statements(self._where, self.instance_id, clock)
        self._pg: Any = None
        self._pool: psycopg_pool.AsyncConnectionPool[Any] | None = None
        self._unsynced_pool: psycopg_pool.AsyncConnectionPool[Any] | None = None
        self._news: Announcements | None = None

    def __repr__(self) -> str:
        state = "open" if self._pool is not None else "closed"
        return f"{type(self).__name__}({self._where!r}, {state})"

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    # -- life cycle

    async def open(self) -> None:
        """Connect, create or migrate the schema, and start listening for other workers."""
        if self._pool is not None:
            return
        psycopg_mod, pool_mod = _driver()
        self._pg = psycopg_mod
        try:
            session = await self._session()
        except psycopg_mod.Error as exc:
            raise JournalError(f"journal {self._where}: cannot connect: {exc}") from exc
        pools: list[psycopg_pool.AsyncConnectionPool[Any]] = []
        try:
            await self._migrate(session)
            # Statuses go through connections that do not wait for the disk flush (see
            # record_status); claims and task ids through ones that do.
            for extra in ({}, {"options": "-c synchronous_commit=off"}):
                pool = pool_mod.AsyncConnectionPool(
                    self._url,
                    min_size=1,
                    max_size=self._max,
                    open=False,
                    kwargs={"autocommit": True, **extra},
                    timeout=self._connect_timeout,
                )
                pools.append(pool)
                await pool.open(wait=True, timeout=self._connect_timeout)
            news = Announcements(
                session, connect=self._session, where=self._where, sleep=self._sleep
            )
            await news.start()
        except BaseException as exc:
            for pool in pools:
                await pool.close()
            await session.close()
            if isinstance(exc, psycopg_mod.Error):
                raise JournalError(f"journal {self._where}: cannot open: {exc}") from exc
            raise
        self._pool, self._unsynced_pool = pools
        self._news = news

    async def close(self) -> None:
        pools, news = (self._pool, self._unsynced_pool), self._news
        self._pool = self._unsynced_pool = self._news = None
        if news is not None:
            await news.stop()
            await news.conn.close()  # the current one: the reader may have replaced it
        for pool in pools:
            if pool is not None:
                await pool.close()

    async def _session(self) -> psycopg.AsyncConnection[Any]:
        """A new session connection: it LISTENs, and its name says this instance is alive."""
        conn: psycopg.AsyncConnection[Any] = await self._pg.AsyncConnection.connect(
            self._url,
            autocommit=True,
            application_name=self.instance_id,
            connect_timeout=max(1, round(self._connect_timeout)),
        )
        return conn

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _migrate(self, conn: psycopg.AsyncConnection[Any]) -> None:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (q.MIGRATION_LOCK,))
            found = await (await conn.execute("SELECT to_regclass('cometrunway_meta')")).fetchone()
            version = 0
            if found is not None and found[0] is not None:
                row = await (
                    await conn.execute(
                        "SELECT value FROM cometrunway_meta WHERE name = 'schema_version'"
                    )
                ).fetchone()
                version = int(row[0]) if row is not None else 0
            if version > q.PG_SCHEMA_VERSION:
                raise JournalError(
                    f"journal {self._where}: written by a newer cometrunway (schema version "
                    f"{version}, this one knows {q.PG_SCHEMA_VERSION}): upgrade cometrunway"
                )
            for step in q.MIGRATIONS[version:]:
                await conn.execute(step.encode())
            if version < q.PG_SCHEMA_VERSION:
                await conn.execute(
                    "INSERT INTO cometrunway_meta (name, value) VALUES ('schema_version', %s) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (str(q.PG_SCHEMA_VERSION),),
                )

    # -- statements

    def _live_pool(self) -> psycopg_pool.AsyncConnectionPool[Any]:
        if self._pool is None:
            raise JournalError(f"journal {self._where} is not open")
        return self._pool

    async def _fetch(self, sql: str, params: dict[str, Any] | None = None) -> list[Row]:
        """Run one statement in its own committed transaction; its rows, if any."""
        pool = self._live_pool()
        try:
            async with pool.connection() as conn:
                cur = await conn.execute(sql.encode(), params)
                return await cur.fetchall() if cur.description is not None else []
        except self._pg.errors.UniqueViolation as exc:
            raise Duplicate(str(exc)) from exc
        except self._pg.Error as exc:
            raise JournalError(f"journal {self._where}: {exc}") from exc

    async def _fetch_unsynced(self, sql: str, params: dict[str, Any]) -> None:
        """Run one statement on a connection that does not wait for the disk flush."""
        pool = self._unsynced_pool
        if pool is None:
            raise JournalError(f"journal {self._where} is not open")
        try:
            async with pool.connection() as conn:
                await conn.execute(sql.encode(), params)
        except self._pg.Error as exc:
            raise JournalError(f"journal {self._where}: {exc}") from exc

    async def _state_of(self, key: str, verb: str) -> tuple[EntryState, str | None]:
        rows = await self._fetch(
            "SELECT state, task_id FROM cometrunway_entries WHERE key = %(key)s", {"key": key}
        )
        if not rows:
            raise JournalError(f"journal {self._where}: cannot {verb} {key!r}: no such entry")
        return EntryState(rows[0][0]), rows[0][1]

    async def _move(self, key: str, action: Action, sets: str, **params: Any) -> None:
        params.update(key=key, now=self._clock())
        if not await self._fetch(q.move(action, sets), params):
            state, task_id = await self._state_of(key, TRANSITIONS[action].verb)
            raise refusal(action, key=key, state=state, task_id=task_id, where=self._where)

    # -- reads

    async def _select(self, where: str, params: dict[str, Any] | None = None) -> list[JournalEntry]:
        return [self._sql.entry(row) for row in await self._fetch(f"{q.SELECT} {where}", params)]

    async def get(self, key: str) -> JournalEntry | None:
        found = await self._select("WHERE key = %(key)s", {"key": key})
        return found[0] if found else None

    async def get_by_task(self, task_id: str) -> JournalEntry | None:
        found = await self._select("WHERE task_id = %(task_id)s", {"task_id": task_id})
        return found[0] if found else None

    async def unfinished(self) -> list[JournalEntry]:
        return await self._select(f"WHERE {FOLLOWABLE} ORDER BY submitted_at, seq")

    async def ambiguous(self, *, include_in_flight: bool = False) -> list[JournalEntry]:
        """AMBIGUOUS rows, and SENDING rows whose sender's session is gone (a crash).

        Sends still in flight (this instance's, or a connected worker's) are left out unless
        ``include_in_flight``.
        """
        if include_in_flight:
            return await self._select("WHERE state IN ('sending', 'ambiguous') ORDER BY seq")
        rows = await self._fetch(q.AMBIGUOUS, {"me": self.instance_id})
        return [self._sql.entry(row) for row in rows]

    async def pending_submits(self) -> list[JournalEntry]:
        return await self._select("WHERE state IN ('queued', 'rejected') ORDER BY seq")

    async def entries(self) -> list[JournalEntry]:
        return await self._select("ORDER BY seq")

    async def counts(self) -> dict[str, int]:
        rows = await self._fetch("SELECT state, count(*) FROM cometrunway_entries GROUP BY state")
        found = {state: int(n) for state, n in rows}
        return {state.value: found.get(state.value, 0) for state in EntryState}
