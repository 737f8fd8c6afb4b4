"""The shared request budget on a virtual clock."""

from __future__ import annotations

import asyncio

import pytest

from cometrunway.budget import RequestBudget
from cometrunway.errors import ClientStateError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.slept.append(delay)
        self.now += delay
        await asyncio.sleep(0)


async def test_burst_of_one_second_then_paced() -> None:
    clock = Clock()
    budget = RequestBudget(10, clock=clock, sleep=clock.sleep)
    for _ in range(30):
        await budget.acquire()
    # 10 go at once (a second's worth), the other 20 take about two seconds.
    assert clock.now - 100.0 == pytest_approx(2.0)


def pytest_approx(value: float) -> object:
    return pytest.approx(value, abs=0.11)


async def test_rate_limit_pauses_everyone_and_halves_the_rate() -> None:
    clock = Clock()
    budget = RequestBudget(8, clock=clock, sleep=clock.sleep)
    await budget.acquire()
    budget.on_rate_limited(5.0)
    # Nothing was measured before this 429: the cut is the deepest one allowed, half.
    assert budget.rate == 4
    assert budget.rate_limited == 1
    await budget.acquire()
    assert clock.now >= 105.0
    # The rate comes back with time the server answers, not with a count of answers.
    for _ in range(200):
        budget.on_success()
    assert budget.rate == 4
    for _ in range(200):
        clock.now += 1.0
        budget.on_success()
    assert budget.rate == 8


async def test_one_cut_per_429_event_however_many_requests_come_back_429() -> None:
    clock = Clock()
    budget = RequestBudget(50, clock=clock, sleep=clock.sleep)
    budget.on_rate_limited(1.0)
    for _ in range(15):  # the other requests in flight, answered during the pause
        clock.now += 0.01
        budget.on_rate_limited(1.0)
    assert budget.rate == 25
    assert budget.rate_limited == 16


async def test_the_cut_lands_just_under_the_measured_acceptance_rate() -> None:
    clock = Clock()
    budget = RequestBudget(50, clock=clock, sleep=clock.sleep)
    for _ in range(60):  # the server took 30 requests/s for two seconds, then said 429
        clock.now += 1 / 30
        budget.on_success()
    budget.on_rate_limited(1.0)
    assert budget.rate == pytest_approx(0.95 * 30)


async def test_rate_limit_without_retry_after_pauses_a_little() -> None:
    clock = Clock()
    budget = RequestBudget(1000, clock=clock, sleep=clock.sleep)
    budget.on_rate_limited(None)
    await budget.acquire()
    assert clock.now > 100.0
    for _ in range(50):
        budget.on_rate_limited(None)
    assert budget.rate >= 1000 / 32


async def test_a_request_waiting_for_its_slot_waits_out_a_pause_that_began_meanwhile() -> None:
    clock = Clock()
    budget = RequestBudget(1, clock=clock, sleep=clock.sleep)
    await budget.acquire()  # the burst: one second's worth goes at once
    await budget.acquire()
    sleeps_before = len(clock.slept)

    async def rate_limited_during_the_wait(delay: float) -> None:
        # The 429 of another request lands while this one sleeps towards its slot.
        if len(clock.slept) == sleeps_before:
            budget.on_rate_limited(30.0)
        await clock.sleep(delay)

    budget._sleep = rate_limited_during_the_wait
    start = clock.now
    await budget.acquire()
    # Its old slot was ~1 s away; the pause moved it past the 30 s Retry-After.
    assert clock.now >= start + 30.0


# ---------------------------------------------------------------- close


async def test_close_ends_every_wait_at_once() -> None:
    """Requests waiting out a 100 s pause fail with the closing error as soon as the budget
    closes; later ones fail without waiting."""
    woke: list[float] = []

    async def never_wakes(delay: float) -> None:
        await asyncio.Event().wait()
        woke.append(delay)

    budget = RequestBudget(50, sleep=never_wakes)
    budget.on_rate_limited(100.0)
    waiting = [asyncio.create_task(budget.acquire()) for _ in range(3)]
    waiting.append(asyncio.create_task(budget.wait(100.0)))
    await asyncio.sleep(0)
    assert not any(task.done() for task in waiting)
    budget.close(lambda: ClientStateError("closing"))
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, ClientStateError) for r in results)
    with pytest.raises(ClientStateError):
        await budget.acquire()
    assert woke == []  # nothing waited the pause out
