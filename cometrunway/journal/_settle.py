"""Settling many ambiguous rows at once, each by an explicit choice.

A double Ctrl-C in a wide batch can leave dozens of creates whose outcome is unknown. Each
still needs a decision only the user can make: the task id they found (attach it), or "it
was not created" (resubmit: the next submit of that request creates it again, and pays).
:func:`settle_all` applies both kinds at once: ``task_ids`` attaches the ids found, and
``resubmit=True`` releases every other ambiguous row. Nothing is resubmitted by default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

import attrs

from ..errors import JournalError
from ._rows import Journal

__all__ = ["SettleReport", "settle_all", "settle_journal"]

T = TypeVar("T")

_NEEDS_A_CHOICE = (
    "settling needs an explicit choice: task_ids={key: task_id} attaches the tasks you found, "
    "resubmit=True lets the next submit create every other ambiguous row again (and pay for "
    "it); nothing is resubmitted by default"
)


@attrs.frozen
class SettleReport:
    """What :func:`settle_journal` did.

    ``attached`` holds ``(key, task_id, poll_route)``; ``released`` the keys to be created
    again; ``failed`` ``(key, reason)`` for rows the store refused; ``left`` the ambiguous
    rows no choice was given for.
    """

    attached: tuple[tuple[str, str, str], ...] = ()
    released: tuple[str, ...] = ()
    failed: tuple[tuple[str, str], ...] = ()
    left: tuple[str, ...] = ()


async def settle_journal(
    journal: Journal, *, task_ids: Mapping[str, str] | None = None, resubmit: bool = False
) -> SettleReport:
    """Attach ``task_ids`` to their ambiguous rows; with ``resubmit=True`` release the rest.

    Every key and id is checked before anything is written (a key that is not an ambiguous
    row, an empty id, an id given for two keys raise ``ValueError``). Each row is then
    settled in its own durable step; a row the store refuses is reported in ``failed`` and
    the others are still settled.
    """
    wanted = dict(task_ids or {})
    if not wanted and not resubmit:
        raise ValueError(_NEEDS_A_CHOICE)
    ambiguous = {entry.key: entry for entry in await journal.ambiguous()}
    problems = []
    for key, task_id in wanted.items():
        if not isinstance(task_id, str) or not task_id.strip():
            problems.append(f"{key!r}: the task id is empty")
        elif key not in ambiguous:
            entry = await journal.get(key)
            problems.append(
                f"{key!r}: no such row"
                if entry is None
                else f"{key!r} is {entry.state.value}, not ambiguous: nothing to settle"
            )
    seen: dict[str, str] = {}
    for key, task_id in wanted.items():
        if task_id in seen:
            problems.append(f"task {task_id} is given for both {seen[task_id]!r} and {key!r}")
        seen[task_id] = key
    if problems:
        raise ValueError("cannot settle: " + "; ".join(problems) + " (nothing was changed)")
    attached: list[tuple[str, str, str]] = []
    released: list[str] = []
    failed: list[tuple[str, str]] = []
    for key, task_id in wanted.items():
        try:
            await journal.attach_task(key, task_id.strip())
        except JournalError as exc:
            failed.append((key, str(exc)))
        else:
            attached.append((key, task_id.strip(), ambiguous[key].poll_route))
    rest = [key for key in ambiguous if key not in wanted]
    if resubmit:
        for key in rest:
            try:
                await journal.release(key)
            except JournalError as exc:
                failed.append((key, str(exc)))
            else:
                released.append(key)
    left = () if resubmit else tuple(rest)
    return SettleReport(tuple(attached), tuple(released), tuple(failed), left)


async def settle_all(
    journal: Journal,
    follow: Callable[[str, str], T],
    *,
    task_ids: Mapping[str, str] | None = None,
    resubmit: bool = False,
) -> list[T]:
    """:func:`settle_journal`, then ``follow(task_id, poll_route)`` each attached task.

    Returns what ``follow`` returned (the client's handles), in ``task_ids`` order. If the
    store refused some rows, raises ``JournalError`` naming each one, after settling the
    others and following what was attached.
    """
    report = await settle_journal(journal, task_ids=task_ids, resubmit=resubmit)
    followed = [follow(task_id, route) for _, task_id, route in report.attached]
    if report.failed:
        reasons = "; ".join(f"{key!r}: {reason}" for key, reason in report.failed)
        raise JournalError(f"{len(report.failed)} ambiguous row(s) could not be settled: {reasons}")
    return followed
