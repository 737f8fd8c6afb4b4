"""An ETA before the first task has finished, from the progress readings of running tasks.

``BatchTally.eta`` divides the work left by the rate at which tasks have *finished*, so it
knows nothing until the first one does, which for real videos takes minutes. Running tasks
report progress long before that; this module turns those readings into an estimate:

* each task with a reading finishes in ``(1 - progress) / rate``, its rate being the one
  last seen rising (or, with a single reading, its progress over the time since it was
  first seen);
* the tasks in flight end when the slowest of them does;
* the tasks not yet started run in further waves as wide as the current one, each as long
  as the tasks seen so far take on average.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

__all__ = ["ProgressReading", "progress_eta"]

#: A first reading this small says little about the rate: wait for a bigger one.
_MIN_PROGRESS = 0.01


class ProgressReading(Protocol):
    """What a display remembers of a running task (``_display._Running``)."""

    @property
    def seen(self) -> float: ...  # when the task was first seen (monotonic seconds)
    @property
    def progress(self) -> float | None: ...  # 0..1, the last reading
    @property
    def at(self) -> float: ...  # when that reading came
    @property
    def rate(self) -> float | None: ...  # progress per second between the last two readings


def _seconds_left(reading: ProgressReading, now: float) -> tuple[float, float] | None:
    """(seconds left, whole duration) of one task, or None without a usable reading."""
    progress = reading.progress
    if progress is None or progress < _MIN_PROGRESS:
        return None
    progress = min(progress, 1.0)
    rate = reading.rate
    if rate is None or rate <= 0:
        rate = progress / max(reading.at - reading.seen, 1e-3)
    # Time since the reading counts as progress made at that rate (capped at the end).
    done_at_now = min(1.0, progress + rate * max(now - reading.at, 0.0))
    left = (1.0 - done_at_now) / rate
    return left, (now - reading.seen) + left


def progress_eta(running: Collection[ProgressReading], *, left: int, now: float) -> float | None:
    """Seconds until the ``left`` unsettled tasks are done, or None with no usable reading.

    ``running`` are the tasks in flight; the others of ``left`` have not started yet.
    """
    if left <= 0:
        return 0.0
    estimates = [e for e in (_seconds_left(r, now) for r in running) if e is not None]
    if not estimates:
        return None
    wave = max(len(running), 1)
    slowest = max(rest for rest, _ in estimates)
    typical = sum(whole for _, whole in estimates) / len(estimates)
    waiting = max(left - len(running), 0)
    return slowest + (waiting / wave) * typical
