"""The SQL of every journal operation, run on the journal's thread inside a group commit.

Each transition is one conditional UPDATE whose condition comes from the transition table
(:func:`~cometrunway.journal._transitions.guard`); only when it matches no row does the
operation look at the row again, to say why it refuses. A refusal is raised before anything
is written, and each operation writes with a single statement (the one that needs two has
its own savepoint), so a failing operation never undoes the others sharing its commit.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable
from typing import Any, Final

from ..errors import JournalError
from ._keys import Filing, key_conflict
from ._rows import EntryState, JournalEntry, Outcome, track_key
from ._schema import SELECT
from ._transitions import TRANSITIONS, Action, guard, refusal

__all__ = ["Statements"]

# A DONE row only takes another terminal report, except that a NOT_FOUND one is reopened by
# any status (the server knows the task after all); identical repeats touch nothing, so a
# poller that sees no change costs one index lookup. Credits left out (None) keep the row's.
# Named placeholders: numbered ones warn on Python 3.12.0-3.12.3 (CPython gh-117995).
_RECORD_STATUS: Final = f"""
UPDATE entries SET
    status = :status,
    progress = :progress,
    outputs = CASE WHEN :outputs = '[]' THEN outputs ELSE :outputs END,
    error = :error,
    error_code = :error_code,
    estimated_cost = COALESCE(:estimated_cost, estimated_cost),
    cost = COALESCE(:cost, cost),
    state = :state,
    updated_at = :now
WHERE task_id = :task_id
  AND ({guard(Action.PROGRESS)}
       OR (NOT :terminal AND {guard(Action.REOPEN)})
       OR (:terminal AND {guard(Action.FINISH)}))
  AND (state IS NOT :state
       OR status IS NOT :status
       OR progress IS NOT :progress
       OR (:outputs != '[]' AND outputs IS NOT :outputs)
       OR error IS NOT :error
       OR error_code IS NOT :error_code
       OR (:estimated_cost IS NOT NULL AND estimated_cost IS NOT :estimated_cost)
       OR (:cost IS NOT NULL AND cost IS NOT :cost))
"""

# The first request is the one kept: when the user asked, not how often.
_RECORD_CANCEL: Final = (
    "UPDATE entries SET cancel_requested_at = :now "
    "WHERE task_id = :task_id AND cancel_requested_at IS NULL"
)
# track() of an id whose row ended NOT_FOUND: the caller follows it again, and until a poll
# says otherwise its status is unknown (the not-found verdict no longer stands).
REOPEN_SETS: Final = (
    "state = 'submitted', status = NULL, progress = NULL, error = NULL, error_code = NULL"
)
_REOPEN: Final = (
    f"UPDATE entries SET {REOPEN_SETS}, updated_at = ? WHERE task_id = ? AND {guard(Action.REOPEN)}"
)

_INSERT: Final = (
    "INSERT INTO entries (key, request_type, path, body, poll_route, state, created_at, "
    "updated_at, label, sending_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (key) DO NOTHING"
)
# Each transition's UPDATE, built once per (action, assignments) from the table's guard.
_MOVES: dict[tuple[Action, str], str] = {}
_SET_TASK: Final = {
    action: "UPDATE entries SET state = 'submitted', task_id = ?, submitted_at = ?, "
    "updated_at = ?, error = NULL, error_code = NULL, sending_by = NULL "
    f"WHERE key = ? AND {guard(action)}"
    for action in (Action.SUBMITTED, Action.ATTACH)
}
_CLAIM: Final = (
    "UPDATE entries SET state = 'sending', sending_by = ?, updated_at = ? "
    f"WHERE key = ? AND {guard(Action.SEND)}"
)


class Statements:
    """The operations of one :class:`~cometrunway.journal.SQLiteJournal` on a connection.

    ``where`` names the journal in errors; ``instance`` marks the rows this journal is
    sending (see ``ambiguous``); ``clock`` gives row timestamps.
    """

    def __init__(self, where: str, instance: str, clock: Callable[[], float]) -> None:
        self.where = where
        self.instance = instance
        self.clock = clock

    # -- rows

    def entry(self, row: Any) -> JournalEntry:
        try:
            state = EntryState(row[5])
            outputs = tuple(str(url) for url in json.loads(row[9]))
        except (ValueError, TypeError) as exc:
            raise JournalError(f"journal {self.where}: unreadable row {row[0]!r}: {exc}") from exc
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
            estimated_cost=row[16],
            cost=row[17],
            cancel_requested_at=row[18],
        )

    def fetch_key(self, conn: sqlite3.Connection, key: str) -> JournalEntry | None:
        row = conn.execute(f"{SELECT} WHERE key = ?", (key,)).fetchone()
        return None if row is None else self.entry(row)

    def fetch_task(self, conn: sqlite3.Connection, task_id: str) -> JournalEntry | None:
        row = conn.execute(f"{SELECT} WHERE task_id = ?", (task_id,)).fetchone()
        return None if row is None else self.entry(row)

    def select(
        self, conn: sqlite3.Connection, where: str, params: tuple[Any, ...] = ()
    ) -> list[JournalEntry]:
        return [self.entry(row) for row in conn.execute(f"{SELECT} {where}", params)]

    def state_of(
        self, conn: sqlite3.Connection, key: str, action: str
    ) -> tuple[EntryState, str | None]:
        row = conn.execute("SELECT state, task_id FROM entries WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise JournalError(f"journal {self.where}: cannot {action} {key!r}: no such entry")
        return EntryState(row[0]), row[1]

    def refuse(self, conn: sqlite3.Connection, key: str, action: Action) -> JournalError:
        """Why ``action`` does not apply to the row (raises if there is no row)."""
        state, task_id = self.state_of(conn, key, TRANSITIONS[action].verb)
        return refusal(action, key=key, state=state, task_id=task_id, where=self.where)

    # -- claims

    def reserve(
        self, conn: sqlite3.Connection, key: str, fields: dict[str, Any], *, sending: bool
    ) -> tuple[JournalEntry, bool]:
        """Insert ``key`` (QUEUED, or SENDING when ``sending``), or claim an existing row
        that may be sent. Returns the row and whether this call claimed it."""
        now = self.clock()
        state = EntryState.SENDING if sending else EntryState.QUEUED
        sending_by = self.instance if sending else None
        row = (key, fields["request_type"], fields["path"], fields["body"], fields["poll_route"])
        if conn.execute(
            _INSERT, (*row, state.value, now, now, fields["label"], sending_by)
        ).rowcount:
            entry = JournalEntry(
                *row,
                state=state,
                task_id=None,
                status=None,
                progress=None,
                outputs=(),
                error=None,
                error_code=None,
                created_at=now,
                updated_at=now,
                submitted_at=None,
                label=fields["label"],
            )
            return entry, True
        existing = self.fetch_key(conn, key)
        assert existing is not None
        filing = Filing(key, fields["request_type"], fields["path"], fields["body"])
        if filing.conflicts_with(existing):
            raise key_conflict(self.where, filing, existing)
        if sending and conn.execute(_CLAIM, (self.instance, now, key)).rowcount:
            claimed = self.fetch_key(conn, key)
            assert claimed is not None
            return claimed, True
        return existing, False

    # -- transitions without a task id

    def move(
        self, conn: sqlite3.Connection, key: str, action: Action, sets: str, **params: Any
    ) -> None:
        """Apply ``action`` (an UPDATE setting ``sets``) or raise the table's refusal."""
        sql = _MOVES.get((action, sets))
        if sql is None:
            sql = _MOVES[action, sets] = (
                f"UPDATE entries SET {sets}, updated_at = :now WHERE key = :key AND {guard(action)}"
            )
        params["key"] = key
        params["now"] = self.clock()
        changed = conn.execute(sql, params).rowcount
        if not changed:
            raise self.refuse(conn, key, action)

    # -- task ids

    def set_task(self, conn: sqlite3.Connection, key: str, task_id: str, action: Action) -> None:
        now = self.clock()
        try:
            changed = conn.execute(_SET_TASK[action], (task_id, now, now, key)).rowcount
        except sqlite3.IntegrityError:
            # Another row holds this task id (the unique index said so).
            self._adopt(conn, key, task_id, action, now)
            return
        if changed:
            return
        current = self.state_of(conn, key, TRANSITIONS[action].verb)[1]
        if current is None:
            raise self.refuse(conn, key, action)
        if current != task_id:
            raise self._second_task(key, task_id, current, action)
        # The same id again: already recorded, nothing to do.

    def _second_task(self, key: str, task_id: str, current: str, action: Action) -> JournalError:
        return JournalError(
            f"journal {self.where}: cannot {TRANSITIONS[action].verb} {key!r} with task "
            f"{task_id}: it already has task {current} (both may be billed; keep both ids)"
        )

    def _adopt(
        self, conn: sqlite3.Connection, key: str, task_id: str, action: Action, now: float
    ) -> None:
        """Give ``key`` a task id a ``track`` row holds, folding that row into it.

        The task was followed by id before its request row was settled; what the poller
        learned (status, outputs) is kept. Any other owner is a conflict.
        """
        owner = conn.execute(
            "SELECT key, request_type, state, status, progress, outputs, error, error_code, "
            "submitted_at, label, estimated_cost, cost, cancel_requested_at "
            "FROM entries WHERE task_id = ?",
            (task_id,),
        ).fetchone()
        if owner is None or owner[0] != track_key(task_id) or owner[1] != "":
            raise JournalError(
                f"journal {self.where}: cannot give {key!r} task {task_id}: "
                f"that task already belongs to {owner[0] if owner else None!r}"
            )
        current = self.state_of(conn, key, TRANSITIONS[action].verb)[1]
        if current is not None:
            raise self._second_task(key, task_id, current, action)
        # Two statements: a savepoint keeps them all-or-nothing inside the shared commit.
        conn.execute("SAVEPOINT adopt")
        try:
            conn.execute("DELETE FROM entries WHERE key = ?", (owner[0],))
            conn.execute(
                "UPDATE entries SET state = ?, task_id = ?, submitted_at = ?, updated_at = ?, "
                "status = ?, progress = ?, outputs = ?, error = ?, error_code = ?, "
                "label = COALESCE(label, ?), estimated_cost = ?, cost = ?, "
                "cancel_requested_at = ?, sending_by = NULL WHERE key = ?",
                (
                    owner[2],
                    task_id,
                    owner[8] if owner[8] is not None else now,
                    now,
                    *owner[3:8],
                    owner[9],
                    *owner[10:13],
                    key,
                ),
            )
        except BaseException:
            conn.execute("ROLLBACK TO adopt")
            conn.execute("RELEASE adopt")
            raise
        conn.execute("RELEASE adopt")

    # -- statuses

    @staticmethod
    def status_params(
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
    ) -> dict[str, Any]:
        if terminal and status not in Outcome.__members__:
            raise ValueError(
                f"a terminal status must be an Outcome ({', '.join(Outcome)}), got {status!r}"
            )
        return {
            "estimated_cost": _credits("estimated_cost", estimated_cost),
            "cost": _credits("cost", cost),
            "task_id": task_id,
            "status": str(status),
            "progress": progress,
            "outputs": json.dumps(list(outputs)) if outputs else "[]",
            "error": error,
            "error_code": error_code,
            "state": (EntryState.DONE if terminal else EntryState.SUBMITTED).value,
            "terminal": terminal,
        }

    def record_status(self, conn: sqlite3.Connection, params: dict[str, Any]) -> None:
        conn.execute(_RECORD_STATUS, {**params, "now": self.clock()})

    def record_cancel(self, conn: sqlite3.Connection, task_id: str) -> None:
        conn.execute(_RECORD_CANCEL, {"task_id": task_id, "now": self.clock()})

    def track(
        self, conn: sqlite3.Connection, task_id: str, poll_route: str, label: str | None
    ) -> JournalEntry:
        existing = self.fetch_task(conn, task_id)
        if existing is not None:
            if not TRANSITIONS[Action.REOPEN].accepts(existing.state, existing.status):
                return existing
            conn.execute(_REOPEN, (self.clock(), task_id))
            reopened = self.fetch_task(conn, task_id)
            assert reopened is not None
            return reopened
        now = self.clock()
        key = track_key(task_id)
        inserted = conn.execute(
            "INSERT INTO entries (key, request_type, path, body, poll_route, state, "
            "task_id, created_at, updated_at, submitted_at, label) "
            "VALUES (?, '', '', '', ?, 'submitted', ?, ?, ?, ?, ?) "
            "ON CONFLICT (key) DO NOTHING",
            (key, poll_route, task_id, now, now, now, label),
        ).rowcount
        if inserted != 1:
            raise JournalError(
                f"journal {self.where}: cannot track task {task_id}: the key {key!r} is "
                "already used by a request without that task id"
            )
        entry = self.fetch_key(conn, key)
        assert entry is not None
        return entry


def _credits(name: str, value: float | None) -> float | None:
    """A credits figure as a store keeps it: None, or a finite number >= 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of credits or None, got {value!r}")
    credits = float(value)
    if not math.isfinite(credits) or credits < 0:
        raise ValueError(f"{name} must be a finite number of credits >= 0, got {value!r}")
    return credits
