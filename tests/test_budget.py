"""The shared request budget on a virtual clock."""

from __future__ import annotations

import asyncio

from cometrunway.budget import RequestBudget


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
    import pytest

    return pytest.approx(value, abs=0.11)


async def test_rate_limit_pauses_everyone_and_halves_the_rate() -> None:
    clock = Clock()
    budget = RequestBudget(8, clock=clock, sleep=clock.sleep)
    await budget.acquire()
    budget.on_rate_limited(5.0)
    assert budget.rate == 4
    assert budget.rate_limited == 1
    await budget.acquire()
    assert clock.now >= 105.0
    for _ in range(200):
        budget.on_success()
    assert budget.rate == 8


async def test_rate_limit_without_retry_after_pauses_a_little() -> None:
    clock = Clock()
    budget = RequestBudget(1000, clock=clock, sleep=clock.sleep)
    budget.on_rate_limited(None)
    await budget.acquire()
    assert clock.now > 100.0
    for _ in range(50):
        budget.on_rate_limited(None)
    assert budget.rate >= 1000 / 32
