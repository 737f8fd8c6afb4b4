"""Picking journaled work up again: ``resume`` (follow every unfinished task that has an id)
and ``settle`` (the user's answer for a create whose outcome was unknown)."""

from __future__ import annotations

from collections.abc import Callable

from .budget import Clock
from .handles import TaskHandle
from .journal import Journal, JournalEntry
from .models import PollRoute

__all__ = ["resume", "settle"]

Follow = Callable[[str, PollRoute, float | None], TaskHandle]


def _route(entry: JournalEntry) -> PollRoute:
    return "tasks" if entry.poll_route == "tasks" else "feed"


async def resume(
    journal: Journal, follow: Follow, *, clock: Clock, wall: Clock
) -> list[TaskHandle]:
    """Handles for every journaled task that has an id and is not finished."""
    handles = []
    now_mono, now_wall = clock(), wall()
    for entry in await journal.unfinished():
        if not entry.task_id:
            continue
        # The not-found grace counts from the real submit, before the restart.
        created = entry.submitted_at or entry.created_at
        submitted_at = now_mono - max(0.0, now_wall - created)
        handles.append(follow(entry.task_id, _route(entry), submitted_at))
    return handles


async def settle(
    journal: Journal, follow: Follow, key: str, *, task_id: str | None, resubmit: bool
) -> TaskHandle | None:
    """Attach the ``task_id`` the user found (its handle), or release the row so that the
    next submit of that request creates it again (``resubmit``)."""
    if (task_id is None) == (not resubmit):
        raise ValueError("settle() takes exactly one of task_id=... or resubmit=True")
    entry = await journal.get(key)
    if entry is None:
        raise KeyError(f"no journal row with key {key!r}")
    if task_id is not None:
        await journal.attach_task(key, task_id)
        return follow(task_id, _route(entry), None)
    await journal.release(key)
    return None
