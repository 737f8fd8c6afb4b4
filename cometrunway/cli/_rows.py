"""What each input line asked for and the task it became: ``Row`` (one line) and ``Job``
(the lines asking for the very same request, sharing one task), and the final statuses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ..handles import TaskHandle
from ..models import Request, Task
from ..protocol import LostTask
from ._common import CliError, ExitCode
from ._inputs import Item, journal_key

# Statuses after which a result row no longer changes.
FINAL = frozenset(
    {"SUCCEEDED", "FAILED", "CANCELLED", LostTask.LOST, LostTask.NOT_FOUND, "REJECTED", "AMBIGUOUS"}
)
_FAILED = frozenset({"FAILED", "CANCELLED", LostTask.LOST, LostTask.NOT_FOUND, "REJECTED"})


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def shown_path(path: Path) -> str:
    """Relative to the working folder when it is inside it: shorter to read and to paste."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def prepare_dir(value: str | None) -> Path | None:
    """The download folder, created now: a bad path fails before anything is paid for."""
    if value is None:
        return None
    path = Path(value).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(
            f"cannot use {path} as the download folder: {exc.strerror}", ExitCode.USAGE
        ) from None
    return path


# ---------------------------------------------------------------- results


@attrs.define(eq=False)
class Row:
    """One line of the results file: an input line (or journal row) and what became of it."""

    line: int | None = None
    fields: Mapping[str, Any] | None = None
    key: str | None = None
    label: str | None = None
    request_type: str | None = None
    task_id: str | None = None
    status: str = "NOT_SUBMITTED"
    progress: float | None = None
    outputs: list[str] = attrs.Factory(list)
    error: str | None = None
    error_code: str | None = None
    files: list[str] = attrs.Factory(list)
    download_error: str | None = None

    def record(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "input": self.fields,
            "key": self.key,
            "label": self.label,
            "type": self.request_type,
            "task_id": self.task_id,
            "status": self.status,
            "progress": self.progress,
            "outputs": self.outputs,
            "error": self.error,
            "error_code": self.error_code,
            "files": self.files,
            "download_error": self.download_error,
        }


@attrs.define(eq=False)
class Job:
    """One request (or task) to run; input lines asking for the same request share it."""

    label: str
    rows: list[Row]
    request: Request | None = None
    key: str | None = None  # the journal key, to match a late ``Submitted`` event
    user_key: str | None = None  # what ``submit(key=...)`` gets
    handle: TaskHandle | None = None
    reused: bool = False

    @property
    def status(self) -> str:
        return self.rows[0].status

    @property
    def task_id(self) -> str | None:
        return self.rows[0].task_id

    def update(self, **changes: Any) -> None:
        for row in self.rows:
            for name, value in changes.items():
                setattr(row, name, value)

    def finish(self, task: Task) -> None:
        self.update(
            task_id=task.task_id,
            status=task.status.value,
            progress=task.progress,
            outputs=list(task.all_urls),
            error=task.error,
            error_code=task.error_code,
        )

    def refresh(self) -> None:
        """Rows of a task still running take the handle's latest snapshot."""
        if self.handle is not None and self.status not in FINAL:
            self.update(status=self.handle.status.value, progress=self.handle.progress)


def jobs_from_items(items: Sequence[Item]) -> tuple[list[Job], list[str]]:
    """One job per distinct request, and notes about lines that repeat one."""
    by_key: dict[str, Job] = {}
    for item in items:
        row = Row(
            line=item.line,
            fields=item.fields,
            key=item.journal_key,
            label=item.label,
            request_type=type(item.request).__name__,
        )
        job = by_key.get(item.journal_key)
        if job is None:
            by_key[item.journal_key] = Job(
                label=item.label,
                rows=[row],
                request=item.request,
                key=item.journal_key,
                user_key=item.key,
            )
        elif job.request is not None and journal_key(item.request, None) != journal_key(
            job.request, None
        ):
            raise CliError(
                f"lines {job.rows[0].line} and {item.line} give the key {item.journal_key!r} "
                "to different requests: a key names one request; give each its own key",
                ExitCode.USAGE,
            )
        else:
            job.rows.append(row)
    notes = []
    for job in by_key.values():
        if len(job.rows) > 1:
            lines = ", ".join(str(row.line) for row in job.rows)
            notes.append(
                f"note: lines {lines} ask for the same request: one task serves them all "
                '(give each a distinct "key" to pay for each on purpose)'
            )
    return list(by_key.values()), notes
