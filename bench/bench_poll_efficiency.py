"""Poll efficiency: cometrunway's one poller against runwayml's own waiter.

Both clients drive the SAME 200 tasks (20–40 s each, durations fixed per prompt) on
FakeCometAPI's official-format routes (``/runwayml/v1/image_to_video`` and
``GET /runwayml/v1/tasks/{id}``, bare T1 answers with a float ``progress``). For each client
it prints HTTP requests per task (create included) and the detection latency: the time the
client resolved a task minus the time the fake finished it.

Run by hand (runwayml is installed only for this)::

    pip install -e . 'runwayml>=5,<6'
    python bench/bench_poll_efficiency.py [--tasks 200] [--min 20] [--max 40]

Targets (DESIGN/issue 12): against runwayml, requests per task ≤ 0.5×, median detection
latency ≤ 0.5× and p95 detection latency ≤ 0.8×.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections import Counter
from typing import Any

from cometrunway import Client, RunwayImageToVideo
from cometrunway.testing import FakeCometAPI, Lifecycle

IMAGE = "https://example.com/cat.jpg"
TARGETS = {"requests_per_task": 0.5, "median_latency": 0.5, "p95_latency": 0.8}


def lifecycle_for(low: float, high: float) -> Any:
    def pick(body: dict[str, Any]) -> Lifecycle:
        rng = random.Random(str(body.get("promptText")))
        total = rng.uniform(low, high)
        queued = rng.uniform(0.5, 3.0)
        return Lifecycle.by_time(queued=queued, running=total - queued)

    return pick


def summarize(name: str, fake: FakeCometAPI, resolved: dict[str, float]) -> dict[str, float]:
    per_task: Counter[str] = Counter()
    for request in fake.requests:
        if request.path.endswith("/image_to_video"):
            continue
        per_task[request.path.rsplit("/", 1)[-1]] += 1
    latencies = []
    for task_id, when in resolved.items():
        finished = fake.tasks[task_id].finished_at
        assert finished is not None
        latencies.append(when - finished)
    polls = [per_task[t] for t in resolved]
    result = {
        "requests_per_task": 1 + statistics.fmean(polls),
        "polls_per_task": statistics.fmean(polls),
        "median_latency": statistics.median(latencies),
        "p90_latency": statistics.quantiles(latencies, n=10)[-1],
        "p95_latency": statistics.quantiles(latencies, n=20)[-1],
        "max_latency": max(latencies),
    }
    print(
        f"{name:12s} tasks={len(resolved)} requests/task={result['requests_per_task']:.2f} "
        f"(polls {result['polls_per_task']:.2f}) median latency={result['median_latency']:.2f}s "
        f"p90={result['p90_latency']:.2f}s p95={result['p95_latency']:.2f}s "
        f"max={result['max_latency']:.2f}s"
    )
    return result


async def run_runwayml(n: int, low: float, high: float) -> dict[str, float]:
    from runwayml import AsyncRunwayML

    async with FakeCometAPI(lifecycle_for=lifecycle_for(low, high), tick_interval=None) as fake:
        client = AsyncRunwayML(api_key="bench-key", base_url=fake.url + "/runwayml")
        resolved: dict[str, float] = {}

        async def one(i: int) -> None:
            created = await client.image_to_video.create(
                model="gen4_turbo", prompt_image=IMAGE, prompt_text=f"prompt {i}", ratio="1280:720"
            )
            await created.wait_for_task_output()
            resolved[created.id] = time.monotonic()

        await asyncio.gather(*(one(i) for i in range(n)))
        await client.close()
        return summarize("runwayml", fake, resolved)


async def run_cometrunway(n: int, low: float, high: float) -> dict[str, float]:
    async with FakeCometAPI(lifecycle_for=lifecycle_for(low, high), tick_interval=None) as fake:
        resolved: dict[str, float] = {}
        async with Client("bench-key", base_url=fake.url) as client:
            handles = await client.submit_many(
                [RunwayImageToVideo(IMAGE, prompt_text=f"prompt {i}") for i in range(n)],
                max_concurrency=32,
            )
            async for handle in client.as_completed(handles):
                resolved[handle.task_id] = time.monotonic()
        return summarize("cometrunway", fake, resolved)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--min", type=float, default=20.0)
    parser.add_argument("--max", type=float, default=40.0)
    parser.add_argument("--only", choices=["runwayml", "cometrunway"])
    args = parser.parse_args()
    results = {}
    if args.only in (None, "cometrunway"):
        results["cometrunway"] = await run_cometrunway(args.tasks, args.min, args.max)
    if args.only in (None, "runwayml"):
        results["runwayml"] = await run_runwayml(args.tasks, args.min, args.max)
    if len(results) == 2:
        ours, theirs = results["cometrunway"], results["runwayml"]
        for what, target in TARGETS.items():
            ratio = ours[what] / theirs[what]
            verdict = "ok" if ratio <= target else "MISSED"
            print(f"{what:18s} cometrunway/runwayml = {ratio:.2f} (target ≤ {target}) {verdict}")


if __name__ == "__main__":
    asyncio.run(main())
