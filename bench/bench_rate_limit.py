"""Rate limits: how close one client runs to a server's limit, and how many 429s it draws.

FakeCometAPI runs in its own process behind a small limiter on 127.0.0.1 that lets R
requests/s through (a token bucket holding one second's worth) and answers the rest
``429`` with ``Retry-After: 1``. One client, with its default request budget, submits N
text-to-video tasks and follows each to the end. Prints the achieved request rate against R
(target ≥ 0.9 R while work is queued) and the share of requests answered 429 (target ≤ 2%).

    python bench/bench_rate_limit.py [--limit 50] [--creates 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp
from _fakeproc import fake_process
from aiohttp import web

from cometrunway import Client, PollPolicy, TextToVideo

#: Polls come fast enough to keep the client's budget, not the tasks, the bottleneck.
POLL = PollPolicy(initial_delay=1.0, interval=1.0, max_interval=2.0, min_interval=0.5)


class Limiter:
    """A token bucket in front of the fake: R requests/s, a burst of one second's worth."""

    def __init__(self, upstream: str, rate: float) -> None:
        self.upstream = upstream
        self.rate = rate
        self.tokens = rate
        self.stamp = time.monotonic()
        self.passed = 0
        self.refused = 0
        self.first = 0.0
        self.last = 0.0
        self.session: aiohttp.ClientSession | None = None

    def _take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    async def handle(self, request: web.Request) -> web.StreamResponse:
        now = time.monotonic()
        self.first = self.first or now
        self.last = now
        if not self._take():
            self.refused += 1
            return web.json_response(
                {"code": 429, "message": "rate limit exceeded"},
                status=429,
                headers={"Retry-After": "1"},
            )
        self.passed += 1
        assert self.session is not None
        async with self.session.request(
            request.method,
            self.upstream + request.path_qs,
            data=await request.read(),
            headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
        ) as answer:
            return web.Response(
                status=answer.status,
                body=await answer.read(),
                content_type=answer.content_type,
            )


async def run(upstream: str, rate: float, creates: int) -> None:
    limiter = Limiter(upstream, rate)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", limiter.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as session:
        limiter.session = session
        try:
            async with Client("bench", base_url=f"http://127.0.0.1:{port}", poll=POLL) as client:
                started = time.monotonic()
                handles = await client.submit_many(
                    [TextToVideo(f"rate limit {i}") for i in range(creates)], max_concurrency=32
                )
                submitted = time.monotonic()
                for handle in handles:
                    await handle
                finished = time.monotonic()
        finally:
            await runner.cleanup()
    total = limiter.passed + limiter.refused
    busy = limiter.last - limiter.first
    print(f"server limit R             : {rate:.0f} requests/s")
    print(f"creates                    : {creates} (submitted in {submitted - started:.1f} s)")
    print(f"requests answered          : {limiter.passed} passed, {limiter.refused} refused (429)")
    print(f"achieved rate              : {limiter.passed / busy:.1f} requests/s over {busy:.1f} s")
    print(f"achieved / R               : {limiter.passed / busy / rate:.2f}  (target ≥ 0.90)")
    print(f"429 share of all requests  : {100 * limiter.refused / total:.2f}%  (target ≤ 2%)")
    print(f"all tasks finished after   : {finished - started:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=50.0, help="server-side requests/s")
    parser.add_argument("--creates", type=int, default=2000)
    args = parser.parse_args()
    with fake_process("--queued-for", "2", "--running-for", "3") as url:
        asyncio.run(run(url, args.limit, args.creates))


if __name__ == "__main__":
    main()
