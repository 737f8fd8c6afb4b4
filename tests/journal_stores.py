"""The journal stores the conformance suite runs against, one factory each.

A store factory makes :class:`~cometrunway.journal.Journal` instances that share one set of
rows (two instances are two clients, or two processes, on the same store) and can make one
vanish the way a killed process does. A new store (PostgreSQL) adds a factory here and a
name to :data:`STORE_NAMES`; the suite in ``test_journal_conformance.py`` runs unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from cometrunway.journal import Journal, SQLiteJournal


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


STORE_NAMES = ["sqlite"]


def make_store(name: str, folder: Path) -> StoreFactory:
    if name == "sqlite":
        return SQLiteStore(folder)
    raise ValueError(f"unknown journal store {name!r}; known: {', '.join(STORE_NAMES)}")
