"""The fake's request pipeline: every request is counted, recorded, and may meet a fault.

``FakeCometAPI`` builds on ``_RequestPipeline``: its handlers hand each request to ``_run``
with the function that answers it, and ``inject`` queues the faults that answer instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ._http import _apply_fault
from ._values import Fault, RecordedRequest, RouteKind

# The body a handler gets for a request whose body was not JSON.
BAD_JSON: Any = object()


class _RequestPipeline:
    """Records (``requests``, counts per route kind), queued faults, and the requests being
    answered (so that closing can wait for them)."""

    def __init__(
        self, *, latency: float, record_requests: bool, clock: Callable[[], float]
    ) -> None:
        self.latency = latency
        self.record_requests = record_requests
        self.clock = clock
        self.requests: list[RecordedRequest] = []
        self._kind_counts: Counter[RouteKind | None] = Counter()
        self._faults: dict[str, deque[list[Any]]] = {}
        self._handling: set[asyncio.Task[Any]] = set()  # requests being answered
        self._closing = asyncio.Event()

    def inject(self, kind: RouteKind, fault: Fault, times: int = 1) -> None:
        """Queue ``fault`` for the next ``times`` requests of ``kind``: "submit" (any create
        route), "poll" (feed and tasks), "cancel" (DELETE) or "cdn". Faults of one kind
        apply in the order injected."""
        if kind not in ("submit", "poll", "cancel", "cdn"):
            raise ValueError(f"kind must be 'submit', 'poll', 'cancel' or 'cdn', got {kind!r}")
        if times < 1:
            raise ValueError(f"times must be >= 1, got {times!r}")
        self._faults.setdefault(kind, deque()).append([fault, times])

    def clear_faults(self, kind: RouteKind | None = None) -> None:
        """Drop the queued faults of ``kind`` (all kinds when None)."""
        if kind is None:
            self._faults.clear()
        else:
            self._faults.pop(kind, None)

    def pending_faults(self, kind: RouteKind) -> int:
        """How many requests of ``kind`` the queued faults will still hit."""
        return sum(entry[1] for entry in self._faults.get(kind, ()))

    def request_count(self, kind: RouteKind | None = None, *, all_kinds: bool = False) -> int:
        """How many requests of ``kind`` arrived (every request with ``all_kinds=True``)."""
        if all_kinds:
            return sum(self._kind_counts.values())
        return self._kind_counts[kind]

    async def _record(self, request: web.Request, kind: RouteKind | None) -> Any:
        """Count and record a request; its JSON body, None, or ``BAD_JSON``."""
        raw = await request.read() if request.body_exists else b""
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = BAD_JSON
        self._kind_counts[kind] += 1
        if self.record_requests:
            recorded = None if body is BAD_JSON else body
            self.requests.append(
                RecordedRequest(
                    request.method, request.path, request.headers, recorded, raw, self.clock(), kind
                )
            )
        return body

    async def _run(
        self,
        request: web.Request,
        kind: RouteKind,
        process: Callable[[web.Request, Any], web.StreamResponse],
    ) -> web.StreamResponse:
        """Record, apply a queued fault, process: every route goes through here."""
        current = asyncio.current_task()
        if current is not None:
            self._handling.add(current)
        try:
            if self.latency and kind != "cdn":
                await asyncio.sleep(self.latency)  # a network and gateway of its own
            return await self._answer(request, kind, process)
        finally:
            if current is not None:
                self._handling.discard(current)

    async def _answer(
        self,
        request: web.Request,
        kind: RouteKind,
        process: Callable[[web.Request, Any], web.StreamResponse],
    ) -> web.StreamResponse:
        body = await self._record(request, kind)
        fault = self._take_fault(kind)
        if fault is not None:
            if fault.wait:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), fault.wait)
            if fault.action in ("respond", "drop") and not fault.after_create:
                return await _apply_fault(request, fault, None)
        answer = process(request, body)
        if fault is None or fault.action == "pass":
            return answer
        if fault.action == "drop_mid_body" or answer.status < 400:
            return await _apply_fault(request, fault, answer)
        return answer  # refused anyway: the refusal wins over an after-create fault

    def _take_fault(self, kind: str) -> Fault | None:
        queue = self._faults.get(kind)
        if not queue:
            return None
        entry = queue[0]
        entry[1] -= 1
        if entry[1] <= 0:
            queue.popleft()
        fault: Fault = entry[0]
        return fault
