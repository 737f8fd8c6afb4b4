"""The PostgreSQL journal's schema, its migrations, and the SQL of its operations.

The tables are prefixed ``cometrunway_`` so a journal can live in a database the
application already uses. ``cometrunway_meta`` holds ``schema_version``; migrations run on
first use, inside one transaction under an advisory lock, so several workers starting at
once migrate once. A database written by a newer cometrunway is refused, untouched.

The transition guards come from the same table as SQLite's
(:func:`~cometrunway.journal._transitions.guard`). Every statement that changes a row's
state also sends a notification (``pg_notify``, delivered at commit) on :data:`CHANNEL`,
which is how a worker learns what another one did (see :mod:`._pg_notify`).
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Final

from ._statements import REOPEN_SETS
from ._transitions import Action, guard

__all__ = ["CHANNEL", "MIGRATIONS", "PG_SCHEMA_VERSION", "RESYNC_STATE", "WAKE_STATE", "redact"]

#: The LISTEN/NOTIFY channel every journal change is announced on.
CHANNEL: Final = "cometrunway_journal"
#: Serialises migrations of one database across workers (any fixed 64-bit number).
MIGRATION_LOCK: Final = 0x436D527750470001
#: Prefix of the ``application_name`` of each journal's session connection: a row marked
#: SENDING by an instance whose session is still connected is in flight, not ambiguous.
INSTANCE_PREFIX: Final = "cometrunway-"
#: The ``state`` of a notification that asks the lease holder to poll a task now; no row is
#: ever in this state.
WAKE_STATE: Final = "wake"
#: The ``state`` of the change a journal hands its listeners when its LISTEN connection is
#: back after a drop: what was announced meanwhile is lost, so re-read what you watch. No
#: row is ever in this state and the server never sends it.
RESYNC_STATE: Final = "resync"

_V1: Final = """
CREATE TABLE cometrunway_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE cometrunway_entries (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key          TEXT NOT NULL UNIQUE,
    request_type TEXT NOT NULL,
    path         TEXT NOT NULL,
    body         TEXT NOT NULL,
    poll_route   TEXT NOT NULL,
    state        TEXT NOT NULL,
    task_id      TEXT UNIQUE,
    status       TEXT,
    progress     DOUBLE PRECISION,
    outputs      TEXT NOT NULL DEFAULT '[]',
    error        TEXT,
    error_code   TEXT,
    created_at   DOUBLE PRECISION NOT NULL,
    updated_at   DOUBLE PRECISION NOT NULL,
    submitted_at DOUBLE PRECISION,
    label        TEXT,
    sending_by   TEXT,
    lease_owner  TEXT,
    lease_until  TIMESTAMPTZ
);
CREATE INDEX cometrunway_entries_pollable
    ON cometrunway_entries (submitted_at, seq) WHERE state = 'submitted';
"""

# Credits as the server said them (wire §8.2) and when a cancel was asked for; NULL in the
# rows already there ("the server did not say" / "never asked").
_V2: Final = """
ALTER TABLE cometrunway_entries
    ADD COLUMN estimated_cost      DOUBLE PRECISION,
    ADD COLUMN cost                DOUBLE PRECISION,
    ADD COLUMN cancel_requested_at DOUBLE PRECISION;
"""

#: ``MIGRATIONS[v]`` upgrades a database from schema version ``v`` to ``v + 1``.
MIGRATIONS: Final[tuple[str, ...]] = (_V1, _V2)
#: The schema version this cometrunway writes.
PG_SCHEMA_VERSION: Final = len(MIGRATIONS)

COLUMNS: Final = (
    "key, request_type, path, body, poll_route, state, task_id, status, progress, outputs, "
    "error, error_code, created_at, updated_at, submitted_at, label, estimated_cost, cost, "
    "cancel_requested_at"
)
SELECT: Final = f"SELECT {COLUMNS} FROM cometrunway_entries"

_NOTIFY_ROW: Final = (
    f"SELECT pg_notify('{CHANNEL}', json_build_object('key', key, 'task_id', task_id, "
    "'state', state, 'status', status)::text) FROM changed"
)

# A new row; RETURNING says whether this call inserted it (a racing insert waits for the
# other transaction and then does nothing: the unique key decides one winner).
INSERT: Final = (
    "INSERT INTO cometrunway_entries (key, request_type, path, body, poll_route, state, "
    "created_at, updated_at, label, sending_by) VALUES (%(key)s, %(request_type)s, "
    "%(path)s, %(body)s, %(poll_route)s, %(state)s, %(now)s, %(now)s, %(label)s, %(by)s) "
    f"ON CONFLICT (key) DO NOTHING RETURNING {COLUMNS}"
)
CLAIM: Final = (
    "WITH changed AS (UPDATE cometrunway_entries SET state = 'sending', sending_by = %(by)s, "
    f"updated_at = %(now)s WHERE key = %(key)s AND {guard(Action.SEND)} RETURNING *) "
    f"{_NOTIFY_ROW}"
)


def move(action: Action, sets: str) -> str:
    """The statement applying ``action`` to one row (by ``key``), announcing the change."""
    return (
        f"WITH changed AS (UPDATE cometrunway_entries SET {sets}, updated_at = %(now)s "
        f"WHERE key = %(key)s AND {guard(action)} RETURNING *) {_NOTIFY_ROW}"
    )


SET_TASK: Final = {
    action: move(
        action,
        "state = 'submitted', task_id = %(task_id)s, submitted_at = %(now)s, error = NULL, "
        "error_code = NULL, sending_by = NULL",
    )
    for action in (Action.SUBMITTED, Action.ATTACH)
}

# Same rules as SQLite's: a DONE row takes only another terminal report, except that a
# NOT_FOUND one is reopened by any status; non-empty outputs are never replaced by empty ones,
# nor credits by NULL; identical repeats change (and announce) nothing. Credits are cast: a
# NULL parameter alone has no type the server could infer.
_EST: Final = "%(estimated_cost)s::double precision"
_COST: Final = "%(cost)s::double precision"
RECORD_STATUS: Final = f"""
WITH changed AS (
UPDATE cometrunway_entries SET
    status = %(status)s,
    progress = %(progress)s,
    outputs = CASE WHEN %(outputs)s = '[]' THEN outputs ELSE %(outputs)s END,
    error = %(error)s,
    error_code = %(error_code)s,
    estimated_cost = COALESCE({_EST}, estimated_cost),
    cost = COALESCE({_COST}, cost),
    state = %(state)s,
    updated_at = %(now)s
WHERE task_id = %(task_id)s
  AND ({guard(Action.PROGRESS)}
       OR (NOT %(terminal)s AND {guard(Action.REOPEN)})
       OR (%(terminal)s AND {guard(Action.FINISH)}))
  AND (state IS DISTINCT FROM %(state)s
       OR status IS DISTINCT FROM %(status)s
       OR progress IS DISTINCT FROM %(progress)s
       OR (%(outputs)s != '[]' AND outputs IS DISTINCT FROM %(outputs)s)
       OR error IS DISTINCT FROM %(error)s
       OR error_code IS DISTINCT FROM %(error_code)s
       OR ({_EST} IS NOT NULL AND estimated_cost IS DISTINCT FROM {_EST})
       OR ({_COST} IS NOT NULL AND cost IS DISTINCT FROM {_COST}))
RETURNING *) {_NOTIFY_ROW}
"""

# The first request is the one kept: when the user asked, not how often. Not a change of
# state, so nothing is announced.
RECORD_CANCEL: Final = (
    "UPDATE cometrunway_entries SET cancel_requested_at = %(now)s "
    "WHERE task_id = %(task_id)s AND cancel_requested_at IS NULL"
)
# track() of an id whose row ended NOT_FOUND: SUBMITTED again, status unknown until a poll.
REOPEN: Final = (
    f"WITH changed AS (UPDATE cometrunway_entries SET {REOPEN_SETS}, updated_at = %(now)s "
    f"WHERE task_id = %(task_id)s AND {guard(Action.REOPEN)} RETURNING *) {_NOTIFY_ROW}"
)

TRACK: Final = (
    "INSERT INTO cometrunway_entries (key, request_type, path, body, poll_route, state, "
    "task_id, created_at, updated_at, submitted_at, label) VALUES (%(key)s, '', '', '', "
    "%(poll_route)s, 'submitted', %(task_id)s, %(now)s, %(now)s, %(now)s, %(label)s) "
    f"ON CONFLICT DO NOTHING RETURNING {COLUMNS}"
)

# Senders whose session is gone: their SENDING rows are ambiguous (a crash mid-send).
_SENDER_GONE: Final = (
    "NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.application_name = e.sending_by)"
)
AMBIGUOUS: Final = (
    f"{SELECT} e WHERE state = 'ambiguous' OR (state = 'sending' AND "
    f"(sending_by IS NULL OR (sending_by <> %(me)s AND {_SENDER_GONE}))) ORDER BY seq"
)
SENDER_LIVE: Final = (
    "SELECT e.state, e.sending_by IS NOT NULL AND NOT "
    f"{_SENDER_GONE} FROM cometrunway_entries e WHERE key = %(key)s"
)
SESSION_LIVE: Final = "SELECT 1 FROM pg_stat_activity WHERE application_name = %(name)s"

# -- poll leases: one poller per task across the fleet. Server time decides expiry, so the
# workers' clocks need not agree; SKIP LOCKED lets workers claim side by side.
CLAIM_POLLS: Final = f"""
WITH picked AS (
    SELECT seq FROM cometrunway_entries
    WHERE state = 'submitted'
      AND (lease_until IS NULL OR lease_until < clock_timestamp())
      AND (lease_until IS NOT NULL OR submitted_at <= %(unleased_before)s)
    ORDER BY submitted_at, seq
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE cometrunway_entries e
SET lease_owner = %(owner)s,
    lease_until = clock_timestamp() + make_interval(secs => %(lease)s)
FROM picked WHERE e.seq = picked.seq
RETURNING {", ".join(f"e.{c.strip()}" for c in COLUMNS.split(","))}
"""
# Renews this worker's leases and takes free (or expired) ones on the tasks named.
RENEW_POLLS: Final = (
    "UPDATE cometrunway_entries SET lease_owner = %(owner)s, lease_until = clock_timestamp() + "
    "make_interval(secs => %(lease)s) WHERE task_id = ANY(%(task_ids)s) AND state = 'submitted' "
    "AND (lease_owner = %(owner)s OR lease_until IS NULL OR lease_until < clock_timestamp()) "
    "RETURNING task_id"
)
RELEASE_POLLS: Final = (
    "UPDATE cometrunway_entries SET lease_owner = NULL, lease_until = NULL "
    "WHERE task_id = ANY(%(task_ids)s) AND lease_owner = %(owner)s"
)
# A request, not a change: "poll this task now" (a callback reached a worker that does not
# poll it). Announced only for unfinished journaled tasks, so an unknown id costs no wake-up.
WAKE_POLLS: Final = (
    f"SELECT pg_notify('{CHANNEL}', json_build_object('key', key, 'task_id', task_id, "
    f"'state', '{WAKE_STATE}', 'status', status)::text) FROM cometrunway_entries "
    "WHERE task_id = ANY(%(task_ids)s) AND state = 'submitted'"
)
LEASES: Final = (
    "SELECT task_id, lease_owner FROM cometrunway_entries "
    "WHERE state = 'submitted' AND lease_until >= clock_timestamp() ORDER BY seq"
)


def redact(url: str) -> str:
    """``url`` without its password, for messages and reprs (never leak a secret)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "postgresql://<unparsable URL>"
    # A password may also come as a query parameter (libpq accepts ?password=...).
    query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    parts = parts._replace(query=query)
    if parts.password is None:
        return urllib.parse.urlunsplit(parts)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = urllib.parse.quote(parts.username or "", safe="")
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
