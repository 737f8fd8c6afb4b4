"""Client runs in their own process, for the crash tests: killed, then looked at or run again.

``python tests/crash_worker.py JOURNAL BASE_URL N`` submits prompts ``"crash prompt 0"`` …
``N-1`` with the journal, resumes whatever the journal holds unfinished, waits for every
task and prints one JSON line of counts. Ambiguous creates (a kill between the create and
the journal write) are listed, not resubmitted.

``python tests/crash_worker.py --kill-after-submit SEED JOURNAL BASE_URL`` submits a
seed-chosen number of prompts at once and, as soon as a seed-chosen number of ``submit()``
calls have returned, prints their task ids (one JSON line) and kills itself with SIGKILL:
the journal must hold every id printed.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys

from cometrunway import BatchSubmitError, Client, PollPolicy, RetryPolicy, TextToVideo

POLL = PollPolicy(
    initial_delay=0.05,
    interval=0.05,
    max_interval=0.2,
    min_interval=0.02,
    not_found_grace=5.0,
    requests_per_second=2000,
)
RETRY = RetryPolicy(max_tries=3, base_delay=0.01, max_delay=0.05)
# How many submits run at once in a kill-after-submit run (drawn from 1 to this).
MAX_CONCURRENT_SUBMITS = 32


async def main(journal: str, base_url: str, count: int) -> None:
    requests = [TextToVideo(f"crash prompt {i}") for i in range(count)]
    async with Client(
        "crash-key", base_url=base_url, journal=journal, poll=POLL, retry=RETRY
    ) as client:
        resumed = await client.resume()
        try:
            handles = await client.submit_many(requests, max_concurrency=16)
            failed = 0
        except BatchSubmitError as exc:
            handles = [h for h in exc.handles if h is not None]
            failed = len(exc.exceptions)
        finished = 0
        async for handle in client.as_completed([*resumed, *handles]):
            await handle
            finished += 1
        ambiguous = await client.ambiguous()
    print(json.dumps({"finished": finished, "failed": failed, "ambiguous": len(ambiguous)}))


async def kill_after_submit(seed: int, journal: str, base_url: str) -> None:
    rng = random.Random(seed)
    count = rng.randint(1, MAX_CONCURRENT_SUBMITS)
    returned_before_kill = rng.randint(1, count)
    async with Client(
        "crash-key", base_url=base_url, journal=journal, poll=POLL, retry=RETRY
    ) as client:
        submits = [
            asyncio.ensure_future(client.submit(TextToVideo(f"seed {seed} prompt {i}")))
            for i in range(count)
        ]
        returned: list[str] = []
        for next_done in asyncio.as_completed(submits):
            returned.append((await next_done).task_id)
            if len(returned) == returned_before_kill:
                break
        print(json.dumps({"submitted": count, "returned": returned}), flush=True)
        # Right after submit() returned: no close(), no chance for a write to catch up.
        os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    if sys.argv[1] == "--kill-after-submit":
        asyncio.run(kill_after_submit(int(sys.argv[2]), sys.argv[3], sys.argv[4]))
    else:
        asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
