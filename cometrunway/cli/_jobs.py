"""Jobs and results: what each input line asked for, the task it became, and the runner
that submits, follows and downloads them, ``--concurrency`` creates at a time.

Input lines that ask for the very same request (same journal key) share one job: the
journal would return the same task for them anyway, and counting it once keeps the
progress bar and the ETA honest.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..client import Client
from ..errors import (
    AmbiguousSubmitError,
    AuthenticationError,
    CometRunwayError,
    EndpointError,
    JournalError,
    TaskFailed,
    TaskNotFound,
    UnjournaledTask,
)
from ..events import Event, Submitted
from ..models import Task
from ..protocol import LostTask
from ._common import CliError, ExitCode, write_jsonl_atomic
from ._credits import credits_summary
from ._display import Display
from ._rows import _FAILED, FINAL, Job, Row, jobs_from_items, plural, prepare_dir, shown_path

__all__ = [
    "FINAL",
    "Job",
    "Row",
    "Run",
    "jobs_from_items",
    "outcome",
    "plural",
    "prepare_dir",
    "records_of",
    "shown_path",
    "summarize",
    "write_results",
]

log = logging.getLogger("cometrunway.cli")


class Run:
    """Submits jobs (``concurrency`` at a time), follows their tasks, downloads outputs."""

    def __init__(
        self, display: Display, *, download_dir: Path | None = None, concurrency: int = 8
    ) -> None:
        self.display = display
        self.download_dir = download_dir
        self.concurrency = concurrency
        self.client: Client | None = None
        self.by_key: dict[str, Job] = {}
        self.single: Job | None = None
        self.fatal: CometRunwayError | None = None
        self.files = 0
        self._download_slots = asyncio.Semaphore(4)

    def register(self, jobs: Sequence[Job]) -> None:
        self.by_key.update((job.key, job) for job in jobs if job.key)
        self.single = jobs[0] if len(jobs) == 1 else None

    def on_event(self, event: Event) -> None:
        """The client's ``on_event`` hook (called inside the client: must not raise)."""
        try:
            if isinstance(event, Submitted):
                # A create still in flight at Ctrl-C is answered after the worker that sent
                # it was cancelled: this is how its row learns the task id.
                job = self.by_key.get(event.key or "") or (
                    self.single if event.key is None else None
                )
                if job is not None:
                    if job.task_id is None:
                        job.update(task_id=event.task_id, status="PENDING")
                    job.reused = job.reused or event.reused
            self.display.on_event(event)
        except Exception:
            log.exception("the progress display failed on %r", event)

    async def execute(
        self,
        client: Client,
        *,
        submit: Sequence[Job] = (),
        follow: Sequence[Job] = (),
        wait: bool = True,
    ) -> None:
        """Submit ``submit``, and follow those and ``follow`` to the end (unless not
        ``wait``). Returns once every job is settled."""
        self.client = client
        pending = iter(submit)
        async with asyncio.TaskGroup() as group:

            async def worker() -> None:
                for job in pending:
                    if self.fatal is not None:
                        return  # the key or URL is wrong: every other create would fail too
                    await self._submit(client, job)
                    if wait and job.handle is not None:
                        group.create_task(self._follow(job))

            for job in follow:
                group.create_task(self._follow(job))
            for _ in range(min(self.concurrency, len(submit))):
                group.create_task(worker())

    async def _submit(self, client: Client, job: Job) -> None:
        assert job.request is not None
        try:
            handle = await client.submit(job.request, key=job.user_key, label=job.label)
        except AmbiguousSubmitError as exc:
            job.key = exc.key or job.key
            job.update(status="AMBIGUOUS", error=str(exc))
        except UnjournaledTask as exc:
            # Created, but the journal (full disk?) could not record it: the id goes into the
            # results and is followed; no more creates, since the journal cannot keep its
            # promise not to pay twice.
            job.handle = client.track(exc.task_id, route=job.request.poll_route)
            job.update(task_id=exc.task_id, status=job.handle.status.value, error=str(exc))
            self.fatal = exc
        except JournalError:
            raise  # without a journal we cannot promise not to pay twice: stop
        except CometRunwayError as exc:
            if isinstance(exc, AuthenticationError | EndpointError):
                self.fatal = exc
            job.update(status="REJECTED", error=str(exc), error_code=getattr(exc, "code", None))
        else:
            job.handle = handle
            job.update(task_id=handle.task_id, status=handle.status.value)

    async def _follow(self, job: Job) -> None:
        handle = job.handle
        assert handle is not None
        if job.task_id is None:
            job.update(task_id=handle.task_id)
        try:
            task = await handle
        except TaskFailed as exc:
            job.finish(exc.task)
            return
        except CometRunwayError as exc:  # unknown id, or polling refused
            if isinstance(exc, AuthenticationError):
                self.fatal = exc
            job.update(
                status=(
                    LostTask.NOT_FOUND if isinstance(exc, TaskNotFound) else LostTask.LOST
                ).value,
                error=str(exc),
                error_code=getattr(exc, "code", None),
            )
            return
        job.finish(task)
        if self.download_dir is not None:
            await self._download(job, task)

    async def _download(self, job: Job, task: Task) -> None:
        assert self.client is not None
        assert self.download_dir is not None
        async with self._download_slots:
            self.display.download_started(task.task_id)
            try:
                paths = already_saved(task, self.download_dir) or await self.client.download(
                    task, self.download_dir
                )
            except (CometRunwayError, OSError, ValueError) as exc:
                job.update(download_error=str(exc))
                self.display.on_download(task.task_id, None, str(exc))
            else:
                shown = [Path(shown_path(path)) for path in paths]
                job.update(files=[str(path) for path in shown])
                self.files += len(paths)
                self.display.on_download(task.task_id, shown, None)


def already_saved(task: Task, folder: Path) -> list[Path]:
    """The files an earlier run saved for ``task`` in ``folder``; empty unless its main
    output is there. A rerun or a resume then downloads nothing twice. (Files are written
    under their final name only once complete, so one that exists is whole.)"""
    from ..download import output_filename

    roles = [
        ("video", task.outputs[0] if task.outputs else task.video_url),
        ("poster", task.poster_url),
        ("last_frame", task.last_frame_url),
    ]
    paths = [folder / output_filename(task.task_id, url, role) for role, url in roles if url]
    if not paths or not paths[0].is_file():
        return []
    return [path for path in paths if path.is_file()]


def summarize(
    jobs: Sequence[Job],
    *,
    started: float,
    download_dir: Path | None,
    results: Path | None,
    journal: str | None,
    files: int,
) -> dict[str, Any]:
    counts = dict.fromkeys(
        ("succeeded", "failed", "lost", "rejected", "ambiguous", "running", "not_submitted"), 0
    )
    names = {
        "SUCCEEDED": "succeeded",
        "FAILED": "failed",
        "CANCELLED": "failed",
        LostTask.LOST: "lost",
        LostTask.NOT_FOUND: "lost",
        "REJECTED": "rejected",
        "AMBIGUOUS": "ambiguous",
        "NOT_SUBMITTED": "not_submitted",
    }
    for job in jobs:
        counts[names.get(job.status, "running")] += 1
    return {
        "requests": len(jobs),
        **counts,
        "reused": sum(job.reused for job in jobs),
        "download_dir": shown_path(download_dir) if download_dir else None,
        "files": files,
        "download_failed": sum(job.rows[0].download_error is not None for job in jobs),
        "results": str(results) if results else None,
        "journal": journal,
        "seconds": round(time.monotonic() - started, 3),
        **credits_summary(job.handle for job in jobs),
    }


def outcome(jobs: Sequence[Job], *, ambiguous: int = 0) -> ExitCode:
    if ambiguous or any(job.status == "AMBIGUOUS" for job in jobs):
        return ExitCode.AMBIGUOUS
    if any(
        job.status in _FAILED or job.status == "NOT_SUBMITTED" or job.rows[0].download_error
        for job in jobs
    ):
        return ExitCode.FAILED
    return ExitCode.OK


def records_of(jobs: Sequence[Job]) -> list[dict[str, Any]]:
    for job in jobs:
        job.refresh()
    rows = [row for job in jobs for row in job.rows]
    rows.sort(key=lambda row: row.line if row.line is not None else 0)
    return [row.record() for row in rows]


def write_results(path: Path, records: Sequence[Mapping[str, Any]]) -> None:
    try:
        write_jsonl_atomic(path, records)
    except OSError as exc:
        raise CliError(
            f"cannot write the results to {path}: {exc.strerror}", ExitCode.FAILED
        ) from None
