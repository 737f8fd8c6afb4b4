"""Credits in the CLI: what the tasks cost and what the server estimated.

Runway's answers carry ``estimatedCost``/``cost`` (wire reference §8.2); CometAPI may not
pass them on, so every figure is "unknown" unless the server said it. One set of rules for
every place that shows credits: a batch's end summary reads them from the handles'
snapshots, ``report`` from the journal rows (which keep the same figures), and both go
through :func:`credits_of` and :func:`credit_text`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..handles import TaskHandle
from ..models import Task

__all__ = ["credit_text", "credits_line", "credits_of", "credits_summary", "task_credits"]

UNKNOWN = "unknown"


def credits_summary(handles: Iterable[TaskHandle | None]) -> dict[str, Any]:
    """:func:`credits_of` the created tasks' latest snapshots (a handle of None was never
    created: nothing to pay)."""
    pairs = []
    for handle in handles:
        if handle is None:
            continue
        task = handle.task
        pairs.append((None, None) if task is None else (task.cost, task.estimated_cost))
    return credits_of(pairs)


def credits_of(pairs: Iterable[tuple[float | None, float | None]]) -> dict[str, Any]:
    """``credits_spent`` and ``credits_estimated`` (sums over the tasks the server priced,
    None when it priced none) and ``credits_unknown`` (tasks with no known cost), from one
    ``(cost, estimated_cost)`` pair per created task."""
    spent: list[float] = []
    estimated: list[float] = []
    unknown = 0
    for cost, estimate in pairs:
        if estimate is not None:
            estimated.append(estimate)
        if cost is not None:
            spent.append(cost)
        else:
            unknown += 1
    return {
        "credits_spent": sum(spent) if spent else None,
        "credits_estimated": sum(estimated) if estimated else None,
        "credits_unknown": unknown,
    }


def _figure(value: object) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return UNKNOWN
    return f"{value:g}"


def credits_line(summary: Mapping[str, Any]) -> str | None:
    """``credits: 25 spent (estimated 25)``, with how many tasks the server did not price;
    None when no task was created (nothing to say)."""
    spent, estimated = summary.get("credits_spent"), summary.get("credits_estimated")
    unknown = summary.get("credits_unknown", 0)
    if spent is None and estimated is None:
        if not unknown:
            return None
        return f"credits: {UNKNOWN} (the server did not say)"
    line = f"credits: {_figure(spent)} spent (estimated {_figure(estimated)})"
    if spent is not None and unknown:
        line += f"; {UNKNOWN} for {unknown} task{'s' if unknown != 1 else ''}"
    return line


def credit_text(cost: float | None, estimated_cost: float | None) -> str:
    """One task's credits: ``25 spent``, else ``estimated 25``, else ``unknown``."""
    if cost is not None:
        return f"{_figure(cost)} spent"
    if estimated_cost is not None:
        return f"estimated {_figure(estimated_cost)}"
    return UNKNOWN


def task_credits(task: Task) -> str:
    """One task's credits for ``status`` (see :func:`credit_text`)."""
    return credit_text(task.cost, task.estimated_cost)
