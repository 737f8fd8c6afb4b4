"""A journal of your own: every method of the ``Journal`` protocol, here delegating to the
built-in SQLite store and logging each status change (say, to feed your own dashboard); it
runs one generation against the built-in ``FakeCometAPI``.

``record_status`` is written without the optional ``estimated_cost`` / ``cost`` keywords:
the protocol does not ask for them, so this class still is a ``Journal`` to a type checker
(CI runs mypy --strict and pyright on this file), and the client passes credits only to a
store that takes them.

    python examples/journal_of_your_own.py        # against the built-in fake, no key
"""

# pyright: strict

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path

from cometrunway import Client, PollPolicy, TextToVideo
from cometrunway.journal import Journal, JournalEntry, SQLiteJournal
from cometrunway.testing import FakeCometAPI, Lifecycle

log = logging.getLogger("my_app.journal")


class LoggedJournal:
    """A ``Journal`` that keeps its rows in ``inner`` and logs every status it is given."""

    def __init__(self, inner: Journal) -> None:
        self._inner = inner

    async def open(self) -> None:
        await self._inner.open()

    async def close(self) -> None:
        await self._inner.close()

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
        return await self._inner.reserve_sending(
            key, request_type=request_type, path=path, body=body, poll_route=poll_route, label=label
        )

    async def mark_sending(self, key: str) -> None:
        await self._inner.mark_sending(key)

    async def mark_submitted(self, key: str, task_id: str) -> None:
        log.info("created %s (journal key %s)", task_id, key)
        await self._inner.mark_submitted(key, task_id)

    async def mark_ambiguous(self, key: str, error: str) -> None:
        await self._inner.mark_ambiguous(key, error)

    async def mark_rejected(self, key: str, error: str, error_code: str | None = None) -> None:
        await self._inner.mark_rejected(key, error, error_code)

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
    ) -> None:
        log.info("%s is %s (progress %s)", task_id, status, progress)
        await self._inner.record_status(
            task_id,
            status=status,
            progress=progress,
            outputs=outputs,
            error=error,
            error_code=error_code,
            terminal=terminal,
        )

    async def attach_task(self, key: str, task_id: str) -> None:
        await self._inner.attach_task(key, task_id)

    async def release(self, key: str) -> None:
        await self._inner.release(key)

    async def track(
        self, task_id: str, *, poll_route: str, label: str | None = None
    ) -> JournalEntry:
        return await self._inner.track(task_id, poll_route=poll_route, label=label)

    async def get(self, key: str) -> JournalEntry | None:
        return await self._inner.get(key)

    async def unfinished(self) -> list[JournalEntry]:
        return await self._inner.unfinished()

    async def ambiguous(self) -> list[JournalEntry]:
        return await self._inner.ambiguous()

    async def entries(self) -> list[JournalEntry]:
        return await self._inner.entries()


async def main(folder: Path) -> list[JournalEntry]:
    """One generation against the built-in fake, journaled through ``LoggedJournal``."""
    journal: Journal = LoggedJournal(SQLiteJournal(folder / "run.sqlite"))
    fast = PollPolicy(initial_delay=0.05, interval=0.05, min_interval=0.01)
    async with FakeCometAPI(lifecycle=Lifecycle.by_polls(1, 1)) as fake:
        async with Client("sk-fake", base_url=fake.url, poll=fast, journal=journal) as client:
            task = await (await client.submit(TextToVideo("a paper boat on a puddle")))
            print(task.status.value, task.video_url)
        async with SQLiteJournal(folder / "run.sqlite") as rows:
            return await rows.entries()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    with tempfile.TemporaryDirectory() as tmp:
        rows = asyncio.run(main(Path(tmp)))
    outcomes = ", ".join(str(entry.outcome) for entry in rows)
    print(f"journal of your own: {len(rows)} row(s) ({outcomes})")
