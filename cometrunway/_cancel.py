"""Cancelling a task: ``DELETE /runwayml/v1/tasks/{id}`` for official-format tasks.

CometAPI does not document the route (wire reference §5, §8.6): Runway's own API cancels a
PENDING/THROTTLED/RUNNING task with it (204) and deletes a finished one. So a 404 or 405 is
"not supported by this server", never a crash, and a ``/runway/pro/*`` task (polled on the
feed) has no cancel route at all. A successful DELETE stops nothing on the client's side:
the task stays followed until a poll says CANCELLED or another terminal status (§8.6).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from .errors import APIError, CancelNotSupported, JournalError
from .handles import TaskHandle
from .journal import CancelRecorder, Journal
from .models import PollRoute
from .protocol import HTTPRequest, HTTPResponse, check_poll_route, check_task_id
from .protocol.answers import error_from_response
from .protocol.build import build_cancel

__all__ = ["CANCEL_UNSUPPORTED_STATUSES", "Canceller", "send_cancel"]

log: logging.Logger = logging.getLogger("cometrunway")

Send = Callable[[HTTPRequest], Awaitable[HTTPResponse]]

# What a server without the route answers (CometAPI: an unknown method or path, §8.6).
CANCEL_UNSUPPORTED_STATUSES = frozenset({404, 405})


async def send_cancel(
    send: Send,
    task_id: str,
    route: PollRoute,
    *,
    api_key: str,
    runway_version: str | None,
    journal: Journal | None = None,
    now: datetime | None = None,
) -> None:
    """Ask the server to cancel ``task_id``; returns once the server accepted (2xx).

    Raises ``CancelNotSupported`` for a ``/runway/pro/*`` task (nothing is sent) and for a
    404/405 answer; any other refusal raises the ``APIError`` it stands for. Whatever
    happens, the task is not assumed stopped: only a later poll can say CANCELLED.
    """
    task_id, route = check_task_id(task_id), check_poll_route(route)
    if route == "feed":
        raise CancelNotSupported(
            f"task {task_id} was created on a /runway/pro/* route, which has no cancel route "
            "on CometAPI (wire §8.6); nothing was sent, and the task is still followed",
            task_id=task_id,
        )
    request = build_cancel(task_id, api_key=api_key, runway_version=runway_version)
    await _journal_request(journal, task_id)
    response = await send(request)
    if 200 <= response.status < 300:
        log.info("cancel of task %s accepted (HTTP %d)", task_id, response.status)
        return
    if response.status in CANCEL_UNSUPPORTED_STATUSES:
        raise CancelNotSupported(
            f"cancel is not supported by this server: DELETE /runwayml/v1/tasks/{{id}} "
            f"answered HTTP {response.status} for task {task_id}; the task keeps running "
            "(and costing) and is still followed",
            task_id=task_id,
            status=response.status,
        )
    error = error_from_response(response, now=now)
    if error is None:  # a 1xx/3xx the transport passed on: not an acceptance
        error = APIError(
            f"cancel of task {task_id}: unexpected HTTP {response.status}",
            status=response.status,
            body=response.body,
        )
    raise error


class Canceller:
    """A client's cancels: which route a task is on (its handle knows, else the official
    tasks route), the DELETE, and a poll soon after an accepted one so that the CANCELLED
    status (or whatever the task did instead) is seen without waiting for the next turn."""

    def __init__(
        self,
        send: Send,
        *,
        api_key: str,
        runway_version: str | None,
        journal: Callable[[], Journal | None],
        lookup: Callable[[str], TaskHandle | None],
        wake: Callable[[str], bool],
    ) -> None:
        self._send = send
        self._api_key = api_key
        self._runway_version = runway_version
        self._journal = journal
        self._lookup = lookup
        self._wake = wake

    def __repr__(self) -> str:
        return "<Canceller>"  # never the key

    async def cancel(self, task_id: str, route: PollRoute | None = None) -> None:
        """Cancel ``task_id``: on ``route`` when given, else the route of its handle when it
        is followed, else the official tasks route (the only one with a cancel)."""
        task_id = check_task_id(task_id)
        if route is None:
            handle = self._lookup(task_id)
            route = handle.poll_route if handle is not None else "tasks"
        await send_cancel(
            self._send,
            task_id,
            route,
            api_key=self._api_key,
            runway_version=self._runway_version,
            journal=self._journal(),
        )
        self._wake(task_id)


async def _journal_request(journal: Journal | None, task_id: str) -> None:
    """Record that a cancel was asked for: in the journal when the store can say so, in the
    log always (it may cost nothing more, or the server may ignore it)."""
    log.info("cancel requested for task %s", task_id)
    # ``CancelRecorder`` is not part of ``Journal``: a store without it (it still passes the
    # ``isinstance(store, Journal)`` check) only gets the log line.
    recorder: object = journal  # any store, whatever else it is
    if isinstance(recorder, CancelRecorder):
        try:
            await recorder.record_cancel_request(task_id)
        except JournalError as exc:
            # A note of what was asked must never stop the cancel itself: the task would
            # keep running, and costing.
            log.warning("task %s: could not journal the cancel request: %s", task_id, exc)
