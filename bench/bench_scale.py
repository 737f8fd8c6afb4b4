"""Scale: memory per tracked task at 10,000 tasks, and CPU per poll at 10,000 vs 100 tasks.

FakeCometAPI runs in its own process with tasks that stay queued. One client submits N tasks,
then the poller follows them for a fixed window. Prints RSS per tracked task (target ≤ 3 KB)
and the client's CPU time per poll (target at 10,000 within 1.5× of that at 100).

    python bench/bench_scale.py [--window 15]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time

from _fakeproc import fake_process, rss_bytes

from cometrunway import Client, PollPolicy, TextToVideo


async def measure(url: str, n: int, window: float, rate: float) -> tuple[float, float, int]:
    """(RSS bytes per tracked task, CPU seconds per poll, polls) for ``n`` tracked tasks."""
    # Every task is due about every `interval`, so the poller is busy at `rate` polls/s
    # whatever n is: the same work per second, more tasks in the heap.
    interval = n / rate
    policy = PollPolicy(
        initial_delay=1.0,
        interval=interval,
        max_interval=interval * 1.5,
        min_interval=min(0.1, interval),
        requests_per_second=rate,
        max_concurrent_polls=32,
    )
    async with Client("bench", base_url=url, poll=policy) as client:
        gc.collect()
        before = rss_bytes()
        handles = await client.submit_many(
            [TextToVideo(f"scale {n} {i}") for i in range(n)], max_concurrency=64
        )
        # Wait until every task has been polled at least once (snapshots held in memory).
        deadline = time.monotonic() + 120
        while client.statistics().poller.polls < 1.2 * n and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        gc.collect()
        per_task = (rss_bytes() - before) / n
        polls_before = client.statistics().poller.polls
        cpu_before = time.process_time()
        await asyncio.sleep(window)
        cpu = time.process_time() - cpu_before
        polls = client.statistics().poller.polls - polls_before
        assert client.statistics().poller.tracked == n
        del handles
    return per_task, cpu / max(polls, 1), polls


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--window", type=float, default=15.0)
    parser.add_argument("--rate", type=float, default=500.0, help="polls per second")
    args = parser.parse_args()
    with fake_process("--queued-for", "1e9") as url:
        small = await measure(url, 100, args.window, args.rate)
        large = await measure(url, 10_000, args.window, args.rate)
    print(f"100 tasks:    {small[1] * 1e6:7.1f} µs CPU per poll ({small[2]} polls)")
    print(
        f"10,000 tasks: {large[1] * 1e6:7.1f} µs CPU per poll ({large[2]} polls), "
        f"ratio {large[1] / small[1]:.2f} (target ≤ 1.5)"
    )
    print(f"RSS per tracked task at 10,000: {large[0] / 1024:.2f} KB (target ≤ 3 KB)")


if __name__ == "__main__":
    asyncio.run(main())
