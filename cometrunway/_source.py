"""The poller's source: build one poll, send it, parse the answer into a ``Task``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .models import PollRoute, Task
from .protocol import HTTPRequest, HTTPResponse, build_poll, parse_poll

__all__ = ["ApiTaskSource"]

Send = Callable[[HTTPRequest], Awaitable[HTTPResponse]]


class ApiTaskSource:
    """Polls CometAPI: the ``TaskSource`` the client gives its poller (and ``fetch`` uses)."""

    def __init__(self, send: Send, *, api_key: str, runway_version: str | None) -> None:
        self._send = send
        self._api_key = api_key
        self._runway_version = runway_version

    def __repr__(self) -> str:
        return "<ApiTaskSource>"  # never the key

    async def fetch(self, task_id: str, route: PollRoute) -> Task:
        request = build_poll(
            task_id, route, api_key=self._api_key, runway_version=self._runway_version
        )
        return parse_poll(await self._send(request), task_id=task_id)
