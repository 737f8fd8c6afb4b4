"""Helpers for the fleet tests: tell on the fake's side which worker sent each request.

A worker's transport adds ``User-Agent: fleet-worker/<name>`` to every request it sends, so
the fake's request log says which worker polled which task, and when.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import attrs

from cometrunway.protocol import HTTPRequest, HTTPResponse
from cometrunway.transport import AiohttpTransport

AGENT_PREFIX = "fleet-worker/"


class TaggedTransport:
    """The default transport, with every request signed by one worker name."""

    def __init__(self, base_url: str, name: str) -> None:
        self._inner = AiohttpTransport(base_url)
        self._agent = f"{AGENT_PREFIX}{name}"

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        headers = (*request.headers, ("User-Agent", self._agent))
        return await self._inner.send(attrs.evolve(request, headers=headers))

    async def aclose(self) -> None:
        await self._inner.aclose()


def polls_by_task(polls: Iterable[dict[str, Any]]) -> dict[str, list[tuple[float, str]]]:
    """Per task id, ``(time, worker)`` of every poll in time order (``/_fake/polls`` rows)."""
    out: dict[str, list[tuple[float, str]]] = {}
    for poll in sorted(polls, key=lambda p: p["time"]):
        agent = poll["user_agent"] or ""
        worker = agent.removeprefix(AGENT_PREFIX) if agent.startswith(AGENT_PREFIX) else "?"
        out.setdefault(poll["task_id"], []).append((poll["time"], worker))
    return out


def handovers(timeline: list[tuple[float, str]]) -> int:
    """How many times the poller of one task changed (0: one worker polled it all along)."""
    return sum(1 for (_, a), (_, b) in itertools.pairwise(timeline) if a != b)


def overlapping(timeline: list[tuple[float, str]], slack: float) -> list[str]:
    """Workers that polled a task again later than ``slack`` seconds after another worker
    had started polling it: two pollers at once outside one lease handover."""
    bad = []
    first_by: dict[str, float] = {}
    last_by: dict[str, float] = {}
    for at, worker in timeline:
        first_by.setdefault(worker, at)
        last_by[worker] = at
    for worker, last in last_by.items():
        for other, first in first_by.items():
            if other != worker and first_by[worker] < first and last > first + slack:
                bad.append(f"{worker} polled until {last:.2f}, {other} from {first:.2f}")
    return bad
