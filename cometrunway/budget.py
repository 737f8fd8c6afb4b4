"""One request budget for the whole client: submits and polls draw from the same rate.

A generic cell-rate limiter (GCRA): each request reserves the next free slot at
``requests_per_second``, with a burst of one second's worth. A 429 anywhere pauses every
request until its ``Retry-After`` (or a short default) and halves the rate; the rate creeps
back up with each success, so the client settles just under what the server tolerates.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from .protocol import HTTPRequest, HTTPResponse, parse_retry_after

__all__ = ["Clock", "PacedSender", "RequestBudget", "Sleep"]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

_BURST_SECONDS = 1.0  # up to one second's worth of requests may go at once
_DEFAULT_429_PAUSE = 1.0
_MIN_RATE_FRACTION = 1 / 32
_RECOVERY_STEP = 0.02  # fraction of the configured rate regained per success


class RequestBudget:
    """Paces requests; ``acquire()`` before each one, ``on_success``/``on_rate_limited`` after."""

    def __init__(
        self,
        requests_per_second: float,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._max_rate = float(requests_per_second)
        self._rate = self._max_rate
        self._clock = clock
        self._sleep = sleep
        self._next_free = clock() - _BURST_SECONDS
        self._paused_until = 0.0
        self.rate_limited = 0

    @property
    def rate(self) -> float:
        """The current rate in requests per second (lower after 429s)."""
        return self._rate

    @property
    def paused_until(self) -> float:
        return self._paused_until

    async def acquire(self) -> None:
        """Wait for this request's slot. Slots are reserved in call order, so it is fair."""
        wait = self.reserve()
        if wait > 0:
            await self._sleep(wait)

    async def wait(self, delay: float) -> None:
        """Sleep ``delay`` seconds (what ``reserve()`` returned) with the budget's sleep."""
        await self._sleep(delay)

    def observe(self, response: HTTPResponse) -> None:
        """Learn from an answer: a 429 pauses and slows everyone, anything else recovers."""
        if response.status == 429:
            self.on_rate_limited(parse_retry_after(response.header("retry-after")))
        else:
            self.on_success()

    def reserve(self) -> float:
        """Reserve the next slot; returns how long to wait for it (0 when it is now)."""
        now = self._clock()
        slot = max(self._next_free, now - _BURST_SECONDS, self._paused_until)
        self._next_free = slot + 1.0 / self._rate
        return slot - now

    def on_success(self) -> None:
        if self._rate < self._max_rate:
            self._rate = min(self._max_rate, self._rate + self._max_rate * _RECOVERY_STEP)

    def on_rate_limited(self, retry_after: float | None) -> None:
        """A 429: pause everyone for ``retry_after`` (at least), and halve the rate."""
        self.rate_limited += 1
        now = self._clock()
        pause = retry_after if retry_after is not None else _DEFAULT_429_PAUSE
        self._paused_until = max(self._paused_until, now + pause)
        self._rate = max(self._max_rate * _MIN_RATE_FRACTION, self._rate / 2)


class _Sends(Protocol):
    async def send(self, request: HTTPRequest) -> HTTPResponse: ...


class PacedSender:
    """Sends through ``transport`` with every request drawing on ``budget``: waits for its
    slot first, and feeds the answer (a 429 pauses everyone) back."""

    def __init__(self, transport: _Sends, budget: RequestBudget) -> None:
        self._transport = transport
        self._budget = budget

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        wait = self._budget.reserve()  # most requests have nothing to wait for
        if wait > 0:
            await self._budget.wait(wait)
        answer = await self._transport.send(request)
        self._budget.observe(answer)
        return answer
