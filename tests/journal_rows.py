"""Rows the PostgreSQL journal tests write the way a worker's poll would."""

from __future__ import annotations

from cometrunway.journal import Journal, Outcome


async def finish(journal: Journal, task_id: str) -> None:
    """Record ``task_id`` as succeeded, with one output, as the poll that saw it end does."""
    await journal.record_status(
        task_id,
        status=Outcome.SUCCEEDED.value,
        progress=1.0,
        outputs=("https://cdn/v.mp4",),
        error=None,
        error_code=None,
        terminal=True,
    )
