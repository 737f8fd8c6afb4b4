"""What a fleet of workers needs beyond the journal protocol: poll leases and wake-ups.

* **Poll leases**: one poller per task across the fleet. :meth:`PostgresFleet.claim_polls`
  leases SUBMITTED tasks nobody holds (``FOR UPDATE SKIP LOCKED``, so workers claim side by
  side), :meth:`~PostgresFleet.renew_polls` extends them while held, and a dead worker's
  leases expire (server time) so the others' next claims take its tasks over.
* **Wake-ups**: every committed change is announced (LISTEN/NOTIFY), so
  :meth:`~PostgresFleet.wait_finished` in worker A returns as soon as worker B records a
  task's end (from a callback or a poll), and :meth:`~PostgresFleet.wait_sent` gives the
  loser of a race on one key the winner's task id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Final

from ..errors import JournalError
from . import _pg_schema as q
from ._pg_base import PostgresBase
from ._pg_notify import Announcements, RowChange
from ._rows import EntryState, JournalEntry

__all__ = ["DEFAULT_LEASE_SECONDS", "PostgresFleet"]

#: How often a worker waiting on another's send checks that the sender is still alive (a
#: crashed sender announces nothing).
SENDER_RECHECK_SECONDS: Final = 1.0
DEFAULT_LEASE_SECONDS: Final = 30.0
#: How often wait_gone() asks the server whether a session is still there.
GONE_RECHECK_SECONDS: Final = 0.05


class PostgresFleet(PostgresBase):
    """Poll leases and cross-worker wake-ups (see the module docstring)."""

    # -- poll leases: one poller per task across the fleet

    async def claim_polls(
        self, limit: int, *, lease_seconds: float = DEFAULT_LEASE_SECONDS, min_age: float = 0.0
    ) -> list[JournalEntry]:
        """Lease up to ``limit`` SUBMITTED tasks nobody polls (or whose lease expired).

        The leases are this instance's for ``lease_seconds`` (server time): poll those
        tasks, :meth:`renew_polls` well before expiry, :meth:`release_polls` when done. A
        worker that dies stops renewing, and another one's next claim takes its tasks over.
        A task never leased is claimed only once it was submitted ``min_age`` seconds ago
        (by the journal's clock): until then its creator is about to lease it.
        """
        _check_lease(limit, lease_seconds)
        if not min_age >= 0:
            raise ValueError(f"min_age must be ≥ 0 seconds, got {min_age}")
        params = {
            "limit": limit,
            "owner": self.instance_id,
            "lease": lease_seconds,
            "unleased_before": self._clock() - min_age,
        }
        return [self._sql.entry(row) for row in await self._fetch(q.CLAIM_POLLS, params)]

    async def renew_polls(
        self, task_ids: Iterable[str], *, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> set[str]:
        """Lease these tasks to this instance: its own leases are extended, free or expired
        ones taken. Returns the task ids it holds now; stop polling the others (another
        worker holds them, or they finished). A worker calls it for the tasks it submits,
        then every third of ``lease_seconds`` or so while it polls them."""
        _check_lease(1, lease_seconds)
        params = {"task_ids": list(task_ids), "owner": self.instance_id, "lease": lease_seconds}
        return {row[0] for row in await self._fetch(q.RENEW_POLLS, params)}

    async def release_polls(self, task_ids: Iterable[str]) -> None:
        """Give up this instance's leases on ``task_ids`` (others may claim them at once)."""
        await self._fetch(q.RELEASE_POLLS, {"task_ids": list(task_ids), "owner": self.instance_id})

    async def wake_polls(self, task_ids: Iterable[str]) -> None:
        """Ask whoever polls these tasks to poll them now (a :class:`RowChange` whose state
        is ``"wake"``); unfinished journaled tasks only, others are ignored."""
        await self._fetch(q.WAKE_POLLS, {"task_ids": list(task_ids)})

    async def finished_rows(self, task_ids: Iterable[str]) -> list[JournalEntry]:
        """The rows of ``task_ids`` that are DONE (unknown ids and open rows are left out):
        one read for many handles waiting on other workers' polls."""
        ids = list(task_ids)
        if not ids:
            return []
        return await self._select(
            "WHERE task_id = ANY(%(task_ids)s) AND state = %(done)s",
            {"task_ids": ids, "done": EntryState.DONE.value},
        )

    async def leases(self) -> dict[str, str]:
        """Unexpired leases of unfinished tasks: task id → the holder's instance id."""
        return dict(await self._fetch(q.LEASES))

    # -- wake-ups across workers

    def _announcements(self) -> Announcements:
        if self._news is None:
            raise JournalError(f"journal {self._where} is not open")
        return self._news

    def add_listener(self, listener: Callable[[RowChange], None]) -> None:
        """Call ``listener`` with every row change any worker commits (on this loop)."""
        self._announcements().add_listener(listener)

    def remove_listener(self, listener: Callable[[RowChange], None]) -> None:
        self._announcements().remove_listener(listener)

    async def wait_finished(self, task_id: str, within: float) -> JournalEntry | None:
        """The row of ``task_id`` once it is DONE, whichever worker recorded it; or, after
        ``within`` seconds, the row as it is (None if there is none)."""
        news = self._announcements()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        with news.waiting(task_id) as changed:
            while True:
                changed.clear()
                entry = await self.get_by_task(task_id)
                remaining = deadline - loop.time()
                if (entry is not None and entry.state is EntryState.DONE) or remaining <= 0:
                    return entry
                await _wait(changed, remaining)

    async def wait_sent(self, key: str, within: float) -> JournalEntry | None:
        """The row of ``key`` once its sender is done sending (a task id, ambiguous or
        rejected), or once that sender is gone; after ``within`` seconds, as it is.

        For the loser of a race on one key: ``reserve_sending`` gave it the winner's SENDING
        row, and this gives it the winner's task id as soon as it is committed.
        """
        news = self._announcements()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        with news.waiting(key) as changed:
            while True:
                changed.clear()
                rows = await self._fetch(q.SENDER_LIVE, {"key": key})
                remaining = deadline - loop.time()
                in_flight = bool(rows) and rows[0][0] == EntryState.SENDING and rows[0][1]
                if not in_flight or remaining <= 0:
                    return await self.get(key)
                await _wait(changed, min(remaining, SENDER_RECHECK_SECONDS))

    async def wait_gone(self, instance_id: str, within: float) -> bool:
        """Whether the worker ``instance_id`` (its session) is gone, waiting up to
        ``within`` seconds for the server to notice: after a crash, its SENDING rows are
        ambiguous from then on."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            rows = await self._fetch(q.SESSION_LIVE, {"name": instance_id})
            if not rows:
                return True
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(GONE_RECHECK_SECONDS)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        pass


def _check_lease(limit: int, lease_seconds: float) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if not lease_seconds > 0:
        raise ValueError(f"lease_seconds must be positive, got {lease_seconds}")
