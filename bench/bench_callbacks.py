"""Callbacks: how much polling they save, how fast they detect, how the receiver holds up.

(a) Detection. N tasks on FakeCometAPI's ``/runway/pro/generate`` live a few seconds of the
    fake's clock each; its ticker ends them and posts their callbacks to the client's own
    ``callback_app()`` on 127.0.0.1. The client polls lazily (first poll after 30 s), so a
    task is found done only because its callback woke the poller. Prints HTTP requests per
    task beyond the create (target ≤ 1.2) and the detection latency, the time the handle
    resolved minus the time the fake finished the task (target: median < 1 s). With
    ``--baseline`` the same tasks also run without callbacks, on the default PollPolicy.

(b) Receiver. 10,000 deliveries over HTTP to ``aiohttp_app``: 80% good and distinct, the
    rest duplicates, forged tokens and oversized bodies, shuffled, 64 at a time. Checks that
    every good one woke its task and every bad one was refused, and prints the counts and
    the throughput (also of the bare ``CallbackReceiver.handle`` core).

Run by hand::

    python bench/bench_callbacks.py [--tasks 200] [--min 1] [--max 4] [--deliveries 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import statistics
import time
from collections import Counter
from typing import Any

import aiohttp
from aiohttp import web

from cometrunway import Client, PollPolicy, RetryPolicy, TextToVideo
from cometrunway.testing import FakeCometAPI, Lifecycle
from cometrunway.webhooks import RECEIVER_KEY, CallbackReceiver, aiohttp_app

LAZY_POLL = PollPolicy(
    initial_delay=30, interval=30, max_interval=60, requests_per_second=1000, jitter=0.1
)
PATH = "/runway/callback"


def lifecycle_for(low: float, high: float) -> Any:
    def pick(body: dict[str, Any]) -> Lifecycle:
        rng = random.Random(str(body.get("prompt")))
        total = rng.uniform(low, high)
        queued = rng.uniform(0.1, 0.5) * total
        return Lifecycle.by_time(queued=queued, running=total - queued)

    return pick


def reserve_port() -> tuple[socket.socket, str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}{PATH}"


async def run_tasks(args: argparse.Namespace, *, callbacks: bool) -> dict[str, float]:
    prompts = [f"bench prompt {i}" for i in range(args.tasks)]
    sock, url = reserve_port()
    runner: web.AppRunner | None = None
    async with FakeCometAPI(
        lifecycle_for=lifecycle_for(args.min, args.max), tick_interval=0.02
    ) as fake:
        options: dict[str, Any] = {"poll": LAZY_POLL, "callback_url": url} if callbacks else {}
        async with Client(
            "sk-bench", base_url=fake.url, retry=RetryPolicy(max_tries=5), **options
        ) as client:
            receiver: CallbackReceiver | None = None
            if callbacks:
                app = client.callback_app(PATH)
                receiver = app[RECEIVER_KEY]
                runner = web.AppRunner(app, access_log=None)
                await runner.setup()
                await web.SockSite(runner, sock).start()
            resolved: dict[str, float] = {}
            started = time.monotonic()
            handles = await client.submit_many(
                [TextToVideo(p) for p in prompts], max_concurrency=32
            )
            for handle in handles:
                handle.add_done_callback(lambda h: resolved.setdefault(h.task_id, time.monotonic()))
            await asyncio.gather(*handles)
            elapsed = time.monotonic() - started
            await fake.drain_callbacks()
            if runner is not None:
                await runner.cleanup()
        sock.close()
        polls: Counter[str] = Counter()
        for request in fake.requests:
            if request.kind == "poll" and isinstance(request.body, dict):
                polls[str(request.body.get("task_id"))] += 1
        latencies = []
        for task_id, when in resolved.items():
            finished = fake.tasks[task_id].finished_at
            assert finished is not None
            latencies.append(when - finished)
        per_task = [polls[t] for t in resolved]
        result = {
            "tasks": float(len(resolved)),
            "requests_per_task": statistics.fmean(per_task),
            "max_polls_one_task": float(max(per_task)),
            "median_latency": statistics.median(latencies),
            "p90_latency": statistics.quantiles(latencies, n=10)[-1],
            "max_latency": max(latencies),
            "wall_seconds": elapsed,
            "callbacks_sent": float(len(fake.callbacks_sent)),
        }
        if receiver is not None:
            stats = receiver.statistics()
            result["callbacks_accepted"] = float(stats.accepted)
            result["callbacks_rejected"] = float(stats.rejected_total)
        return result


class Stub:
    """The receiver's view of a client: a token and ``wake``."""

    def __init__(self, known: set[str]) -> None:
        self.callback_token = "bench-token-" + "x" * 20
        self.known = known
        self.woken: Counter[str] = Counter()

    def wake(self, task_id: str) -> bool:
        self.woken[task_id] += 1
        return task_id in self.known


def deliveries(count: int, token: str, cap: int) -> list[tuple[str, str, bytes]]:
    """(kind, token, body) for every delivery, shuffled: 80% good, then duplicates, forged
    and oversized in equal parts."""
    rng = random.Random(7)
    good = int(count * 0.8)
    bad = count - good
    dup, forged = bad // 3, bad // 3
    oversized = bad - dup - forged
    ids = [f"{rng.getrandbits(128):032x}" for _ in range(good)]
    records = {
        i: json.dumps({"task_id": i, "status": "3", "video_url": None}).encode() for i in ids
    }
    items = [("good", token, records[i]) for i in ids]
    items += [("duplicate", token, records[rng.choice(ids)]) for _ in range(dup)]
    items += [("forged", "guess-" + str(n), records[rng.choice(ids)]) for n in range(forged)]
    padding = b" " * (cap + 1024)
    items += [("oversized", token, records[rng.choice(ids)] + padding) for _ in range(oversized)]
    rng.shuffle(items)
    return items


async def run_receiver(args: argparse.Namespace) -> dict[str, Any]:
    probe = deliveries(args.deliveries, "t", 256 * 1024)
    known = {json.loads(body)["task_id"] for kind, _, body in probe if kind == "good"}
    stub = Stub(known)
    app = aiohttp_app(stub, path=PATH)
    receiver = app[RECEIVER_KEY]
    items = deliveries(args.deliveries, stub.callback_token, receiver.max_body_bytes)
    sock, url = reserve_port()
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    answers: Counter[tuple[str, int]] = Counter()
    duplicates_flagged = 0
    client_errors = 0
    queue = iter(items)
    try:
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        async with aiohttp.ClientSession(connector=connector) as http:

            async def worker() -> None:
                nonlocal duplicates_flagged, client_errors
                for kind, token, body in queue:
                    try:
                        async with http.post(
                            url,
                            params={"token": token},
                            data=body,
                            headers={"Content-Type": "application/json"},
                        ) as answer:
                            payload = await answer.json()
                            answers[kind, answer.status] += 1
                            duplicates_flagged += bool(payload.get("duplicate"))
                    except aiohttp.ClientError:
                        client_errors += 1

            started = time.perf_counter()
            async with asyncio.TaskGroup() as group:
                for _ in range(args.concurrency):
                    group.create_task(worker())
            http_seconds = time.perf_counter() - started
    finally:
        await runner.cleanup()
        sock.close()

    # The core alone, without HTTP: a fresh receiver over the same deliveries.
    core = CallbackReceiver(Stub(known))
    started = time.perf_counter()
    for _, token, body in items:
        core.handle(body, {"token": token}, {})
    core_seconds = time.perf_counter() - started

    kinds = Counter(kind for kind, _, _ in items)
    stats = receiver.statistics()
    lost = known - {task_id for task_id in stub.woken if task_id in known}
    return {
        "kinds": dict(kinds),
        "answers": {f"{kind} -> {status}": n for (kind, status), n in sorted(answers.items())},
        "statistics": {
            "received": stats.received,
            "accepted": stats.accepted,
            "duplicates": stats.duplicates,
            "unknown": stats.unknown,
            "rejected": {k: v for k, v in stats.rejected.items() if v},
        },
        "duplicates_flagged": duplicates_flagged,
        "client_errors": client_errors,
        "good_tasks_not_woken": len(lost),
        "bad_accepted": sum(
            n for (k, s), n in answers.items() if k in ("forged", "oversized") and s < 300
        ),
        "http_deliveries_per_second": len(items) / http_seconds,
        "core_deliveries_per_second": len(items) / core_seconds,
    }


def show(title: str, result: dict[str, Any]) -> None:
    print(f"\n{title}")
    for key, value in result.items():
        shown = f"{value:.3f}" if isinstance(value, float) else value
        print(f"  {key:28} {shown}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--min", type=float, default=1.0, help="shortest task life (s)")
    parser.add_argument("--max", type=float, default=4.0, help="longest task life (s)")
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--baseline", action="store_true", help="also run without callbacks")
    args = parser.parse_args()

    with_callbacks = await run_tasks(args, callbacks=True)
    show(f"(a) {args.tasks} tasks, callbacks on, first poll after 30 s", with_callbacks)
    ok = with_callbacks["requests_per_task"] <= 1.2 and with_callbacks["median_latency"] < 1.0
    print(f"  targets (≤ 1.2 requests/task, median < 1 s): {'met' if ok else 'MISSED'}")
    if args.baseline:
        show(
            "    same tasks, no callbacks, default PollPolicy",
            await run_tasks(args, callbacks=False),
        )

    receiver = await run_receiver(args)
    show(f"(b) receiver, {args.deliveries} deliveries", receiver)
    clean = (
        receiver["good_tasks_not_woken"] == 0
        and receiver["bad_accepted"] == 0
        and receiver["client_errors"] == 0
        and receiver["statistics"]["received"] == args.deliveries
    )
    print(f"  nothing lost, every bad delivery refused: {'yes' if clean else 'NO'}")


if __name__ == "__main__":
    asyncio.run(main())
