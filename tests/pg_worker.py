"""One worker of a fleet sharing a PostgreSQL journal, in its own process, for the tests.

``python tests/pg_worker.py DATABASE_URL BASE_URL PROMPT... [--kill-after N]``

Submits its prompts with ``Client(journal=DATABASE_URL)``, leases the tasks it created
(``renew_polls``) and keeps those leases while it polls them. A prompt another worker is
sending at that moment comes back as that worker's task (``wait_sent``), followed through
the journal rather than polled twice. Then, until no task is unfinished, it takes over the
tasks whose lease expired (a dead worker's: ``claim_polls``) and follows them to the end.
Prints one JSON line: what it created, reused and took over.

``--kill-after N``: SIGKILL itself as soon as N of its submits have returned.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
from typing import Any

from cometrunway import AmbiguousSubmitError, Client, PollPolicy, RetryPolicy, TextToVideo
from cometrunway.journal import EntryState, PostgresJournal

POLL = PollPolicy(
    initial_delay=0.05,
    interval=0.1,
    max_interval=0.2,
    min_interval=0.02,
    not_found_grace=5.0,
    requests_per_second=2000,
)
RETRY = RetryPolicy(max_tries=3, base_delay=0.01, max_delay=0.05)
#: Short, so a dead worker's tasks are taken over quickly in tests.
LEASE_SECONDS = 1.0
RENEW_EVERY_SECONDS = LEASE_SECONDS / 3
#: How long a loser waits for the winner of a race on one prompt to get its task id.
SENDER_WAIT_SECONDS = 30.0


async def run(db: str, base_url: str, prompts: list[str], kill_after: int | None) -> None:
    report: dict[str, Any] = {"pid": os.getpid(), "created": [], "reused": [], "taken_over": []}
    async with Client(
        api_key="sk-fleet-test", base_url=base_url, journal=db, poll=POLL, retry=RETRY
    ) as client:
        journal = client.journal
        assert isinstance(journal, PostgresJournal)
        held: set[str] = set()
        renewer = asyncio.create_task(_renew(journal, held))
        returned = 0

        async def one(prompt: str) -> None:
            nonlocal returned
            request = TextToVideo(prompt)
            try:
                handle = await client.submit(request)
            except AmbiguousSubmitError:
                # Another worker is sending this prompt: its task is ours as soon as it
                # is journaled; follow it through the journal, not by polling it twice.
                entry = await journal.wait_sent(client.journal_key(request), SENDER_WAIT_SECONDS)
                assert entry is not None and entry.task_id, f"no task for {prompt!r}"
                report["reused"].append(entry.task_id)
                await journal.wait_finished(entry.task_id, SENDER_WAIT_SECONDS)
                return
            returned += 1
            if kill_after is not None and returned >= kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
            mine = await journal.renew_polls([handle.task_id], lease_seconds=LEASE_SECONDS)
            if mine:
                held.update(mine)
                report["created"].append(handle.task_id)
                await handle
                held.discard(handle.task_id)
            else:  # another worker's task (the same prompt, submitted earlier)
                report["reused"].append(handle.task_id)
                await journal.wait_finished(handle.task_id, SENDER_WAIT_SECONDS)

        await asyncio.gather(*(one(p) for p in prompts))
        await _take_over(client, journal, held, report)
        renewer.cancel()
    print(json.dumps(report), flush=True)


async def _take_over(
    client: Client, journal: PostgresJournal, held: set[str], report: dict[str, Any]
) -> None:
    """Finish the tasks whose holder died, until none is unfinished (SUBMITTED rows: the
    ones leases cover; a NOT_FOUND row is followed again only by resume() or track())."""
    while unfinished := [e for e in await journal.unfinished() if e.state is EntryState.SUBMITTED]:
        claimed = await journal.claim_polls(len(unfinished), lease_seconds=LEASE_SECONDS)
        if not claimed:  # held by live workers, or a lease not yet expired: wait for news
            await journal.wait_finished(unfinished[0].task_id or "", LEASE_SECONDS)
            continue
        handles = []
        for entry in claimed:
            assert entry.task_id is not None
            held.add(entry.task_id)
            report["taken_over"].append(entry.task_id)
            handles.append(client.track(entry.task_id, route="feed"))
        await asyncio.gather(*handles)
        held.difference_update(h.task_id for h in handles)


async def _renew(journal: PostgresJournal, held: set[str]) -> None:
    while True:
        await asyncio.sleep(RENEW_EVERY_SECONDS)
        if held:
            await journal.renew_polls(list(held), lease_seconds=LEASE_SECONDS)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("base_url")
    parser.add_argument("prompts", nargs="+")
    parser.add_argument("--kill-after", type=int, default=None)
    args = parser.parse_args()
    asyncio.run(run(args.db, args.base_url, args.prompts, args.kill_after))


if __name__ == "__main__":
    main()
