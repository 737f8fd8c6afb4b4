"""Journal overhead on a whole batch: wall time of 10,000 tasks with and without the journal.

FakeCometAPI runs in its own process; every task takes ``--task-seconds`` on its clock (queued
then running, with progress) and every API answer takes ``--latency`` seconds (a real
gateway takes far longer). The same batch runs twice through ``submit_many`` and waits for
every task: once without a journal, once with ``journal=<tmp>/run.sqlite``. Prints both wall
times and the overhead (target ≤ 10%). ``--latency 0`` shows the worst case, a CPU-bound
client against an instant server, where the journal's ~0.2 ms per task shows.

    python bench/bench_batch_journal.py [--tasks 10000] [--task-seconds 20] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from _fakeproc import fake_process

from cometrunway import Client, PollPolicy, TextToVideo


async def batch(url: str, n: int, tag: str, journal: Path | None) -> tuple[float, int]:
    policy = PollPolicy(
        initial_delay=1.0,
        interval=1.0,
        max_interval=3.0,
        min_interval=0.2,
        requests_per_second=2000,
        max_concurrent_polls=64,
    )
    started = time.perf_counter()
    async with Client("bench", base_url=url, poll=policy, journal=journal) as client:
        handles = await client.submit_many(
            [TextToVideo(f"{tag} {i}") for i in range(n)], max_concurrency=64
        )
        async for _ in client.as_completed(handles):
            pass
        requests = n + client.statistics().poller.polls
    return time.perf_counter() - started, requests


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--task-seconds", type=float, default=20.0)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    queued = args.task_seconds / 4
    with (
        fake_process(
            "--queued-for",
            str(queued),
            "--running-for",
            str(args.task_seconds - queued),
            "--latency",
            str(args.latency),
        ) as url,
        tempfile.TemporaryDirectory() as folder,
    ):
        plain, plain_requests = await batch(url, args.tasks, "plain", None)
        journaled, journaled_requests = await batch(
            url, args.tasks, "journaled", Path(folder) / "run.sqlite"
        )
    print(f"{args.tasks} tasks of {args.task_seconds:g} s, answers after {args.latency:g} s")
    print(f"no journal:   {plain:7.2f} s wall ({plain_requests} requests)")
    print(f"with journal: {journaled:7.2f} s wall ({journaled_requests} requests)")
    print(f"overhead:     {100 * (journaled / plain - 1):6.1f} % (target ≤ 10%)")


if __name__ == "__main__":
    asyncio.run(main())
