"""The PostgreSQL journal for many workers: its per-task cost vs SQLite, and its poll leases.

1. **Per-task journal cost**: the journal calls the client makes for one task (the
   write-ahead claim, the task id, three progress updates, the terminal status), run by
   ``--concurrency`` coroutines, on SQLite (``durable=True``) and on PostgreSQL — one
   worker, then ``--workers`` journal instances (each its own pool and session, as separate
   processes have) sharing the tasks.
2. **Poll leases**: ``--tasks`` submitted tasks claimed by ``--workers`` instances in
   batches of ``--claim-batch`` (each task must be leased exactly once), and the takeover
   of a dead worker's tasks: the time from its death to another worker holding them all,
   against ``--lease`` seconds.

It starts a throwaway server with the distribution's ``initdb``/``pg_ctl`` (``fsync=on``,
as a real server) unless ``--url`` names a database to use (its cometrunway tables are
emptied first).

    .venv/bin/python bench/bench_workers.py [--tasks 2000] [--workers 4] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from cometrunway.journal import Journal, PostgresJournal, SQLiteJournal

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from pg_server import PostgresServer, find_bin_dir

JOURNAL_CALLS_PER_TASK = 6  # reserve_sending, submitted, 3 progress, terminal
TAKEOVER_RECHECK_SECONDS = 0.05
BODY = '{"model":"gen4","prompt":"a red fox running through fresh snow at dawn","ratio":"16:9"}'


async def one_task(journal: Journal, i: int) -> None:
    key, task_id = f"key-{i:06d}", f"task-{i:06d}"
    await journal.reserve_sending(
        key, request_type="TextToVideo", path="/runway/pro/generate", body=BODY, poll_route="feed"
    )
    await journal.mark_submitted(key, task_id)
    for progress in (0.25, 0.5, 0.75):
        await journal.record_status(
            task_id,
            status="RUNNING",
            progress=progress,
            outputs=(),
            error=None,
            error_code=None,
            terminal=False,
        )
    await journal.record_status(
        task_id,
        status="SUCCEEDED",
        progress=1.0,
        outputs=(f"https://cdn.example/{task_id}.mp4",),
        error=None,
        error_code=None,
        terminal=True,
    )


async def run(journals: list[Journal], tasks: int, concurrency: int) -> float:
    """Every task once, ``concurrency`` coroutines per journal instance; wall seconds."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(tasks):
        queue.put_nowait(i)

    async def worker(journal: Journal) -> None:
        while not queue.empty():
            await one_task(journal, queue.get_nowait())

    start = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for journal in journals:
            for _ in range(concurrency):
                group.create_task(worker(journal))
    return time.perf_counter() - start


def line(label: str, tasks: int, elapsed: float) -> str:
    per_task_us = elapsed / tasks * 1e6
    calls = tasks * JOURNAL_CALLS_PER_TASK / elapsed
    return (
        f"  {label:34s} {elapsed:7.2f} s  {tasks / elapsed:7.0f} tasks/s  "
        f"{calls:7.0f} calls/s  {per_task_us:8.0f} us/task"
    )


async def empty(url: str) -> None:
    async with PostgresJournal(url) as journal:
        await journal._fetch("TRUNCATE cometrunway_entries")


async def journal_cost(url: str, args: argparse.Namespace) -> None:
    print(f"per-task journal cost: {args.tasks} tasks, {args.concurrency} coroutines per worker")
    with tempfile.TemporaryDirectory() as folder:
        async with SQLiteJournal(Path(folder) / "bench.sqlite") as sqlite:
            elapsed = await run([sqlite], args.tasks, args.concurrency)
        print(line("SQLite, durable=True", args.tasks, elapsed))
    for workers in (1, args.workers):
        await empty(url)
        journals = [PostgresJournal(url) for _ in range(workers)]
        for journal in journals:
            await journal.open()
        try:
            elapsed = await run(list(journals), args.tasks, args.concurrency)
        finally:
            for journal in journals:
                await journal.close()
        print(line(f"PostgreSQL, {workers} worker(s)", args.tasks, elapsed))


async def leases(url: str, args: argparse.Namespace) -> None:
    await empty(url)
    async with PostgresJournal(url) as setup:
        await asyncio.gather(
            *(one_submitted(setup, i) for i in range(args.tasks)),
        )
    journals = [PostgresJournal(url) for _ in range(args.workers)]
    for journal in journals:
        await journal.open()
    try:
        start = time.perf_counter()
        claimed: list[str] = []
        held = await asyncio.gather(*(claim_all(j, args, claimed) for j in journals))
        elapsed = time.perf_counter() - start
        leased = [t for tasks in held for t in tasks]
        print(
            f"poll leases: {args.tasks} tasks claimed by {args.workers} workers in batches of "
            f"{args.claim_batch}: {elapsed:.2f} s; leased {len(leased)} times, "
            f"{len(set(leased))} distinct (each once: {len(leased) == len(set(leased))}); "
            f"per worker {[len(h) for h in held]}"
        )
        dead, heir = journals[0], journals[1]
        await dead.close()
        died = time.perf_counter()
        orphans = set(held[0])
        taken: set[str] = set()
        # The others stop renewing too, so the heir may take theirs as well: count the dead's.
        while not orphans <= taken:
            got = await heir.claim_polls(args.tasks, lease_seconds=args.lease)
            taken.update(e.task_id for e in got if e.task_id)
            if not orphans <= taken:
                await asyncio.sleep(TAKEOVER_RECHECK_SECONDS)
        print(
            f"takeover: {len(orphans)} tasks of a dead worker held by another "
            f"{time.perf_counter() - died:.2f} s after its death (lease {args.lease:g} s)"
        )
    finally:
        for journal in journals[1:]:
            await journal.close()


async def one_submitted(journal: PostgresJournal, i: int) -> None:
    await journal.reserve_sending(
        f"k{i}", request_type="TextToVideo", path="/p", body=str(i), poll_route="feed"
    )
    await journal.mark_submitted(f"k{i}", f"t{i}")


async def claim_all(
    journal: PostgresJournal, args: argparse.Namespace, claimed: list[str]
) -> list[str]:
    """Claim batches until every task has been leased once (a lease that expires meanwhile
    could be claimed again: ``claimed`` counts the whole fleet's claims)."""
    mine: list[str] = []
    while len(claimed) < args.tasks:
        got = await journal.claim_polls(args.claim_batch, lease_seconds=args.lease)
        if not got:
            break
        ids = [e.task_id for e in got if e.task_id]
        mine.extend(ids)
        claimed.extend(ids)
    return mine


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--claim-batch", type=int, default=100)
    parser.add_argument("--lease", type=float, default=5.0, help="lease seconds")
    parser.add_argument("--url", help="a PostgreSQL database to use instead of a throwaway one")
    args = parser.parse_args()
    server = None
    url = args.url
    if url is None:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            sys.exit("no initdb/pg_ctl found: install PostgreSQL or pass --url")
        server = PostgresServer(bin_dir, fsync=True)
        server.start()
        url = server.new_database()
    try:
        await journal_cost(url, args)
        await leases(url, args)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
