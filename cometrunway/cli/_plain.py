"""The displays without rich: the common ``Display`` (a ``BatchTally`` and per-task
state), ``PlainDisplay`` (log lines), ``QuietDisplay`` (``--quiet``) and ``JsonDisplay``
(``--json``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ..events import (
    AmbiguousSubmit,
    BatchTally,
    Event,
    StatusChanged,
    SubmitRejected,
    Submitted,
    TaskFinished,
    TaskLost,
)
from ..models import TaskStatus
from ._common import emit_json, note, say, task_json
from ._credits import credits_line
from ._eta import progress_eta


def _clock() -> str:
    return time.strftime("%H:%M:%S")


def duration(seconds: float | None) -> str:
    """``1:05`` / ``1:02:03``; ``?`` when unknown."""
    if seconds is None:
        return "?"
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@attrs.define
class _Running:
    """What a display remembers of one task still going."""

    status: TaskStatus
    seen: float
    progress: float | None = None
    at: float = 0.0
    rate: float | None = None  # progress per second, from the last two different readings


class Display:
    """The common part: a ``BatchTally`` and per-task state, fed with client events.

    ``on_event`` is called from the client's ``on_event`` hook; ``on_download`` by the
    runner; ``finish`` once, with the result records, after the work is over.
    """

    def __init__(self, total: int, title: str) -> None:
        self.tally = BatchTally(total)
        self.title = title
        self.labels: dict[str, str] = {}
        self.running: dict[str, _Running] = {}
        # Tasks that ended, possibly before the command got to track() them (resume: the
        # handles poll from the start): they must not come back as "queued" rows.
        self.ended: set[str] = set()
        self.downloads_done = 0
        self.downloads_failed = 0
        self.downloading = 0
        self.started = time.monotonic()
        self.active = False

    def who(self, task_id: str) -> str:
        """``task_id  label``, or the id alone when the label is the id (wait, download)."""
        label = self.labels.get(task_id, task_id)
        return task_id if label == task_id else f"{task_id}  {label}"

    def start(self) -> None:
        self.started = time.monotonic()
        self.active = True

    def stop(self) -> None:
        self.active = False

    def on_event(self, event: Event) -> None:
        self.tally.add(event)
        now = time.monotonic()
        if isinstance(event, Submitted):
            if event.label:
                self.labels.setdefault(event.task_id, event.label)
            self.running[event.task_id] = _Running(TaskStatus.PENDING, now)
        elif isinstance(event, StatusChanged):
            state = self.running.setdefault(event.task_id, _Running(event.status, now))
            state.status = event.status
            if event.progress is not None:
                if state.progress is not None and event.progress > state.progress:
                    state.rate = (event.progress - state.progress) / max(now - state.at, 1e-3)
                state.progress, state.at = event.progress, now
        elif isinstance(event, TaskFinished | TaskLost):
            self.running.pop(event.task_id, None)
            self.ended.add(event.task_id)

    def shown_progress(self, state: _Running, now: float) -> float | None:
        """The last progress seen, carried forward at its last rate (never past 99%)."""
        if state.progress is None:
            return None
        if state.rate is None:
            return state.progress
        return min(0.99, state.progress + state.rate * (now - state.at))

    def track(self, task_id: str, label: str) -> None:
        """A task followed without a ``Submitted`` event (resume, wait)."""
        self.labels[task_id] = label
        if task_id not in self.ended:
            self.running.setdefault(task_id, _Running(TaskStatus.PENDING, time.monotonic()))

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left: from finished tasks' rate once any finished, else from the
        progress readings of the running ones; None when nothing says yet."""
        t = self.tally
        known = t.eta()
        if known is not None:
            return known
        now = time.monotonic() if now is None else now
        return progress_eta(list(self.running.values()), left=t.total - t.settled, now=now)

    def download_started(self, task_id: str) -> None:
        self.downloading += 1

    def on_download(self, task_id: str, paths: Sequence[Path] | None, error: str | None) -> None:
        self.downloading -= 1
        if error is None:
            self.downloads_done += 1
        else:
            self.downloads_failed += 1

    def finish(self, records: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> None:
        say(summary_line(summary))


def summary_line(summary: Mapping[str, Any]) -> str:
    parts = [f"{summary.get('succeeded', 0)} succeeded"]
    for name in ("failed", "lost", "rejected", "ambiguous", "not_submitted"):
        count = summary.get(name, 0)
        if count:
            parts.append(f"{count} {name.replace('_', ' ')}")
    reused = summary.get("reused", 0)
    if reused:
        parts.append(f"{reused} already in the journal (not paid again)")
    line = f"done in {duration(summary.get('seconds'))}: " + ", ".join(parts)
    if summary.get("download_dir"):
        failed = summary.get("download_failed", 0)
        line += f"\nfiles: {summary.get('files', 0)} in {summary['download_dir']}" + (
            f" ({failed} download{'s' if failed != 1 else ''} failed)" if failed else ""
        )
    if summary.get("results"):
        line += f"\nresults: {summary['results']}"
    credits = credits_line(summary)
    return line + f"\n{credits}" if credits else line


# ---------------------------------------------------------------- JSON lines


def event_json(event: Event, label: str | None = None) -> dict[str, Any]:
    """A client event as a JSON object with an ``event`` field naming its kind."""
    if isinstance(event, Submitted):
        return {
            "event": "submitted",
            "task_id": event.task_id,
            "key": event.key,
            "type": event.request_type,
            "label": event.label or label,
            "reused": event.reused,
        }
    if isinstance(event, StatusChanged):
        return {
            "event": "status",
            "task_id": event.task_id,
            "status": event.status.value,
            "progress": event.progress,
        }
    if isinstance(event, TaskFinished):
        return {"event": "finished", "label": label, **task_json(event.task)}
    if isinstance(event, TaskLost):
        return {
            "event": "lost",
            "task_id": event.task_id,
            "label": label,
            "error": str(event.error),
        }
    kind = "ambiguous" if isinstance(event, AmbiguousSubmit) else "rejected"
    return {
        "event": kind,
        "key": event.key,
        "type": event.request_type,
        "label": event.label,
        "error": str(event.error),
    }


class JsonDisplay(Display):
    """``--json``: events, downloads, results and a summary as JSON lines on stdout."""

    def on_event(self, event: Event) -> None:
        super().on_event(event)
        task_id = getattr(event, "task_id", None)
        emit_json(event_json(event, self.labels.get(task_id) if task_id else None))

    def on_download(self, task_id: str, paths: Sequence[Path] | None, error: str | None) -> None:
        super().on_download(task_id, paths, error)
        if error is None:
            emit_json({"event": "downloaded", "task_id": task_id, "files": list(paths or ())})
        else:
            emit_json({"event": "download_failed", "task_id": task_id, "error": error})

    def finish(self, records: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> None:
        for record in records:
            emit_json({"event": "result", **record})
        emit_json({"event": "summary", **summary})


# ---------------------------------------------------------------- plain lines


class PlainDisplay(Display):
    """Log lines on stdout, for files, pipes and CI logs."""

    def __init__(self, total: int, title: str, *, every: float = 10.0) -> None:
        super().__init__(total, title)
        self.every = every
        self._ticker: asyncio.Task[None] | None = None

    def start(self) -> None:
        super().start()
        say(f"{_clock()} {self.title}")
        if self.tally.total > 1:
            self._ticker = asyncio.get_running_loop().create_task(self._tick())

    def stop(self) -> None:
        super().stop()
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            say(f"{_clock()} {self.progress_line()}")

    def progress_line(self) -> str:
        t = self.tally
        line = (
            f"{t.settled}/{t.total} done · {t.queued} queued · {t.running} running · "
            f"{t.succeeded} succeeded · {t.failed + t.lost} failed"
        )
        if self.downloads_done or self.downloading:
            line += f" · {self.downloads_done} downloaded"
        eta = self.eta()
        return line + (f" · ETA {duration(eta)}" if eta else "")

    def on_event(self, event: Event) -> None:
        super().on_event(event)
        if not self.active or isinstance(event, StatusChanged):
            return
        line = self._line(event)
        if line:
            say(f"{_clock()} {line}")

    def _line(self, event: Event) -> str:
        if isinstance(event, Submitted):
            what = "reused   " if event.reused else "submitted"
            tail = "  (already in the journal: not paid again)" if event.reused else ""
            count = f"[{self.tally.submitted}/{self.tally.total}]"
            return f"{what} {count} {self.who(event.task_id)}{tail}"
        if isinstance(event, TaskFinished):
            task = event.task
            if event.succeeded:
                url = task.video_url or (task.outputs[0] if task.outputs else "")
                return f"succeeded {self.who(task.task_id)}  {url}".rstrip()
            code = f" [{task.error_code}]" if task.error_code else ""
            reason = task.error or "no reason given"
            word = event.status.value.lower()
            return f"{word:<9} {self.who(task.task_id)}: {reason}{code}"
        if isinstance(event, TaskLost):
            return f"lost      {self.who(event.task_id)}: {event.error}"
        if isinstance(event, AmbiguousSubmit):
            return f"ambiguous {event.label or event.key}: {event.error}"
        if isinstance(event, SubmitRejected):
            return f"rejected  {event.label or event.key}: {event.error}"
        return ""

    def on_download(self, task_id: str, paths: Sequence[Path] | None, error: str | None) -> None:
        super().on_download(task_id, paths, error)
        if error is not None:
            say(f"{_clock()} download failed {task_id}: {error}")
            return
        files = list(paths or ())
        more = f" (+{len(files) - 1} more)" if len(files) > 1 else ""
        say(f"{_clock()} saved     {task_id}  {files[0] if files else '-'}{more}")


class QuietDisplay(Display):
    """``--quiet``: no view, no progress lines, no summary on success; one summary line on
    stderr when something failed. Results files and exit codes are as usual."""

    def finish(self, records: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> None:
        if summary.get("exit_code"):
            note(summary_line(summary))
