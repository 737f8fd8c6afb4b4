"""``cometrunway cancel TASK_ID``: ask the server to cancel an official-format task.

Sends ``DELETE /runwayml/v1/tasks/{id}`` (wire reference §8.6), which CometAPI does not
document: a 404/405 answer is reported as "not supported by this server" (exit 1), and a
``/runway/pro/*`` task (``--route feed``) has no cancel route at all (exit 2, nothing sent).
An accepted cancel does not mean the task stopped: only a poll saying CANCELLED does, so
``--wait`` follows the task to its end.
"""

from __future__ import annotations

import argparse

from ..errors import CancelNotSupported, TaskFailed
from ..models import PollRoute, TaskStatus
from ._common import CliError, ExitCode, emit_json, note, say, task_json
from ._session import Interrupt, classify, connect

__all__ = ["DESCRIPTION", "SUMMARY", "add_cancel_arguments", "cmd_cancel"]

SUMMARY = "ask the server to cancel a /runwayml/v1 task"
DESCRIPTION = (
    "Ask the server to cancel a task of a /runwayml/v1 route (DELETE /runwayml/v1/tasks/ID). "
    "CometAPI does not document this route: a server without it answers 404/405, reported "
    "as 'not supported by this server' (exit 1). /runway/pro/* tasks have no cancel route "
    "(exit 2, nothing sent). The task has not stopped until it reports CANCELLED: --wait "
    "follows it to its end."
)


def add_cancel_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task_id", metavar="TASK_ID")
    parser.add_argument(
        "--route",
        choices=("tasks", "feed"),
        default="tasks",
        help="tasks (the default) for /runwayml/v1/* tasks; feed tasks cannot be cancelled",
    )
    parser.add_argument(
        "--wait", action="store_true", help="then follow the task until it ends (CANCELLED)"
    )


async def cmd_cancel(args: argparse.Namespace, interrupt: Interrupt) -> int:
    task_id = args.task_id.strip()
    if not task_id:
        raise CliError("the task id is empty", ExitCode.USAGE)
    route: PollRoute = args.route
    if route == "feed":
        raise CliError(
            f"task {task_id}: /runway/pro/* tasks (--route feed) have no cancel route on "
            "CometAPI; nothing was sent",
            ExitCode.USAGE,
        )
    async with connect(args, journal=None, on_event=None) as session:
        handle = session.client.track(task_id, route=route) if args.wait else None
        try:
            _, interrupted = await interrupt.guard(session.client.cancel(task_id, route=route))
        except CancelNotSupported as exc:
            raise CliError(str(exc), ExitCode.FAILED) from None
        except Exception as exc:
            raise classify(exc, session.base_url) from None
        if interrupted:
            return ExitCode.INTERRUPTED
        if args.json:
            emit_json({"event": "cancel_requested", "task_id": task_id})
        else:
            say(f"cancel requested  {task_id}")
        if handle is None:
            if not args.json:
                note(
                    "the server accepted the cancel; the task has stopped only once it reports "
                    f"CANCELLED: cometrunway status {task_id} --route tasks"
                )
            return ExitCode.OK
        try:
            task, interrupted = await interrupt.guard(handle.wait())
        except TaskFailed as failed:
            task = failed.task
        except Exception as exc:
            raise classify(exc, session.base_url) from None
    if interrupted or task is None:
        return ExitCode.INTERRUPTED
    if args.json:
        emit_json({"event": "task", **task_json(task)})
    else:
        say(f"{task.status.value}  {task.task_id}")
    # Cancelled is what was asked for; a task that finished first is not an error either.
    done = task.status in (TaskStatus.CANCELLED, TaskStatus.SUCCEEDED)
    return ExitCode.OK if done else ExitCode.FAILED
