"""One request budget for the whole client: submits and polls draw from the same rate.

A generic cell-rate limiter (GCRA): each request reserves the next free slot at the current
rate, with a burst of one second's worth. The rate starts low (slow start: an eighth of the
configured one, at least 5 requests/s) and doubles every second the server keeps up, until
the configured rate or the first 429, which halves it back to the last rate the server
took. A 429 anywhere pauses every request until its ``Retry-After`` (or a short default);
after the slow start it sets the rate just under what the server was measured to accept in
the seconds before it (one decrease per 429 event, however many requests in flight come
back 429 together); the rate then probes upwards slowly with time, so the client settles
just under what the server tolerates instead of swinging around it.

``close()`` ends every wait at once (a pause may last ``max_retry_after``, two minutes by
default): a request still waiting for its slot fails with the closing error, unsent.
"""

from __future__ import annotations

import asyncio
import collections
import math
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
# What the server accepted is measured over this many seconds before a 429: long enough to
# average out a burst, short enough to describe the limit in force now.
_MEASURE_SECONDS = 2.0
# After a 429 the rate goes to this share of the measured acceptance rate: just under the
# limit, so the server's bucket refills instead of running dry again at once.
_UNDER_MEASURED = 0.95
# One 429 event cuts the rate by at least 10% (a measurement can overestimate after a burst)
# and at most 50% (a measurement from a quiet moment would otherwise cut too deep).
_MIN_CUT, _MAX_CUT = 0.9, 0.5
# Probing: the rate grows by this fraction of itself per second without a 429. Slow on
# purpose, and relative to the rate the server took rather than the configured one: at
# 47.5 requests/s, 0.19 requests/s each second; at 9.5, 0.038. Either way a server's bucket
# takes tens of seconds to run dry again, so 429s stay a small share at any limit.
_PROBE_PER_SECOND = 0.004
# Slow start: the client starts at this fraction of the configured rate (its first burst is
# a second's worth of that), since nothing says yet that the server takes more. At the
# default 50 requests/s that is 6.25: a first burst of 32 creates at 50/s met a server
# limit of 10/s with twenty-odd 429s in its first second.
_SLOW_START_FRACTION = 1 / 8
# ... but never below this many requests per second (or the configured rate, if lower): a
# client configured for a few requests per second starts at its rate.
_SLOW_START_FLOOR = 5.0
# Until the first 429, each answer that is not a 429 raises the rate by this many requests
# per second: sending at its rate, the client doubles it every second the server keeps up
# (and a quiet client, whose few answers prove little, grows little).
_SLOW_START_GAIN = 1.0
# The first 429 ends the slow start: the rate a second earlier (half the current one, as it
# doubles every second) was taken, the current one was not.
_SLOW_START_CUT = 0.5
# Requests queued for their slots hold slots spaced for the rate when they asked: during the
# slow start, each time the rate has grown by this factor they are woken to reserve again at
# the new rate (otherwise a queue of 32 creates keeps the first second's spacing for seconds
# and the start barely speeds up).
_SLOW_START_REPLAN = 1.25


class RequestBudget:
    """Paces requests; ``acquire()`` before each one, ``on_success``/``on_rate_limited`` after."""

    def __init__(
        self,
        requests_per_second: float,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        max_retry_after: float = math.inf,
    ) -> None:
        self._max_rate = float(requests_per_second)
        # A server's Retry-After pauses every request, polls included: never longer than
        # this (RetryPolicy.max_retry_after), or one hostile answer stops the client for ever.
        self._max_retry_after = max_retry_after
        self._rate = min(
            self._max_rate, max(self._max_rate * _SLOW_START_FRACTION, _SLOW_START_FLOOR)
        )
        self._slow_start = self._rate < self._max_rate
        self._clock = clock
        self._sleep = sleep
        self._next_free = clock() - _BURST_SECONDS
        self._paused_until = 0.0
        self._created = self._probed_at = clock()
        self._successes: collections.deque[float] = collections.deque()
        self.rate_limited: int = 0
        # Bumped whenever the slots handed out are void (a 429, a slow-start re-plan): a
        # request that waited for one reserves again.
        self._epoch = 0
        self._planned_rate = self._rate  # the rate of the last slow-start re-plan
        self._replanned: asyncio.Future[None] | None = None  # done at the next re-plan
        self._closed: Callable[[], Exception] | None = None
        self._closing: asyncio.Future[None] | None = None  # done once closed

    @property
    def rate(self) -> float:
        """The current rate in requests per second (lower after 429s)."""
        return self._rate

    @property
    def paused_until(self) -> float:
        return self._paused_until

    async def acquire(self) -> None:
        """Wait for this request's slot. Slots are reserved in call order, so it is fair.

        A 429 that arrives while a request waits for its slot makes it reserve again: a slot
        reserved before the pause (at the old rate) must not send it into the pause. So does
        a slow-start re-plan, which wakes it at once: its slot was spaced for a lower rate.
        """
        while True:
            epoch = self._epoch
            if self._closed is not None:
                raise self._closed()
            wait = self.reserve()
            if wait <= 0:
                return
            if self._slow_start and self._replanned is None:
                self._replanned = asyncio.get_running_loop().create_future()
            await self._wait(wait, self._replanned if self._slow_start else None)
            if self._epoch == epoch:
                return

    async def _wait(self, delay: float, replanned: asyncio.Future[None] | None) -> None:
        """Sleep ``delay`` seconds with the budget's sleep, ending early (without error) once
        ``replanned`` is done; raises the closing error at once if the budget is closed,
        before or during the wait."""
        if self._closed is not None:
            raise self._closed()
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_future()
        sleeper = asyncio.ensure_future(self._sleep(delay))
        ends = (
            {sleeper, self._closing} if replanned is None else {sleeper, self._closing, replanned}
        )
        try:
            await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not sleeper.done():
                sleeper.cancel()
                await asyncio.gather(sleeper, return_exceptions=True)
        if self._closed is not None:
            raise self._closed()

    def close(self, error: Callable[[], Exception]) -> None:
        """End every wait: each request waiting (for its slot or a pause) and
        each later one raises ``error()`` instead of being sent."""
        self._closed = error
        if self._closing is not None and not self._closing.done():
            self._closing.set_result(None)

    def observe(self, response: HTTPResponse) -> None:
        """Learn from an answer: a 429 pauses and slows everyone, anything else recovers."""
        if response.status == 429:
            retry_after = parse_retry_after(
                response.header("retry-after"), cap=self._max_retry_after
            )
            self.on_rate_limited(retry_after)
        else:
            self.on_success()

    def reserve(self) -> float:
        """Reserve the next slot; returns how long to wait for it (0 when it is now)."""
        now = self._clock()
        slot = max(self._next_free, now - _BURST_SECONDS, self._paused_until)
        self._next_free = slot + 1.0 / self._rate
        return slot - now

    def on_success(self) -> None:
        now = self._clock()
        successes = self._successes
        successes.append(now)
        while successes[0] < now - _MEASURE_SECONDS:
            successes.popleft()
        if self._slow_start:
            self._rate = min(self._max_rate, self._rate + _SLOW_START_GAIN)
            self._slow_start = self._rate < self._max_rate
            if self._rate >= self._planned_rate * _SLOW_START_REPLAN or not self._slow_start:
                self._replan(now)
        elif self._rate < self._max_rate:
            elapsed = max(0.0, now - self._probed_at)
            self._rate = min(self._max_rate, self._rate * (1 + _PROBE_PER_SECOND * elapsed))
        self._probed_at = max(self._probed_at, now)

    def _replan(self, now: float) -> None:
        """Void the slots handed out at the slower rate; wake their holders to reserve again."""
        self._planned_rate = self._rate
        self._epoch += 1
        self._next_free = min(self._next_free, now)
        replanned, self._replanned = self._replanned, None
        if replanned is not None and not replanned.done():
            replanned.set_result(None)

    def _accepted_rate(self, now: float) -> float:
        """Successes per second over the last ``_MEASURE_SECONDS`` (0 with none)."""
        recent = sum(1 for t in self._successes if t >= now - _MEASURE_SECONDS)
        # Over the whole window, or over the budget's life when that is shorter.
        return recent / max(min(_MEASURE_SECONDS, now - self._created), _BURST_SECONDS)

    def on_rate_limited(self, retry_after: float | None) -> None:
        """A 429: pause everyone for ``retry_after`` (at least) and, once per 429 event, set
        the rate just under what the server was measured to accept."""
        self.rate_limited += 1
        self._epoch += 1
        now = self._clock()
        pause = retry_after if retry_after is not None else _DEFAULT_429_PAUSE
        # 429s that arrive during a pause answer requests sent before it: the same event.
        if now >= self._paused_until:
            measured = _UNDER_MEASURED * self._accepted_rate(now)
            if self._slow_start:
                self._slow_start = False
                cut = self._rate * _SLOW_START_CUT
                self._replan(now)  # wakes the waiters of the re-plan still due, if any
            else:
                cut = min(self._rate * _MIN_CUT, max(self._rate * _MAX_CUT, measured))
            self._rate = max(self._max_rate * _MIN_RATE_FRACTION, cut)
        self._paused_until = max(self._paused_until, now + pause)
        # Slots handed out at the old rate are void: their holders reserve again (acquire).
        self._next_free = self._paused_until
        # No probing while paused: the rate grows only with time the server is answering.
        self._probed_at = max(self._probed_at, self._paused_until)


class _Sends(Protocol):
    async def send(self, request: HTTPRequest) -> HTTPResponse: ...


class PacedSender:
    """Sends through ``transport`` with every request drawing on ``budget``: waits for its
    slot first, and feeds the answer (a 429 pauses everyone) back."""

    def __init__(self, transport: _Sends, budget: RequestBudget) -> None:
        self._transport = transport
        self._budget = budget

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        await self._budget.acquire()
        answer = await self._transport.send(request)
        self._budget.observe(answer)
        return answer
