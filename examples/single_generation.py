"""One text-to-video generation: submit, print progress while awaiting, download.

Shows ``Client.submit``, the awaitable ``TaskHandle``, progress from ``on_event``, a
deadline with ``asyncio.timeout`` and ``TaskHandle.download``.

    python examples/single_generation.py [OUTPUT_DIR]

Without ``COMETAPI_KEY`` in the environment it runs against an in-process
``FakeCometAPI`` (no network, nothing to pay). With ``COMETAPI_KEY`` set it makes ONE real,
billed generation on CometAPI. Files go to OUTPUT_DIR (default: a new temporary folder).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from cometrunway import Client, PollPolicy, TaskFailed, TextToVideo
from cometrunway.events import Event, StatusChanged, TaskFinished
from cometrunway.testing import FakeCometAPI, Lifecycle


@contextlib.asynccontextmanager
async def open_client(**options: Any) -> AsyncIterator[Client]:
    """The real API when COMETAPI_KEY is set, else a client on an in-process fake."""
    if os.environ.get("COMETAPI_KEY"):
        async with Client.from_env(**options) as client:
            yield client
        return
    print("COMETAPI_KEY is not set: using an in-process FakeCometAPI")
    # A short scripted life (queued 0.3 s, running 1.5 s) and a fast poll policy.
    fake_api = FakeCometAPI(lifecycle=Lifecycle.by_time(queued=0.3, running=1.5))
    fast = PollPolicy(initial_delay=0.1, interval=0.25, max_interval=0.5, min_interval=0.05)
    async with fake_api as fake:
        client = Client("demo-key", base_url=fake.url, poll=fast, **options)
        async with client:
            yield client


async def main(out_dir: Path | None) -> None:
    started = time.monotonic()

    def show(event: Event) -> None:
        # Called for every event; print this demo's status changes as they are polled.
        elapsed = time.monotonic() - started
        if isinstance(event, StatusChanged):
            percent = "" if event.progress is None else f" {event.progress:.0%}"
            print(f"  [{elapsed:5.1f}s] {event.status.value}{percent}")
        elif isinstance(event, TaskFinished):
            print(f"  [{elapsed:5.1f}s] {event.status.value}")

    async with open_client(on_event=show) as client:
        request = TextToVideo("a paper boat drifting on a calm lake at dawn", seconds=5)
        handle = await client.submit(request)
        print(f"created task {handle.task_id}")
        try:
            async with asyncio.timeout(15 * 60):  # a deadline for our wait, not for the task
                task = await handle
        except TaskFailed as exc:
            print(f"generation failed: {exc.task.error} [{exc.task.error_code}]")
            raise SystemExit(1) from exc
        except TimeoutError:
            print(
                f"still {handle.status.value} after 15 minutes; follow it later with "
                f"client.track({handle.task_id!r})"
            )
            raise SystemExit(1) from None
        print(f"video: {task.video_url}")
        with contextlib.ExitStack() as stack:
            if out_dir is None and os.environ.get("COMETAPI_KEY"):
                out_dir = Path("runway-output")
            elif out_dir is None:
                out_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            paths = await handle.download(out_dir)
            for path in paths:
                print(f"saved {path} ({path.stat().st_size} bytes)")
        print(f"done: {len(paths)} file(s) downloaded")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
