"""The PostgreSQL journal: one database shared by many workers, processes and hosts.

The same guarantees as :class:`~cometrunway.journal.SQLiteJournal`, across workers:

* **Write-ahead claim, dedupe by key**: ``reserve_sending`` inserts the SENDING row, or
  claims a QUEUED/REJECTED one, in one committed statement before any byte leaves. The
  unique key decides one winner when workers race on one prompt.
* **Durable before visible**: every call returns after its transaction committed (with the
  server's ``synchronous_commit``, ``on`` by default: flushed to its WAL).
* **Ambiguous rows**: a SENDING row is in flight while the worker that marked it is still
  connected (its session connection carries the instance name as ``application_name``);
  once that session is gone, the row is listed by :meth:`ambiguous` and never claimed again.
* **Transitions** use the guards generated from the one transition table.

Beyond the :class:`~cometrunway.journal.Journal` protocol, for a fleet of workers:

* **Poll leases** — :meth:`claim_polls`, :meth:`renew_polls`, :meth:`release_polls`: one
  poller per task across the fleet; a lease held by a dead worker expires and is taken over.
* **Wake-ups** — :meth:`wait_finished`, :meth:`wait_sent`, :meth:`add_listener`: a change
  committed by any worker reaches every other one through LISTEN/NOTIFY. A dropped session
  connection is reconnected; once it is back, waiters re-read their rows and listeners get
  a ``RowChange`` whose state is ``"resync"`` (changes may have been missed).

The driver is psycopg 3 (``pip install 'cometrunway[postgres]'``), imported only when a
journal opens.
"""

from __future__ import annotations

from ..errors import JournalError
from . import _pg_schema as q
from ._keys import Filing, key_conflict
from ._pg_base import Duplicate
from ._pg_fleet import PostgresFleet
from ._rows import EntryState, JournalEntry, check_route, check_task_id, track_key
from ._statements import Statements
from ._transitions import TRANSITIONS, Action, refusal

__all__ = ["PostgresJournal"]


class PostgresJournal(PostgresFleet):
    """The journal in a PostgreSQL database (see the module docstring).

    ``url`` is a libpq URL (``postgresql://user:password@host:5432/dbname``); its password
    never appears in messages or the repr. ``max_connections`` bounds each of this
    instance's two pools (flushed writes; statuses), plus one session connection.
    ``clock`` gives row timestamps (unix seconds); lease expiry uses the server's clock.
    ``sleep`` waits between attempts to reconnect the session connection when it drops.
    Use it as ``async with PostgresJournal(url) as journal:`` or ``open()`` / ``close()``.
    """

    # -- writes

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
        """Insert a QUEUED row for ``key``, or return the existing row unchanged (False)."""
        return await self._reserve(key, request_type, path, body, poll_route, label, False)

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
        """Claim ``key`` as SENDING in one committed statement; True: send it now.

        Of workers racing on one key, exactly one gets True; the others get the row (a
        loser can :meth:`wait_sent` for the winner's task id).
        """
        return await self._reserve(key, request_type, path, body, poll_route, label, True)

    async def _reserve(
        self,
        key: str,
        request_type: str,
        path: str,
        body: str,
        poll_route: str,
        label: str | None,
        sending: bool,
    ) -> tuple[JournalEntry, bool]:
        check_route(poll_route)
        state = EntryState.SENDING if sending else EntryState.QUEUED
        params = {
            "key": key,
            "request_type": request_type,
            "path": path,
            "body": body,
            "poll_route": poll_route,
            "state": state.value,
            "now": self._clock(),
            "label": label,
            "by": self.instance_id if sending else None,
        }
        inserted = await self._fetch(q.INSERT, params)
        if inserted:
            return self._sql.entry(inserted[0]), True
        existing = await self.get(key)
        if existing is None:
            raise JournalError(f"journal {self._where}: row {key!r} vanished while claimed")
        filing = Filing(key, request_type, path, body)
        if filing.conflicts_with(existing):
            raise key_conflict(self._where, filing, existing)
        if sending and await self._fetch(q.CLAIM, params):
            claimed = await self.get(key)
            assert claimed is not None
            return claimed, True
        return existing, False

    async def mark_sending(self, key: str) -> None:
        await self._move(
            key, Action.SEND, "state = 'sending', sending_by = %(by)s", by=self.instance_id
        )

    async def mark_submitted(self, key: str, task_id: str) -> None:
        """→ SUBMITTED with ``task_id`` (from any state without one); committed on return."""
        await self._set_task(key, task_id, Action.SUBMITTED)

    async def attach_task(self, key: str, task_id: str) -> None:
        """Settle a row without a task id with the id the user found (merging a track row)."""
        await self._set_task(key, task_id, Action.ATTACH)

    async def mark_ambiguous(self, key: str, error: str) -> None:
        await self._move(
            key,
            Action.AMBIGUOUS,
            "state = 'ambiguous', error = %(error)s, error_code = NULL, sending_by = NULL",
            error=error,
        )

    async def mark_rejected(self, key: str, error: str, error_code: str | None = None) -> None:
        await self._move(
            key,
            Action.REJECT,
            "state = 'rejected', error = %(error)s, error_code = %(code)s, sending_by = NULL",
            error=error,
            code=error_code,
        )

    async def release(self, key: str) -> None:
        await self._move(key, Action.RELEASE, "state = 'queued', sending_by = NULL")

    async def _set_task(self, key: str, task_id: str, action: Action) -> None:
        check_task_id(task_id)
        verb = TRANSITIONS[action].verb
        params = {"key": key, "task_id": task_id, "now": self._clock()}
        try:
            if await self._fetch(q.SET_TASK[action], params):
                return
        except Duplicate:
            # Another row holds this task id (the unique constraint said so).
            await self._adopt(key, task_id, action)
            return
        state, current = await self._state_of(key, verb)
        if current is None:
            raise refusal(action, key=key, state=state, task_id=None, where=self._where)
        if current != task_id:
            raise self._second_task(key, task_id, current, action)
        # The same id again: already recorded, nothing to do.

    def _second_task(self, key: str, task_id: str, current: str, action: Action) -> JournalError:
        return JournalError(
            f"journal {self._where}: cannot {TRANSITIONS[action].verb} {key!r} with task "
            f"{task_id}: it already has task {current} (both may be billed; keep both ids)"
        )

    async def _adopt(self, key: str, task_id: str, action: Action) -> None:
        """Give ``key`` a task id a ``track`` row holds, folding that row into it."""
        pool = self._live_pool()
        try:
            async with pool.connection() as conn, conn.transaction():
                owner = await (
                    await conn.execute(
                        "SELECT key, request_type, state, status, progress, outputs, error, "
                        "error_code, submitted_at, label, estimated_cost, cost, "
                        "cancel_requested_at FROM cometrunway_entries "
                        "WHERE task_id = %s FOR UPDATE",
                        (task_id,),
                    )
                ).fetchone()
                if owner is None or owner[0] != track_key(task_id) or owner[1] != "":
                    raise JournalError(
                        f"journal {self._where}: cannot give {key!r} task {task_id}: that "
                        f"task already belongs to {owner[0] if owner else None!r}"
                    )
                mine = await (
                    await conn.execute(
                        "SELECT task_id FROM cometrunway_entries WHERE key = %s FOR UPDATE",
                        (key,),
                    )
                ).fetchone()
                if mine is None:
                    verb = TRANSITIONS[action].verb
                    raise JournalError(
                        f"journal {self._where}: cannot {verb} {key!r}: no such entry"
                    )
                if mine[0] is not None:
                    raise self._second_task(key, task_id, mine[0], action)
                await conn.execute("DELETE FROM cometrunway_entries WHERE key = %s", (owner[0],))
                await conn.execute(
                    "UPDATE cometrunway_entries SET state = %s, task_id = %s, "
                    "submitted_at = %s, updated_at = %s, status = %s, progress = %s, "
                    "outputs = %s, error = %s, error_code = %s, label = COALESCE(label, %s), "
                    "estimated_cost = %s, cost = %s, cancel_requested_at = %s, "
                    "sending_by = NULL WHERE key = %s",
                    (
                        owner[2],
                        task_id,
                        owner[8] if owner[8] is not None else self._clock(),
                        self._clock(),
                        *owner[3:8],
                        owner[9],
                        *owner[10:13],
                        key,
                    ),
                )
        except self._pg.Error as exc:
            raise JournalError(f"journal {self._where}: {exc}") from exc

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
        estimated_cost: float | None = None,
        cost: float | None = None,
    ) -> None:
        """Record a task's latest status and credits (same rules as SQLite's, a NOT_FOUND
        row reopened by a status included), announced to every worker.

        Committed when this returns, without waiting for the server's disk flush
        (``synchronous_commit = off`` for this transaction, like SQLite's NORMAL): should the
        server lose it in a crash, the row is SUBMITTED again and the next poll repeats it;
        task ids and claims are always flushed. An unknown task id is ignored; a DONE row
        takes only another terminal report; identical repeats write and announce nothing.
        """
        params = Statements.status_params(
            task_id,
            status=status,
            progress=progress,
            outputs=outputs,
            error=error,
            error_code=error_code,
            terminal=terminal,
            estimated_cost=estimated_cost,
            cost=cost,
        )
        params["now"] = self._clock()
        await self._fetch_unsynced(q.RECORD_STATUS, params)

    async def record_cancel_request(self, task_id: str) -> None:
        """Note when a cancel of ``task_id`` was first asked for (an unknown id is ignored);
        committed without waiting for the server's disk flush, like a status."""
        check_task_id(task_id)
        await self._fetch_unsynced(q.RECORD_CANCEL, {"task_id": task_id, "now": self._clock()})

    async def track(
        self, task_id: str, *, poll_route: str, label: str | None = None
    ) -> JournalEntry:
        """Follow a task created elsewhere; returns its row (an existing one if the id has
        one, reopened when it ended NOT_FOUND)."""
        check_route(poll_route)
        check_task_id(task_id)
        existing = await self.get_by_task(task_id)
        if existing is not None:
            if not TRANSITIONS[Action.REOPEN].accepts(existing.state, existing.status):
                return existing
            await self._fetch(q.REOPEN, {"task_id": task_id, "now": self._clock()})
            reopened = await self.get_by_task(task_id)
            return reopened if reopened is not None else existing
        params = {
            "key": track_key(task_id),
            "task_id": task_id,
            "poll_route": poll_route,
            "label": label,
            "now": self._clock(),
        }
        inserted = await self._fetch(q.TRACK, params)
        if inserted:
            return self._sql.entry(inserted[0])
        existing = await self.get_by_task(task_id)  # another worker tracked it just now
        if existing is not None:
            return existing
        raise JournalError(
            f"journal {self._where}: cannot track task {task_id}: the key "
            f"{track_key(task_id)!r} is already used by a request without that task id"
        )
