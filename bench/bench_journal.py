"""How much the SQLite journal costs a batch: the same coroutines with and without it.

Each simulated task does what the client does for one submission: reserve_sending, the
create request, mark_submitted (awaited: the id is durable before the handle), three polls
with a non-terminal status each, and a final poll with the terminal status. ``--concurrency``
workers share the tasks, like
``submit_many(max_concurrency=8)`` and the poller. The baseline runs exactly the same
coroutines with every journal call left out. "Requests" are ``asyncio.sleep(latency)``;
with the default latency of 0 the run measures the journal's raw cost per task, and a
latency of a few milliseconds shows how much of it hides behind network waits.

    .venv/bin/python bench/bench_journal.py [--tasks 10000] [--concurrency 8] [--latency-ms 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from cometrunway.journal import SQLiteJournal

JOURNAL_CALLS_PER_TASK = 6  # reserve_sending, submitted, 3 progress, terminal
BODY = json.dumps(
    {
        "ratio": "16:9",
        "prompt": "a red fox running through fresh snow at dawn, cinematic, 35mm",
        "style": "cinematic",
        "model": "gen4",
        "options": {"seconds": 5, "motion_vector": {"x": 0, "y": 0, "z": 0, "r": 0}},
    },
    separators=(",", ":"),
    sort_keys=True,
)


async def run(tasks: int, concurrency: int, latency: float, journal: SQLiteJournal | None) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(tasks):
        queue.put_nowait(i)

    async def request() -> None:
        await asyncio.sleep(latency)

    async def one(i: int) -> None:
        key = f"key-{i:06d}"
        task_id = f"task-{i:06d}"
        if journal is not None:
            # One durable step claims the row before the create, as the client does.
            await journal.reserve_sending(
                key,
                request_type="TextToVideo",
                path="/runway/pro/generate",
                body=BODY,
                poll_route="feed",
                label=f"prompts.txt line {i + 1}",
            )
        await request()
        if journal is not None:
            await journal.mark_submitted(key, task_id)
        for progress in (0.25, 0.5, 0.75):
            await request()
            if journal is not None:
                await journal.record_status(
                    task_id,
                    status="RUNNING",
                    progress=progress,
                    outputs=(),
                    error=None,
                    error_code=None,
                    terminal=False,
                )
        await request()
        if journal is not None:
            await journal.record_status(
                task_id,
                status="SUCCEEDED",
                progress=1.0,
                outputs=(f"https://cdn.example/{task_id}.mp4",),
                error=None,
                error_code=None,
                terminal=True,
            )

    async def worker() -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await one(i)

    start = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())
    return time.perf_counter() - start


async def with_journal(args: argparse.Namespace, durable: bool) -> float:
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        path = Path(folder) / "bench.sqlite"
        async with SQLiteJournal(path, durable=durable) as journal:
            elapsed = await run(args.tasks, args.concurrency, args.latency_ms / 1000, journal)
            counts = await journal.counts()
        assert counts["done"] == args.tasks, counts
        return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="simulated request time")
    parser.add_argument("--dir", default=None, help="folder for the journal file (default: tmp)")
    args = parser.parse_args()

    baseline = await run(args.tasks, args.concurrency, args.latency_ms / 1000, None)
    print(
        f"{args.tasks} tasks, concurrency {args.concurrency}, "
        f"simulated request latency {args.latency_ms:g} ms"
    )
    print(f"  no journal            {baseline:8.3f} s  {args.tasks / baseline:10.0f} tasks/s")
    for label, durable in (("durable=True (FULL)", True), ("durable=False (NORMAL)", False)):
        elapsed = await with_journal(args, durable)
        calls = args.tasks * JOURNAL_CALLS_PER_TASK
        overhead_us = (elapsed - baseline) / args.tasks * 1e6
        print(
            f"  journal {label:22s} {elapsed:8.3f} s  {args.tasks / elapsed:10.0f} tasks/s  "
            f"{calls / elapsed:10.0f} journal calls/s  "
            f"overhead {overhead_us:7.1f} us/task ({(elapsed / baseline - 1) * 100:+.1f}% wall)"
        )


if __name__ == "__main__":
    asyncio.run(main())
