"""Client overhead: the submit+poll pipeline against a bare aiohttp loop doing the same requests.

FakeCometAPI runs in its own process with zero-latency tasks (done on the first poll). For N
tasks each pipeline makes one create (``POST /runway/pro/generate``) and one poll
(``POST /runway/feed``) per task, and both keep at most ``--concurrency`` requests in flight:
the bare loop with that many workers (each a create then its poll), the pipeline with half
of them creating (``submit_many``) and half polling (the poller's workers). Prints requests
per second for both and the ratio (target ≥ 70%), best of ``--rounds`` alternating runs.

Wall-clock rates on a shared machine swing with its load. ``--instructions`` measures the
same thing deterministically: each side runs under valgrind's callgrind (the fake outside
it), twice with different task counts, and the difference gives CPU instructions per
request, free of warm-up and start-up costs. The rate ratio of two CPU-bound loops is the
inverse of their instruction ratio (as far as instructions cost alike).

    python bench/bench_overhead.py [--tasks 3000] [--concurrency 32] [--rounds 3]
    python bench/bench_overhead.py --instructions [--tasks 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import aiohttp
from _fakeproc import fake_process

from cometrunway import Client, PollPolicy, TextToVideo

HEADERS = {
    "Authorization": "Bearer bench",
    "Content-Type": "application/json",
    "X-Runway-Version": "2024-11-06",
}


async def bare(url: str, n: int, concurrency: int) -> float:
    """The floor: aiohttp alone, create then poll, parsing just the id and the status."""
    body = {
        "callback_url": "https://callback.invalid/",
        "ratio": "16:9",
        "style": "cinematic",
        "model": "gen4",
        "options": {"seconds": 5},
    }
    todo = iter(range(n))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:

        async def worker() -> None:
            for i in todo:
                payload = json.dumps({**body, "prompt": f"bare {i}"})
                async with session.post(
                    f"{url}/runway/pro/generate", data=payload, headers=HEADERS
                ) as r:
                    task_id = json.loads(await r.read())["data"]["task_id"]
                poll = json.dumps({"task_id": task_id})
                async with session.post(f"{url}/runway/feed", data=poll, headers=HEADERS) as r:
                    assert json.loads(await r.read())["data"]["status"] == "SUCCESS"

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return 2 * n / (time.perf_counter() - started)


async def pipeline(url: str, n: int, concurrency: int) -> float:
    policy = PollPolicy(
        initial_delay=0,
        interval=0.05,
        min_interval=0.01,
        requests_per_second=1_000_000,
        max_concurrent_polls=concurrency - concurrency // 2,
        jitter=0,
    )
    async with Client("bench", base_url=url, poll=policy) as client:
        started = time.perf_counter()
        handles = await client.submit_many(
            [TextToVideo(f"pipeline {i}") for i in range(n)], max_concurrency=concurrency // 2
        )
        for handle in handles:
            await handle
        elapsed = time.perf_counter() - started
        polls = client.statistics().poller.polls
    return (n + polls) / elapsed


async def run_once(side: str, n: int, concurrency: int) -> None:
    """One side alone, warmed up first (what ``--instructions`` runs under callgrind)."""
    run = bare if side == "bare" else pipeline
    with fake_process() as url:
        await run(url, 100, concurrency)
        await run(url, n, concurrency)


def instructions(side: str, n: int, concurrency: int) -> int:
    """Instructions the whole process executes running ``side`` with ``n`` tasks."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                __file__,
                "--side",
                side,
                "--tasks",
                str(n),
                "--concurrency",
                str(concurrency),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with open(out) as profile:
            for line in profile:
                if line.startswith("summary:"):
                    return int(line.split()[1])
    raise RuntimeError("callgrind wrote no summary")


def count_instructions(n: int, concurrency: int) -> None:
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (apt install valgrind)")
    base = max(100, n // 4)
    per_request = {}
    for side in ("bare", "pipeline"):
        extra = instructions(side, base + n, concurrency) - instructions(side, base, concurrency)
        per_request[side] = extra / (2 * n)  # one create and one poll per task
    print(f"bare aiohttp    {per_request['bare']:10.0f} instructions/request")
    print(f"cometrunway     {per_request['pipeline']:10.0f} instructions/request")
    ratio = per_request["bare"] / per_request["pipeline"]
    print(f"ratio           {ratio:10.2f} (bare / cometrunway; floor 0.65)")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument("--side", choices=("bare", "pipeline"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.concurrency < 2:
        parser.error("--concurrency must be at least 2 (half create, half poll)")
    if args.side is not None:
        await run_once(args.side, args.tasks or 1000, args.concurrency)
        return
    if args.instructions:
        count_instructions(args.tasks or 1000, args.concurrency)
        return
    args.tasks = args.tasks or 3000
    with fake_process() as url:
        await bare(url, 200, args.concurrency)  # warm up both sides
        await pipeline(url, 200, args.concurrency)
        bares: list[float] = []
        ours: list[float] = []
        for _ in range(args.rounds):
            bares.append(await bare(url, args.tasks, args.concurrency))
            ours.append(await pipeline(url, args.tasks, args.concurrency))
    paired = sorted(o / b for o, b in zip(ours, bares, strict=True))
    print(f"bare aiohttp    {max(bares):8.0f} requests/s (best of {args.rounds})")
    print(f"cometrunway     {max(ours):8.0f} requests/s (best of {args.rounds})")
    print(f"ratio           {max(ours) / max(bares):8.2f} best to best (floor 0.65)")
    print(f"paired ratios   {' '.join(f'{r:.2f}' for r in paired)} (each round's pair, sorted)")


if __name__ == "__main__":
    asyncio.run(main())
