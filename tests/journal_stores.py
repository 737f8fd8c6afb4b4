"""The journal stores the conformance suite runs against, one factory each.

A store factory makes :class:`~cometrunway.journal.Journal` instances that share one set of
rows (two instances are two clients, or two processes, on the same store) and can make one
vanish the way a killed process does. A new store (PostgreSQL) adds a factory here and a
name to :data:`STORE_NAMES`; the suite in ``test_journal_conformance.py`` runs unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from cometrunway.journal import Journal, PostgresJournal, SQLiteJournal


class StoreFactory(Protocol):
    """Makes journals on one store; every instance sees the same rows."""

    def journal(self) -> Journal:
        """A new, unopened journal on this store."""
        ...

    async def crash(self, journal: Journal) -> None:
        """End ``journal`` as a killed process would: no close, no goodbye."""
        ...


class SQLiteStore:
    """One SQLite file; a crash abandons the instance without closing it."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "conformance.sqlite"

    def journal(self) -> Journal:
        return SQLiteJournal(self.path)

    async def crash(self, journal: Journal) -> None:
        assert isinstance(journal, SQLiteJournal)
        # What a kill leaves: the committed rows, nothing of the instance. Stopping the
        # thread (rather than leaving it) keeps the test process tidy; every awaited write
        # is committed already, which is all a killed process leaves behind.
        worker = journal._worker
        assert worker is not None
        worker.stop_nowait()
        worker.thread.join()


class PostgresStore:
    """One PostgreSQL database; a crash drops the instance's connections unannounced."""

    def __init__(self, url: str) -> None:
        self.url = url

    def journal(self) -> Journal:
        return PostgresJournal(self.url, max_connections=4)

    async def crash(self, journal: Journal) -> None:
        assert isinstance(journal, PostgresJournal)
        # A killed process writes nothing on its way out, and neither does close(); what
        # the others see is its connections gone. Wait until the server sees that too.
        await journal.close()
        async with PostgresJournal(self.url) as observer:
            await observer.wait_gone(journal.instance_id, within=CRASH_SEEN_TIMEOUT)


# How long the server may take to notice a closed connection (it is usually at once).
CRASH_SEEN_TIMEOUT = 10.0

STORE_NAMES = ["sqlite", "postgres"]


def make_store(name: str, folder: Path, postgres_url: str | None = None) -> StoreFactory:
    if name == "sqlite":
        return SQLiteStore(folder)
    if name == "postgres":
        assert postgres_url is not None, "the postgres store needs a database URL"
        return PostgresStore(postgres_url)
    raise ValueError(f"unknown journal store {name!r}; known: {', '.join(STORE_NAMES)}")
