"""Capture the CLI's live batch view as an SVG for the docs: docs/_static/live-view.svg.

    python docs/diagrams/live_view.py [--out docs/_static/live-view.svg]

A real run, not a drawing: a batch of tasks is submitted to ``FakeCometAPI`` on 127.0.0.1
and followed by a client whose events feed the CLI's ``LiveDisplay`` (the view
``cometrunway batch`` shows on a terminal). The fake runs on a clock this script moves, so
the moment captured is the same on every run: some tasks done, one failed, some running
with progress, some still queued. rich records the view and exports it as SVG.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rich.console import Console

from cometrunway import Client, PollPolicy, TextToVideo
from cometrunway.cli._display import LiveDisplay
from cometrunway.events import BatchTally
from cometrunway.testing import FakeCometAPI, Lifecycle

OUT = Path(__file__).resolve().parent.parent / "_static" / "live-view.svg"
WIDTH = 96  # columns: wide enough for the task table, narrow enough for a docs page
WAIT_LIMIT = 30.0  # seconds the polls may take to bring the view up to date
CAPTURE_AT = 40.0  # seconds into the batch (the fake's clock) when the view is captured

# (prompt, seconds queued, seconds running, how it ends)
BATCH = [
    ("a red fox running through fresh snow", 2, 20, "succeed"),
    ("waves breaking on black volcanic sand", 3, 25, "succeed"),
    ("a paper boat drifting down a rain gutter", 2, 30, "succeed"),
    ("timelapse of clouds over a mountain lake", 4, 30, "fail"),
    ("a hummingbird hovering at a red flower", 5, 40, "succeed"),
    ("city lights reflected in a wet street", 6, 50, "succeed"),
    ("steam rising from a cup of coffee at dawn", 8, 60, "succeed"),
    ("an astronaut planting a tree on the moon", 10, 70, "succeed"),
    ("a lighthouse in a storm, waves crashing", 12, 80, "succeed"),
    ("autumn leaves falling in slow motion", 45, 40, "succeed"),
    ("a cat chasing a laser dot across a rug", 50, 40, "succeed"),
    ("northern lights over a frozen fjord", 55, 40, "succeed"),
]
POLL = PollPolicy(initial_delay=0, interval=0.01, min_interval=0.005, max_interval=0.05, jitter=0)


_FONT_FACE = re.compile(r"@font-face\s*\{[^}]*\}")


class FakeTime:
    """The fake's clock: it moves only when the script says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def lifecycle_for(body: Mapping[str, Any]) -> Lifecycle | None:
    prompt = body.get("prompt") or body.get("promptText")
    for text, queued, running, outcome in BATCH:
        if text == prompt:
            life = Lifecycle.by_time(queued, running)
            if outcome == "fail":
                life = life.failing("The prompt was flagged by moderation.", "SAFETY.INPUT.TEXT")
            return life
    return None


def _expected(at: float) -> tuple[int, int]:
    """(tasks ended, tasks running) at ``at`` seconds into the batch."""
    ended = sum(1 for _, queued, running, _ in BATCH if queued + running <= at)
    running = sum(1 for _, queued, running, _ in BATCH if queued <= at < queued + running)
    return ended, running


def _settled(display: LiveDisplay, moved: float) -> bool:
    """Whether the view shows the batch as it stands at CAPTURE_AT: every end seen, and
    every running task's progress read after the clock moved."""
    tally = display.tally
    if (tally.succeeded + tally.failed, tally.running) != _expected(CAPTURE_AT):
        return False
    running = [s for s in display.running.values() if s.status.value == "RUNNING"]
    return all(s.progress is not None and s.at >= moved for s in running)


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT_LIMIT):
        while not condition():  # noqa: ASYNC110 - the display offers no event to wait on
            await asyncio.sleep(0.01)


async def capture() -> str:
    fake_time = FakeTime()
    display = LiveDisplay(len(BATCH), "cometrunway batch prompts.txt")
    display.console = Console(
        record=True, width=WIDTH, file=io.StringIO(), force_terminal=True, color_system="truecolor"
    )
    display.tally = BatchTally(len(BATCH), clock=fake_time)
    display.active = True  # events are recorded; no live refresh thread is started
    async with (
        FakeCometAPI(clock=fake_time, lifecycle_for=lifecycle_for) as fake,
        Client(
            "sk-docs-capture-0123456789", base_url=fake.url, poll=POLL, on_event=display.on_event
        ) as client,
    ):
        began = time.monotonic()
        handles = [await client.submit(TextToVideo(prompt), label=prompt) for prompt, *_ in BATCH]
        fake_time.now = CAPTURE_AT
        moved = time.monotonic()
        for handle in handles:
            client.wake(handle.task_id)
        await _until(lambda: _settled(display, moved))
        # The view times tasks with the real clock: show the batch's own times, and each
        # bar at its reading (the view would carry it forward at a rate in real seconds).
        shift = CAPTURE_AT - (time.monotonic() - began)
        display.started = began - shift
        for state in display.running.values():
            state.seen -= shift
            state.rate = None
        display.console.print(display._render())
    svg = display.console.export_svg(title="cometrunway batch prompts.txt")
    # rich links its web font from a CDN; the docs' copy stays self-contained (monospace).
    return _FONT_FACE.sub("", svg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    svg = asyncio.run(capture())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(svg, encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
