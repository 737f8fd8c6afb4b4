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


def warmed(budget: RequestBudget, rate: float) -> RequestBudget:
    """``budget`` past its slow start: answers came back until it reached ``rate``."""
    while budget.rate < rate:
        budget.on_success()
    return budget


async def test_burst_of_one_second_then_paced() -> None:
    clock = Clock()
    budget = warmed(RequestBudget(10, clock=clock, sleep=clock.sleep), 10)
    for _ in range(30):
        await budget.acquire()
    # 10 go at once (a second's worth), the other 20 take about two seconds.
    assert clock.now - 100.0 == pytest_approx(2.0)


def pytest_approx(value: float) -> object:
    return pytest.approx(value, abs=0.11)


async def test_rate_limit_pauses_everyone_and_halves_the_rate() -> None:
    clock = Clock()
    budget = warmed(RequestBudget(8, clock=clock, sleep=clock.sleep), 8)
    await budget.acquire()
    budget.on_rate_limited(5.0)
    # Little was measured before this 429 (3 answers): the cut is the deepest allowed, half.
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
    budget = warmed(RequestBudget(50, clock=clock, sleep=clock.sleep), 50)
    clock.now += 2.0  # nothing answered in the last two seconds: nothing measured
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


# ---------------------------------------------------------------- slow start


async def test_slow_start_sends_a_small_first_burst_then_doubles_each_second() -> None:
    """Nothing says yet what the server takes: an eighth of the rate, and a first burst of a
    second's worth of that (6 requests, not 50), then twice as much each second answered."""
    clock = Clock()
    budget = RequestBudget(50, clock=clock, sleep=clock.sleep)
    assert budget.rate == 50 / 8
    at_once = 0
    while budget.reserve() <= 0:
        at_once += 1
    assert at_once == 7  # a second's worth at 6.25/s, and the slot due now
    rates = []
    for _second in range(4):
        answered = int(budget.rate)  # a second of answers at the current rate
        for _ in range(answered):
            clock.now += 1 / answered
            budget.on_success()
        rates.append(budget.rate)
    assert rates == pytest.approx([12.25, 24.25, 48.25, 50], abs=0.01)


async def test_a_slow_start_step_replans_the_requests_queued_for_their_slots() -> None:
    """Requests queued at 6.25/s hold slots 0.16 s apart; once answers raised the rate by a
    quarter they are woken to reserve again, spaced for the new rate."""
    clock = Clock()
    sleeping: list[float] = []

    async def held(delay: float) -> None:  # a wait that only ends by being woken
        sleeping.append(delay)
        await asyncio.Event().wait()

    budget = RequestBudget(50, clock=clock, sleep=held)
    while budget.reserve() <= 0:  # the first burst, sent
        pass
    queued = [asyncio.create_task(budget.acquire()) for _ in range(10)]
    while len(sleeping) < 10:
        await asyncio.sleep(0)
    assert sleeping[1] - sleeping[0] == pytest.approx(1 / 6.25)
    budget.on_success()  # 7.25/s: not yet a quarter more
    await asyncio.sleep(0)
    assert len(sleeping) == 10
    budget.on_success()  # 8.25/s
    while len(sleeping) < 19:  # one reserves the slot due now, nine wait again
        await asyncio.sleep(0)
    again = sleeping[10:]
    assert again == pytest.approx([i / 8.25 for i in range(1, 10)])
    assert sum(task.done() for task in queued) == 1
    for task in queued:
        task.cancel()
    await asyncio.gather(*queued, return_exceptions=True)


async def test_the_first_429_ends_the_slow_start_at_the_rate_a_second_before() -> None:
    clock = Clock()
    budget = RequestBudget(50, clock=clock, sleep=clock.sleep)
    for _ in range(20):  # 6.25 → 26.25 requests/s in a second of answers
        clock.now += 0.05
        budget.on_success()
    budget.on_rate_limited(1.0)
    assert budget.rate == pytest.approx(26.25 / 2)
    # After the slow start, answers no longer double the rate: it probes slowly.
    for _ in range(10):  # two seconds: the pause, then one of probing
        clock.now += 0.2
        budget.on_success()
    assert 26.25 / 2 < budget.rate < 26.25 / 2 * 1.01


async def test_a_low_configured_rate_starts_at_itself() -> None:
    assert RequestBudget(3).rate == 3
    assert RequestBudget(20).rate == 5  # an eighth would be 2.5: the floor is 5


async def test_probing_grows_with_the_rate_the_server_took() -> None:
    """At a low server limit, probing is as gentle, relative to it, as at a high one."""
    grown = []
    for limit in (10, 50):
        clock = Clock()
        budget = warmed(RequestBudget(50, clock=clock, sleep=clock.sleep), 50)
        clock.now += 2.0
        for _ in range(2 * limit):  # the server took `limit` requests/s for two seconds
            clock.now += 1 / limit
            budget.on_success()
        budget.on_rate_limited(0.0)
        after_cut = budget.rate
        for _ in range(10):
            clock.now += 1.0
            budget.on_success()
        grown.append(budget.rate / after_cut)
    assert grown[0] == pytest.approx(grown[1]) and 1.03 < grown[0] < 1.05


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
    await asyncio.sleep(0)
    assert not any(task.done() for task in waiting)
    budget.close(lambda: ClientStateError("closing"))
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, ClientStateError) for r in results)
    with pytest.raises(ClientStateError):
        await budget.acquire()
    assert woke == []  # nothing waited the pause out
