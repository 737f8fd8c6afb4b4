"""A batch run in its own process, for the crash tests: killed at random, then run again.

``python tests/crash_worker.py JOURNAL BASE_URL N`` submits prompts ``"crash prompt 0"`` …
``N-1`` with the journal, resumes whatever the journal holds unfinished, waits for every
task and prints one JSON line of counts. Ambiguous creates (a kill between the create and
the journal write) are listed, not resubmitted.
"""

from __future__ import annotations

import asyncio
import json
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


async def main(journal: str, base_url: str, count: int) -> None:
    requests = [TextToVideo(f"crash prompt {i}") for i in range(count)]
    async with Client(
        "crash-key",
        base_url=base_url,
        journal=journal,
        poll=POLL,
        retry=RetryPolicy(max_tries=3, base_delay=0.01, max_delay=0.05),
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


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
