"""Where a fake task stands: its phase by poll count and by the fake's clock (``Lifecycle``)."""

from __future__ import annotations

from ._values import TaskRecord, _Phase


def advance(task: TaskRecord, now: float, *, polled: bool = False) -> tuple[_Phase, float | None]:
    """The phase of an unfinished ``task`` at ``now``, and the instant it ended when it
    reached its end (else None). Records when it started running.

    Each phase ends at the later of its two limits (polls answered, seconds since the
    create): at this poll when the poll crossed it, else at the clock's moment.
    """
    life = task.lifecycle
    seen = max(task.visible_polls, 1)  # without polls yet: what the first poll will see
    queued_polls = life.queued_polls
    needed = queued_polls + life.running_polls
    by_polls = (
        _Phase.QUEUED if seen <= queued_polls else _Phase.RUNNING if seen <= needed else _Phase.DONE
    )
    elapsed = now - task.created_at
    queue_end = life.queued_for
    run_end = queue_end + life.running_for
    by_time = (
        _Phase.QUEUED
        if elapsed < queue_end
        else _Phase.RUNNING
        if elapsed < run_end
        else _Phase.DONE
    )
    phase = min(by_polls, by_time)
    if phase >= _Phase.RUNNING and task.started_at is None:
        crossed_now = polled and queued_polls > 0 and task.visible_polls == queued_polls + 1
        task.started_at = now if crossed_now else task.created_at + queue_end
    if phase is not _Phase.DONE:
        return phase, None
    crossed_now = polled and needed > 0 and task.visible_polls == needed + 1
    return phase, now if crossed_now else task.created_at + run_end
