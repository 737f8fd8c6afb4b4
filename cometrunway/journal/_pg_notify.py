"""Cross-worker wake-ups for the PostgreSQL journal: LISTEN on one session connection.

Every state change a worker commits is announced with ``pg_notify`` (see
:mod:`._pg_schema`); each journal instance keeps one dedicated connection that LISTENs and
hands each :class:`RowChange` to whoever waits on its key or task id, and to the registered
listeners. That connection also names the instance (its ``application_name``), so other
workers can tell a live sender from a crashed one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import attrs

from ._pg_schema import CHANNEL

if TYPE_CHECKING:
    import psycopg

__all__ = ["Announcements", "RowChange"]

log: logging.Logger = logging.getLogger("cometrunway.journal")

# How long stop() waits for the reader to end before cancelling it again: a reader that
# took the cancel ends within one event-loop turn.
_STOP_ASK_AGAIN_SECONDS = 0.5


@attrs.frozen
class RowChange:
    """One committed change of a journal row, as any worker sees it; or, with ``state``
    ``"wake"`` (``PostgresJournal.wake_polls``), a request to poll ``task_id`` now."""

    key: str
    task_id: str | None
    state: str
    status: str | None


class Announcements:
    """Reads the notifications of one session connection and wakes whoever waits."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._listeners: list[Callable[[RowChange], None]] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.conn.execute(f"LISTEN {CHANNEL}")
        self._task = asyncio.get_running_loop().create_task(self._read())

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
        for events in self._waiters.values():
            for event in events:
                event.set()

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
            for listener in list(self._listeners):
                try:
                    listener(change)
                except Exception:  # a listener's bug must not stop the wake-ups of others
                    log.exception("journal change listener %r failed", listener)
