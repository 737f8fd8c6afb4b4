"""The live rich view (``LiveDisplay``); rich is imported only when one is made."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TextIO, cast

from ..events import (
    AmbiguousSubmit,
    Event,
    SubmitRejected,
    TaskFinished,
    TaskLost,
)
from ..models import TaskStatus
from ._common import printable, redact
from ._plain import Display, duration, summary_line

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live


class _Redacting:
    """The stream rich writes to: the real stdout (held, not looked up, since the live view
    swaps ``sys.stdout`` for a proxy that writes back here), with secrets redacted."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(redact(text))

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"


_STATUS_WIDTH = len("CANCELLED")  # the longest status word (AMBIGUOUS is as long)
_TASK_MIN = 12  # enough of a UUID to tell tasks apart
_TASK_MAX = 36  # a whole UUID
_REQUEST_MIN = 12
_COLUMN_GAP = 2


class LiveDisplay(Display):
    """A live rich view on stdout; requires rich (the ``cli`` extra)."""

    TOP = 6  # running tasks shown with their own bar

    def __init__(self, total: int, title: str) -> None:
        super().__init__(total, title)
        from rich.console import Console

        stream = cast("IO[str]", _Redacting(sys.stdout))
        self.console: Console = Console(file=stream, force_terminal=True)
        self._live: Live | None = None

    def start(self) -> None:
        from rich.live import Live

        super().start()
        self._live = Live(
            console=self.console,
            get_renderable=self._render,
            refresh_per_second=8,
            transient=False,
            # Diagnostics print above the view when they share its terminal; redirected to
            # a file, stderr is left alone.
            redirect_stderr=sys.stderr.isatty(),
        )
        self._live.start()

    def stop(self) -> None:
        super().stop()
        if self._live is not None:
            with contextlib.suppress(Exception):
                self._live.refresh()
            self._live.stop()
            self._live = None

    def on_event(self, event: Event) -> None:
        from rich.text import Text

        super().on_event(event)
        if not self.active:
            return
        # Outcomes that need attention are printed above the live view, so they stay.
        # Text objects, not markup: messages may hold brackets ("[SAFETY.INPUT.TEXT]").
        if isinstance(event, TaskFinished) and not event.succeeded:
            task = event.task
            code = f" [{task.error_code}]" if task.error_code else ""
            reason = f"{task.error or 'no reason given'}{code}"
            self.console.print(
                Text.assemble(
                    (event.status.value.lower(), "red"),
                    printable(f" {self.who(task.task_id)}: {reason}"),
                )
            )
        elif isinstance(event, TaskLost):
            self.console.print(
                Text.assemble(
                    ("lost", "red"), printable(f" {self.who(event.task_id)}: {event.error}")
                )
            )
        elif isinstance(event, AmbiguousSubmit | SubmitRejected):
            word = "ambiguous" if isinstance(event, AmbiguousSubmit) else "rejected"
            name = event.label or event.key
            self.console.print(Text.assemble((word, "red"), printable(f" {name}: {event.error}")))

    def _render(self) -> RenderableType:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        t = self.tally
        now = time.monotonic()
        elapsed = now - self.started
        head = Table.grid(padding=(0, 1))
        head.add_row(
            ProgressBar(total=max(t.total, 1), completed=t.settled, width=40),
            Text(f"{t.settled}/{t.total}", style="bold"),
            Text(f"{elapsed:>5.0f}s", style="dim"),
            Text(f"ETA {duration(self.eta(now))}" if t.settled < t.total else "done", style="cyan"),
        )
        counts = Text.assemble(
            ("queued ", "dim"),
            (str(t.queued), "yellow"),
            ("  running ", "dim"),
            (str(t.running), "blue"),
            ("  succeeded ", "dim"),
            (str(t.succeeded), "green"),
            ("  failed ", "dim"),
            (str(t.failed + t.lost), "red" if t.failed + t.lost else "dim"),
        )
        for name, count in (("rejected", t.rejected), ("ambiguous", t.ambiguous)):
            if count:
                counts.append(f"  {name} ", "dim")
                counts.append(str(count), "red")
        if t.reused:
            counts.append("  reused ", "dim")
            counts.append(str(t.reused), "magenta")
        if self.downloads_done or self.downloading or self.downloads_failed:
            counts.append("  downloaded ", "dim")
            counts.append(str(self.downloads_done), "green")
            if self.downloading:
                counts.append(f" (+{self.downloading} in progress)", "dim")
        parts: list[RenderableType] = [Text(self.title, style="bold"), head, counts]
        shown = sorted(
            self.running.items(),
            key=lambda item: (
                item[1].status is not TaskStatus.RUNNING,
                -(self.shown_progress(item[1], now) or 0.0),
            ),
        )[: self.TOP]
        if shown:
            table = Table.grid(padding=(0, 1))
            for task_id, state in shown:
                progress = self.shown_progress(state, now)
                word = "running" if state.status is TaskStatus.RUNNING else "queued"
                table.add_row(
                    Text(f"  {word:<7}", style="blue" if word == "running" else "yellow"),
                    Text(
                        printable(self.labels.get(task_id, task_id))[:48],
                        no_wrap=True,
                        overflow="ellipsis",
                    ),
                    ProgressBar(total=1.0, completed=progress or 0.0, width=20),
                    Text(f"{progress:4.0%}" if progress is not None else "   …", style="dim"),
                    Text(duration(now - state.seen), style="dim"),
                )
            parts.append(table)
            hidden = len(self.running) - len(shown)
            if hidden > 0:
                parts.append(Text(f"  … and {hidden} more", style="dim"))
        return Group(*parts)

    def on_download(self, task_id: str, paths: Sequence[Path] | None, error: str | None) -> None:
        super().on_download(task_id, paths, error)
        if error is not None:
            from rich.text import Text

            self.console.print(
                Text.assemble(("download failed", "red"), printable(f" {task_id}: {error}"))
            )

    def finish(self, records: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> None:
        from rich.table import Table
        from rich.text import Text

        if 1 < len(records) <= 40:
            # Widths chosen here, not by rich: squeezed, rich drops the first column whole.
            # Status keeps its width; at 80 columns the request text gives way first, then
            # the task id (ellipsised, its start still tells tasks apart).
            ids = [printable(str(record.get("task_id") or "-")) for record in records]
            room = self.console.width - _STATUS_WIDTH - _REQUEST_MIN - 2 * _COLUMN_GAP
            task_width = max(_TASK_MIN, min(max(map(len, ids)), _TASK_MAX, room))
            table = Table(
                show_edge=False,
                pad_edge=False,
                box=None,
                header_style="bold",
                expand=True,
                padding=(0, _COLUMN_GAP, 0, 0),
            )
            table.add_column("status", no_wrap=True, width=_STATUS_WIDTH)
            table.add_column("task", no_wrap=True, overflow="ellipsis", width=task_width)
            table.add_column("request", no_wrap=True, overflow="ellipsis", ratio=1)
            styles = {"SUCCEEDED": "green", "PENDING": "yellow", "RUNNING": "blue"}
            for record in records:
                status = str(record.get("status"))
                table.add_row(
                    Text(status, style=styles.get(status, "red")),
                    Text(printable(str(record.get("task_id") or "-"))),
                    Text(printable(str(record.get("label") or ""))),
                )
            self.console.print(table)
        self.console.print(Text(summary_line(summary)))
