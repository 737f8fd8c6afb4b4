"""The journal: a durable record of every paid submission, so no task id is lost or paid twice.

Each create request gets a row, keyed by its idempotency key, *before* its bytes leave, and
the row follows the request through its states (the transition table and its diagram are in
:mod:`cometrunway.journal._transitions`). The pieces:

* :mod:`._rows` — :class:`EntryState`, :class:`Outcome`, :class:`JournalEntry` and the
  :class:`Journal` protocol (what the client calls, plus ``entries()``) with the extra
  queries of :class:`JournalAdmin`;
* :mod:`._transitions` — the state machine as data, from which SQL guards and refusal
  messages are generated;
* :mod:`._sqlite` — :class:`SQLiteJournal`, the embedded default, with :mod:`._thread` (its
  own thread and group commit), :mod:`._schema` (file checks, migrations, error causes) and
  :mod:`._statements` (the SQL of each operation);
* :mod:`._settle` — settling many ambiguous rows at once, by explicit choice;
* :mod:`._credits` — passing credits to a store that takes them (a store written before
  ``record_status`` had ``estimated_cost``/``cost`` keeps working);
* :mod:`._postgres` — :class:`PostgresJournal`, one database for many workers (poll leases,
  wake-ups through LISTEN/NOTIFY), with :mod:`._pg_schema` and :mod:`._pg_notify`.

A store for several processes implements :class:`Journal` and passes the same conformance
suite (``tests/journal_conformance.py``).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterator
from typing import Final

from ..errors import JournalError
from ._keys import Filing, find_conflicts
from ._pg_notify import RowChange
from ._postgres import PostgresJournal
from ._rows import (
    POLL_ROUTES,
    CancelRecorder,
    EntryState,
    Journal,
    JournalAdmin,
    JournalEntry,
    Outcome,
)
from ._schema import APPLICATION_ID, SCHEMA_VERSION
from ._settle import SettleReport, settle_all, settle_journal
from ._sqlite import SQLiteJournal
from ._transitions import TRANSITIONS, Action, Transition

__all__ = [
    "APPLICATION_ID",
    "POLL_ROUTES",
    "POSTGRES_SCHEMES",
    "SCHEMA_VERSION",
    "TRANSITIONS",
    "Action",
    "CancelRecorder",
    "EntryState",
    "Filing",
    "Journal",
    "JournalAdmin",
    "JournalEntry",
    "Outcome",
    "PostgresJournal",
    "RowChange",
    "SQLiteJournal",
    "SettleReport",
    "Transition",
    "find_conflicts",
    "open_journal",
    "opened_journal",
    "settle_all",
    "settle_journal",
]

#: URL schemes that select :class:`PostgresJournal` (libpq accepts both).
POSTGRES_SCHEMES: Final = ("postgresql", "postgres")
_URL: Final = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+)://")


def open_journal(spec: str | os.PathLike[str] | Journal) -> Journal:
    """Turn the client's ``journal=`` argument into an (unopened) :class:`Journal`.

    A path gives a :class:`SQLiteJournal`, a ``postgresql://`` (or ``postgres://``) URL a
    :class:`PostgresJournal`; a ``Journal`` is passed through as is.
    """
    if isinstance(spec, (str, os.PathLike)):
        text = os.fspath(spec)
        match = _URL.match(text)
        if match is not None:
            scheme = match["scheme"].lower()
            if scheme in POSTGRES_SCHEMES:
                return PostgresJournal(text)
            raise JournalError(
                f"unsupported journal URL scheme {scheme!r}: give a SQLite file path or a "
                "postgresql:// URL"
            )
        return SQLiteJournal(text)
    if isinstance(spec, Journal):
        return spec
    raise TypeError(
        f"journal must be a path, a postgresql:// URL or a Journal, got {type(spec).__name__}"
    )


@contextlib.asynccontextmanager
async def opened_journal(spec: str | os.PathLike[str] | Journal) -> AsyncIterator[Journal]:
    """:func:`open_journal`, opened for the ``async with`` block and closed after it."""
    journal = open_journal(spec)
    await journal.open()
    try:
        yield journal
    finally:
        await journal.close()
