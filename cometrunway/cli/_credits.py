"""Credits in the CLI's end summary: what the tasks cost and what the server estimated.

Runway's answers carry ``estimatedCost``/``cost`` (wire reference §8.2); CometAPI may not
pass them on, so every figure is "unknown" unless the server said it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..handles import TaskHandle
from ..models import Task

__all__ = ["credits_line", "credits_summary", "task_credits"]

UNKNOWN = "unknown"


def credits_summary(handles: Iterable[TaskHandle | None]) -> dict[str, Any]:
    """``credits_spent`` and ``credits_estimated`` (sums over the tasks the server priced,
    None when it priced none) and ``credits_unknown`` (created tasks with no known cost)."""
    spent: list[float] = []
    estimated: list[float] = []
    unknown = 0
    for handle in handles:
        if handle is None:
            continue  # never created: nothing to pay
        task = handle.task
        if task is not None and task.estimated_cost is not None:
            estimated.append(task.estimated_cost)
        if task is not None and task.cost is not None:
            spent.append(task.cost)
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


def task_credits(task: Task) -> str:
    """One task's credits for ``status``: ``25 spent`` or ``estimated 25``."""
    if task.cost is not None:
        return f"{_figure(task.cost)} spent"
    return f"estimated {_figure(task.estimated_cost)}"
