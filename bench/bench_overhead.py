"""Client overhead: the submit+poll pipeline against a bare aiohttp loop doing the same requests.

FakeCometAPI runs in its own process with zero-latency tasks (done on the first poll). For N
tasks each pipeline makes one create (``POST /runway/pro/generate``) and one poll
(``POST /runway/feed``) per task, and both keep at most ``--concurrency`` requests in flight:
the bare loop with that many workers (each a create then its poll), the pipeline with half
of them creating (``submit_many``) and half polling (the poller's workers). Prints requests
per second for both and the ratio (target ≥ 70%), best of ``--rounds`` alternating runs.

    python bench/bench_overhead.py [--tasks 3000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
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


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.concurrency < 2:
        parser.error("--concurrency must be at least 2 (half create, half poll)")
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
    print(f"ratio           {max(ours) / max(bares):8.2f} best to best (target ≥ 0.70)")
    print(f"paired ratios   {' '.join(f'{r:.2f}' for r in paired)} (each round's pair, sorted)")


if __name__ == "__main__":
    asyncio.run(main())
