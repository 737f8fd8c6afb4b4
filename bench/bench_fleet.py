"""A fleet of client processes on one PostgreSQL journal, against one fake CometAPI process.

1. **Total polls**: ``--tasks`` tasks (each runs ``--task-seconds`` on the fake) submitted
   and awaited by one process with a SQLite journal, then split across ``--workers``
   processes sharing a PostgreSQL journal (each polls only the tasks it holds a lease on).
   Polls are counted on the fake's side; the fleet's total against the one process's
   (target ≤ 1.1×).
2. **Takeover**: the same fleet again, one worker SIGKILLed as soon as its submits have
   returned; the time from its death until another worker first polls each of its tasks
   (target ≤ lease + 2 s).
3. **Per-task journal cost**: the journal calls the client makes for one task, on SQLite
   and on PostgreSQL (``bench_workers.py``'s measure, ``--cost-tasks`` tasks).

Every worker is this file run with ``--worker``, written against the ``Client`` alone; its
requests carry ``User-Agent: fleet-worker/<name>``, so the fake's log says who polled what.
A throwaway PostgreSQL server is started (``fsync=on``) unless ``--url`` names a database.

    .venv/bin/python bench/bench_fleet.py [--tasks 10000] [--workers 4] [--lease 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fakeproc import fake_process
from bench_workers import empty, line, run
from fleet_support import TaggedTransport, polls_by_task
from pg_server import PostgresServer, find_bin_dir

from cometrunway import Client, FleetPolicy, PollPolicy, RetryPolicy, TextToVideo
from cometrunway.journal import PostgresJournal, SQLiteJournal

#: The client's defaults, but a rate budget the fake can take (it is on this machine).
POLL = PollPolicy(requests_per_second=2000.0, max_concurrent_polls=64)
RETRY = RetryPolicy(max_tries=3, base_delay=0.05, max_delay=0.5)
#: Creates in flight at once per worker (``submit_many``).
SUBMIT_CONCURRENCY = 32


# ---------------------------------------------------------------- one worker process


async def worker(args: argparse.Namespace) -> None:
    prompts = [TextToVideo(f"bench fleet prompt {i}") for i in range(args.first, args.last)]
    fleet = FleetPolicy(lease_seconds=args.lease, claim_interval=args.lease / 5)
    async with Client(
        api_key="sk-bench",
        base_url=args.base_url,
        journal=args.journal,
        poll=POLL,
        retry=RETRY,
        fleet=fleet,
        transport=TaggedTransport(args.base_url, args.name),
    ) as client:
        handles = await client.submit_many(prompts, max_concurrency=SUBMIT_CONCURRENCY)
        print(f"SUBMITTED {time.monotonic()}", flush=True)
        await asyncio.gather(*handles, return_exceptions=True)
        if isinstance(client.journal, PostgresJournal):
            while left := await client.resume():  # what the fleet left (a dead worker's)
                await asyncio.gather(*left, return_exceptions=True)
    print(f"DONE {time.monotonic()}", flush=True)


# ---------------------------------------------------------------- the conductor


def start_worker(
    journal: str, base_url: str, first: int, last: int, name: str, lease: float
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--worker",
            "--journal",
            journal,
            "--base-url",
            base_url,
            "--first",
            str(first),
            "--last",
            str(last),
            "--name",
            name,
            "--lease",
            str(lease),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )


def fake_get(base_url: str, what: str) -> Any:
    with urllib.request.urlopen(f"{base_url}/_fake/{what}", timeout=120) as answer:
        return json.load(answer)


def wait_all(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        proc.communicate()
        if proc.returncode not in (0, -signal.SIGKILL):
            raise RuntimeError(f"a worker failed with exit code {proc.returncode}")


def shares(tasks: int, workers: int) -> list[tuple[int, int]]:
    step = -(-tasks // workers)
    return [(w * step, min(tasks, (w + 1) * step)) for w in range(workers)]


def polls_run(args: argparse.Namespace, journal: str, workers: int) -> tuple[int, float]:
    """Total polls the fake answered, and wall seconds, for one run."""
    with fake_process("--running-for", str(args.task_seconds)) as base_url:
        began = time.monotonic()
        procs = [
            start_worker(journal, base_url, first, last, f"w{w}", args.lease)
            for w, (first, last) in enumerate(shares(args.tasks, workers))
        ]
        wait_all(procs)
        elapsed = time.monotonic() - began
        polls = len(fake_get(base_url, "polls")["polls"])
    return polls, elapsed


def takeover_run(args: argparse.Namespace, journal: str) -> list[float]:
    """Seconds from the kill until another worker first polled each of the dead's tasks."""
    # Long enough that the dead worker's tasks are still unfinished when it dies.
    running = str(max(args.task_seconds, 2 * args.lease))
    with fake_process("--running-for", running) as base_url:
        parts = shares(args.tasks, args.workers)
        procs = [
            start_worker(journal, base_url, first, last, f"w{w}", args.lease)
            for w, (first, last) in enumerate(parts)
        ]
        doomed = procs[0]
        assert doomed.stdout is not None
        line_ = doomed.stdout.readline()
        if not line_.startswith("SUBMITTED"):
            raise RuntimeError(f"the doomed worker did not submit: {line_!r}")
        doomed.send_signal(signal.SIGKILL)
        died = time.monotonic()  # one system-wide monotonic clock, as the fake's
        wait_all(procs)
        tasks = fake_get(base_url, "tasks")["tasks"]
        first, last = parts[0]
        theirs = {f"bench fleet prompt {i}" for i in range(first, last)}
        timelines = polls_by_task(fake_get(base_url, "polls")["polls"])
    # The dead worker's tasks that no other worker polled before its death (a few may have
    # been claimed by another in the instant between their create and their lease).
    orphans = {
        t["task_id"]
        for t in tasks
        if t["prompt"] in theirs
        and not any(who != "w0" and at < died for at, who in timelines.get(t["task_id"], []))
    }
    delays = []
    for task_id in orphans:
        after = [at for at, who in timelines.get(task_id, []) if who != "w0" and at >= died]
        if after:
            delays.append(after[0] - died)
    # A task of the dead worker that nobody polled after its death had finished before it
    # (the worker polled its early tasks while still submitting the later ones).
    print(
        f"  the dead worker's {last - first} tasks: {len(delays)} unfinished at its death, "
        f"{last - first - len(delays)} finished (or taken over) before it"
    )
    return delays


async def journal_costs(url: str, tasks: int) -> None:
    print(f"per-task journal cost: {tasks} tasks, 8 coroutines")
    with tempfile.TemporaryDirectory() as folder:
        async with SQLiteJournal(Path(folder) / "bench.sqlite") as sqlite:
            elapsed = await run([sqlite], tasks, 8)
        print(line("SQLite, durable=True", tasks, elapsed))
    await empty(url)
    async with PostgresJournal(url) as postgres:
        elapsed = await run([postgres], tasks, 8)
    print(line("PostgreSQL", tasks, elapsed))


def conduct(args: argparse.Namespace) -> None:
    server = None
    url = args.url
    if url is None:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            sys.exit("no initdb/pg_ctl found: install PostgreSQL or pass --url")
        server = PostgresServer(bin_dir, fsync=True)
        server.start()
    try:
        print(
            f"{args.tasks} tasks of {args.task_seconds:g} s on the fake, {args.workers} "
            f"workers, lease {args.lease:g} s"
        )
        with tempfile.TemporaryDirectory() as folder:
            one, one_s = polls_run(args, str(Path(folder) / "one.sqlite"), 1)
        print(f"  one process (SQLite journal)   {one:7d} polls  {one_s:7.1f} s")

        def fresh() -> str:
            if server is not None:
                return server.new_database()
            asyncio.run(empty(url))
            return url

        many, many_s = polls_run(args, fresh(), args.workers)
        print(
            f"  {args.workers} processes (PostgreSQL)     {many:7d} polls  {many_s:7.1f} s  "
            f"{many / one:.3f}x the polls of one process"
        )
        delays = takeover_run(args, fresh())
        if delays:
            print(
                f"  takeover of a SIGKILLed worker's {len(delays)} tasks: first poll by another "
                f"worker after median {statistics.median(delays):.2f} s, max {max(delays):.2f} s "
                f"(lease {args.lease:g} s; target ≤ {args.lease + 2:g} s)"
            )
        asyncio.run(journal_costs(fresh(), args.cost_tasks))
    finally:
        if server is not None:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--task-seconds", type=float, default=3.0)
    parser.add_argument("--lease", type=float, default=5.0, help="poll lease, seconds")
    parser.add_argument("--cost-tasks", type=int, default=1000)
    parser.add_argument("--url", help="a PostgreSQL database to use instead of a throwaway one")
    # One worker process (started by the conductor).
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--journal", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--last", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--name", default=str(os.getpid()), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(worker(args))
    else:
        conduct(args)


if __name__ == "__main__":
    main()
