"""Crash in the middle of a journaled batch, then resume it without paying twice.

Run 1 happens in a child process. It submits three prompts with ``Client(journal=...)`` and
is killed (``os._exit``, no cleanup at all) as soon as two creates have been answered, while
the third is still on the wire. Run 2 opens a new client on the same journal file:

* ``client.resume()`` follows the two tasks whose ids were journaled;
* ``client.ambiguous()`` lists the create that was in flight: it may or may not have made a
  task, so submitting it again raises ``AmbiguousSubmitError``;
* ``client.settle(key, task_id=...)`` attaches the task once you have found it;
* submitting the whole batch again sends nothing: every request already has its task.

    python examples/resume_after_crash.py

Without ``COMETAPI_KEY`` both runs talk to one in-process ``FakeCometAPI``, which holds the
third create long enough for the crash and counts the tasks created: 3, not 4 or more. With
``COMETAPI_KEY`` set it makes THREE real, billed generations, journaled in
``resume_after_crash.sqlite`` in the current folder: an ambiguous create is left there for
you to settle, and running the demo again pays for nothing new.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from cometrunway import (
    AmbiguousSubmitError,
    BatchSubmitError,
    Client,
    PollPolicy,
    TaskFailed,
    TaskHandle,
    TextToVideo,
)
from cometrunway.events import Event, Submitted
from cometrunway.testing import FakeCometAPI, Fault, Lifecycle

PROMPTS = [
    "a koi pond in the rain, top-down",
    "a train crossing a snowy viaduct at night",
    "a time-lapse of clouds over a mountain ridge",
]
FAST = PollPolicy(initial_delay=0.1, interval=0.25, max_interval=0.5, min_interval=0.05)
REAL = bool(os.environ.get("COMETAPI_KEY"))


def make_client(
    base_url: str | None, journal: Path, on_event: Callable[[Event], object] | None = None
) -> Client:
    """The real API when COMETAPI_KEY is set, else the fake at ``base_url``."""
    if REAL:
        return Client.from_env(journal=journal, on_event=on_event)
    assert base_url is not None
    return Client("demo-key", base_url=base_url, journal=journal, poll=FAST, on_event=on_event)


# ---------------------------------------------------------------- run 1 (child process)


async def crashing_run(base_url: str | None, journal: Path) -> None:
    answered = 0

    def on_event(event: Event) -> None:
        nonlocal answered
        if isinstance(event, Submitted):
            answered += 1
            print(f"created {event.task_id} (journaled)", flush=True)
            if answered == 2:
                print("crashing now, with a create still in flight", flush=True)
                os._exit(3)  # like SIGKILL or a power cut: no cleanup, no close()

    async with make_client(base_url, journal, on_event=on_event) as client:
        await client.submit_many([TextToVideo(p) for p in PROMPTS], max_concurrency=3)
        await asyncio.sleep(30)  # not reached in the demo: the process dies first


# ---------------------------------------------------------------- run 2 (this process)


async def run_child(base_url: str | None, journal: Path) -> int:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--crashing-run",
        base_url or "-",
        str(journal),
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    async for line in child.stdout:
        print(f"  run 1 | {line.decode().rstrip()}")
    return await child.wait()


async def find_task_for(fake: FakeCometAPI | None, body: str) -> str | None:
    """Stand-in for looking the task up by hand (the CometAPI dashboard, your logs)."""
    if fake is None:
        return None
    prompt = json.loads(body)["prompt"]
    for task in fake.tasks.values():
        if task.body.get("prompt") == prompt:
            return task.task_id
    return None


async def resume(base_url: str | None, journal: Path, fake: FakeCometAPI | None) -> None:
    requests = [TextToVideo(p) for p in PROMPTS]
    async with make_client(base_url, journal) as client:
        assert client.journal is not None
        print(f"journal after the crash: {await client.journal.counts()}")

        resumed = await client.resume()
        print(f"resume(): following {len(resumed)} journaled task(s) again")

        for entry in await client.ambiguous():
            prompt = json.loads(entry.body)["prompt"]
            print(f"ambiguous ({entry.state.value}): {prompt!r}")
            try:
                await client.submit(requests[PROMPTS.index(prompt)])
            except AmbiguousSubmitError:
                print("  submitting it again is refused until it is settled")
            task_id = await find_task_for(fake, entry.body)
            if task_id is None:
                print(
                    f"  find its task in your dashboard, then: "
                    f"client.settle({entry.key!r}, task_id=...)"
                )
                continue
            await client.settle(entry.key, task_id=task_id)
            print(f"  found task {task_id} on the server: settled, now followed")

        # The whole batch again, as a restarted job would do it: nothing is sent twice.
        try:
            slots: list[TaskHandle | None] = list(await client.submit_many(requests))
        except BatchSubmitError as exc:
            slots = list(exc.handles)  # None where a row still waits to be settled
        handles = [handle for handle in slots if handle is not None]
        async for handle in client.as_completed(handles):
            try:
                task = await handle
            except TaskFailed as exc:
                print(f"failed {handle.task_id}: {exc.task.error}")
            else:
                print(f"finished {task.task_id}: {task.video_url}")
        print(f"journal at the end: {await client.journal.counts()}")


async def main() -> None:
    if REAL:
        journal = Path.cwd() / "resume_after_crash.sqlite"  # kept: it holds what you paid for
        code = await run_child(None, journal)
        print(f"run 1 died with exit code {code}; run 2 reopens {journal}")
        await resume(None, journal, None)
        return
    with tempfile.TemporaryDirectory(prefix="runway-journal-") as folder:
        journal = Path(folder) / "run.sqlite"
        print("COMETAPI_KEY is not set: using an in-process FakeCometAPI")
        lifecycle = Lifecycle.by_time(queued=0.3, running=1.0)
        async with FakeCometAPI(lifecycle=lifecycle) as fake:
            # Hold the first create to arrive for a second: the client dies meanwhile, and
            # the fake then creates the task anyway (the bytes did reach the server).
            fake.inject("submit", Fault.delay(1.0))
            code = await run_child(fake.url, journal)
            print(f"run 1 died with exit code {code}; run 2 reopens {journal.name}")
            async with asyncio.timeout(10):  # the held create lands about 1 s later
                while fake.created_count() < len(PROMPTS):  # noqa: ASYNC110 - no event for it
                    await asyncio.sleep(0.05)
            await resume(fake.url, journal, fake)
            created = fake.created_count()
            print(
                f"tasks created on the server: {created} for {len(PROMPTS)} prompts "
                f"({'nothing paid twice' if created == len(PROMPTS) else 'DOUBLE PAY'})"
            )
            if created != len(PROMPTS):
                raise SystemExit(1)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--crashing-run":
        url = None if sys.argv[2] == "-" else sys.argv[2]
        asyncio.run(crashing_run(url, Path(sys.argv[3])))
    else:
        asyncio.run(main())
