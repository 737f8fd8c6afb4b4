"""Journal overhead on a whole batch: wall time of 10,000 tasks with and without the journal.

FakeCometAPI runs in its own process; every task takes ``--task-seconds`` on its clock (queued
then running, with progress) and every API answer takes ``--latency`` seconds (a real
gateway takes far longer). The same batch runs through ``submit_many`` and waits for every
task: without a journal, and with ``journal=<tmp>/run.sqlite``, each against a fresh fake
(``--rounds`` pairs, in ABBA order, to even out a shared machine's drift). Prints both wall
times and the overhead (target ≤ 10%). ``--latency 0`` shows the worst case, a CPU-bound
client against an instant server, where the journal's ~0.2 ms per task shows.

    python bench/bench_batch_journal.py [--tasks 10000] [--task-seconds 20] [--latency 0.05]
        [--rounds 2]
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


async def one_batch(args: argparse.Namespace, tag: str, journal: Path | None) -> float:
    """One batch against a fresh fake process, so no run inherits another's tasks."""
    queued = args.task_seconds / 4
    with fake_process(
        "--queued-for",
        str(queued),
        "--running-for",
        str(args.task_seconds - queued),
        "--latency",
        str(args.latency),
    ) as url:
        elapsed, requests = await batch(url, args.tasks, tag, journal)
    print(
        f"  {'with journal' if journal else 'no journal':13s} {elapsed:7.2f} s ({requests} requests)"
    )
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--task-seconds", type=float, default=20.0)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument(
        "--rounds", type=int, default=1, help="pairs of runs, in ABBA order against drift"
    )
    args = parser.parse_args()
    print(f"{args.tasks} tasks of {args.task_seconds:g} s, answers after {args.latency:g} s")
    plain: list[float] = []
    journaled: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            order = (False, True) if round_ % 2 == 0 else (True, False)
            for with_journal in order:
                if with_journal:
                    path = Path(folder) / f"run{round_}.sqlite"
                    journaled.append(await one_batch(args, f"journaled {round_}", path))
                else:
                    plain.append(await one_batch(args, f"plain {round_}", None))
    mean_plain, mean_journaled = sum(plain) / len(plain), sum(journaled) / len(journaled)
    print(f"no journal:   {mean_plain:7.2f} s wall (mean of {len(plain)})")
    print(f"with journal: {mean_journaled:7.2f} s wall (mean of {len(journaled)})")
    print(f"overhead:     {100 * (mean_journaled / mean_plain - 1):6.1f} % (target ≤ 10%)")


if __name__ == "__main__":
    asyncio.run(main())
