"""A small batch: ``submit_many`` over a few prompts, results ``as_completed``, live counts.

Shows ``Client.submit_many`` (every request attempted, handles in input order),
``BatchSubmitError.handles`` (no task id lost when some creates fail),
``Client.as_completed`` (handles as they finish, failed ones too) and ``BatchTally`` fed by
``on_event`` (counts per state and an ETA for a progress display).

    python examples/batch_with_progress.py

Without ``COMETAPI_KEY`` it runs against an in-process ``FakeCometAPI`` where one prompt is
scripted to fail moderation, so the failure path shows too. With ``COMETAPI_KEY`` set it
makes FIVE real, billed generations.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

from cometrunway import BatchSubmitError, Client, PollPolicy, TaskFailed, TaskHandle, TextToVideo
from cometrunway.events import BatchTally
from cometrunway.testing import FakeCometAPI, Lifecycle

PROMPTS = [
    "a red fox running through fresh snow at dawn",
    "a lighthouse in a storm, waves crashing, cinematic",
    "a hummingbird hovering over a purple flower, macro",
    "an astronaut floating above the Earth, slow rotation",
    "a bowl of ramen steaming on a wooden counter, close-up",
]
BLOCKED = PROMPTS[3]  # the fake fails this one, as a moderation filter might


@contextlib.asynccontextmanager
async def open_client(**options: Any) -> AsyncIterator[Client]:
    """The real API when COMETAPI_KEY is set, else a client on an in-process fake."""
    if os.environ.get("COMETAPI_KEY"):
        async with Client.from_env(**options) as client:
            yield client
        return
    print("COMETAPI_KEY is not set: using an in-process FakeCometAPI")
    lifecycle = Lifecycle.by_time(queued=0.3, running=1.0)
    fake_api = FakeCometAPI(
        lifecycle=lifecycle,
        # Per-prompt lives: this one ends FAILED with Runway's moderation code.
        lifecycle_for={
            BLOCKED: lifecycle.failing("Prompt was flagged by moderation.", "SAFETY.INPUT.TEXT")
        },
    )
    fast = PollPolicy(initial_delay=0.1, interval=0.25, max_interval=0.5, min_interval=0.05)
    async with fake_api as fake:
        client = Client("demo-key", base_url=fake.url, poll=fast, **options)
        async with client:
            yield client


async def main() -> None:
    requests = [TextToVideo(prompt) for prompt in PROMPTS]
    tally = BatchTally(total=len(requests))

    async with open_client(on_event=tally.add) as client:
        slots: list[TaskHandle | None]
        try:
            slots = list(await client.submit_many(requests, max_concurrency=4))
        except BatchSubmitError as exc:
            # Some creates failed; the others have tasks: one handle or None per input.
            for error in exc.exceptions:
                print(f"  input {getattr(error, 'index', '?')} not submitted: {error}")
            slots = list(exc.handles)
        print(f"submitted {tally.submitted} of {tally.total}")

        prompt_of = {h.task_id: prompt for h, prompt in zip(slots, PROMPTS, strict=True) if h}
        handles = [handle for handle in slots if handle is not None]
        async for handle in client.as_completed(handles):
            try:
                task = await handle  # finished already: returns (or raises) at once
                outcome = f"ok     {task.video_url}"
            except TaskFailed as exc:
                outcome = f"FAILED {exc.task.error} [{exc.task.error_code}]"
            eta = tally.eta()
            print(
                f"[{tally.finished}/{tally.total}] {outcome}\n"
                f"        {prompt_of[handle.task_id]!r}; still running {tally.running}, "
                f"queued {tally.queued}, eta {'?' if eta is None else f'{eta:.0f}s'}"
            )

    print(
        f"tally: submitted={tally.submitted} succeeded={tally.succeeded} "
        f"failed={tally.failed} lost={tally.lost} rejected={tally.rejected} "
        f"ambiguous={tally.ambiguous}"
    )


if __name__ == "__main__":
    asyncio.run(main())
