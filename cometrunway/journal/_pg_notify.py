"""Cross-worker wake-ups for the PostgreSQL journal: LISTEN on one session connection.

Every state change a worker commits is announced with ``pg_notify`` (see
:mod:`._pg_schema`); each journal instance keeps one dedicated connection that LISTENs and
hands each :class:`RowChange` to whoever waits on its key or task id, and to the registered
listeners. That connection also names the instance (its ``application_name``), so other
workers can tell a live sender from a crashed one.

When that connection drops (a server restart, an idle timeout, ``pg_terminate_backend``),
the reader opens a new one with the same arguments, waiting a little longer before each
attempt, and LISTENs again: the instance is live to the others once more. What was
announced in between is lost, so once back it wakes every waiter (each re-reads its row)
and hands the listeners a :class:`RowChange` whose state is :data:`RESYNC_STATE`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, Final

import attrs

from ._pg_schema import CHANNEL, RESYNC_STATE

if TYPE_CHECKING:
    import psycopg

__all__ = ["Announcements", "RowChange"]

log: logging.Logger = logging.getLogger("cometrunway.journal")

# How long stop() waits for the reader to end before cancelling it again: a reader that
# took the cancel ends within one event-loop turn.
_STOP_ASK_AGAIN_SECONDS = 0.5
#: The wait before the first attempt to reconnect the LISTEN connection, doubled after each
#: failed one up to the cap: a dropped session usually comes back at once, a restarting
#: server takes seconds, and a fleet of workers should not hammer it meanwhile.
RECONNECT_FIRST_SECONDS: Final = 0.1
RECONNECT_MAX_SECONDS: Final = 5.0

Connect = Callable[[], Awaitable["psycopg.AsyncConnection[Any]"]]
Sleep = Callable[[float], Awaitable[None]]


@attrs.frozen
class RowChange:
    """One committed change of a journal row, as any worker sees it; or, with ``state``
    ``"wake"`` (``PostgresJournal.wake_polls``), a request to poll ``task_id`` now; or, with
    ``state`` ``"resync"`` (``key`` ``""``, the rest None), news that changes may have been
    missed (the journal's LISTEN connection dropped and is back): re-read what you watch."""

    key: str
    task_id: str | None
    state: str
    status: str | None


class Announcements:
    """Reads the notifications of one session connection and wakes whoever waits; when that
    connection drops, ``connect`` opens its successor (see the module docstring)."""

    def __init__(
        self,
        conn: psycopg.AsyncConnection[Any],
        *,
        connect: Connect,
        where: str,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        #: The current session connection (a lost one until its successor is connected).
        self.conn = conn
        self._connect = connect
        self._where = where
        self._sleep = sleep
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._listeners: list[Callable[[RowChange], None]] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.conn.execute(f"LISTEN {CHANNEL}")
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            # A driver's wait that ends as the cancel arrives may swallow it (psycopg before
            # 3.3.6 on Python 3.11): ask again until the reader has really stopped.
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=_STOP_ASK_AGAIN_SECONDS)
            if not task.cancelled() and task.exception() is not None:
                log.debug("the LISTEN reader ended with %r", task.exception())
        # Anyone still waiting re-reads the row and finds the journal closed.
        self._wake_all()

    def add_listener(self, listener: Callable[[RowChange], None]) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[RowChange], None]) -> None:
        self._listeners.remove(listener)

    @contextlib.contextmanager
    def waiting(self, *names: str) -> Iterator[asyncio.Event]:
        """An event set on the next change of a row with one of these keys or task ids.

        Register before reading the row, so a change committed in between is not missed.
        """
        event = asyncio.Event()
        for name in names:
            self._waiters.setdefault(name, set()).add(event)
        try:
            yield event
        finally:
            for name in names:
                events = self._waiters.get(name)
                if events is not None:
                    events.discard(event)
                    if not events:
                        del self._waiters[name]

    async def _run(self) -> None:
        """Read until stopped; reconnect whenever the connection is lost."""
        import psycopg  # loaded already: the journal opened

        while True:
            try:
                await self._read()
                why = "the connection was closed"
            except psycopg.OperationalError as exc:
                why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning(
                "journal %s: the LISTEN connection was lost (%s): no wake-ups from other "
                "workers until it is back",
                self._where,
                why,
            )
            await self._reconnect()
            log.info("journal %s: the LISTEN connection is back", self._where)
            # Whatever was announced meanwhile is lost: waiters re-read their rows, and
            # listeners hear that they may have missed changes.
            self._wake_all()
            self._tell(RowChange("", None, RESYNC_STATE, None))

    async def _reconnect(self) -> None:
        import psycopg

        with contextlib.suppress(psycopg.Error):
            await self.conn.close()
        delay = RECONNECT_FIRST_SECONDS
        while True:
            await self._sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)
            try:
                # Current as soon as it exists, so that closing the journal closes it.
                self.conn = await self._connect()
                await self.conn.execute(f"LISTEN {CHANNEL}")
                return
            except psycopg.Error as exc:
                log.debug("journal %s: cannot LISTEN again yet: %s", self._where, exc)
                with contextlib.suppress(psycopg.Error):
                    await self.conn.close()

    async def _read(self) -> None:
        async for notify in self.conn.notifies():
            try:
                data = json.loads(notify.payload)
                change = RowChange(data["key"], data["task_id"], data["state"], data["status"])
            except (ValueError, KeyError, TypeError):
                log.warning("ignoring an unreadable journal notification %r", notify.payload)
                continue
            for name in (change.key, change.task_id):
                for event in self._waiters.get(name or "", ()):
                    event.set()
            self._tell(change)

    def _tell(self, change: RowChange) -> None:
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:  # a listener's bug must not stop the wake-ups of others
                log.exception("journal change listener %r failed", listener)

    def _wake_all(self) -> None:
        for events in self._waiters.values():
            for event in events:
                event.set()
