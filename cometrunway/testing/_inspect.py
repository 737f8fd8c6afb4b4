"""What the fake's inspection endpoints (``/_fake/tasks``, ``/_fake/polls``) report: rows
read from its records, for tests that count on the server's side."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["poll_rows", "task_rows"]


def task_rows(tasks: Iterable[Any]) -> list[dict[str, Any]]:
    """One row per task created: its id, route, prompt, creation time, state and polls."""
    return [
        {
            "task_id": task.task_id,
            "path": task.path,
            "prompt": task.body.get("prompt", task.body.get("promptText")),
            "created_wall": task.created_wall,
            "done": task.done,
            "outcome": task.outcome,
            "polls": task.polls,
        }
        for task in tasks
    ]


def poll_rows(requests: Iterable[Any]) -> list[dict[str, Any]]:
    """One row per poll received: ``task_id``, ``time`` (the fake's clock), ``user_agent``."""
    rows = []
    for recorded in requests:
        if recorded.kind != "poll":
            continue
        body = recorded.body
        task_id = body.get("task_id") if isinstance(body, dict) else None
        if task_id is None:  # GET /runwayml/v1/tasks/{id}
            task_id = recorded.path.rstrip("/").rsplit("/", 1)[-1]
        agent = recorded.headers.get("User-Agent")
        rows.append({"task_id": task_id, "time": recorded.time, "user_agent": agent})
    return rows
