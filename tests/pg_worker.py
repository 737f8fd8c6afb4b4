"""One worker of a fleet sharing a PostgreSQL journal, in its own process, for the tests.

``python tests/pg_worker.py DATABASE_URL BASE_URL PROMPT... [--name N] [--kill-after N]
[--callback-url URL] [--lease SECONDS]``

Written against the ``Client`` alone: it submits its prompts with
``Client(journal=DATABASE_URL)`` and awaits their handles, then follows whatever the fleet
has left unfinished (``client.resume()``) until nothing is. The client does the rest: it
leases what it polls, settles a prompt another worker created from the journal, takes over
the tasks of a worker that died, and passes a callback for a task it does not poll to the
worker that does. Every request carries ``User-Agent: fleet-worker/<name>``, so the fake
can tell which worker polled what. Prints one JSON line: what it created and reused, and
how each of its handles ended.

``--kill-after N``: SIGKILL itself as soon as N of its submits have returned.
``--callback-url URL``: serve the callback receiver on 127.0.0.1 (its URL is printed first,
as ``LISTEN <url>``), give ``URL`` as the callback URL, and poll rarely: results then come
from callbacks, whichever worker receives them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
from typing import Any

from aiohttp import web
from fleet_support import TaggedTransport

from cometrunway import (
    Client,
    Event,
    FleetPolicy,
    PollPolicy,
    RetryPolicy,
    Submitted,
    TextToVideo,
)

POLL = PollPolicy(
    initial_delay=0.05,
    interval=0.1,
    max_interval=0.2,
    min_interval=0.02,
    not_found_grace=5.0,
    requests_per_second=2000,
)
#: With callbacks: a result that arrives within a test came through a callback's wake-up.
RARE_POLL = PollPolicy(
    initial_delay=0.05,
    interval=60.0,
    max_interval=60.0,
    min_interval=0.02,
    not_found_grace=5.0,
    requests_per_second=2000,
)
RETRY = RetryPolicy(max_tries=3, base_delay=0.01, max_delay=0.05)
#: One token for the whole fleet: a callback may land on any worker.
CALLBACK_TOKEN = "fleet-test-callback-token-0123456789"


async def run(args: argparse.Namespace) -> None:
    report: dict[str, Any] = {"name": args.name, "pid": os.getpid(), "created": [], "reused": []}

    def on_event(event: Event) -> None:
        if isinstance(event, Submitted):
            report["reused" if event.reused else "created"].append(event.task_id)

    fleet = FleetPolicy(lease_seconds=args.lease, claim_interval=args.lease / 5, sender_wait=30.0)
    async with Client(
        api_key="sk-fleet-test",
        base_url=args.base_url,
        journal=args.db,
        poll=RARE_POLL if args.callback_url else POLL,
        retry=RETRY,
        fleet=fleet,
        transport=TaggedTransport(args.base_url, args.name),
        on_event=on_event,
        callback_url=args.callback_url,
        callback_token=CALLBACK_TOKEN,
    ) as client:
        runner = None
        if args.callback_url:
            runner = web.AppRunner(client.callback_app())
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            print(f"LISTEN http://{host}:{port}/runway/callback", flush=True)
        returned = 0

        async def one(prompt: str) -> Any:
            nonlocal returned
            handle = await client.submit(TextToVideo(prompt))
            returned += 1
            if args.kill_after is not None and returned >= args.kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
            return handle

        handles = await asyncio.gather(*(one(p) for p in args.prompts))
        ended = await asyncio.gather(*handles, return_exceptions=True)
        report["results"] = {
            h.task_id: getattr(t, "status", repr(t)) for h, t in zip(handles, ended, strict=True)
        }
        # What the fleet left unfinished (a dead worker's tasks, others still running):
        # followed until nothing is, polled here only once this worker holds the lease.
        while left := await client.resume():
            await asyncio.gather(*left, return_exceptions=True)
        if runner is not None:
            await runner.cleanup()
    print(json.dumps(report), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("base_url")
    parser.add_argument("prompts", nargs="+")
    parser.add_argument("--name", default=str(os.getpid()))
    parser.add_argument("--kill-after", type=int, default=None)
    parser.add_argument("--callback-url", default=None)
    parser.add_argument("--lease", type=float, default=1.0, help="poll lease, seconds")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
